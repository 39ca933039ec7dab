using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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

/// <summary>One node in the routing table (or in a bucket's replacement cache): a struct held inline in its bucket's
/// array, so a table is a few arrays rather than one object per contact (a simulator holds 10^7 entries). Mutated only
/// in place, through a reference into the array; copies (from <see cref="RoutingTable.Find"/>, <see cref="RoutingTable.Closest(NodeId, int, DateTimeOffset, System.Net.Sockets.AddressFamily?, bool)"/>,
/// <see cref="RoutingTable.Entries"/>) are snapshots.</summary>
/// <remarks>56 bytes: the endpoint reference 8 (the endpoint object is the one the datagram came from, shared with the
/// socket layer), the id's 20 bytes as its three words (a <see cref="NodeId"/> field would be padded to 24), three
/// instants as UTC ticks (<see cref="Never"/> for none) 24, failures and two flags.</remarks>
internal struct RoutingEntry
{
    private const long Never = long.MinValue;

    private readonly ulong _id0;
    private readonly ulong _id1;
    private readonly uint _id2;
    private long _lastResponse = Never;
    private long _lastQuery = Never;
    private long _lastSeen;
    private byte _failures;

    public RoutingEntry(NodeId id, IPEndPoint endPoint, bool verified)
    {
        var words = Unsafe.As<NodeId, IdWords>(ref id);
        _id0 = words.A;
        _id1 = words.B;
        _id2 = words.C;
        EndPoint = endPoint;
        Verified = verified;
    }

    public readonly NodeId Id
    {
        get
        {
            var words = new IdWords(_id0, _id1, _id2);
            return Unsafe.As<IdWords, NodeId>(ref words);
        }
    }

    public IPEndPoint EndPoint { get; set; }

    /// <summary>BEP 42: the id matches the IP (or the IP is exempt).</summary>
    public bool Verified { get; set; }

    /// <summary>A ping-before-evict is in flight for this node.</summary>
    public bool Pinging { get; set; }

    /// <summary>Queries failed in a row, saturating at 255 (only "none" and "at least <see cref="RoutingTable.MaxFailures"/>" matter).</summary>
    public int Failures
    {
        readonly get => _failures;
        set => _failures = (byte)Math.Clamp(value, 0, byte.MaxValue);
    }

    public DateTimeOffset? LastResponse
    {
        readonly get => _lastResponse == Never ? null : new DateTimeOffset(_lastResponse, TimeSpan.Zero);
        set => _lastResponse = value?.UtcTicks ?? Never;
    }

    public DateTimeOffset? LastQuery
    {
        readonly get => _lastQuery == Never ? null : new DateTimeOffset(_lastQuery, TimeSpan.Zero);
        set => _lastQuery = value?.UtcTicks ?? Never;
    }

    public DateTimeOffset LastSeen
    {
        readonly get => new(_lastSeen, TimeSpan.Zero);
        set => _lastSeen = value.UtcTicks;
    }

    internal readonly long LastSeenTicks => _lastSeen;

    internal readonly bool HasResponded => _lastResponse != Never;

    public readonly NodeState State(DateTimeOffset now, TimeSpan goodFor) => State(now.UtcTicks, goodFor.Ticks);

    internal readonly NodeState State(long nowTicks, long goodForTicks)
    {
        if (Failures >= RoutingTable.MaxFailures) return NodeState.Bad;
        // BEP 5: "A good node is a node has responded to one of our queries within the last 15 minutes. A node is also
        // good if it has ever responded to one of our queries and has sent us a query within the last 15 minutes."
        if (_lastResponse != Never && (nowTicks - _lastResponse < goodForTicks || (_lastQuery != Never && nowTicks - _lastQuery < goodForTicks)))
        {
            return NodeState.Good;
        }

        return NodeState.Questionable;
    }

    internal void Touch(bool responded, long nowTicks)
    {
        _lastSeen = nowTicks;
        if (responded)
        {
            _lastResponse = nowTicks;
            Failures = 0;
        }
        else
        {
            _lastQuery = nowTicks;
        }
    }

