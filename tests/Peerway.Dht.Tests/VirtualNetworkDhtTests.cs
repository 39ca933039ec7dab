using System.Net;
using Peerway.Core;
using Peerway.TestSupport;

namespace Peerway.Dht.Tests;

public sealed class VirtualNetworkDhtTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task Ping_returns_the_remote_id_and_unknown_endpoint_times_out()
    {
        await using var net = new DhtTestNetwork();
        var a = net.AddNode();
        var b = net.AddNode();
        Assert.Equal(b.Id, net.Await(a.PingAsync(b.LocalEndPoint, CancellationToken.None)));
        Assert.Null(net.Await(a.PingAsync(new IPEndPoint(IPAddress.Parse("10.200.0.1"), 6881), CancellationToken.None)));
        Assert.Equal(1, a.Stats.ResponsesReceived);
        Assert.Equal(2, a.Stats.Timeouts); // one retry (QueryRetries = 1), both timed out
        Assert.Contains(a.RoutingTableNodes(), n => n.Id == b.Id);
        Assert.Contains(b.RoutingTableNodes(), n => n.Id == a.Id);
    }

    [Fact]
    public async Task Thousand_nodes_bootstrap_then_lookups_and_announces_succeed()
    {
        const int count = 1000;
        await using var net = new DhtTestNetwork();
        // Each joining node refreshes its buckets right after bootstrap, as every node's 15-minute BEP 5 refresh would
        // in a network that has run a while (advancing FakeTimeProvider through that refresh for 1,000 nodes is slow).
        for (var i = 0; i < count; i++) net.AddNode(new DhtOptions { RandomSeed = i + 1, RefreshBucketsAfterBootstrap = true });
        var nodes = net.Nodes;

        // Bootstrap chain: node i bootstraps from node i - 1 (the first one has nobody).
        for (var i = 1; i < count; i++)
        {
            var size = net.Await(nodes[i].BootstrapAsync([nodes[i - 1].LocalEndPoint], CancellationToken.None));
            Assert.True(size > 0, $"node {i} has an empty routing table after bootstrap");
        }

        var random = new Random(42);
        var ids = nodes.Select(n => n.Id).ToList();

        // find_node for existing ids: the target must be the closest node found.
        var found = 0;
        var rounds = new List<int>();
        var queries = new List<int>();
        for (var i = 0; i < 50; i++)
        {
            var from = nodes[random.Next(count)];
            var target = ids[random.Next(count)];
            var result = net.Await(from.FindNodeAsync(target, CancellationToken.None));
            if (target == from.Id || (result.Closest.Count > 0 && result.Closest[0].Id == target)) found++;
            rounds.Add(result.Rounds);
            queries.Add(result.QueriesSent);
            Assert.True(result.QueriesSent >= result.Responses);
        }

        output.WriteLine($"find_node: {found}/50 exact, rounds avg {rounds.Average():F2} max {rounds.Max()}, queries avg {queries.Average():F1}");
        Assert.True(found >= 48, $"find_node found only {found}/50 targets");
        Assert.InRange(rounds.Average(), 1, 10);

        // Announce from 20 nodes, then get_peers from others must find the announced peers.
        var success = 0;
        for (var i = 0; i < 20; i++)
        {
            var infoHash = NodeId.Random(random);
            var announcer = nodes[random.Next(count)];
            var announced = net.Await(announcer.AnnounceAsync(infoHash, 7000 + i, impliedPort: false, CancellationToken.None));
            Assert.True(announced.AnnouncedTo >= 6, $"announced to {announced.AnnouncedTo}");
            var seeker = nodes[random.Next(count)];
            var peers = net.Await(seeker.GetPeersAsync(infoHash, CancellationToken.None));
            Assert.Equal(peers.Peers.Count, peers.Peers.Distinct().Count()); // values from several nodes, deduplicated
            if (peers.Peers.Contains(new IPEndPoint(announcer.LocalEndPoint.Address, 7000 + i))) success++;
        }

        output.WriteLine($"announce/get_peers: {success}/20; routing table sizes avg {nodes.Average(n => n.Stats.RoutingTableSize):F1}");
        Assert.True(success >= 19, $"get_peers found the announced peer for {success}/20 info-hashes");
        var closestStore = nodes.Sum(n => n.Stats.StoredPeers);
        Assert.InRange(closestStore, 20 * 6, 20 * 8);
    }

    [Fact]
    public async Task Refresh_after_bootstrap_fills_far_buckets_at_once()
    {
        async Task<double> AverageTableSizeAsync(bool refresh)
        {
            await using var net = new DhtTestNetwork();
            for (var i = 0; i < 200; i++) net.AddNode(new DhtOptions { RandomSeed = i + 1, RefreshBucketsAfterBootstrap = refresh });
            for (var i = 1; i < 200; i++) net.Await(net.Nodes[i].BootstrapAsync([net.Nodes[i - 1].LocalEndPoint], CancellationToken.None));
            net.Scheduler.RunUntilIdle();
            return net.Nodes.Average(n => n.Stats.RoutingTableSize);
        }

        var plain = await AverageTableSizeAsync(false);
        var refreshed = await AverageTableSizeAsync(true);
        output.WriteLine($"average routing table: {plain:F1} without, {refreshed:F1} with refresh after bootstrap");
        Assert.True(refreshed > plain * 1.2, $"{refreshed:F1} vs {plain:F1}");
    }

    [Fact]
    public async Task Cancelling_a_lookup_completes_it_as_canceled_and_the_node_keeps_working()
    {
        await using var net = new DhtTestNetwork();
        var a = net.AddNode();
        var b = net.AddNode();
        net.Await(a.PingAsync(b.LocalEndPoint, CancellationToken.None));
        // A lookup whose only candidate never answers (a silent endpoint), cancelled before its timeout.
        using var cts = new CancellationTokenSource();
        var silent = new RawPeer(net);
        var lookup = a.BootstrapAsync([silent.EndPoint], cts.Token);
        net.Scheduler.RunUntilIdle();
        Assert.False(lookup.IsCompleted);
        DeterministicScheduler.RunInline(cts.Cancel);
        Assert.True(lookup.IsCanceled);
        Assert.Equal(b.Id, net.Await(a.PingAsync(b.LocalEndPoint, CancellationToken.None)));
    }

    [Fact]
    public async Task IPv6_nodes_use_nodes6_and_18_byte_peers()
    {
        await using var net = new DhtTestNetwork();
        var nodes = Enumerable.Range(0, 20)
            .Select(i => net.AddNode(new DhtOptions { RandomSeed = i + 1 }, new IPEndPoint(IPAddress.Parse($"fd00::{i + 1:x}"), 6881)))
            .ToList();
        for (var i = 1; i < nodes.Count; i++) net.Await(nodes[i].BootstrapAsync([nodes[0].LocalEndPoint], CancellationToken.None));
        var found = net.Await(nodes[19].FindNodeAsync(nodes[7].Id, CancellationToken.None));
        Assert.Equal(nodes[7].Id, found.Closest[0].Id);
        Assert.Equal(nodes[7].LocalEndPoint, found.Closest[0].EndPoint);
        var infoHash = NodeId.Sha1("v6"u8);
        net.Await(nodes[3].AnnounceAsync(infoHash, 6000, impliedPort: false, CancellationToken.None));
        var peers = net.Await(nodes[15].GetPeersAsync(infoHash, CancellationToken.None));
        Assert.Contains(new IPEndPoint(IPAddress.Parse("fd00::4"), 6000), peers.Peers);
        // The state file keeps IPv6 contacts in "nodes6".
        Assert.True(DhtNode.TryLoadState(nodes[5].SaveState(), out var state));
        Assert.All(state!.Nodes, n => Assert.Equal(System.Net.Sockets.AddressFamily.InterNetworkV6, n.EndPoint.AddressFamily));
        Assert.NotEmpty(state.Nodes);
    }

    [Fact]
    public async Task Disjoint_paths_lookup_finds_the_target()
    {
        await using var net = new DhtTestNetwork();
        for (var i = 0; i < 200; i++) net.AddNode(new DhtOptions { RandomSeed = i + 1, DisjointPaths = 3 });
        var nodes = net.Nodes;
        for (var i = 1; i < nodes.Count; i++) net.Await(nodes[i].BootstrapAsync([nodes[0].LocalEndPoint], CancellationToken.None));
        var hits = 0;
        for (var i = 0; i < 20; i++)
        {
            var target = nodes[(i * 7) + 3].Id;
            var result = net.Await(nodes[150 + i].FindNodeAsync(target, CancellationToken.None));
            if (result.Closest.Count > 0 && result.Closest[0].Id == target) hits++;
        }

        Assert.True(hits >= 19, $"{hits}/20");
    }
}
