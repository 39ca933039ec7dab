using System.Net;
using Peerway.Core;

namespace Peerway.Dht;

/// <summary>BEP 5 node states.</summary>
internal enum NodeState
{
    /// <summary>Responded to one of our queries within the last 15 minutes, or ever responded and queried us within 15 minutes.</summary>
    Good,
    /// <summary>No activity for 15 minutes (or never responded to us).</summary>
    Questionable,
    /// <summary>Failed to respond to <see cref="RoutingTable.MaxFailures"/> queries in a row.</summary>
    Bad,
}

/// <summary>One node in the routing table (or in a bucket's replacement cache).</summary>
internal sealed class RoutingEntry(NodeId id, IPEndPoint endPoint, bool verified)
{
    public NodeId Id { get; } = id;

    public IPEndPoint EndPoint { get; set; } = endPoint;

    /// <summary>BEP 42: the id matches the IP (or the IP is exempt).</summary>
    public bool Verified { get; set; } = verified;

    public DateTimeOffset? LastResponse { get; set; }

    public DateTimeOffset? LastQuery { get; set; }

    public DateTimeOffset LastSeen { get; set; }

    public int Failures { get; set; }

    /// <summary>A ping-before-evict is in flight for this node.</summary>
    public bool Pinging { get; set; }

    public NodeState State(DateTimeOffset now, TimeSpan goodFor)
    {
        if (Failures >= RoutingTable.MaxFailures) return NodeState.Bad;
        // BEP 5: "A good node is a node has responded to one of our queries within the last 15 minutes. A node is also
        // good if it has ever responded to one of our queries and has sent us a query within the last 15 minutes."
        if (LastResponse is { } r && (now - r < goodFor || (LastQuery is { } q && now - q < goodFor))) return NodeState.Good;
        return NodeState.Questionable;
    }

    public NodeContact ToContact() => new(Id, EndPoint);
}

/// <summary>What <see cref="RoutingTable.Add"/> did with a node.</summary>
internal enum AddOutcome
{
    Updated,
    Added,
    Replaced,
    /// <summary>Kept in the bucket's replacement cache; questionable nodes in the bucket may be pinged.</summary>
    Cached,
    Rejected,
}

/// <summary>
/// BEP 5 routing table: buckets of at most k nodes covering the id space; "when a bucket is full of known good nodes,
/// no more nodes may be added unless our own node ID falls within the range of the bucket", in which case it splits.
/// Represented as a list where bucket i holds nodes sharing exactly i leading bits with our id and the last bucket
/// holds the rest of the range around our id (the only bucket that can split). Each bucket has a replacement cache of
/// at most k nodes. Memory is bounded by 160 × 2k entries. Not thread-safe: owned by DhtNode under its lock.
/// </summary>
internal sealed class RoutingTable
{
    /// <summary>BEP 5: a node that fails "multiple queries in a row" becomes bad; we use two.</summary>
    public const int MaxFailures = 2;

    private readonly int _k;
    private readonly TimeSpan _goodFor;
    private readonly List<Bucket> _buckets = [];
    private readonly Dictionary<NodeId, RoutingEntry> _byId = [];
    private readonly Dictionary<IPEndPoint, RoutingEntry> _byEndPoint = [];

    public RoutingTable(NodeId self, int k, TimeSpan goodFor, DateTimeOffset now)
    {
        Self = self;
        _k = k;
        _goodFor = goodFor;
        _buckets.Add(new Bucket(now));
    }

    public NodeId Self { get; }

    /// <summary>Nodes in buckets (not counting replacement caches).</summary>
    public int Count => _byId.Count;

    public int BucketCount => _buckets.Count;

    public int ReplacementCount => _buckets.Sum(b => b.Replacements.Count);

    public IEnumerable<RoutingEntry> Entries => _buckets.SelectMany(b => b.Nodes);

    public RoutingEntry? Find(NodeId id) => _byId.GetValueOrDefault(id);