    public readonly NodeContact ToContact() => new(Id, EndPoint);
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
/// Represented as an array where bucket i holds nodes sharing exactly i leading bits with our id and the last bucket
/// holds the rest of the range around our id (the only bucket that can split). Each bucket has a replacement cache of
/// at most k nodes. Memory is bounded by 160 × 2k entries. Not thread-safe: owned by DhtNode under its lock.
/// </summary>
/// <remarks>Entries are structs stored inline in per-bucket arrays (doubled as the bucket fills, cut to size when it splits), buckets are
/// structs in one array: a table is a handful of arrays instead of one object per contact and two per bucket (a
/// simulator holds 10^6 tables). A node is found by id in its bucket (at most k entries to scan), so the only index is
/// by endpoint (hash fingerprints). Order inside a bucket is insertion order, kept on removal, as the tie-breaking rules below rely on it.</remarks>
internal sealed class RoutingTable
{
    /// <summary>BEP 5: a node that fails "multiple queries in a row" becomes bad; we use two.</summary>
    public const int MaxFailures = 2;

    /// <summary>Buckets added to the bucket array at a time (a table of 10^6 nodes has about 18).</summary>
    private const int BucketGrowth = 4;

    private readonly int _k;
    private readonly TimeSpan _goodFor;
    private readonly EndPointIndex _byEndPoint = new();
    private Bucket[] _buckets;
    private int _bucketCount;
    private int _count;

    public RoutingTable(NodeId self, int k, TimeSpan goodFor, DateTimeOffset now)
    {
        Self = self;
        _k = k;
        _goodFor = goodFor;
        _buckets = new Bucket[1];
        _buckets[0] = new Bucket(now.UtcTicks);
        _bucketCount = 1;
    }

    public NodeId Self { get; }

    /// <summary>Nodes in buckets (not counting replacement caches).</summary>
    public int Count => _count;

    public int BucketCount => _bucketCount;

    public int ReplacementCount
    {
        get
        {
            var n = 0;
            for (var i = 0; i < _bucketCount; i++) n += _buckets[i].Replacements.Count;
            return n;
        }
    }

    /// <summary>Snapshots of the bucket entries, bucket by bucket in insertion order.</summary>
    public IEnumerable<RoutingEntry> Entries
    {
        get
        {
            for (var b = 0; b < _bucketCount; b++)
            {
                for (var i = 0; i < _buckets[b].Nodes.Count; i++) yield return _buckets[b].Nodes.Items![i];
            }
        }
    }

    /// <summary>A snapshot of the bucket entry for <paramref name="id"/> (replacement caches not included), or null.</summary>
    public RoutingEntry? Find(NodeId id)
    {
        ref var bucket = ref _buckets[IndexOf(id)];
        var at = bucket.Nodes.IndexOf(id);
        return at < 0 ? null : bucket.Nodes.Items![at];
    }

    public bool Contains(NodeId id) => _buckets[IndexOf(id)].Nodes.IndexOf(id) >= 0;

    /// <summary>Marks the bucket entry for <paramref name="id"/> as being pinged, unless it is absent or already pinged.</summary>
    public bool TryMarkPinging(NodeId id, out RoutingEntry entry)
    {
        ref var bucket = ref _buckets[IndexOf(id)];
        var at = bucket.Nodes.IndexOf(id);
        if (at < 0 || bucket.Nodes.Items![at].Pinging)
        {
            entry = default;
            return false;
        }

        bucket.Nodes.Items[at].Pinging = true;
        entry = bucket.Nodes.Items[at];
        return true;
    }

    /// <summary>A ping that was to be sent was not (the pending-query table is full): the node is not being pinged.</summary>
    public void ClearPinging(NodeId id)
    {
        ref var bucket = ref _buckets[IndexOf(id)];
        var at = bucket.Nodes.IndexOf(id);
        if (at >= 0) bucket.Nodes.Items![at].Pinging = false;
    }

