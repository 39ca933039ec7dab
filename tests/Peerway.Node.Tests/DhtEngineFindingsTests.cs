using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;
using Peerway.Dht;

namespace Peerway.Node.Tests;

/// <summary>
/// Behaviour of the DHT engine observed from the host side (over real loopback UDP). Found while building the CLI: a
/// short-lived client (`peerway dht get-peers`) that only *queried* a node is handed out by that node in find_node and
/// get_peers replies after it has exited, so later lookups wait a query timeout on it.
/// </summary>
public sealed class DhtEngineFindingsTests
{
    [Fact]
    public async Task A_node_that_only_queried_us_is_not_handed_out_in_find_node_replies()
    {
        await using var a = DhtHost.Start(
            new DhtHostOptions { Bind = new IPEndPoint(IPAddress.Loopback, 0), Dht = new DhtOptions() }, NullLoggerFactory.Instance);
        var client = NodeId.Random();

        // A client pings A (so A hears of it) and never answers anything: it is not a good node (BEP 5).
        using var clientSocket = Bind();
        await QueryAsync(clientSocket, a.LocalEndPoint, KrpcMethod.Ping, client, target: null);

        // Another node asks A for the nodes closest to the client's id.
        using var asker = Bind();
        var reply = await QueryAsync(asker, a.LocalEndPoint, KrpcMethod.FindNode, NodeId.Random(), target: client);

        var nodes = KrpcCodec.ReadCompactNodes(reply.Nodes.Span, AddressFamily.InterNetwork);
        Assert.DoesNotContain(nodes, n => n.Id == client);
    }

    private static Socket Bind()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return s;
    }

    private static async Task<KrpcMessage> QueryAsync(Socket socket, IPEndPoint to, KrpcMethod method, NodeId id, NodeId? target)
    {
        var query = new KrpcMessage { Type = KrpcMessageType.Query, Method = method, Id = id, Target = target };
        query.SetTransactionId([0x42, 0x01]);
        var buffer = new byte[1500];
        var length = KrpcCodec.Encode(query, buffer);
        await socket.SendToAsync(buffer.AsMemory(0, length), SocketFlags.None, to);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var r = await socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cts.Token);
        Assert.True(KrpcCodec.TryDecode(buffer.AsSpan(0, r.ReceivedBytes), out var reply, out var error), error.ToString());
        Assert.Equal(KrpcMessageType.Response, reply.Type);
        return reply;
    }
}
