using System.Net;
using Peerway.Core;

namespace Peerway.Dht.Tests;

public sealed class DhtNodeServerTests
{
    private static readonly NodeId InfoHash = NodeId.Sha1("torrent"u8);

    [Fact]
    public async Task Replies_carry_the_BEP42_ip_field_and_echo_the_transaction_id()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var peer = new RawPeer(net);
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.Ping, 0xbeef);
        net.Scheduler.RunUntilIdle();
        var reply = Assert.Single(peer.Replies());
        Assert.Equal(KrpcMessageType.Response, reply.Type);
        Assert.Equal(new byte[] { 0xbe, 0xef }, reply.TransactionId.ToArray());
        Assert.Equal(node.Id, reply.Id);
        Assert.Equal(peer.EndPoint, reply.ExternalAddress);
        Assert.Contains(node.RoutingTableNodes(), n => n.Id == peer.Id);
    }

    [Fact]
    public async Task Find_node_returns_the_closest_known_nodes()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var others = Enumerable.Range(0, 20).Select(_ => net.AddNode()).ToList();
        foreach (var o in others) net.Await(o.PingAsync(node.LocalEndPoint, CancellationToken.None));
        var peer = new RawPeer(net);
        var target = others[5].Id;
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.FindNode, 1, target);
        net.Scheduler.RunUntilIdle();
        var reply = Assert.Single(peer.Replies());
        var nodes = KrpcCodec.ReadCompactNodes(reply.Nodes.Span, System.Net.Sockets.AddressFamily.InterNetwork);
        Assert.Equal(8, nodes.Count);
        Assert.Equal(target, nodes[0].Id);
        var expected = node.RoutingTableNodes().OrderBy(n => n.Id ^ target).Take(8).Select(n => n.Id);
        Assert.Equal(expected, nodes.Select(n => n.Id));
    }

    [Theory]
    [InlineData(KrpcMethod.FindNode, true)]
    [InlineData(KrpcMethod.GetPeers, true)]
    [InlineData(KrpcMethod.Ping, false)]
    public async Task A_node_without_good_nodes_still_sends_the_nodes_key_where_BEP5_requires_it(KrpcMethod method, bool hasNodesKey)
    {
        // BEP 5: a find_node reply is {"id", "nodes"}; a get_peers reply without values carries "nodes". With an empty
        // table (the querier has not answered yet, so it is not handed out) the key is there with an empty string.
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var peer = new RawPeer(net);
        peer.SendQuery(node.LocalEndPoint, method, 7, InfoHash);
        net.Scheduler.RunUntilIdle();
        // The node also pings the new peer (a query of its own); the reply is the one datagram of type "r".
        var (data, _) = Assert.Single(peer.Received, r => r.Data.AsSpan().IndexOf("1:y1:r"u8) >= 0);
        Assert.Equal(hasNodesKey, data.AsSpan().IndexOf("5:nodes0:"u8) >= 0);
        Assert.True(Assert.Single(peer.Replies()).Nodes.IsEmpty);
    }

    [Fact]
    public async Task Announce_with_token_then_get_peers_returns_the_peer_with_implied_port()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var peer = new RawPeer(net);
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.GetPeers, 1, InfoHash);
        net.Scheduler.RunUntilIdle();
        var first = peer.Replies()[0];
        Assert.True(first.HasToken);
        Assert.Null(first.Values);
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.AnnouncePeer, 2, InfoHash, first.Token.ToArray(), port: 1, impliedPort: true);
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.GetPeers, 3, InfoHash);
        net.Scheduler.RunUntilIdle();
        var messages = peer.Replies();
        Assert.Equal(KrpcMessageType.Response, messages[1].Type);
        Assert.Equal([peer.EndPoint], messages[2].Values!); // implied_port: the UDP source port, not "port"
        Assert.Equal(1, node.Stats.StoredPeers);
    }

    [Fact]
    public async Task Announce_with_a_bad_token_gets_error_203_and_stores_nothing()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var peer = new RawPeer(net);
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.AnnouncePeer, 9, InfoHash, [1, 2, 3, 4, 5, 6, 7, 8], port: 6881);
        net.Scheduler.RunUntilIdle();
        var reply = Assert.Single(peer.Replies());
        Assert.Equal(KrpcMessageType.Error, reply.Type);
        Assert.Equal((int)KrpcErrorCode.Protocol, reply.ErrorCode);
        Assert.Equal(0, node.Stats.StoredPeers);
    }

    [Fact]
    public async Task Token_from_another_IP_is_refused()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var a = new RawPeer(net);
        var b = new RawPeer(net);
        a.SendQuery(node.LocalEndPoint, KrpcMethod.GetPeers, 1, InfoHash);
        net.Scheduler.RunUntilIdle();
        b.SendQuery(node.LocalEndPoint, KrpcMethod.AnnouncePeer, 2, InfoHash, a.Replies()[0].Token.ToArray(), port: 6881);
        net.Scheduler.RunUntilIdle();
        Assert.Equal(KrpcMessageType.Error, b.Replies()[0].Type);
    }

    [Theory]
    [InlineData(9, true)]
    [InlineData(11, false)]
    public async Task Tokens_are_accepted_for_ten_minutes(int minutes, bool accepted)
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var peer = new RawPeer(net);
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.GetPeers, 1, InfoHash);
        net.Scheduler.RunUntilIdle();
        var token = peer.Replies()[0].Token.ToArray();
        net.Time.Advance(TimeSpan.FromMinutes(minutes));
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.AnnouncePeer, 2, InfoHash, token, port: 6881);
        net.Scheduler.RunUntilIdle();
        Assert.Equal(accepted ? KrpcMessageType.Response : KrpcMessageType.Error, peer.Replies()[1].Type);
    }

    [Fact]
    public async Task Announced_peers_expire_after_30_minutes()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var peer = new RawPeer(net);
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.GetPeers, 1, InfoHash);
        net.Scheduler.RunUntilIdle();
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.AnnouncePeer, 2, InfoHash, peer.Replies()[0].Token.ToArray(), port: 6881);
        net.Scheduler.RunUntilIdle();
        net.Time.Advance(TimeSpan.FromMinutes(29));
        Assert.Equal(1, node.Stats.StoredPeers);
        net.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(0, node.Stats.StoredPeers);
        Assert.Equal(0, node.Stats.StoredInfoHashes);
    }

    [Fact]
    public async Task Unknown_method_with_target_is_answered_like_find_node_and_without_gets_204()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var peer = new RawPeer(net);
        var other = net.AddNode();
        net.Await(other.PingAsync(node.LocalEndPoint, CancellationToken.None));
        var withTarget = new List<byte>();
        withTarget.AddRange("d1:ad2:id20:abcdefghij01234567896:target20:"u8.ToArray());
        withTarget.AddRange(other.Id.ToArray());
        withTarget.AddRange("e1:q13:future_method1:t2:u11:y1:qe"u8.ToArray());
        peer.Send(withTarget.ToArray(), node.LocalEndPoint);
        peer.Send("d1:ad2:id20:abcdefghij0123456789e1:q13:future_method1:t2:u21:y1:qe"u8, node.LocalEndPoint);
        net.Scheduler.RunUntilIdle();
        var messages = peer.Replies();
        Assert.Equal(KrpcMessageType.Response, messages[0].Type);
        Assert.Equal(other.Id, KrpcCodec.ReadCompactNodes(messages[0].Nodes.Span, System.Net.Sockets.AddressFamily.InterNetwork)[0].Id);
        Assert.Equal(KrpcMessageType.Error, messages[1].Type);
        Assert.Equal((int)KrpcErrorCode.MethodUnknown, messages[1].ErrorCode);
    }

    [Fact]
    public async Task Malformed_datagrams_are_counted_answered_203_only_with_a_transaction_id()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var peer = new RawPeer(net);
        peer.Send("garbage"u8, node.LocalEndPoint);
        peer.Send("d1:ad2:id3:abce1:q4:ping1:t2:xy1:y1:qe"u8, node.LocalEndPoint);
        peer.Send("d1:rd2:id3:abce1:t2:xz1:y1:re"u8, node.LocalEndPoint); // a bad *response*: never answered
        net.Scheduler.RunUntilIdle();
        var reply = Assert.Single(peer.Replies());
        Assert.Equal((int)KrpcErrorCode.Protocol, reply.ErrorCode);
        Assert.Equal("xy"u8.ToArray(), reply.TransactionId.ToArray());
        Assert.Equal(3, node.Stats.MalformedDropped);
    }

    [Fact]
    public async Task Read_only_queriers_are_answered_but_not_added()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var peer = new RawPeer(net);
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.Ping, 1, readOnly: true);
        net.Scheduler.RunUntilIdle();
        Assert.Single(peer.Replies());
        Assert.Empty(node.RoutingTableNodes());
    }

    [Fact]
    public async Task Per_IP_rate_limit_drops_excess_queries_and_refills_over_time()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode(new DhtOptions { RandomSeed = 1, MaxQueriesPerIpPerSecond = 10, RateLimitBurst = 20 });
        var peer = new RawPeer(net);
        var polite = new RawPeer(net);
        for (var i = 0; i < 50; i++) peer.SendQuery(node.LocalEndPoint, KrpcMethod.Ping, (ushort)i);
        polite.SendQuery(node.LocalEndPoint, KrpcMethod.Ping, 1);
        net.Scheduler.RunUntilIdle();
        Assert.Equal(20, peer.Replies().Count);
        Assert.Single(polite.Replies()); // other IPs are unaffected
        Assert.Equal(30, node.Stats.RateLimitedDropped);
        net.Time.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < 50; i++) peer.SendQuery(node.LocalEndPoint, KrpcMethod.Ping, (ushort)i);
        net.Scheduler.RunUntilIdle();
        Assert.Equal(30, peer.Replies().Count); // 10 more tokens after one second
    }
}