    private int IndexOf(NodeId id) => Math.Min(Self.CommonPrefixLength(id), _bucketCount - 1);

    /// <summary>
    /// Adds or refreshes a node we heard from. <paramref name="responded"/>: it answered our query (else it queried us).
    /// When the bucket is full and holds questionable nodes, the least recently seen one is appended to
    /// <paramref name="toPing"/> (BEP 5: ping before evicting) and the new node waits in the replacement cache.
    /// </summary>
    public AddOutcome Add(NodeId id, IPEndPoint endPoint, bool verified, bool responded, DateTimeOffset now, List<RoutingEntry> toPing)
    {
        if (id == Self) return AddOutcome.Rejected;
        var b = IndexOf(id);
        var nowTicks = now.UtcTicks;
        {
            ref var home = ref _buckets[b];
            var at = home.Nodes.IndexOf(id);
            if (at >= 0)
            {
                ref var existing = ref home.Nodes.Items![at];
                if (!existing.EndPoint.Equals(endPoint))
                {
                    // Same id from another address: only take it over from a node that stopped answering.
                    if (existing.Failures == 0) return AddOutcome.Rejected;
                    _byEndPoint.Remove(existing.EndPoint);
                    existing.EndPoint = endPoint;
                    _byEndPoint.Add(endPoint);
                }

                existing.Touch(responded, nowTicks);
                home.LastChanged = nowTicks;
                return AddOutcome.Updated;
            }
        }

        // One table entry per address: a second id from a known IP:port is ignored (cheap Sybil defence).
        if (_byEndPoint.MayContain(endPoint) && HasEndPoint(endPoint)) return AddOutcome.Rejected;

        while (true)
        {
            // Taken afresh on every pass: a split may reallocate the bucket array.
            ref var bucket = ref _buckets[b];
            var cached = bucket.Replacements.IndexOf(id);
            if (bucket.Nodes.Count < _k)
            {
                Insert(ref bucket, TakeCachedOrNew(ref bucket, cached, id, endPoint, verified, responded, nowTicks), nowTicks);
                return AddOutcome.Added;
            }

            if (b == _bucketCount - 1 && _bucketCount - 1 < NodeId.Bits - 1)
            {
                // BEP 5: the bucket covering our own id splits when full.
                Split();
                b = IndexOf(id);
                continue;
            }

            var bad = FirstToReplace(bucket.Nodes, NodeState.Bad, nowTicks);
            if (bad >= 0)
            {
                // BEP 5: "If any nodes in the bucket are known to have become bad, then one is replaced by the new node."
                RemoveFromBucket(ref bucket, bad);
                Insert(ref bucket, TakeCachedOrNew(ref bucket, cached, id, endPoint, verified, responded, nowTicks), nowTicks);
                return AddOutcome.Replaced;
            }

            if (cached >= 0) bucket.Replacements.Items![cached].Touch(responded, nowTicks);
            else AddReplacement(ref bucket, NewEntry(id, endPoint, verified, responded, nowTicks));

            // BEP 5: questionable nodes not seen for 15 minutes are pinged, least recently seen first, one at a time.
            if (!AnyPinging(bucket.Nodes))
            {
                var questionable = FirstToReplace(bucket.Nodes, NodeState.Questionable, nowTicks);
                if (questionable >= 0)
                {
                    bucket.Nodes.Items![questionable].Pinging = true;
                    toPing.Add(bucket.Nodes.Items[questionable]);
                }
            }

            return AddOutcome.Cached;
        }
    }