    private int IndexOf(NodeId id) => Math.Min(Self.CommonPrefixLength(id), _buckets.Count - 1);

    /// <summary>
    /// Adds or refreshes a node we heard from. <paramref name="responded"/>: it answered our query (else it queried us).
    /// When the bucket is full and holds questionable nodes, the least recently seen one is appended to
    /// <paramref name="toPing"/> (BEP 5: ping before evicting) and the new node waits in the replacement cache.
    /// </summary>
    public AddOutcome Add(NodeId id, IPEndPoint endPoint, bool verified, bool responded, DateTimeOffset now, List<RoutingEntry> toPing)
    {
        if (id == Self) return AddOutcome.Rejected;
        var bucket = _buckets[IndexOf(id)];
        if (_byId.TryGetValue(id, out var existing))
        {
            if (!existing.EndPoint.Equals(endPoint))
            {
                // Same id from another address: only take it over from a node that stopped answering.
                if (existing.Failures == 0) return AddOutcome.Rejected;
                _byEndPoint.Remove(existing.EndPoint);
                existing.EndPoint = endPoint;
                _byEndPoint[endPoint] = existing;
            }

            Touch(existing, responded, now);
            bucket.LastChanged = now;
            return AddOutcome.Updated;
        }

        // One table entry per address: a second id from a known IP:port is ignored (cheap Sybil defence).
        if (_byEndPoint.ContainsKey(endPoint)) return AddOutcome.Rejected;

        while (true)
        {
            var cached = FindIn(bucket.Replacements, id);
            if (bucket.Nodes.Count < _k)
            {
                if (cached is not null) bucket.Replacements.Remove(cached);
                Insert(bucket, cached ?? NewEntry(id, endPoint, verified, responded, now), now);
                return AddOutcome.Added;
            }

            var index = _buckets.IndexOf(bucket);
            if (index == _buckets.Count - 1 && index < NodeId.Bits - 1)
            {
                // BEP 5: the bucket covering our own id splits when full.
                Split(now);
                bucket = _buckets[IndexOf(id)];
                continue;
            }

            var bad = FirstToReplace(bucket.Nodes, NodeState.Bad, now);
            if (bad is not null)
            {
                // BEP 5: "If any nodes in the bucket are known to have become bad, then one is replaced by the new node."
                RemoveFromBucket(bucket, bad);
                if (cached is not null) bucket.Replacements.Remove(cached);
                Insert(bucket, cached ?? NewEntry(id, endPoint, verified, responded, now), now);
                return AddOutcome.Replaced;
            }

            if (cached is not null) Touch(cached, responded, now);
            else AddReplacement(bucket, NewEntry(id, endPoint, verified, responded, now));

            // BEP 5: questionable nodes not seen for 15 minutes are pinged, least recently seen first, one at a time.
            if (!AnyPinging(bucket.Nodes))
            {
                var questionable = FirstToReplace(bucket.Nodes, NodeState.Questionable, now);
                if (questionable is not null)
                {
                    questionable.Pinging = true;
                    toPing.Add(questionable);
                }
            }

            return AddOutcome.Cached;
        }
    }

    /// <summary>A ping-before-evict (or any query) got an answer.</summary>
    public void OnResponded(NodeId id, DateTimeOffset now, List<RoutingEntry> toPing)
    {
        if (!_byId.TryGetValue(id, out var entry)) return;
        entry.Pinging = false;
        Touch(entry, responded: true, now);
        var bucket = _buckets[IndexOf(id)];
        bucket.LastChanged = now;
        // BEP 5: "If the pinged node responds then the next least recently seen questionable node is pinged".
        if (bucket.Replacements.Count > 0 && !AnyPinging(bucket.Nodes))
        {
            var next = bucket.Nodes.Where(e => e.State(now, _goodFor) == NodeState.Questionable).OrderBy(e => e.LastSeen).FirstOrDefault();
            if (next is not null)
            {
                next.Pinging = true;
                toPing.Add(next);
            }
        }
    }

