using System.Net;
using Peerway.Core;

namespace Peerway.Dht;

internal enum LookupKind
{
    FindNode,
    GetPeers,

    /// <summary>BEP 44 get: like get_peers (nodes and write tokens), collecting an item instead of peers.</summary>
    Get,
}

internal enum CandidateState
{
    New,
    InFlight,
    Answered,
    Failed,
    /// <summary>Another disjoint path queried this node first (S/Kademlia: each node is used by one path only).</summary>
    TakenByOtherPath,
}

/// <summary>A node considered by a lookup. <see cref="Id"/> is null for a bootstrap router we have not heard from.</summary>
/// <remarks>A node learned from compact node info keeps its address as bytes and makes its <see cref="EndPoint"/> only
/// when asked (when it is queried or reported): most nodes a lookup hears of are never queried, and an endpoint is two
/// objects (72 bytes for IPv4).</remarks>
internal sealed class Candidate
{
    private readonly ulong _address0;
    private readonly ulong _address1;
    private readonly ushort _port;
    private readonly byte _addressLength;
    private IPEndPoint? _endPoint;

    public Candidate(NodeId? id, IPEndPoint endPoint, int depth, int path = 0)
    {
        Id = id;
        _endPoint = endPoint;
        Depth = depth;
        Path = path;
    }

    /// <summary>A node from compact node info: <paramref name="compactAddress"/> is 4 or 16 address bytes and a
    /// big-endian port (BEP 5 / BEP 32).</summary>
    public Candidate(NodeId id, ReadOnlySpan<byte> compactAddress, int depth, int path)
    {
        Id = id;
        Depth = depth;
        Path = path;
        _addressLength = (byte)(compactAddress.Length - 2);
        Span<byte> padded = stackalloc byte[16];
        padded.Clear();
        compactAddress[..^2].CopyTo(padded);
        _address0 = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(padded);
        _address1 = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(padded[8..]);
        _port = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(compactAddress[^2..]);
    }

    /// <summary>The disjoint path that holds this candidate (index into the lookup's paths).</summary>
    public int Path { get; }

    public NodeId? Id { get; set; }

    public IPEndPoint EndPoint => _endPoint ??= MakeEndPoint();

    /// <summary>Hop depth: 1 for seeds, d + 1 for nodes learned from a depth-d response.</summary>
    public int Depth { get; }

    public CandidateState State { get; set; }

    /// <summary>The get_peers token this node gave us (for announce_peer).</summary>
    public byte[]? Token { get; set; }

    /// <summary>The endpoint <see cref="KrpcCodec.TryReadCompactEndPoint"/> reads from the compact address.</summary>
    private IPEndPoint MakeEndPoint()
    {
        Span<byte> bytes = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(bytes, _address0);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(bytes[8..], _address1);
        return new IPEndPoint(new IPAddress(bytes[.._addressLength]), _port);
    }
}

/// <summary>
/// An iterative Kademlia lookup as a sans-I/O state machine: the owner sends the queries it asks for
/// (<see cref="NextQueries"/>) and feeds back responses and failures. With <c>paths</c> &gt; 1 it runs S/Kademlia disjoint
/// paths: seeds are dealt round-robin to the paths, and a node is queried by at most one path.
/// Not thread-safe: owned by DhtNode under its lock.
/// </summary>
internal sealed class Lookup
{
    /// <summary>Candidates remembered per path (closest kept); bounds memory under floods of fake contacts.</summary>
    public const int MaxCandidatesPerPath = 256;

    /// <summary>Queries one lookup may send before it stops (guards against endless lookups under attack).</summary>
    public const int MaxQueries = 512;

    /// <summary>Initial capacity of a path's candidate list and of the queried set (a usual lookup stays within it).</summary>
    private const int InitialCandidates = 64;

    private readonly int _k;
    private readonly int _alpha;
    private readonly List<Path> _paths = [];
    private readonly HashSet<IPEndPoint> _queried = new(InitialCandidates / 2);
    private readonly HashSet<IPEndPoint> _peerSet = [];

    public Lookup(NodeId target, LookupKind kind, int k, int alpha, int paths, DateTimeOffset started)
    {
        Target = target;
        Kind = kind;
        _k = k;
        _alpha = alpha;
        Started = started;
        for (var i = 0; i < paths; i++) _paths.Add(new Path(this, i));
    }

