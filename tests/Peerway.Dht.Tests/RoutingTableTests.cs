using System.Net;
using FsCheck.Xunit;
using Microsoft.Extensions.Time.Testing;
using Peerway.Core;

namespace Peerway.Dht.Tests;

public sealed class RoutingTableTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Fifteen = TimeSpan.FromMinutes(15);

    private static IPEndPoint Ep(int i) => new(new IPAddress([10, (byte)(i >> 16), (byte)(i >> 8), (byte)i]), 6881);

    /// <summary>An id sharing exactly <paramref name="prefix"/> leading bits with <paramref name="self"/>.</summary>
    private static NodeId IdAt(NodeId self, int prefix, Random random)
    {
        var id = NodeId.Random(random);
        for (var b = 0; b < prefix; b++) id = id.WithBit(b, self.GetBit(b));
        return id.WithBit(prefix, !self.GetBit(prefix));
    }

    /// <summary>
    /// A table whose far bucket (first bit differs from ours) is full with 8 nodes seen at T0 + i seconds, plus one near
    /// node, so the far bucket can no longer split; one more far node waits in its replacement cache.
    /// </summary>
    private static (RoutingTable Table, List<NodeId> Far, NodeId Self, Random Random, List<RoutingEntry> Ping) FullFarBucket(int seed)
    {
        var random = new Random(seed);
        var self = NodeId.Random(random);
        var table = new RoutingTable(self, 8, Fifteen, T0);
        var ping = new List<RoutingEntry>();
        var far = Enumerable.Range(0, 8).Select(_ => IdAt(self, 0, random)).ToList();
        for (var i = 0; i < 8; i++) table.Add(far[i], Ep(i), true, true, T0.AddSeconds(i), ping);
        table.Add(IdAt(self, 2, random), Ep(50), true, true, T0, ping); // near node
        Assert.Equal(AddOutcome.Cached, table.Add(IdAt(self, 0, random), Ep(51), true, true, T0, ping)); // forces the split
        Assert.Empty(ping);
        return (table, far, self, random, ping);
    }

    [Fact]
    public void Only_the_bucket_holding_our_id_splits()
    {
        var random = new Random(1);
        var self = NodeId.Random(random);
        var table = new RoutingTable(self, 8, Fifteen, T0);
        var ping = new List<RoutingEntry>();
        // 8 far nodes (first bit differs) fill the single bucket; the 9th triggers a split.
        for (var i = 0; i < 8; i++) Assert.Equal(AddOutcome.Added, table.Add(IdAt(self, 0, random), Ep(i), true, true, T0, ping));
        Assert.Equal(1, table.BucketCount);
        Assert.Equal(AddOutcome.Cached, table.Add(IdAt(self, 0, random), Ep(100), true, true, T0, ping));
        Assert.Equal(2, table.BucketCount); // split happened, but the far bucket is still full → replacement cache
        Assert.Equal(8, table.Count);
        Assert.Equal(1, table.ReplacementCount);
        // Near nodes keep splitting the bucket around our id.
        for (var i = 0; i < 9; i++) table.Add(IdAt(self, 1 + i, random), Ep(200 + i), true, true, T0, ping);
        Assert.Equal(17, table.Count);
        Assert.True(table.BucketCount >= 3);
        Assert.Empty(ping); // all nodes are good: nobody to ping
    }

    [Fact]
    public void Full_bucket_of_questionable_nodes_pings_the_least_recently_seen_and_evicts_it_on_failure()
    {
        var (table, far, self, random, ping) = FullFarBucket(2);

        var later = T0 + TimeSpan.FromMinutes(16); // every far node is now questionable
        var newcomer = IdAt(self, 0, random);
        Assert.Equal(AddOutcome.Cached, table.Add(newcomer, Ep(60), true, true, later, ping));
        var pinged = Assert.Single(ping);
        Assert.Equal(far[0], pinged.Id); // least recently seen first
        Assert.Null(table.Find(newcomer));

        table.OnFailed(pinged.Id, later, evict: true);
        Assert.Null(table.Find(far[0]));
        Assert.NotNull(table.Find(newcomer)); // the most recently seen replacement took its place
        Assert.Equal(9, table.Count);
    }

    [Fact]
    public void Ping_answered_keeps_the_node_and_pings_the_next_questionable()
    {
        var (table, far, self, random, ping) = FullFarBucket(3);
        var later = T0 + TimeSpan.FromMinutes(16);
        table.Add(IdAt(self, 0, random), Ep(60), true, true, later, ping);
        var first = Assert.Single(ping);
        ping.Clear();
        table.OnResponded(first.Id, later, ping);
        Assert.NotNull(table.Find(first.Id));
        Assert.Equal(NodeState.Good, table.Find(first.Id)!.Value.State(later, Fifteen));
        Assert.Equal(far[1], Assert.Single(ping).Id);
    }

    [Fact]
    public void Bad_nodes_are_replaced_immediately()
    {
        var (table, far, _, _, _) = FullFarBucket(4);
        // Two failed queries in a row make a node bad (and a waiting replacement takes its place).
        table.OnFailed(far[3], T0, evict: false);
        Assert.NotNull(table.Find(far[3]));
        table.OnFailed(far[3], T0, evict: false);
        Assert.Null(table.Find(far[3]));
        Assert.Equal(9, table.Count);
    }

    [Fact]
    public void Memory_is_bounded_under_a_flood_of_fake_contacts()
    {
        var random = new Random(5);
        var self = NodeId.Random(random);
        var table = new RoutingTable(self, 8, Fifteen, T0);
        var ping = new List<RoutingEntry>();
        for (var i = 0; i < 100_000; i++) table.Add(NodeId.Random(random), Ep(i), false, false, T0, ping);
        // Random ids fill about log2(n) buckets; each holds ≤ k nodes plus ≤ k replacements.
        Assert.InRange(table.Count, 8, 8 * 40);
        Assert.InRange(table.ReplacementCount, 0, 8 * table.BucketCount);
        Assert.True(table.BucketCount <= NodeId.Bits);
    }

    [Fact]
    public void Same_id_from_a_new_address_does_not_hijack_a_live_entry()
    {
        var random = new Random(6);
        var self = NodeId.Random(random);
        var table = new RoutingTable(self, 8, Fifteen, T0);
        var ping = new List<RoutingEntry>();
        var id = NodeId.Random(random);
        table.Add(id, Ep(1), true, true, T0, ping);
        Assert.Equal(AddOutcome.Rejected, table.Add(id, Ep(2), true, true, T0, ping));
        Assert.Equal(Ep(1), table.Find(id)!.Value.EndPoint);
        Assert.Equal(AddOutcome.Rejected, table.Add(NodeId.Random(random), Ep(1), true, true, T0, ping)); // one id per address
    }

    [Fact]
    public void Verified_nodes_are_preferred_for_replacement()
    {
        var (table, far, self, random, ping) = FullFarBucket(7);
        var unverified = IdAt(self, 0, random);
        var verified = IdAt(self, 0, random);
        table.Add(unverified, Ep(60), false, true, T0.AddSeconds(5), ping);
        table.Add(verified, Ep(61), true, true, T0.AddSeconds(1), ping);
        table.OnFailed(far[0], T0, evict: true);
        Assert.NotNull(table.Find(verified));
        Assert.Null(table.Find(unverified));
    }

    [Fact]
    public void Random_refresh_ids_fall_in_their_bucket()
    {
        var random = new Random(8);
        var self = NodeId.Random(random);
        var table = new RoutingTable(self, 8, Fifteen, T0);
        var ping = new List<RoutingEntry>();
        for (var i = 0; i < 2000; i++) table.Add(NodeId.Random(random), Ep(i), true, true, T0, ping);
        for (var b = 0; b < table.BucketCount - 1; b++) Assert.Equal(b, self.CommonPrefixLength(table.RandomIdInBucket(b, random)));
        Assert.True(self.CommonPrefixLength(table.RandomIdInBucket(table.BucketCount - 1, random)) >= table.BucketCount - 1);
        Assert.Equal(table.BucketCount, table.IdleBucketTargets(T0 + Fifteen, Fifteen, random).Count);
        Assert.Empty(table.IdleBucketTargets(T0 + Fifteen, Fifteen, random)); // refreshed buckets are not idle
    }

    /// <summary>
    /// Random tables churned by adds (to nodes at clustered prefixes, so buckets split and fill), failures and evictions:
    /// Closest (a walk over the buckets in distance order) equals a brute-force sort of all entries, and the endpoint
    /// index (open addressing with backward-shift deletion) still knows every entry's endpoint after the removals.
    /// </summary>
    [Property(MaxTest = 200)]
    public void Closest_matches_a_full_sort_and_the_endpoint_index_survives_evictions(int seed)
    {
        var random = new Random(seed);
        var self = NodeId.Random(random);
        var table = new RoutingTable(self, 8, Fifteen, T0);
        var ping = new List<RoutingEntry>();
        var ids = new List<NodeId>();
        var now = T0;
        for (var step = 0; step < 400; step++)
        {
            now = now.AddSeconds(random.Next(0, 120));
            if (ids.Count > 0 && random.Next(4) == 0)
            {
                table.OnFailed(ids[random.Next(ids.Count)], now, evict: random.Next(2) == 0);
                continue;
            }

            var id = IdAt(self, Math.Min(random.Next(0, 12), random.Next(0, 12)), random);
            ids.Add(id);
            table.Add(id, Ep(random.Next(0, 300)), random.Next(4) != 0, random.Next(3) != 0, now, ping);
        }

        foreach (var e in table.Entries)
        {
            Assert.Equal(AddOutcome.Rejected, table.Add(IdAt(self, 3, random), e.EndPoint, true, true, now, ping));
        }

        for (var i = 0; i < 20; i++)
        {
            var target = i % 2 == 0 ? NodeId.Random(random) : IdAt(self, random.Next(0, 12), random);
            foreach (var goodOnly in new[] { false, true })
            {
                var expected = table.Entries
                    .Where(e => e.State(now, Fifteen) is var st && st != NodeState.Bad && (!goodOnly || st == NodeState.Good))
                    .OrderBy(e => e.Id ^ target).Take(8).Select(e => e.Id).ToList();
                Assert.Equal(expected, table.Closest(target, 8, now, goodOnly: goodOnly).Select(e => e.Id).ToList());
            }
        }
    }
}

