using Peerway.Core;

namespace Peerway.Dht.Tests;

/// <summary>BEP 43 read-only nodes, seen from both sides.</summary>
public sealed class ReadOnlyNodeTests
{
    [Fact]
    public async Task A_read_only_node_marks_its_queries_ro_and_answers_no_query()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode(new DhtOptions { RandomSeed = 7, ReadOnly = true });
        var peer = new RawPeer(net);

        // Its own queries carry "ro": 1 ...
        var ping = node.PingAsync(peer.EndPoint, CancellationToken.None);
        net.Scheduler.RunUntilIdle();
        var query = Assert.Single(peer.Messages());
        Assert.Equal(KrpcMessageType.Query, query.Type);
        Assert.True(query.ReadOnly);
        var handled = 0;
        Assert.Equal(1, peer.AnswerQueries(ref handled));
        Assert.Equal(peer.Id, net.Await(ping));

        // ... and no query gets an answer, not even a malformed one (which a normal node answers with error 203).
        peer.Received.Clear();
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.Ping, 1);
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.FindNode, 2, NodeId.Random());
        peer.SendQuery(node.LocalEndPoint, KrpcMethod.GetPeers, 3, NodeId.Random());
        peer.Send("d1:t2:xy1:y1:q1:q4:pinge"u8, node.LocalEndPoint);
        net.Scheduler.RunUntilIdle();
        Assert.Empty(peer.Received);
        Assert.Equal(3, node.Stats.QueriesReceived);
    }

    [Fact]
    public async Task A_read_only_node_looks_up_and_announces_without_entering_any_routing_table()
    {
        await using var net = new DhtTestNetwork();
        var nodes = Enumerable.Range(0, 30).Select(_ => net.AddNode()).ToList();
        foreach (var n in nodes.Skip(1)) net.Await(n.BootstrapAsync([nodes[0].LocalEndPoint], CancellationToken.None));
        var client = net.AddNode(new DhtOptions { RandomSeed = 99, ReadOnly = true });
        Assert.True(net.Await(client.BootstrapAsync([nodes[0].LocalEndPoint], CancellationToken.None)) > 0);

        var infoHash = NodeId.Random(new Random(5));
        var announced = net.Await(client.AnnounceAsync(infoHash, 6881, impliedPort: false, CancellationToken.None));
        Assert.True(announced.AnnouncedTo > 0);
        var found = net.Await(nodes[3].GetPeersAsync(infoHash, CancellationToken.None));
        Assert.Contains(found.Peers, p => p.Port == 6881 && p.Address.Equals(client.LocalEndPoint.Address));

        // The client learned the network, but no node ever added it (nor pinged it).
        Assert.NotEmpty(client.RoutingTableNodes());
        Assert.All(nodes, n => Assert.DoesNotContain(n.RoutingTableNodes(), c => c.Id == client.Id || c.EndPoint.Equals(client.LocalEndPoint)));
        Assert.Equal(0, client.Stats.QueriesReceived);
    }
}
