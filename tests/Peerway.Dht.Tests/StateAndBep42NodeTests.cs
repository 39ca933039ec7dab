using System.Net;
using Microsoft.Extensions.Time.Testing;
using Peerway.Core;
using Peerway.Net;
using Peerway.TestSupport;

namespace Peerway.Dht.Tests;

public sealed class StateAndBep42NodeTests
{
    [Fact]
    public async Task Saved_state_lets_a_restarted_node_rejoin_without_a_router()
    {
        await using var net = new DhtTestNetwork();
        var nodes = Enumerable.Range(0, 30).Select(i => net.AddNode(new DhtOptions { RandomSeed = i + 1 })).ToList();
        for (var i = 1; i < nodes.Count; i++) net.Await(nodes[i].BootstrapAsync([nodes[0].LocalEndPoint], CancellationToken.None));
        var leaving = nodes[10];
        var state = leaving.SaveState();
        var endPoint = leaving.LocalEndPoint;
        await leaving.DisposeAsync();

        Assert.True(DhtNode.TryLoadState(state, out var loaded));
        Assert.Equal(leaving.Id, loaded!.Id);
        Assert.NotEmpty(loaded.Nodes);

        var restarted = net.AddNode(new DhtOptions { RandomSeed = 99, NodeId = loaded.Id }, endPoint);
        var size = net.Await(restarted.RestoreAsync(loaded.Nodes, CancellationToken.None));
        Assert.True(size >= loaded.Nodes.Count / 2, $"{size} of {loaded.Nodes.Count}");
        var found = net.Await(restarted.FindNodeAsync(nodes[20].Id, CancellationToken.None));
        Assert.Equal(nodes[20].Id, found.Closest[0].Id);
    }

    [Theory]
    [InlineData("")]
    [InlineData("de")]
    [InlineData("d2:id3:abce")]
    [InlineData("d2:id20:abcdefghij01234567895:nodes5:abcdee")]
    [InlineData("not bencode")]
    public void Invalid_state_files_are_refused(string text) =>
        Assert.False(DhtNode.TryLoadState(System.Text.Encoding.ASCII.GetBytes(text), out _));

    [Fact]
    public void State_file_format_is_a_bencoded_dict_with_id_and_compact_nodes()
    {
        var text = "d2:id20:abcdefghij01234567895:nodes26:mnopqrstuvwxyz123456\u007f\u0000\u0000\u0001\u001a\u00e1e";
        Assert.True(DhtNode.TryLoadState(System.Text.Encoding.Latin1.GetBytes(text), out var state));
        var n = Assert.Single(state!.Nodes);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 6881), n.EndPoint);
    }

    [Fact]
    public async Task Node_learns_its_public_address_by_majority_and_regenerates_a_compliant_id()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var scheduler = new DeterministicScheduler(time);
        var network = new VirtualNetwork(scheduler);
        var publicIp = IPAddress.Parse("203.0.113.50");
        var node = new DhtNode(network.CreateSocket(new IPEndPoint(publicIp, 6881)), time, new DhtOptions { RandomSeed = 3 });
        node.Start();
        var before = node.Id;
        Assert.False(Bep42.IsCompliant(before, publicIp));
        // Three remote nodes (answering pings, BEP 42 "ip" = what they see) vote for our address.
        var voters = Enumerable.Range(0, 3).Select(i => new KrpcResponder(network, new IPEndPoint(IPAddress.Parse($"198.51.100.{i + 1}"), 6881))).ToList();
        foreach (var v in voters)
        {
            var ping = node.PingAsync(v.EndPoint, CancellationToken.None);
            scheduler.Await(ping);
        }

        Assert.Equal(publicIp, node.Stats.ExternalAddress);
        Assert.NotEqual(before, node.Id);
        Assert.True(Bep42.IsCompliant(node.Id, publicIp));
        await node.DisposeAsync();
    }

    [Fact]
    public async Task Enforce_bep42_refuses_non_compliant_public_nodes()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var scheduler = new DeterministicScheduler(time);
        var network = new VirtualNetwork(scheduler);
        var node = new DhtNode(network.CreateSocket(), time, new DhtOptions { RandomSeed = 4, EnforceBep42 = true });
        node.Start();
        var publicAddress = IPAddress.Parse("198.51.100.7");
        var bad = new KrpcResponder(network, new IPEndPoint(publicAddress, 6881), NodeId.Sha1("x"u8));
        var good = new KrpcResponder(network, new IPEndPoint(IPAddress.Parse("198.51.100.8"), 6881), Bep42.GenerateId(IPAddress.Parse("198.51.100.8"), 1, new Random(1)));
        var exempt = new KrpcResponder(network, new IPEndPoint(IPAddress.Parse("192.168.1.9"), 6881), NodeId.Sha1("y"u8));
        foreach (var r in new[] { bad, good, exempt }) Assert.NotNull(scheduler.Await(node.PingAsync(r.EndPoint, CancellationToken.None)));
        var ids = node.RoutingTableNodes().Select(n => n.Id).ToList();
        Assert.DoesNotContain(bad.Id, ids);
        Assert.Contains(good.Id, ids);
        Assert.Contains(exempt.Id, ids);
        await node.DisposeAsync();
    }

    /// <summary>Answers every query with an empty response carrying BEP 42's "ip".</summary>
    private sealed class KrpcResponder
    {
        public KrpcResponder(VirtualNetwork network, IPEndPoint endPoint, NodeId? id = null)
        {
            var socket = network.CreateSocket(endPoint);
            Id = id ?? NodeId.Sha1(System.Text.Encoding.ASCII.GetBytes(endPoint.ToString()));
            EndPoint = endPoint;
            socket.Start((data, from) =>
            {
                if (!KrpcCodec.TryDecode(data, out var q, out _) || q.Type != KrpcMessageType.Query) return;
                var r = new KrpcMessage { Type = KrpcMessageType.Response, Id = Id, ExternalAddress = from };
                r.SetTransactionId(q.TransactionId);
                var buffer = new byte[512];
                socket.Send(buffer.AsSpan(0, KrpcCodec.Encode(r, buffer)), from);
            });
        }

        public NodeId Id { get; }

        public IPEndPoint EndPoint { get; }
    }
}