    /// <summary>A query to the node failed (after retries). A failed ping-before-evict evicts it for the best replacement.</summary>
    public void OnFailed(NodeId id, DateTimeOffset now, bool evict)
    {
        if (!_byId.TryGetValue(id, out var entry)) return;
        entry.Failures++;
        var wasPing = entry.Pinging;
        entry.Pinging = false;
        var bucket = _buckets[IndexOf(id)];
        if ((evict || wasPing || entry.Failures >= MaxFailures) && bucket.Replacements.Count > 0)
        {
            // BEP 5: "If a node in the bucket fails to respond to a ping, it is suggested to try once more before
            // discarding the node and replacing it with a new good node" (the retry is the query layer's).
            RemoveFromBucket(bucket, entry);
            var replacement = bucket.Replacements.OrderByDescending(e => e.Verified).ThenByDescending(e => e.LastResponse.HasValue)
                .ThenByDescending(e => e.LastSeen).First();
            bucket.Replacements.Remove(replacement);
            Insert(bucket, replacement, now);
        }
    }

    /// <summary>
    /// Up to <paramref name="count"/> nodes closest to <paramref name="target"/>, closest first: non-bad nodes (our own
    /// lookups may try questionable ones), or with <paramref name="goodOnly"/> only good ones (what we hand out).
    /// </summary>
    /// <remarks>Hot path (every find_node/get_peers reply): one pass over the table (≤ 160·k entries) keeping the best
    /// <paramref name="count"/> by insertion, O(n·count) without sorting the whole table; <paramref name="into"/> (cleared
    /// first) avoids allocating the result.</remarks>
    public List<RoutingEntry> Closest(NodeId target, int count, DateTimeOffset now, System.Net.Sockets.AddressFamily? family = null,
        bool goodOnly = false, List<RoutingEntry>? into = null)
    {
        var best = into ?? new List<RoutingEntry>(Math.Max(count, 0) + 1);
        best.Clear();
        if (count <= 0) return best;
        foreach (var e in _byId.Values)
        {
            if (family is not null && e.EndPoint.AddressFamily != family) continue;
            var state = e.State(now, _goodFor);
            if (state == NodeState.Bad || (goodOnly && state != NodeState.Good)) continue;
            var distance = e.Id ^ target;
            if (best.Count == count && distance >= (best[^1].Id ^ target)) continue;
            var i = best.Count;
            while (i > 0 && distance < (best[i - 1].Id ^ target)) i--;
            best.Insert(i, e);
            if (best.Count > count) best.RemoveAt(count);
        }

        return best;
    }

    /// <summary>Buckets not changed for <paramref name="idle"/>, with a random id in each one's range (BEP 5 refresh).</summary>
    public List<NodeId> IdleBucketTargets(DateTimeOffset now, TimeSpan idle, Random random)
    {
        var targets = new List<NodeId>();
        for (var i = 0; i < _buckets.Count; i++)
        {
            if (now - _buckets[i].LastChanged < idle) continue;
            targets.Add(RandomIdInBucket(i, random));
            _buckets[i].LastChanged = now;
        }

        return targets;
    }

    /// <summary>A random id in bucket <paramref name="index"/>: our first index bits, then (except for the last bucket) the flipped bit.</summary>
    public NodeId RandomIdInBucket(int index, Random random)
    {
        var id = NodeId.Random(random);
        for (var bit = 0; bit < index; bit++) id = id.WithBit(bit, Self.GetBit(bit));
        if (index < _buckets.Count - 1) id = id.WithBit(index, !Self.GetBit(index));
        return id;
    }

    /// <summary>A fresh table for a new own id (BEP 42 id change), keeping every node that still fits.</summary>
    public RoutingTable Rebase(NodeId newSelf, DateTimeOffset now)
    {
        var table = new RoutingTable(newSelf, _k, _goodFor, now);
        var ignored = new List<RoutingEntry>();
        foreach (var e in Entries.OrderByDescending(e => e.LastSeen))
        {
            if (table.Add(e.Id, e.EndPoint, e.Verified, e.LastResponse.HasValue, now, ignored) is AddOutcome.Added && table.Find(e.Id) is { } copy)
            {
                copy.LastResponse = e.LastResponse;
                copy.LastQuery = e.LastQuery;
                copy.LastSeen = e.LastSeen;
                copy.Failures = e.Failures;
            }
        }

        return table;
    }