    /// <summary>A ping-before-evict (or any query) got an answer.</summary>
    public void OnResponded(NodeId id, DateTimeOffset now, List<RoutingEntry> toPing)
    {
        ref var bucket = ref _buckets[IndexOf(id)];
        var at = bucket.Nodes.IndexOf(id);
        if (at < 0) return;
        ref var entry = ref bucket.Nodes.Items![at];
        entry.Pinging = false;
        entry.Touch(responded: true, now.UtcTicks);
        bucket.LastChanged = now.UtcTicks;
        // BEP 5: "If the pinged node responds then the next least recently seen questionable node is pinged".
        if (bucket.Replacements.Count > 0 && !AnyPinging(bucket.Nodes))
        {
            var next = LeastRecentlySeenQuestionable(bucket.Nodes, now.UtcTicks);
            if (next >= 0)
            {
                bucket.Nodes.Items[next].Pinging = true;
                toPing.Add(bucket.Nodes.Items[next]);
            }
        }
    }

    /// <summary>A query to the node failed (after retries). A failed ping-before-evict evicts it for the best replacement.</summary>
    public void OnFailed(NodeId id, DateTimeOffset now, bool evict)
    {
        ref var bucket = ref _buckets[IndexOf(id)];
        var at = bucket.Nodes.IndexOf(id);
        if (at < 0) return;
        ref var entry = ref bucket.Nodes.Items![at];
        entry.Failures++;
        var wasPing = entry.Pinging;
        entry.Pinging = false;
        if ((evict || wasPing || entry.Failures >= MaxFailures) && bucket.Replacements.Count > 0)
        {
            // BEP 5: "If a node in the bucket fails to respond to a ping, it is suggested to try once more before
            // discarding the node and replacing it with a new good node" (the retry is the query layer's).
            RemoveFromBucket(ref bucket, at);
            var best = BestReplacement(bucket.Replacements);
            var replacement = bucket.Replacements.Items![best];
            bucket.Replacements.RemoveAt(best);
            Insert(ref bucket, replacement, now.UtcTicks);
        }
    }

    /// <summary>
    /// Up to <paramref name="count"/> nodes closest to <paramref name="target"/>, closest first: non-bad nodes (our own
    /// lookups may try questionable ones), or with <paramref name="goodOnly"/> only good ones (what we hand out).
    /// </summary>
    public List<RoutingEntry> Closest(NodeId target, int count, DateTimeOffset now, System.Net.Sockets.AddressFamily? family = null,
        bool goodOnly = false)
    {
        var best = new List<RoutingEntry>(Math.Max(count, 0));
        if (count <= 0) return best;
        var locations = count <= 64 ? stackalloc int[count] : new int[count];
        var n = Closest(target, count, now, locations, family, goodOnly);
        foreach (var location in locations[..n]) best.Add(At(location));
        return best;
    }

    /// <summary>
    /// <see cref="Closest(NodeId, int, DateTimeOffset, System.Net.Sockets.AddressFamily?, bool)"/> without allocating:
    /// writes the locations of the nodes (read them with <see cref="At"/> before the table changes) to
    /// <paramref name="into"/> (at least <paramref name="count"/> long) and returns how many there are.
    /// </summary>
    /// <remarks>Hot path (every find_node/get_peers reply). Buckets are visited in order of XOR distance to the target
    /// and the walk stops once <paramref name="count"/> nodes are held after a complete group: with b the target's
    /// bucket, every node of bucket b is closer than every node of the buckets after it (their distance has its top bit
    /// at b), and those are closer than bucket b − 1, then b − 2, ... (top bit at the bucket's index). Within a group
    /// the best <paramref name="count"/> are kept by insertion, so the result is that of a scan of the whole table.</remarks>
    public int Closest(NodeId target, int count, DateTimeOffset now, Span<int> into, System.Net.Sockets.AddressFamily? family = null,
        bool goodOnly = false)
    {
        if (count <= 0) return 0;
        var best = into[..count];
        // The distances of best[..n], side by side (not recomputed from the entries at every comparison).
        var distances = count <= 64 ? stackalloc NodeId[count] : new NodeId[count];
        var n = 0;
        var nowTicks = now.UtcTicks;
        var goodForTicks = _goodFor.Ticks;
        var last = _bucketCount - 1;
        var b = IndexOf(target);
        // Group 1: bucket b; group 2: buckets b+1..last (none when b is the last bucket).
        Collect(b, target, nowTicks, goodForTicks, family, goodOnly, best, distances, ref n);
        if (n >= count && b < last) return n;
        for (var j = b + 1; j <= last; j++) Collect(j, target, nowTicks, goodForTicks, family, goodOnly, best, distances, ref n);
        // Then buckets b-1, b-2, ..., 0, each farther than everything before it.
        for (var j = b - 1; j >= 0 && n < count; j--) Collect(j, target, nowTicks, goodForTicks, family, goodOnly, best, distances, ref n);
        return n;
    }