public sealed class DhtNodeRoutingTests
{
    /// <summary>
    /// A node with k = 2 whose far bucket holds two raw peers (ids differ from ours in the first bit) plus one near
    /// peer, all seen 16 minutes ago (questionable); then a newcomer for the far bucket queries it.
    /// </summary>
    private static (DhtNode Node, RawPeer[] Old, RawPeer Newcomer) FullBucketThenNewcomer(DhtTestNetwork net, int seed)
    {
        var node = net.AddNode(new DhtOptions { RandomSeed = 1, K = 2, BucketRefreshInterval = TimeSpan.FromHours(1) });
        var self = node.Id;
        var random = new Random(seed);
        NodeId Far() => NodeId.Random(random).WithBit(0, !self.GetBit(0));
        var old = new[] { new RawPeer(net, id: Far()), new RawPeer(net, id: Far()) };
        var near = new RawPeer(net, id: NodeId.Random(random).WithBit(0, self.GetBit(0)).WithBit(1, !self.GetBit(1)));
        foreach (var p in old) p.SendQuery(node.LocalEndPoint, KrpcMethod.Ping, 1);
        near.SendQuery(node.LocalEndPoint, KrpcMethod.Ping, 1);
        net.Scheduler.RunUntilIdle();
        Assert.Equal(3, node.RoutingTableNodes().Count);
        // BEP 5: nodes that only queried us are pinged once so they can become good; they answer.
        AnswerVerificationPings(net, [.. old, near]);
        net.Time.Advance(TimeSpan.FromMinutes(16));
        var newcomer = new RawPeer(net, id: Far());
        newcomer.SendQuery(node.LocalEndPoint, KrpcMethod.Ping, 2);
        net.Scheduler.RunUntilIdle();
        return (node, old, newcomer);
    }