    // Allocation-free helpers for the per-query path (no LINQ closures).
    private static RoutingEntry? FindIn(List<RoutingEntry> entries, NodeId id)
    {
        foreach (var e in entries)
        {
            if (e.Id == id) return e;
        }

        return null;
    }

    /// <summary>The node in <paramref name="state"/> to replace or ping first: unverified (BEP 42) before verified, then
    /// least recently seen. A loop, not LINQ: this runs for every query from a node waiting for a full bucket.</summary>
    private RoutingEntry? FirstToReplace(List<RoutingEntry> entries, NodeState state, DateTimeOffset now)
    {
        RoutingEntry? best = null;
        foreach (var e in entries)
        {
            if (e.State(now, _goodFor) != state) continue;
            if (best is null || (!e.Verified && best.Verified) || (e.Verified == best.Verified && e.LastSeen < best.LastSeen)) best = e;
        }

        return best;
    }

    private static bool AnyPinging(List<RoutingEntry> entries)
    {
        foreach (var e in entries)
        {
            if (e.Pinging) return true;
        }

        return false;
    }

    private static RoutingEntry NewEntry(NodeId id, IPEndPoint endPoint, bool verified, bool responded, DateTimeOffset now)
    {
        var e = new RoutingEntry(id, endPoint, verified);
        Touch(e, responded, now);
        return e;
    }

    private static void Touch(RoutingEntry e, bool responded, DateTimeOffset now)
    {
        e.LastSeen = now;
        if (responded)
        {
            e.LastResponse = now;
            e.Failures = 0;
        }
        else
        {
            e.LastQuery = now;
        }
    }

    private void AddReplacement(Bucket bucket, RoutingEntry entry)
    {
        if (bucket.Replacements.Count >= _k)
        {
            // Bounded cache: drop an unverified entry first, then the least recently seen.
            var victim = bucket.Replacements.OrderBy(e => e.Verified).ThenBy(e => e.LastSeen).First();
            if (victim.Verified && !entry.Verified) return;
            bucket.Replacements.Remove(victim);
        }

        bucket.Replacements.Add(entry);
    }

    private void Insert(Bucket bucket, RoutingEntry entry, DateTimeOffset now)
    {
        bucket.Nodes.Add(entry);
        bucket.LastChanged = now;
        _byId[entry.Id] = entry;
        _byEndPoint[entry.EndPoint] = entry;
    }

    private void RemoveFromBucket(Bucket bucket, RoutingEntry entry)
    {
        bucket.Nodes.Remove(entry);
        _byId.Remove(entry.Id);
        _byEndPoint.Remove(entry.EndPoint);
    }

    private void Split(DateTimeOffset now)
    {
        var last = _buckets[^1];
        var index = _buckets.Count - 1;
        var next = new Bucket(now) { LastChanged = last.LastChanged };
        _buckets.Add(next);
        // Nodes sharing more than `index` bits with us move to the new last bucket.
        foreach (var e in last.Nodes.Where(e => Self.CommonPrefixLength(e.Id) > index).ToList())
        {
            last.Nodes.Remove(e);
            next.Nodes.Add(e);
        }

        foreach (var e in last.Replacements.Where(e => Self.CommonPrefixLength(e.Id) > index).ToList())
        {
            last.Replacements.Remove(e);
            next.Replacements.Add(e);
        }
    }

    private sealed class Bucket(DateTimeOffset now)
    {
        public List<RoutingEntry> Nodes { get; } = [];

        public List<RoutingEntry> Replacements { get; } = [];

        public DateTimeOffset LastChanged { get; set; } = now;
    }
}
