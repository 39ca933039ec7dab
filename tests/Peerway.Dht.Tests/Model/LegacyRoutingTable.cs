// The routing table as it was before entries became structs in per-bucket arrays (commit a7fcee0), kept unchanged as
// the reference model for RoutingTableModelTests: the struct table must make exactly the same decisions.
using System.Net;
using Peerway.Core;
using Peerway.Dht;

namespace Peerway.Dht.Tests.Model;

/// <summary>One node in the routing table (or in a bucket's replacement cache).</summary>
/// <remarks>Instants are stored as UTC ticks (<see cref="Never"/> for none) rather than <c>DateTimeOffset?</c>: a
/// simulator holds 10^7 of these, and this keeps an entry at 88 bytes instead of 120.</remarks>
internal sealed class LegacyRoutingEntry(NodeId id, IPEndPoint endPoint, bool verified)
{
    private const long Never = long.MinValue;

    private long _lastResponse = Never;
    private long _lastQuery = Never;
    private long _lastSeen;

    public NodeId Id { get; } = id;

    public IPEndPoint EndPoint { get; set; } = endPoint;

    /// <summary>BEP 42: the id matches the IP (or the IP is exempt).</summary>
    public bool Verified { get; set; } = verified;

    /// <summary>A ping-before-evict is in flight for this node.</summary>
    public bool Pinging { get; set; }

    public int Failures { get; set; }

    public DateTimeOffset? LastResponse
    {
        get => _lastResponse == Never ? null : new DateTimeOffset(_lastResponse, TimeSpan.Zero);
        set => _lastResponse = value?.UtcTicks ?? Never;
    }

    public DateTimeOffset? LastQuery
    {
        get => _lastQuery == Never ? null : new DateTimeOffset(_lastQuery, TimeSpan.Zero);
        set => _lastQuery = value?.UtcTicks ?? Never;
    }

    public DateTimeOffset LastSeen
    {
        get => new(_lastSeen, TimeSpan.Zero);
        set => _lastSeen = value.UtcTicks;
    }

    internal long LastSeenTicks => _lastSeen;

    internal bool HasResponded => _lastResponse != Never;

    public NodeState State(DateTimeOffset now, TimeSpan goodFor) => State(now.UtcTicks, goodFor.Ticks);

    internal NodeState State(long nowTicks, long goodForTicks)
    {
        if (Failures >= LegacyRoutingTable.MaxFailures) return NodeState.Bad;
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

    public NodeContact ToContact() => new(Id, EndPoint);
}

/// <summary>
/// BEP 5 routing table: buckets of at most k nodes covering the id space; "when a bucket is full of known good nodes,
/// no more nodes may be added unless our own node ID falls within the range of the bucket", in which case it splits.
/// Represented as a list where bucket i holds nodes sharing exactly i leading bits with our id and the last bucket
/// holds the rest of the range around our id (the only bucket that can split). Each bucket has a replacement cache of
/// at most k nodes. Memory is bounded by 160 × 2k entries. Not thread-safe: owned by DhtNode under its lock.
/// </summary>
/// <remarks>A node is found by id in its bucket (at most k entries to scan), so the only index is by endpoint; a
/// simulator holds 10^6 tables, and an id index cost ≈ 57 bytes per entry.</remarks>
internal sealed class LegacyRoutingTable
{
    /// <summary>BEP 5: a node that fails "multiple queries in a row" becomes bad; we use two.</summary>
    public const int MaxFailures = 2;

    private readonly int _k;
    private readonly TimeSpan _goodFor;
    private readonly List<Bucket> _buckets = [];
    private readonly EndPointIndex _byEndPoint = new();
    private int _count;

    public LegacyRoutingTable(NodeId self, int k, TimeSpan goodFor, DateTimeOffset now)
    {
        Self = self;
        _k = k;
        _goodFor = goodFor;
        _buckets.Add(new Bucket(now));
    }

