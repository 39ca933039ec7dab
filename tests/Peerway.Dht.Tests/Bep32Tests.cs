using System.Net;
using System.Net.Sockets;
using Peerway.Core;
using Peerway.Net;

namespace Peerway.Dht.Tests;

/// <summary>BEP 32 (IPv6 DHT): the "want" key, "nodes6", a dual-stack pair of nodes answering "want" from both routing
/// tables, and two nodes on ::1 over real UDP.</summary>
public sealed class Bep32Tests
{
    private static readonly byte[] Id = "abcdefghij0123456789"u8.ToArray();
    private static readonly byte[] Target = "mnopqrstuvwxyz123456"u8.ToArray();

    private static byte[] FindNode(string want) =>
        [.. "d1:ad2:id20:"u8, .. Id, .. "6:target20:"u8, .. Target, .. System.Text.Encoding.ASCII.GetBytes(want), .. "e1:q9:find_node1:t2:aa1:y1:qe"u8];

    [Fact]
    public void Want_n4_and_n6_decode_and_encode_canonically()
    {
        var datagram = FindNode("4:wantl2:n42:n6e");
        Assert.True(KrpcCodec.TryDecode(datagram, out var m, out var error), error.ToString());
        Assert.Equal(DhtWant.N4 | DhtWant.N6, m.Want);
        var buffer = new byte[512];
        Assert.Equal(datagram, buffer.AsSpan(0, KrpcCodec.Encode(m, buffer)).ToArray());

        Assert.True(KrpcCodec.TryDecode(FindNode("4:wantl2:n6e"), out m, out _));
        Assert.Equal(DhtWant.N6, m.Want);
        Assert.True(KrpcCodec.TryDecode(FindNode(""), out m, out _));
        Assert.Equal(DhtWant.None, m.Want);
        // Unknown families are ignored; a "want" that is not a list is ignored like an unknown key.
        Assert.True(KrpcCodec.TryDecode(FindNode("4:wantl2:n42:n8e"), out m, out _));
        Assert.Equal(DhtWant.N4, m.Want);
        Assert.True(KrpcCodec.TryDecode(FindNode("4:want2:n6"), out m, out _));
        Assert.Equal(DhtWant.None, m.Want);
        // A non-string entry, or more entries than any client sends, is a typed error.
        Assert.False(KrpcCodec.TryDecode(FindNode("4:wantli4ee"), out _, out error));
        Assert.Equal(KrpcError.InvalidWant, error);
        Assert.False(KrpcCodec.TryDecode(FindNode("4:wantl" + string.Concat(Enumerable.Repeat("2:n4", KrpcCodec.MaxWantEntries + 1)) + "e"), out _, out error));
        Assert.Equal(KrpcError.InvalidWant, error);
    }

    [Fact]
    public void Nodes6_is_38_byte_compact_node_info()
    {
        // BEP 32: "nodes6" is a string of 38-byte entries: 20-byte id, 16-byte IPv6 address, 2-byte port (big-endian).
        var contact = new NodeContact(new NodeId(Id), new IPEndPoint(IPAddress.Parse("2001:db8::1"), 0x1ae1));
        var compact = KrpcCodec.WriteCompactNodes([contact], AddressFamily.InterNetworkV6);
        Assert.Equal([.. Id, .. Convert.FromHexString("20010db8000000000000000000000001"), 0x1a, 0xe1], compact);
        var reply = "d1:rd2:id20:"u8.ToArray().Concat(Id).Concat("6:nodes638:"u8.ToArray()).Concat(compact).Concat("e1:t2:aa1:y1:re"u8.ToArray()).ToArray();
        Assert.True(KrpcCodec.TryDecode(reply, out var m, out var error), error.ToString());
        Assert.Equal([contact], KrpcCodec.ReadCompactNodes(m.Nodes6.Span, AddressFamily.InterNetworkV6));
        // Not a multiple of 38 bytes: a typed error.
        var cut = "d1:rd2:id20:"u8.ToArray().Concat(Id).Concat("6:nodes637:"u8.ToArray()).Concat(compact[..37]).Concat("e1:t2:aa1:y1:re"u8.ToArray()).ToArray();
        Assert.False(KrpcCodec.TryDecode(cut, out _, out error));
        Assert.Equal(KrpcError.InvalidNodes, error);
    }