    private static void AnswerVerificationPings(DhtTestNetwork net, RawPeer[] peers)
    {
        foreach (var p in peers)
        {
            var handled = 0;
            Assert.Equal(1, p.AnswerQueries(ref handled));
        }

        net.Scheduler.RunUntilIdle();
        foreach (var p in peers) p.Received.Clear();
    }

    [Fact]
    public async Task A_node_that_only_queried_us_is_pinged_and_handed_out_once_it_answers()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var querier = new RawPeer(net);
        var asker = new RawPeer(net);
        querier.SendQuery(node.LocalEndPoint, KrpcMethod.Ping, 1);
        net.Scheduler.RunUntilIdle();
        // BEP 5: replies carry good nodes only; the querier has never answered us, so it is not handed out yet.
        asker.SendQuery(node.LocalEndPoint, KrpcMethod.FindNode, 2, querier.Id);
        net.Scheduler.RunUntilIdle();
        Assert.Equal(0, asker.Replies()[^1].Nodes.Length);
        var ping = Assert.Single(querier.Messages(), m => m.Type == KrpcMessageType.Query);
        Assert.Equal(KrpcMethod.Ping, ping.Method);

        AnswerVerificationPings(net, [querier]);
        asker.SendQuery(node.LocalEndPoint, KrpcMethod.FindNode, 3, querier.Id);
        net.Scheduler.RunUntilIdle();
        var nodes = KrpcCodec.ReadCompactNodes(asker.Replies()[^1].Nodes.Span, System.Net.Sockets.AddressFamily.InterNetwork);
        Assert.Equal(querier.Id, Assert.Single(nodes).Id);
    }

    [Fact]
    public async Task Full_bucket_pings_a_questionable_node_asynchronously_and_evicts_it_when_silent()
    {
        await using var net = new DhtTestNetwork();
        var (node, silent, newcomer) = FullBucketThenNewcomer(net, 9);
        // The newcomer waits in the replacement cache while the least recently seen silent node is pinged.
        Assert.DoesNotContain(node.RoutingTableNodes(), n => n.Id == newcomer.Id);
        var pings = silent.SelectMany(p => p.Messages()).Where(m => m.Type == KrpcMessageType.Query && m.Method == KrpcMethod.Ping).ToList();
        Assert.Single(pings);
        // No answer: after the timeout and one retry, the silent node is evicted for the newcomer.
        net.Scheduler.RunUntil(() => node.RoutingTableNodes().Any(n => n.Id == newcomer.Id), TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10));
        Assert.Contains(node.RoutingTableNodes(), n => n.Id == newcomer.Id);
        Assert.Equal(3, node.RoutingTableNodes().Count);
        Assert.Equal(2, node.Stats.Timeouts); // the ping and its retry
    }

    [Fact]
    public async Task Answered_ping_keeps_the_old_node()
    {
        await using var net = new DhtTestNetwork();
        var (node, alive, newcomer) = FullBucketThenNewcomer(net, 10);
        var handled = new int[2];
        var answered = 0;
        for (var i = 0; i < 2; i++) answered += alive[i].AnswerQueries(ref handled[i]);
        net.Scheduler.RunUntilIdle();
        for (var i = 0; i < 2; i++) answered += alive[i].AnswerQueries(ref handled[i]);
        net.Scheduler.RunUntil(() => false, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
        Assert.Equal(2, answered); // BEP 5: an answered ping leads to pinging the next questionable node
        Assert.All(alive, p => Assert.Contains(node.RoutingTableNodes(), n => n.Id == p.Id));
        Assert.DoesNotContain(node.RoutingTableNodes(), n => n.Id == newcomer.Id);
    }

    [Fact]
    public async Task Idle_buckets_are_refreshed_by_a_find_node_after_15_minutes()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var peer = new RawPeer(net);
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.Ping, 1);
        net.Scheduler.RunUntilIdle();
        AnswerVerificationPings(net, [peer]);
        net.Scheduler.RunUntil(() => peer.Messages().Any(m => m.Type == KrpcMessageType.Query), TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(14));
        Assert.DoesNotContain(peer.Messages(), m => m.Type == KrpcMessageType.Query);
        net.Scheduler.RunUntil(() => peer.Messages().Any(m => m.Type == KrpcMessageType.Query), TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(3));
        Assert.Contains(peer.Messages(), m => m.Type == KrpcMessageType.Query && m.Method == KrpcMethod.FindNode);
    }

}
