using System.Net;
using Peerway.Core;

namespace Peerway.Dht.Tests;

/// <summary>Issue 20 §5: a stranger gets nothing for garbage, and a bounded reply for get_peers.</summary>
public sealed class AmplificationTests
{
    private static readonly NodeId InfoHash = NodeId.Sha1("amplification"u8);

    [Fact]
    public async Task Garbage_gets_nothing_and_only_a_parseable_query_gets_error_203()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var peer = new RawPeer(net);
        peer.Send("d1:t1:ae"u8, node.LocalEndPoint);                           // 8 bytes: a "t" but no "y" (63 bytes back before)
        peer.Send("d1:t2:xx1:y1:ee"u8, node.LocalEndPoint);                    // an unsolicited error with no "e"
        peer.Send("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y"u8, node.LocalEndPoint); // truncated
        peer.Send("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:ab1:y1:qeX"u8, node.LocalEndPoint); // trailing byte
        peer.Send("l1:t2:aae"u8, node.LocalEndPoint);                           // not a dictionary
        peer.Send([0x01, 0x00, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42], node.LocalEndPoint); // a STUN header
        peer.Send("d1:q4:ping1:t2:zz1:y1:qe"u8, node.LocalEndPoint);            // a query without "a": BEP 5 error 203
        net.Scheduler.RunUntilIdle();

        var reply = Assert.Single(peer.Replies());
        Assert.Equal(KrpcMessageType.Error, reply.Type);
        Assert.Equal((int)KrpcErrorCode.Protocol, reply.ErrorCode);
        Assert.Equal("zz"u8.ToArray(), reply.TransactionId.ToArray());
        Assert.Equal(7, node.Stats.MalformedDropped);
    }

    [Theory]
    [InlineData("10.0.0.1", "10.1.{0}.{1}")]
    [InlineData("2001:db8::1", "2001:db8::1:{0}:{1}")]
    public async Task Get_peers_reply_to_a_stranger_fits_the_budget_however_many_peers_are_stored(string nodeIp, string peerPattern)
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode(endPoint: new IPEndPoint(IPAddress.Parse(nodeIp), 6881));
        // 300 peers from 300 addresses announce (each within its own rate limit) and answer the node's pings, so the
        // reply also carries the 8 closest good nodes: the largest reply a get_peers can draw.
        for (var i = 0; i < 300; i++)
        {
            var ip = IPAddress.Parse(string.Format(System.Globalization.CultureInfo.InvariantCulture, peerPattern, i / 200, (i % 200) + 1));
            var announcer = new RawPeer(net, new IPEndPoint(ip, 7000), NodeId.Random(new Random(i)));
            announcer.SendQuery(node.LocalEndPoint, KrpcMethod.GetPeers, 1, InfoHash);
            net.Scheduler.RunUntilIdle();
            var token = announcer.Replies()[0].Token.ToArray();
            announcer.SendQuery(node.LocalEndPoint, KrpcMethod.AnnouncePeer, 2, InfoHash, token, port: 6000 + i);
            net.Scheduler.RunUntilIdle();
            var handled = 0;
            announcer.AnswerQueries(ref handled);
            net.Scheduler.RunUntilIdle();
        }

        Assert.Equal(300, node.Stats.StoredPeers);
        var strangerIp = IPAddress.Parse(string.Format(System.Globalization.CultureInfo.InvariantCulture, peerPattern, 9, 9));
        var stranger = new RawPeer(net, new IPEndPoint(strangerIp, 7000));
        stranger.SendQuery(node.LocalEndPoint, KrpcMethod.GetPeers, 3, InfoHash);
        net.Scheduler.RunUntilIdle();

        var (data, _) = Assert.Single(stranger.Received, r => r.Data.AsSpan().IndexOf("1:y1:r"u8) >= 0);
        Assert.InRange(data.Length, 1, DhtNode.MaxGetPeersReplyBytes);
        Assert.True(KrpcCodec.TryDecode(data, out var reply, out var error), error.ToString());
        // Still useful: the closest nodes and as many peers as fit (a few dozen), not an empty list.
        Assert.Equal(8 * (IPAddress.Parse(nodeIp).AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? KrpcCodec.CompactNodeLength : KrpcCodec.CompactNode6Length),
            reply.Nodes.Length + reply.Nodes6.Length);
        Assert.InRange(reply.Values!.Count, 25, DhtNode.MaxValuesPerReply);
        // One value more would not have fitted.
        var each = strangerIp.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 8 : 21;
        Assert.True(data.Length + each > DhtNode.MaxGetPeersReplyBytes, $"{data.Length} bytes with {reply.Values.Count} values");
    }
}