    public NodeId Self { get; }

    /// <summary>Nodes in buckets (not counting replacement caches).</summary>
    public int Count => _count;

    public int BucketCount => _buckets.Count;

    public int ReplacementCount => _buckets.Sum(b => b.ReplacementCount);

    public IEnumerable<LegacyRoutingEntry> Entries => _buckets.SelectMany(b => b.Nodes);

    public LegacyRoutingEntry? Find(NodeId id) => FindIn(_buckets[IndexOf(id)].Nodes, id);

    private int IndexOf(NodeId id) => Math.Min(Self.CommonPrefixLength(id), _buckets.Count - 1);

    /// <summary>
    /// Adds or refreshes a node we heard from. <paramref name="responded"/>: it answered our query (else it queried us).
    /// When the bucket is full and holds questionable nodes, the least recently seen one is appended to
    /// <paramref name="toPing"/> (BEP 5: ping before evicting) and the new node waits in the replacement cache.
    /// </summary>
    public AddOutcome Add(NodeId id, IPEndPoint endPoint, bool verified, bool responded, DateTimeOffset now, List<LegacyRoutingEntry> toPing)
    {
        if (id == Self) return AddOutcome.Rejected;
        var bucket = _buckets[IndexOf(id)];
        if (FindIn(bucket.Nodes, id) is { } existing)
        {
            if (!existing.EndPoint.Equals(endPoint))
            {
                // Same id from another address: only take it over from a node that stopped answering.
                if (existing.Failures == 0) return AddOutcome.Rejected;
                _byEndPoint.Remove(existing);
                existing.EndPoint = endPoint;
                _byEndPoint.Add(existing);
            }

            existing.Touch(responded, now.UtcTicks);
            bucket.LastChanged = now;
            return AddOutcome.Updated;
        }

        // One table entry per address: a second id from a known IP:port is ignored (cheap Sybil defence).
        if (_byEndPoint.ContainsKey(endPoint)) return AddOutcome.Rejected;

        while (true)
        {
            var cached = bucket.Replacements is { } r ? FindIn(r, id) : null;
            if (bucket.Nodes.Count < _k)
            {
                if (cached is not null) bucket.Replacements!.Remove(cached);
                Insert(bucket, cached ?? NewEntry(id, endPoint, verified, responded, now), now);
                return AddOutcome.Added;
            }

            if (bucket == _buckets[^1] && _buckets.Count - 1 < NodeId.Bits - 1)
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
                if (cached is not null) bucket.Replacements!.Remove(cached);
                Insert(bucket, cached ?? NewEntry(id, endPoint, verified, responded, now), now);
                return AddOutcome.Replaced;
            }

            if (cached is not null) cached.Touch(responded, now.UtcTicks);
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
    public void OnResponded(NodeId id, DateTimeOffset now, List<LegacyRoutingEntry> toPing)
    {
        var bucket = _buckets[IndexOf(id)];
        if (FindIn(bucket.Nodes, id) is not { } entry) return;
        entry.Pinging = false;
        entry.Touch(responded: true, now.UtcTicks);
        bucket.LastChanged = now;
        // BEP 5: "If the pinged node responds then the next least recently seen questionable node is pinged".
        if (bucket.ReplacementCount > 0 && !AnyPinging(bucket.Nodes))
        {
            var next = LeastRecentlySeenQuestionable(bucket.Nodes, now);
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
        var bucket = _buckets[IndexOf(id)];
        if (FindIn(bucket.Nodes, id) is not { } entry) return;
        entry.Failures++;
        var wasPing = entry.Pinging;
        entry.Pinging = false;
        if ((evict || wasPing || entry.Failures >= MaxFailures) && bucket.ReplacementCount > 0)
        {
            // BEP 5: "If a node in the bucket fails to respond to a ping, it is suggested to try once more before
            // discarding the node and replacing it with a new good node" (the retry is the query layer's).
            RemoveFromBucket(bucket, entry);
            var replacement = BestReplacement(bucket.Replacements!);
            bucket.Replacements!.Remove(replacement);
            Insert(bucket, replacement, now);
        }
    }

    /// <summary>
    /// Up to <paramref name="count"/> nodes closest to <paramref name="target"/>, closest first: non-bad nodes (our own
    /// lookups may try questionable ones), or with <paramref name="goodOnly"/> only good ones (what we hand out).
    /// </summary>
    /// <remarks>Hot path (every find_node/get_peers reply). Buckets are visited in order of XOR distance to the target
    /// and the walk stops once <paramref name="count"/> nodes are held after a complete group: with b the target's
    /// bucket, every node of bucket b is closer than every node of the buckets after it (their distance has its top bit
    /// at b), and those are closer than bucket b − 1, then b − 2, ... (top bit at the bucket's index). Within a group
    /// the best <paramref name="count"/> are kept by insertion, so the result is that of a scan of the whole table.
    /// <paramref name="into"/> (cleared first) avoids allocating the result.</remarks>
    public List<LegacyRoutingEntry> Closest(NodeId target, int count, DateTimeOffset now, System.Net.Sockets.AddressFamily? family = null,
        bool goodOnly = false, List<LegacyRoutingEntry>? into = null)
    {
        var best = into ?? new List<LegacyRoutingEntry>(Math.Max(count, 0) + 1);
        best.Clear();
        if (count <= 0) return best;
        var nowTicks = now.UtcTicks;
        var goodForTicks = _goodFor.Ticks;
        var last = _buckets.Count - 1;
        var b = IndexOf(target);
        // Group 1: bucket b; group 2: buckets b+1..last (none when b is the last bucket).
        Collect(_buckets[b], target, count, nowTicks, goodForTicks, family, goodOnly, best);
        if (best.Count >= count && b < last) return best;
        for (var j = b + 1; j <= last; j++) Collect(_buckets[j], target, count, nowTicks, goodForTicks, family, goodOnly, best);
        // Then buckets b-1, b-2, ..., 0, each farther than everything before it.
        for (var j = b - 1; j >= 0 && best.Count < count; j--) Collect(_buckets[j], target, count, nowTicks, goodForTicks, family, goodOnly, best);
        return best;
    }

    private static void Collect(Bucket bucket, NodeId target, int count, long nowTicks, long goodForTicks,
        System.Net.Sockets.AddressFamily? family, bool goodOnly, List<LegacyRoutingEntry> best)
    {
        foreach (var e in bucket.Nodes)
        {
            var state = e.State(nowTicks, goodForTicks);
            if (state == NodeState.Bad || (goodOnly && state != NodeState.Good)) continue;
            if (family is not null && e.EndPoint.AddressFamily != family) continue;
            var distance = e.Id ^ target;
            if (best.Count == count && distance >= (best[^1].Id ^ target)) continue;
            var i = best.Count;
            while (i > 0 && distance < (best[i - 1].Id ^ target)) i--;
            best.Insert(i, e);
            if (best.Count > count) best.RemoveAt(count);
        }
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
    public LegacyRoutingTable Rebase(NodeId newSelf, DateTimeOffset now)
    {
        var table = new LegacyRoutingTable(newSelf, _k, _goodFor, now);
        var ignored = new List<LegacyRoutingEntry>();
        foreach (var e in Entries.OrderByDescending(e => e.LastSeenTicks))
        {
            if (table.Add(e.Id, e.EndPoint, e.Verified, e.HasResponded, now, ignored) is AddOutcome.Added && table.Find(e.Id) is { } copy)
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
    private static LegacyRoutingEntry? FindIn(List<LegacyRoutingEntry> entries, NodeId id)
    {
        foreach (var e in entries)
        {
            if (e.Id == id) return e;
        }

        return null;
    }

    /// <summary>The node in <paramref name="state"/> to replace or ping first: unverified (BEP 42) before verified, then
    /// least recently seen. A loop, not LINQ: this runs for every query from a node waiting for a full bucket.</summary>
    private LegacyRoutingEntry? FirstToReplace(List<LegacyRoutingEntry> entries, NodeState state, DateTimeOffset now)
    {
        LegacyRoutingEntry? best = null;
        var nowTicks = now.UtcTicks;
        var goodForTicks = _goodFor.Ticks;
        foreach (var e in entries)
        {
            if (e.State(nowTicks, goodForTicks) != state) continue;
            if (best is null || (!e.Verified && best.Verified) || (e.Verified == best.Verified && e.LastSeenTicks < best.LastSeenTicks)) best = e;
        }

        return best;
    }

    // The three selections below are loops instead of LINQ (they run per query received when buckets are full). Each
    // keeps the first of equal elements, as the stable OrderBy(...).First() they replace did.

    /// <summary>The questionable node seen least recently (BEP 5: pinged next), or null.</summary>
    private LegacyRoutingEntry? LeastRecentlySeenQuestionable(List<LegacyRoutingEntry> entries, DateTimeOffset now)
    {
        LegacyRoutingEntry? best = null;
        var nowTicks = now.UtcTicks;
        var goodForTicks = _goodFor.Ticks;
        foreach (var e in entries)
        {
            if (e.State(nowTicks, goodForTicks) != NodeState.Questionable) continue;
            if (best is null || e.LastSeenTicks < best.LastSeenTicks) best = e;
        }

        return best;
    }

    /// <summary>The replacement to promote: verified (BEP 42) first, then one that has answered us, then most recently seen.</summary>
    private static LegacyRoutingEntry BestReplacement(List<LegacyRoutingEntry> replacements)
    {
        var best = replacements[0];
        for (var i = 1; i < replacements.Count; i++)
        {
            var e = replacements[i];
            var c = e.Verified.CompareTo(best.Verified);
            if (c == 0) c = e.HasResponded.CompareTo(best.HasResponded);
            if (c == 0) c = e.LastSeenTicks.CompareTo(best.LastSeenTicks);
            if (c > 0) best = e;
        }

        return best;
    }

    /// <summary>The replacement to drop when the cache is full: unverified first, then least recently seen.</summary>
    private static LegacyRoutingEntry ReplacementVictim(List<LegacyRoutingEntry> replacements)
    {
        var victim = replacements[0];
        for (var i = 1; i < replacements.Count; i++)
        {
            var e = replacements[i];
            var c = e.Verified.CompareTo(victim.Verified);
            if (c == 0) c = e.LastSeenTicks.CompareTo(victim.LastSeenTicks);
            if (c < 0) victim = e;
        }

        return victim;
    }

    private static bool AnyPinging(List<LegacyRoutingEntry> entries)
    {
        foreach (var e in entries)
        {
            if (e.Pinging) return true;
        }

        return false;
    }

    private static LegacyRoutingEntry NewEntry(NodeId id, IPEndPoint endPoint, bool verified, bool responded, DateTimeOffset now)
    {
        var e = new LegacyRoutingEntry(id, endPoint, verified);
        e.Touch(responded, now.UtcTicks);
        return e;
    }

    private void AddReplacement(Bucket bucket, LegacyRoutingEntry entry)
    {
        var replacements = bucket.Replacements ??= new List<LegacyRoutingEntry>(_k);
        if (replacements.Count >= _k)
        {
            // Bounded cache: drop an unverified entry first, then the least recently seen.
            var victim = ReplacementVictim(replacements);
            if (victim.Verified && !entry.Verified) return;
            replacements.Remove(victim);
        }

        replacements.Add(entry);
    }

    private void Insert(Bucket bucket, LegacyRoutingEntry entry, DateTimeOffset now)
    {
        bucket.Nodes.Add(entry);
        bucket.LastChanged = now;
        _count++;
        _byEndPoint.Add(entry);
    }

    private void RemoveFromBucket(Bucket bucket, LegacyRoutingEntry entry)
    {
        if (!bucket.Nodes.Remove(entry)) return;
        _count--;
        _byEndPoint.Remove(entry);
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

        if (last.Replacements is null) return;
        foreach (var e in last.Replacements.Where(e => Self.CommonPrefixLength(e.Id) > index).ToList())
        {
            last.Replacements.Remove(e);
            (next.Replacements ??= new List<LegacyRoutingEntry>(_k)).Add(e);
        }
    }

    /// <summary>A bucket: its nodes (the bucket is the list: one object, not two, per bucket) and, created on first
    /// use (most buckets never need one), its replacement cache.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711:Identifiers should not have incorrect suffix", Justification = "Private type.")]
    private sealed class Bucket(DateTimeOffset now) : List<LegacyRoutingEntry>
    {
        private long _lastChanged = now.UtcTicks;

        public List<LegacyRoutingEntry> Nodes => this;

        public List<LegacyRoutingEntry>? Replacements { get; set; }

        public int ReplacementCount => Replacements?.Count ?? 0;

        public DateTimeOffset LastChanged
        {
            get => new(_lastChanged, TimeSpan.Zero);
            set => _lastChanged = value.UtcTicks;
        }
    }

    /// <summary>
    /// The table's entries by endpoint: an open-addressing hash set of entry references (linear probing, at most half
    /// full, backward-shift deletion), 16 bytes per entry where a Dictionary took 36. Keys are the entries' endpoints,
    /// which must not change while indexed (remove, change, add).
    /// </summary>
    private sealed class EndPointIndex
    {
        private LegacyRoutingEntry?[] _slots = [];
        private int _count;

        public bool ContainsKey(IPEndPoint endPoint)
        {
            if (_count == 0) return false;
            var mask = _slots.Length - 1;
            for (var i = endPoint.GetHashCode() & mask; _slots[i] is { } e; i = (i + 1) & mask)
            {
                if (e.EndPoint.Equals(endPoint)) return true;
            }

            return false;
        }

        /// <summary>Adds <paramref name="entry"/> (the caller has checked that no entry has its endpoint).</summary>
        public void Add(LegacyRoutingEntry entry)
        {
            if ((_count + 1) * 2 > _slots.Length) Grow();
            Place(_slots, entry);
            _count++;
        }

        public void Remove(LegacyRoutingEntry entry)
        {
            if (_count == 0) return;
            var mask = _slots.Length - 1;
            var i = entry.EndPoint.GetHashCode() & mask;
            while (_slots[i] is { } e && !ReferenceEquals(e, entry)) i = (i + 1) & mask;
            if (_slots[i] is null) return;
            _slots[i] = null;
            _count--;
            // Backward-shift: move later members of the probe run into the hole when their home slot allows it.
            for (var j = (i + 1) & mask; _slots[j] is { } moved; j = (j + 1) & mask)
            {
                var home = moved.EndPoint.GetHashCode() & mask;
                // The element at j may fill hole i iff its home is not cyclically within (i, j].
                var inRange = i <= j ? home > i && home <= j : home > i || home <= j;
                if (inRange) continue;
                _slots[i] = moved;
                _slots[j] = null;
                i = j;
            }
        }

        private void Grow()
        {
            var slots = new LegacyRoutingEntry?[Math.Max(8, _slots.Length * 2)];
            foreach (var e in _slots)
            {
                if (e is not null) Place(slots, e);
            }

            _slots = slots;
        }

        private static void Place(LegacyRoutingEntry?[] slots, LegacyRoutingEntry entry)
        {
            var mask = slots.Length - 1;
            var i = entry.EndPoint.GetHashCode() & mask;
            while (slots[i] is not null) i = (i + 1) & mask;
            slots[i] = entry;
        }
    }
}