    [Fact]
    public async Task A_dual_stack_pair_answers_want_from_both_routing_tables_and_fills_its_pairs_table()
    {
        await using var net = new DhtTestNetwork();
        var v4 = Enumerable.Range(0, 10).Select(i => net.AddNode(new DhtOptions { RandomSeed = i + 1 }, new IPEndPoint(IPAddress.Parse($"10.0.0.{i + 1}"), 6881))).ToList();
        var v6 = Enumerable.Range(0, 10).Select(i => net.AddNode(new DhtOptions { RandomSeed = i + 101 }, new IPEndPoint(IPAddress.Parse($"fd00::{i + 1:x}"), 6881))).ToList();
        foreach (var n in v4.Skip(1)) net.Await(n.BootstrapAsync([v4[0].LocalEndPoint], CancellationToken.None));
        foreach (var n in v6.Skip(1)) net.Await(n.BootstrapAsync([v6[0].LocalEndPoint], CancellationToken.None));

        // Host B: one node per family, the same id (BEP 32), paired; each joins its own DHT.
        var idB = NodeId.Sha1("dual stack B"u8);
        var b4 = net.AddNode(new DhtOptions { RandomSeed = 201, NodeId = idB }, new IPEndPoint(IPAddress.Parse("10.0.1.1"), 6881));
        var b6 = net.AddNode(new DhtOptions { RandomSeed = 202, NodeId = idB }, new IPEndPoint(IPAddress.Parse("fd00:1::1"), 6881));
        b4.PairWith(b6);
        Assert.Same(b6, b4.Pair);
        net.Await(b4.BootstrapAsync([v4[0].LocalEndPoint], CancellationToken.None));
        net.Await(b6.BootstrapAsync([v6[0].LocalEndPoint], CancellationToken.None));
        // Either node of the pair saves both routing tables in one state file ("nodes" and "nodes6").
        foreach (var saved in new[] { DhtNode.LoadState(b4.SaveState()), DhtNode.LoadState(b6.SaveState()) })
        {
            Assert.Equal(idB, saved.Id);
            Assert.Equal(b4.RoutingTableNodes().Count, saved.Nodes.Count(c => c.EndPoint.AddressFamily == AddressFamily.InterNetwork));
            Assert.Equal(b6.RoutingTableNodes().Count, saved.Nodes.Count(c => c.EndPoint.AddressFamily == AddressFamily.InterNetworkV6));
            Assert.NotEmpty(b6.RoutingTableNodes());
        }


        // An IPv4 requester asking for both families gets "nodes" from b4's table and "nodes6" from b6's.
        var raw4 = new RawPeer(net, new IPEndPoint(IPAddress.Parse("10.0.9.9"), 7000));
        var target = NodeId.Sha1("somewhere"u8);
        var reply = Ask(net, raw4, b4.LocalEndPoint, target, DhtWant.N4 | DhtWant.N6);
        var nodes4 = KrpcCodec.ReadCompactNodes(reply.Nodes.Span, AddressFamily.InterNetwork);
        var nodes6 = KrpcCodec.ReadCompactNodes(reply.Nodes6.Span, AddressFamily.InterNetworkV6);
        Assert.Equal(8, nodes4.Count);
        Assert.Equal(8, nodes6.Count);
        Assert.All(nodes4, c => Assert.Contains(v4, n => n.Id == c.Id && n.LocalEndPoint.Equals(c.EndPoint)));
        Assert.All(nodes6, c => Assert.Contains(v6, n => n.Id == c.Id && n.LocalEndPoint.Equals(c.EndPoint)));
        // The closest first, by XOR distance to the target, as BEP 5 asks of "nodes", from b6's own table.
        Assert.Equal(nodes6.Select(c => c.Id).OrderBy(i => i ^ target), nodes6.Select(c => c.Id));
        Assert.All(nodes6, c => Assert.Contains(b6.RoutingTableNodes(), e => e.Id == c.Id));

        // Only "n6": only "nodes6". No "want": the family the query came over.
        reply = Ask(net, raw4, b4.LocalEndPoint, target, DhtWant.N6);
        Assert.True(reply.Nodes.IsEmpty);
        Assert.Equal(8 * KrpcCodec.CompactNode6Length, reply.Nodes6.Length);
        reply = Ask(net, raw4, b4.LocalEndPoint, target, DhtWant.None);
        Assert.Equal(8 * KrpcCodec.CompactNodeLength, reply.Nodes.Length);
        Assert.True(reply.Nodes6.IsEmpty);
        // An unpaired IPv4 node has no IPv6 table: a "want" of "n6" alone gets its own family rather than nothing.
        reply = Ask(net, raw4, v4[3].LocalEndPoint, target, DhtWant.N6);
        Assert.True(reply.Nodes6.IsEmpty);
        Assert.False(reply.Nodes.IsEmpty);
        // An IPv6 requester asking b6 for "n4" gets b4's IPv4 nodes.
        var raw6 = new RawPeer(net, new IPEndPoint(IPAddress.Parse("fd00:9::9"), 7000));
        reply = Ask(net, raw6, b6.LocalEndPoint, target, DhtWant.N4);
        Assert.Equal(8, KrpcCodec.ReadCompactNodes(reply.Nodes.Span, AddressFamily.InterNetwork).Count);

        // Host A: a pair whose IPv6 node never bootstraps. A's IPv4 lookups ask for both families (through b4, the
        // only dual-stack node) and hand the IPv6 nodes they hear of to a6, which pings them into its own table.
        var a4 = net.AddNode(new DhtOptions { RandomSeed = 301 }, new IPEndPoint(IPAddress.Parse("10.0.2.1"), 6881));
        var a6 = net.AddNode(new DhtOptions { RandomSeed = 302 }, new IPEndPoint(IPAddress.Parse("fd00:2::1"), 6881));
        a4.PairWith(a6);
        Assert.Equal(0, a6.Stats.RoutingTableSize);
        net.Await(a4.BootstrapAsync([b4.LocalEndPoint], CancellationToken.None));
        net.Scheduler.RunUntil(() => a6.Stats.RoutingTableSize >= 8, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(30));
        Assert.True(a6.Stats.RoutingTableSize >= 8, $"a6 has {a6.Stats.RoutingTableSize} nodes");
        Assert.All(a6.RoutingTableNodes(), c => Assert.Equal(AddressFamily.InterNetworkV6, c.EndPoint.AddressFamily));
        // ... and a6 can look up in the IPv6 DHT with them.
        var found = net.Await(a6.FindNodeAsync(v6[7].Id, CancellationToken.None));
        Assert.Equal(v6[7].Id, found.Closest[0].Id);

        Assert.Throws<ArgumentException>(() => v4[1].PairWith(v4[2]));
    }