    /// <summary>The entry at a location returned by <see cref="Closest(NodeId, int, DateTimeOffset, Span{int}, System.Net.Sockets.AddressFamily?, bool)"/>.</summary>
    public ref readonly RoutingEntry At(int location) => ref _buckets[location / _k].Nodes.Items![location % _k];

    /// <summary>Merges bucket <paramref name="bucket"/> into the closest-first <paramref name="best"/>[..n] (kept at most
    /// best.Length long; a node is placed after those at equal distance, which only a duplicate id could have).</summary>
    private void Collect(int bucket, NodeId target, long nowTicks, long goodForTicks,
        System.Net.Sockets.AddressFamily? family, bool goodOnly, Span<int> best, Span<NodeId> distances, ref int n)
    {
        ref readonly var nodes = ref _buckets[bucket].Nodes;
        for (var slot = 0; slot < nodes.Count; slot++)
        {
            ref readonly var e = ref nodes.Items![slot];
            var state = e.State(nowTicks, goodForTicks);
            if (state == NodeState.Bad || (goodOnly && state != NodeState.Good)) continue;
            if (family is not null && e.EndPoint.AddressFamily != family) continue;
            var distance = e.Id ^ target;
            if (n == best.Length && distance >= distances[n - 1]) continue;
            var i = n;
            while (i > 0 && distance < distances[i - 1]) i--;
            // Insert at i, dropping the last one when full.
            var end = Math.Min(n, best.Length - 1);
            for (var j = end; j > i; j--)
            {
                best[j] = best[j - 1];
                distances[j] = distances[j - 1];
            }

            best[i] = (bucket * _k) + slot;
            distances[i] = distance;
            if (n < best.Length) n++;
        }
    }

    /// <summary>Buckets not changed for <paramref name="idle"/>, with a random id in each one's range (BEP 5 refresh).</summary>
    public List<NodeId> IdleBucketTargets(DateTimeOffset now, TimeSpan idle, Random random)
    {
        var targets = new List<NodeId>();
        var nowTicks = now.UtcTicks;
        for (var i = 0; i < _bucketCount; i++)
        {
            if (nowTicks - _buckets[i].LastChanged < idle.Ticks) continue;
            targets.Add(RandomIdInBucket(i, random));
            _buckets[i].LastChanged = nowTicks;
        }

        return targets;
    }

    /// <summary>A random id in bucket <paramref name="index"/>: our first index bits, then (except for the last bucket) the flipped bit.</summary>
    public NodeId RandomIdInBucket(int index, Random random)
    {
        var id = NodeId.Random(random);
        for (var bit = 0; bit < index; bit++) id = id.WithBit(bit, Self.GetBit(bit));
        if (index < _bucketCount - 1) id = id.WithBit(index, !Self.GetBit(index));
        return id;
    }

    /// <summary>A fresh table for a new own id (BEP 42 id change), keeping every node that still fits.</summary>
    public RoutingTable Rebase(NodeId newSelf, DateTimeOffset now)
    {
        var table = new RoutingTable(newSelf, _k, _goodFor, now);
        var ignored = new List<RoutingEntry>();
        foreach (var e in Entries.OrderByDescending(e => e.LastSeenTicks))
        {
            if (table.Add(e.Id, e.EndPoint, e.Verified, e.HasResponded, now, ignored) is not AddOutcome.Added) continue;
            ref var bucket = ref table._buckets[table.IndexOf(e.Id)];
            var at = bucket.Nodes.IndexOf(e.Id);
            if (at < 0) continue;
            ref var copy = ref bucket.Nodes.Items![at];
            copy.LastResponse = e.LastResponse;
            copy.LastQuery = e.LastQuery;
            copy.LastSeen = e.LastSeen;
            copy.Failures = e.Failures;
        }

        return table;
    }