    public NodeId Target { get; }

    public LookupKind Kind { get; }

    public DateTimeOffset Started { get; }

    public int QueriesSent { get; private set; }

    public int Responses { get; private set; }

    /// <summary>Largest depth of a response that brought a node into some path's k closest (see <see cref="LookupResult"/>).</summary>
    public int Rounds { get; private set; }

    public List<IPEndPoint> Peers { get; } = [];

    public bool IsDone { get; private set; }

    /// <summary>Adds seeds (closest known nodes, or routers with unknown ids), dealt round-robin to the paths.</summary>
    public void Seed(IEnumerable<(NodeId? Id, IPEndPoint EndPoint)> seeds)
    {
        var i = 0;
        foreach (var (id, endPoint) in seeds)
        {
            if (_paths[i % _paths.Count].Add(id, endPoint, 1)) i++;
        }
    }

    /// <summary>Most queries <see cref="NextQueries"/> asks for at once: α per path.</summary>
    public int MaxQueriesAtOnce => _alpha * _paths.Count;

    /// <summary>The queries to send now, written to <paramref name="queries"/> (at least <see cref="MaxQueriesAtOnce"/>
    /// long) and marked in flight; returns how many. Completes the lookup when nothing is left.</summary>
    public int NextQueries(Span<Candidate> queries)
    {
        if (IsDone) return 0;
        var count = 0;
        foreach (var path in _paths) path.Next(queries, ref count);
        QueriesSent += count;
        if (count == 0 && _paths.TrueForAll(p => p.IsDone)) IsDone = true;
        return count;
    }

    public void OnResponse(Candidate candidate, NodeId responderId, IReadOnlyList<NodeContact> nodes, IReadOnlyList<IPEndPoint>? values, ReadOnlySpan<byte> token)
    {
        if (Accept(candidate, responderId, values, token) is not { } path) return;
        var improved = Rounds == 0;
        foreach (var node in nodes)
        {
            if (path.Add(node.Id, node.EndPoint, candidate.Depth + 1) && path.IsAmongClosest(node.Id)) improved = true;
        }

        if (improved) Rounds = Math.Max(Rounds, candidate.Depth);
    }

    /// <summary>
    /// A response carrying compact node info (BEP 5: 26 bytes per IPv4 node, 38 per IPv6 node), read in place: an
    /// <see cref="IPEndPoint"/> is made only for a node new to the path, not for the many a lookup hears of twice.
    /// Nodes with port 0, our own id <paramref name="self"/> or our own endpoint <paramref name="local"/> are skipped.
    /// </summary>
    public void OnResponse(Candidate candidate, NodeId responderId, ReadOnlySpan<byte> compactNodes, System.Net.Sockets.AddressFamily family,
        NodeId self, IPEndPoint local, IReadOnlyList<IPEndPoint>? values, ReadOnlySpan<byte> token)
    {
        if (Accept(candidate, responderId, values, token) is not { } path) return;
        var improved = Rounds == 0;
        var size = family == System.Net.Sockets.AddressFamily.InterNetworkV6 ? KrpcCodec.CompactNode6Length : KrpcCodec.CompactNodeLength;
        for (var i = 0; i + size <= compactNodes.Length; i += size)
        {
            var entry = compactNodes.Slice(i, size);
            var id = new NodeId(entry[..NodeId.Length]);
            var address = entry[NodeId.Length..];
            if (id == self || System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(address[^2..]) == 0 || path.HasSeen(id)) continue;
            if (IsEndPoint(address, local)) continue;
            if (path.Add(id, address, candidate.Depth + 1) && path.IsAmongClosest(id)) improved = true;
        }

        if (improved) Rounds = Math.Max(Rounds, candidate.Depth);
    }

    /// <summary>Whether the compact address (4 or 16 bytes, then the port) is <paramref name="endPoint"/>, as
    /// <see cref="IPEndPoint.Equals(object)"/> would say of the endpoint read from it (same family, address and port; an
    /// IPv6 address read from compact info has scope 0).</summary>
    internal static bool IsEndPoint(ReadOnlySpan<byte> compact, IPEndPoint endPoint)
    {
        if (System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(compact[^2..]) != endPoint.Port) return false;
        var address = endPoint.Address;
        var length = compact.Length - 2;
        if (length != (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 4 : 16)) return false;
        if (length == 16 && address.ScopeId != 0) return false;
        Span<byte> bytes = stackalloc byte[16];
        return address.TryWriteBytes(bytes, out var written) && written == length && bytes[..length].SequenceEqual(compact[..^2]);
    }