    [Fact]
    public async Task Two_nodes_on_ipv6_loopback_bootstrap_announce_and_find_peers()
    {
        var guard = TimeSpan.FromSeconds(30);
        var nodes = Enumerable.Range(0, 4)
            .Select(_ => new DhtNode(new UdpDatagramSocket(new IPEndPoint(IPAddress.IPv6Loopback, 0)), TimeProvider.System, new DhtOptions()))
            .ToList();
        try
        {
            foreach (var n in nodes) n.Start();
            for (var i = 1; i < nodes.Count; i++) Assert.True(await nodes[i].BootstrapAsync([nodes[0].LocalEndPoint], CancellationToken.None).WaitAsync(guard) > 0);
            Assert.All(nodes[2].RoutingTableNodes(), c => Assert.Equal(IPAddress.IPv6Loopback, c.EndPoint.Address));
            var infoHash = NodeId.Sha1("ipv6 loopback"u8);
            Assert.True((await nodes[1].AnnounceAsync(infoHash, 45001, impliedPort: false, CancellationToken.None).WaitAsync(guard)).AnnouncedTo > 0);
            var peers = await nodes[3].GetPeersAsync(infoHash, CancellationToken.None).WaitAsync(guard);
            Assert.Contains(new IPEndPoint(IPAddress.IPv6Loopback, 45001), peers.Peers);
        }
        finally
        {
            foreach (var n in nodes) await n.DisposeAsync();
        }
    }

    private static KrpcMessage Ask(DhtTestNetwork net, RawPeer peer, IPEndPoint node, NodeId target, DhtWant want)
    {
        var before = peer.Received.Count;
        var m = new KrpcMessage { Type = KrpcMessageType.Query, Method = KrpcMethod.FindNode, Id = peer.Id, Target = target, Want = want, ReadOnly = true };
        m.SetTransactionId([0x32, (byte)before]);
        var buffer = new byte[512];
        peer.Send(buffer.AsSpan(0, KrpcCodec.Encode(m, buffer)), node);
        net.Scheduler.RunUntilIdle();
        var replies = peer.Received.Skip(before).Select(r => KrpcCodec.TryDecode(r.Data, out var d, out _) ? d : null).Where(d => d is { Type: KrpcMessageType.Response }).ToList();
        return Assert.Single(replies)!;
    }
}