public sealed class StorageUnitTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Total_bound_evicts_the_oldest_announcement()
    {
        var store = new PeerStore(maxTotal: 3, maxPerInfoHash: 10, ttl: TimeSpan.FromMinutes(30));
        var a = NodeId.Sha1("a"u8);
        var b = NodeId.Sha1("b"u8);
        store.Add(a, new IPEndPoint(IPAddress.Loopback, 1), T0);
        store.Add(b, new IPEndPoint(IPAddress.Loopback, 2), T0.AddSeconds(1));
        store.Add(a, new IPEndPoint(IPAddress.Loopback, 3), T0.AddSeconds(2));
        store.Add(b, new IPEndPoint(IPAddress.Loopback, 4), T0.AddSeconds(3));
        Assert.Equal(3, store.Count);
        var peersA = store.Get(a, T0.AddSeconds(4), 10, System.Net.Sockets.AddressFamily.InterNetwork);
        Assert.Equal([new IPEndPoint(IPAddress.Loopback, 3)], peersA);
    }

    [Fact]
    public void Per_info_hash_bound_evicts_that_swarm_oldest_and_reannounce_refreshes()
    {
        var store = new PeerStore(maxTotal: 100, maxPerInfoHash: 2, ttl: TimeSpan.FromMinutes(30));
        var a = NodeId.Sha1("a"u8);
        store.Add(a, new IPEndPoint(IPAddress.Loopback, 1), T0);
        store.Add(a, new IPEndPoint(IPAddress.Loopback, 2), T0.AddMinutes(1));
        store.Add(a, new IPEndPoint(IPAddress.Loopback, 1), T0.AddMinutes(2)); // refresh 1: now 2 is the oldest
        store.Add(a, new IPEndPoint(IPAddress.Loopback, 3), T0.AddMinutes(3));
        var peers = store.Get(a, T0.AddMinutes(3), 10, System.Net.Sockets.AddressFamily.InterNetwork);
        Assert.Equal([new IPEndPoint(IPAddress.Loopback, 3), new IPEndPoint(IPAddress.Loopback, 1)], peers);
        // Peer 1 was refreshed at minute 2: it outlives the 30-minute TTL of its first announce.
        Assert.Equal(2, store.Get(a, T0.AddMinutes(31), 10, System.Net.Sockets.AddressFamily.InterNetwork).Count);
        Assert.Single(store.Get(a, T0.AddMinutes(32), 10, System.Net.Sockets.AddressFamily.InterNetwork));
    }

    [Fact]
    public void Tokens_rotate_every_five_minutes_and_live_between_five_and_ten()
    {
        var tokens = new TokenManager(TimeSpan.FromMinutes(5), new Random(1), T0);
        var ip = IPAddress.Parse("198.51.100.1");
        Span<byte> t = stackalloc byte[TokenManager.TokenLength];
        tokens.Create(ip, T0.AddMinutes(4), t);
        var token = t.ToArray();
        Assert.True(tokens.Validate(ip, token, T0.AddMinutes(9)));
        Assert.False(tokens.Validate(IPAddress.Parse("198.51.100.2"), token, T0.AddMinutes(9)));
        Assert.False(tokens.Validate(ip, token, T0.AddMinutes(10)));
        Assert.False(tokens.Validate(ip, token.AsSpan(..4), T0.AddMinutes(4)));
    }

    [Fact]
    public void Rate_limiter_table_is_bounded_and_forgets_idle_ips()
    {
        var limiter = new RateLimiter(10, 20, maxTracked: 100);
        for (var i = 0; i < 1000; i++) limiter.TryAcquire(new IPAddress([1, 2, (byte)(i >> 8), (byte)i]), T0);
        Assert.Equal(100, limiter.Tracked);
        limiter.PruneIdle(T0.AddSeconds(2));
        Assert.Equal(0, limiter.Tracked);
    }

    [Theory]
    [InlineData("K")]
    [InlineData("Alpha")]
    [InlineData("DisjointPaths")]
    [InlineData("QueryTimeout")]
    [InlineData("MaxStoredPeers")]
    [InlineData("MaxQueriesPerIpPerSecond")]
    public void Options_validation_names_the_bad_setting(string name)
    {
        var options = name switch
        {
            "K" => new DhtOptions { K = 0 },
            "Alpha" => new DhtOptions { Alpha = 0 },
            "DisjointPaths" => new DhtOptions { DisjointPaths = 9 },
            "QueryTimeout" => new DhtOptions { QueryTimeout = TimeSpan.Zero },
            "MaxStoredPeers" => new DhtOptions { MaxStoredPeers = 0 },
            _ => new DhtOptions { MaxQueriesPerIpPerSecond = double.NaN },
        };
        var ex = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
        Assert.Equal(name, ex.ParamName);
        new DhtOptions().Validate();
    }
}

public sealed class LoadStateTests
{
    [Fact]
    public void LoadState_throws_a_clear_error_on_garbage() =>
        Assert.Contains("state file", Assert.Throws<FormatException>(() => DhtNode.LoadState("xyz"u8)).Message, StringComparison.Ordinal);
}