    /// <summary>Counts a response and returns the path it feeds, or null when it must be ignored.</summary>
    private Path? Accept(Candidate candidate, NodeId responderId, IReadOnlyList<IPEndPoint>? values, ReadOnlySpan<byte> token)
    {
        if (candidate.State != CandidateState.InFlight) return null;
        Responses++;
        if (candidate.Id is { } claimed && claimed != responderId)
        {
            // The contact that led here claimed another id (a stale entry, or a liar's fake "closer" node): the answer
            // is not from the node we asked for, so it neither counts as that node nor feeds the lookup. Found by the
            // simulator (docs/SIMULATION.md): without this check, fake ids next to the target filled the k closest.
            candidate.State = CandidateState.Failed;
            return null;
        }

        candidate.State = CandidateState.Answered;
        candidate.Id ??= responderId;
        if (!token.IsEmpty) candidate.Token = token.ToArray();
        if (values is not null)
        {
            foreach (var peer in values)
            {
                if (_peerSet.Add(peer)) Peers.Add(peer);
            }
        }

        var path = _paths[candidate.Path];
        path.Resort();
        return path;
    }

    public static void OnFailure(Candidate candidate)
    {
        if (candidate.State == CandidateState.InFlight) candidate.State = CandidateState.Failed;
    }

    public void Cancel() => IsDone = true;

    /// <summary>The k closest answered nodes over all paths, closest first; with <paramref name="withToken"/>, only those
    /// that gave a get_peers token (BEP 5: announce_peer goes to the closest nodes that returned a token).</summary>
    public List<Candidate> ClosestAnswered(bool withToken = false)
    {
        // Loops, not LINQ (one lookup ends per query burst in a simulator): the first candidate of each id in path order,
        // then a sort by distance (ids are distinct, so an unstable sort gives the one order there is).
        var all = new List<Candidate>();
        foreach (var path in _paths)
        {
            AddAnswered(all, path.Known, withToken);
            AddAnswered(all, path.Unknown, withToken);
        }

        var target = Target;
        all.Sort((a, b) => (a.Id!.Value ^ target).CompareTo(b.Id!.Value ^ target));
        if (all.Count > _k) all.RemoveRange(_k, all.Count - _k);
        return all;
    }

    private static void AddAnswered(List<Candidate> all, List<Candidate> candidates, bool withToken)
    {
        foreach (var c in candidates)
        {
            if (c.State != CandidateState.Answered || c.Id is not { } id || (withToken && c.Token is null) || ContainsId(all, id)) continue;
            all.Add(c);
        }
    }

    private static bool ContainsId(List<Candidate> candidates, NodeId id)
    {
        foreach (var c in candidates)
        {
            if (c.Id == id) return true;
        }

        return false;
    }

    private sealed class Path(Lookup owner, int index)
    {
        // Sized for a usual lookup (about 8 responses of 8 nodes), so the list rarely grows.
        private readonly List<Candidate> _candidates = new(InitialCandidates); // known ids, closest first
        private readonly List<Candidate> _unknown = [];    // routers without ids, queried first
        private HashSet<NodeId>? _evicted; // ids dropped from _candidates (only under floods): still seen

        /// <summary>The candidates with known ids, closest first.</summary>
        public List<Candidate> Known => _candidates;

        /// <summary>Routers whose ids are not known yet.</summary>
        public List<Candidate> Unknown => _unknown;

        public bool IsDone { get; private set; }

        /// <summary>Whether the path has held <paramref name="id"/>: it is in the sorted candidates (found by binary search
        /// on the distance to the target, unique per id) or was evicted from them.</summary>
        public bool HasSeen(NodeId id) => IndexOf(id) >= 0 || (_evicted?.Contains(id) ?? false);

        /// <summary>The index of <paramref name="id"/> in the candidates, or the complement of where it would go.</summary>
        private int IndexOf(NodeId id)
        {
            var distance = id ^ owner.Target;
            int lo = 0, hi = _candidates.Count - 1;
            while (lo <= hi)
            {
                var mid = lo + ((hi - lo) >> 1);
                var c = (_candidates[mid].Id!.Value ^ owner.Target).CompareTo(distance);
                if (c == 0) return mid;
                if (c < 0) lo = mid + 1;
                else hi = mid - 1;
            }

            return ~lo;
        }