    /// <summary>Whether a bucket entry has <paramref name="endPoint"/> (a scan: <see cref="EndPointIndex"/> rules most cases out).</summary>
    private bool HasEndPoint(IPEndPoint endPoint)
    {
        for (var b = 0; b < _bucketCount; b++)
        {
            ref readonly var nodes = ref _buckets[b].Nodes;
            for (var i = 0; i < nodes.Count; i++)
            {
                if (nodes.Items![i].EndPoint.Equals(endPoint)) return true;
            }
        }

        return false;
    }

    /// <summary>The entry to replace or ping first among those in <paramref name="state"/>: unverified (BEP 42) before
    /// verified, then least recently seen, the first of equals; -1 for none.</summary>
    private int FirstToReplace(in EntryList entries, NodeState state, long nowTicks)
    {
        var best = -1;
        var goodForTicks = _goodFor.Ticks;
        for (var i = 0; i < entries.Count; i++)
        {
            ref readonly var e = ref entries.Items![i];
            if (e.State(nowTicks, goodForTicks) != state) continue;
            if (best < 0) best = i;
            else
            {
                ref readonly var b = ref entries.Items[best];
                if ((!e.Verified && b.Verified) || (e.Verified == b.Verified && e.LastSeenTicks < b.LastSeenTicks)) best = i;
            }
        }

        return best;
    }

    // The selections below keep the first of equal elements, as the stable OrderBy(...).First() they once were did.

    /// <summary>The questionable node seen least recently (BEP 5: pinged next), or -1.</summary>
    private int LeastRecentlySeenQuestionable(in EntryList entries, long nowTicks)
    {
        var best = -1;
        var goodForTicks = _goodFor.Ticks;
        for (var i = 0; i < entries.Count; i++)
        {
            ref readonly var e = ref entries.Items![i];
            if (e.State(nowTicks, goodForTicks) != NodeState.Questionable) continue;
            if (best < 0 || e.LastSeenTicks < entries.Items[best].LastSeenTicks) best = i;
        }

        return best;
    }

    /// <summary>The replacement to promote: verified (BEP 42) first, then one that has answered us, then most recently seen.</summary>
    private static int BestReplacement(in EntryList replacements)
    {
        var best = 0;
        for (var i = 1; i < replacements.Count; i++)
        {
            ref readonly var e = ref replacements.Items![i];
            ref readonly var b = ref replacements.Items[best];
            var c = e.Verified.CompareTo(b.Verified);
            if (c == 0) c = e.HasResponded.CompareTo(b.HasResponded);
            if (c == 0) c = e.LastSeenTicks.CompareTo(b.LastSeenTicks);
            if (c > 0) best = i;
        }

        return best;
    }

    /// <summary>The replacement to drop when the cache is full: unverified first, then least recently seen.</summary>
    private static int ReplacementVictim(in EntryList replacements)
    {
        var victim = 0;
        for (var i = 1; i < replacements.Count; i++)
        {
            ref readonly var e = ref replacements.Items![i];
            ref readonly var v = ref replacements.Items[victim];
            var c = e.Verified.CompareTo(v.Verified);
            if (c == 0) c = e.LastSeenTicks.CompareTo(v.LastSeenTicks);
            if (c < 0) victim = i;
        }

        return victim;
    }

    private static bool AnyPinging(in EntryList entries)
    {
        for (var i = 0; i < entries.Count; i++)
        {
            if (entries.Items![i].Pinging) return true;
        }

        return false;
    }

