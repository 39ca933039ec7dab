using System.Net;
using System.Net.Sockets;
using Peerway.Core;
using Peerway.Dht;

namespace Peerway.Simulation.Tests;

public sealed class AdversaryTests
{
    private static readonly NodeId AccompliceId = NodeId.Random(new Random(5));

    private static (SimulationScheduler S, SimulationSocket Client, List<KrpcMessage> Replies, AdversaryNode Liar) Setup(AdversaryBehavior behavior)
    {
        var s = new SimulationScheduler(1);
        var net = new SimulationNetwork(s);
        var client = net.CreateSocket();
        var replies = new List<KrpcMessage>();
        client.Start((d, _) =>
        {
            Assert.True(KrpcCodec.TryDecode(d, out var m, out var e), e.ToString());
            replies.Add(m);
        });
        var accomplice = net.CreateSocket();
        var liar = new AdversaryNode(net.CreateSocket(), NodeId.Random(new Random(2)), behavior,
            (_, n) => Enumerable.Repeat(new NodeContact(AccompliceId, accomplice.LocalEndPoint), n), new Random(3));
        liar.Start();
        return (s, client, replies, liar);
    }

    private static void Query(SimulationSocket client, IPEndPoint to, KrpcMethod method, NodeId target)
    {
        var q = new KrpcMessage { Type = KrpcMessageType.Query, Method = method, Id = NodeId.Random(new Random(4)) };
        q.SetMethodName(KrpcMessage.NameOf(method));
        q.SetTransactionId("tx"u8);
        if (method == KrpcMethod.FindNode) q.Target = target;
        if (method == KrpcMethod.GetPeers) q.InfoHash = target;
        var buffer = new byte[1500];
        var n = KrpcCodec.Encode(q, buffer);
        Assert.True(n > 0);
        client.Send(buffer.AsSpan(0, n), to);
    }

    [Fact]
    public void Liar_returns_only_attackers_some_with_fake_ids_next_to_the_target()
    {
        var (s, client, replies, liar) = Setup(AdversaryBehavior.Lie);
        var target = NodeId.Random(new Random(9));
        Query(client, liar.EndPoint, KrpcMethod.FindNode, target);
        Query(client, liar.EndPoint, KrpcMethod.GetPeers, target);
        s.RunFor(TimeSpan.FromSeconds(2));
        Assert.Equal(2, replies.Count);
        foreach (var reply in replies)
        {
            Assert.Equal(KrpcMessageType.Response, reply.Type);
            Assert.Equal(liar.Id, reply.Id);
            var nodes = KrpcCodec.ReadCompactNodes(reply.Nodes.Span, AddressFamily.InterNetwork);
            Assert.Equal(8, nodes.Count);
            // Two fakes: only the last 16 bits differ from the target, a distance no random honest id reaches.
            Assert.All(nodes.Take(2), n => Assert.True(n.Id.CommonPrefixLength(target) >= 144));
            Assert.All(nodes.Take(2), n => Assert.Equal(liar.EndPoint, n.EndPoint));
            Assert.All(nodes.Skip(2), n => Assert.Equal(AccompliceId, n.Id));
            Assert.All(nodes, n => Assert.NotEqual(client.LocalEndPoint, n.EndPoint));
        }

        Assert.NotNull(replies[1].Values);
        Assert.All(replies[1].Values!, p => Assert.Equal(203, p.Address.GetAddressBytes()[0]));
    }

    [Fact]
    public void Dropper_answers_pings_only()
    {
        var (s, client, replies, dropper) = Setup(AdversaryBehavior.Drop);
        Query(client, dropper.EndPoint, KrpcMethod.FindNode, NodeId.Random(new Random(9)));
        Query(client, dropper.EndPoint, KrpcMethod.Ping, default);
        s.RunFor(TimeSpan.FromSeconds(2));
        var reply = Assert.Single(replies);
        Assert.Equal(dropper.Id, reply.Id);
        Assert.Equal(1, dropper.QueriesDropped);
    }
}