        public bool Add(NodeId? id, IPEndPoint endPoint, int depth)
        {
            if (id is not { } known)
            {
                if (_unknown.Count >= owner._k || _unknown.Any(c => c.EndPoint.Equals(endPoint))) return false;
                _unknown.Add(new Candidate(null, endPoint, depth, index));
                return true;
            }

            return Insert(known, new Candidate(known, endPoint, depth, index));
        }

        /// <summary>Adds a node from compact node info (its endpoint is made only if it is used).</summary>
        public bool Add(NodeId id, ReadOnlySpan<byte> compactAddress, int depth) =>
            IndexOf(id) < 0 && !(_evicted?.Contains(id) ?? false) && Insert(id, new Candidate(id, compactAddress, depth, index));

        private bool Insert(NodeId known, Candidate c)
        {
            var at = IndexOf(known);
            if (at >= 0 || (_evicted?.Contains(known) ?? false)) return false;
            _candidates.Insert(~at, c);
            if (_candidates.Count > MaxCandidatesPerPath)
            {
                // Drop the farthest candidate that is not in flight or answered.
                var victim = _candidates.FindLastIndex(x => x.State is CandidateState.New or CandidateState.Failed or CandidateState.TakenByOtherPath);
                if (victim >= 0)
                {
                    var dropped = _candidates[victim];
                    _candidates.RemoveAt(victim);
                    (_evicted ??= []).Add(dropped.Id!.Value);
                    if (ReferenceEquals(dropped, c)) return false;
                }
            }

            return true;
        }

        // Routers answered: their ids are now known, move them into the sorted list.
        public void Resort()
        {
            for (var i = 0; i < _unknown.Count; i++)
            {
                var c = _unknown[i];
                if (c.Id is not { } id) continue;
                _unknown.RemoveAt(i--);
                if (HasSeen(id)) continue;
                _candidates.Insert(~IndexOf(id), c);
            }
        }

        public bool IsAmongClosest(NodeId id)
        {
            var rank = 0;
            foreach (var c in _candidates)
            {
                if (c.State is CandidateState.Failed or CandidateState.TakenByOtherPath) continue;
                if (c.Id == id) return true;
                if (++rank >= owner._k) return false;
            }

            return false;
        }

        public void Next(Span<Candidate> queries, ref int count)
        {
            if (IsDone) return;
            var routersInFlight = _unknown.Count(c => c.State == CandidateState.InFlight);
            var inFlight = _candidates.Count(c => c.State == CandidateState.InFlight) + routersInFlight;
            foreach (var c in _unknown)
            {
                if (inFlight >= owner._alpha) break;
                if (c.State != CandidateState.New) continue;
                if (!Claim(c)) continue;
                queries[count++] = c;
                inFlight++;
                routersInFlight++;
            }

            // Kademlia §2.3: the lookup ends when the k closest nodes seen have all answered. Only those k closest
            // (not counting nodes that failed or belong to another path) are ever queried, closest first, α at a time.
            var rank = 0;
            var allAnswered = true;
            foreach (var c in _candidates)
            {
                if (c.State is CandidateState.Failed or CandidateState.TakenByOtherPath) continue;
                if (rank++ >= owner._k) break;
                if (c.State == CandidateState.Answered) continue;
                if (c.State == CandidateState.New && inFlight < owner._alpha && owner.QueriesSent + count < MaxQueries)
                {
                    if (!Claim(c))
                    {
                        rank--;
                        continue;
                    }

                    queries[count++] = c;
                    inFlight++;
                }

                allAnswered = false;
            }

            // Queries still in flight to nodes outside the k closest do not hold the lookup up; routers (ids unknown)
            // in flight do, since they may return the first candidates.
            var budgetLeft = owner.QueriesSent + count < MaxQueries;
            if ((allAnswered && routersInFlight == 0) || (inFlight == 0 && !budgetLeft)) IsDone = true;
        }

        private bool Claim(Candidate c)
        {
            if (owner._queried.Add(c.EndPoint))
            {
                c.State = CandidateState.InFlight;
                return true;
            }

            c.State = CandidateState.TakenByOtherPath;
            return false;
        }
    }
}