    private static RoutingEntry NewEntry(NodeId id, IPEndPoint endPoint, bool verified, bool responded, long nowTicks)
    {
        var e = new RoutingEntry(id, endPoint, verified);
        e.Touch(responded, nowTicks);
        return e;
    }

    /// <summary>The node waiting in the replacement cache at <paramref name="cached"/> (taken out of it), or a new entry.</summary>
    private static RoutingEntry TakeCachedOrNew(ref Bucket bucket, int cached, NodeId id, IPEndPoint endPoint, bool verified, bool responded, long nowTicks)
    {
        if (cached < 0) return NewEntry(id, endPoint, verified, responded, nowTicks);
        var entry = bucket.Replacements.Items![cached];
        bucket.Replacements.RemoveAt(cached);
        return entry;
    }

    private void AddReplacement(ref Bucket bucket, in RoutingEntry entry)
    {
        if (bucket.Replacements.Count >= _k)
        {
            // Bounded cache: drop an unverified entry first, then the least recently seen.
            var victim = ReplacementVictim(bucket.Replacements);
            if (bucket.Replacements.Items![victim].Verified && !entry.Verified) return;
            bucket.Replacements.RemoveAt(victim);
        }

        bucket.Replacements.Add(entry, _k);
    }

    private void Insert(ref Bucket bucket, in RoutingEntry entry, long nowTicks)
    {
        bucket.Nodes.Add(entry, _k);
        bucket.LastChanged = nowTicks;
        _count++;
        _byEndPoint.Add(entry.EndPoint);
    }

    private void RemoveFromBucket(ref Bucket bucket, int index)
    {
        _byEndPoint.Remove(bucket.Nodes.Items![index].EndPoint);
        bucket.Nodes.RemoveAt(index);
        _count--;
    }

    private void Split()
    {
        var index = _bucketCount - 1;
        if (_bucketCount == _buckets.Length) Array.Resize(ref _buckets, _buckets.Length + BucketGrowth);
        ref var last = ref _buckets[index];
        var next = new Bucket(last.LastChanged);
        // Nodes sharing more than `index` bits with us move to the new last bucket (both keep their order).
        MoveCloser(ref last.Nodes, ref next.Nodes, index);
        MoveCloser(ref last.Replacements, ref next.Replacements, index);
        _buckets[_bucketCount++] = next;
    }

    private void MoveCloser(ref EntryList from, ref EntryList to, int index)
    {
        var moved = 0;
        for (var i = 0; i < from.Count; i++)
        {
            if (Self.CommonPrefixLength(from.Items![i].Id) > index) moved++;
        }

        if (moved == 0) return;
        // Both lists end up exactly as long as their contents: a split bucket rarely fills again (a simulator holds
        // 10^7 buckets, most of them holding a few nodes).
        var keep = new RoutingEntry[from.Count - moved];
        to.Items = new RoutingEntry[moved];
        to.Count = 0;
        var kept = 0;
        for (var i = 0; i < from.Count; i++)
        {
            ref readonly var e = ref from.Items![i];
            if (Self.CommonPrefixLength(e.Id) > index) to.Items[to.Count++] = e;
            else keep[kept++] = e;
        }

        from.Items = kept == 0 ? null : keep;
        from.Count = kept;
    }

    /// <summary>A bucket: its nodes, its replacement cache (allocated on first use: most buckets never need one) and when
    /// it last changed (UTC ticks).</summary>
    private struct Bucket(long lastChanged)
    {
        public EntryList Nodes;
        public EntryList Replacements;
        public long LastChanged = lastChanged;
    }

    /// <summary>An array-backed list of entries: the first <see cref="Count"/> slots of <see cref="Items"/> (null until the
    /// first add; doubled up to k).</summary>
    private struct EntryList
    {
        public RoutingEntry[]? Items;
        public int Count;

        public readonly int IndexOf(NodeId id)
        {
            for (var i = 0; i < Count; i++)
            {
                if (Items![i].Id == id) return i;
            }

            return -1;
        }

        public void Add(in RoutingEntry entry, int k)
        {
            if (Items is null || Count == Items.Length)
            {
                // 1, 2, 4, 8, ...: most buckets hold a few nodes, so a slot is not worth reserving early.
                Array.Resize(ref Items, Math.Max(Count + 1, Math.Min(Count * 2, k)));
            }

            Items[Count++] = entry;
        }

        /// <summary>Removes the entry at <paramref name="index"/>, keeping the order of the rest.</summary>
        public void RemoveAt(int index)
        {
            Count--;
            if (index < Count) Array.Copy(Items!, index + 1, Items!, index, Count - index);
            Items![Count] = default;
        }
    }

    /// <summary>
    /// The endpoints of the table's entries as hash fingerprints: an open-addressing hash multiset of the endpoints' hash
    /// codes (linear probing, at most half full, backward-shift deletion), 8 bytes per entry. A fingerprint that is
    /// absent proves the endpoint absent; one that is present is confirmed by a scan of the table (two endpoints rarely
    /// share a hash code, and an endpoint already in the table is rarely offered for a new id). Equal endpoints have
    /// equal fingerprints, so removing any fingerprint equal to an entry's leaves the multiset it would be without it.
    /// </summary>
    private sealed class EndPointIndex
    {
        private int[] _slots = [];
        private int _count;

        /// <summary>Non-zero (zero marks an empty slot).</summary>
        private static int Fingerprint(IPEndPoint endPoint) => endPoint.GetHashCode() is var h && h != 0 ? h : 1;

        /// <summary>False when no entry can have <paramref name="endPoint"/>; true when one may (to be confirmed).</summary>
        public bool MayContain(IPEndPoint endPoint)
        {
            if (_count == 0) return false;
            var f = Fingerprint(endPoint);
            var mask = _slots.Length - 1;
            for (var i = f & mask; _slots[i] != 0; i = (i + 1) & mask)
            {
                if (_slots[i] == f) return true;
            }

            return false;
        }

        public void Add(IPEndPoint endPoint)
        {
            if ((_count + 1) * 2 > _slots.Length) Grow();
            Place(_slots, Fingerprint(endPoint));
            _count++;
        }

        public void Remove(IPEndPoint endPoint)
        {
            if (_count == 0) return;
            var f = Fingerprint(endPoint);
            var mask = _slots.Length - 1;
            var i = f & mask;
            while (_slots[i] != 0 && _slots[i] != f) i = (i + 1) & mask;
            if (_slots[i] == 0) return;
            _slots[i] = 0;
            _count--;
            // Backward-shift: move later members of the probe run into the hole when their home slot allows it.
            for (var j = (i + 1) & mask; _slots[j] is var moved && moved != 0; j = (j + 1) & mask)
            {
                var home = moved & mask;
                // The element at j may fill hole i iff its home is not cyclically within (i, j].
                var inRange = i <= j ? home > i && home <= j : home > i || home <= j;
                if (inRange) continue;
                _slots[i] = moved;
                _slots[j] = 0;
                i = j;
            }
        }

        private void Grow()
        {
            var slots = new int[Math.Max(8, _slots.Length * 2)];
            foreach (var f in _slots)
            {
                if (f != 0) Place(slots, f);
            }

            _slots = slots;
        }

        private static void Place(int[] slots, int fingerprint)
        {
            var mask = slots.Length - 1;
            var i = fingerprint & mask;
            while (slots[i] != 0) i = (i + 1) & mask;
            slots[i] = fingerprint;
        }
    }
}

/// <summary>The layout of <see cref="NodeId"/> (two 64-bit words and a 32-bit word, in that order), for storing an id's
/// words without its padding; <c>RoutingEntryTests</c> checks that the two agree.</summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly struct IdWords(ulong a, ulong b, uint c)
{
    public readonly ulong A = a;
    public readonly ulong B = b;
    public readonly uint C = c;
}
