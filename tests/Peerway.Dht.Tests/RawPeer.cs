using System.Net;
using Peerway.Core;
using Peerway.Net;

namespace Peerway.Dht.Tests;

/// <summary>A hand-driven KRPC endpoint on the virtual network: sends crafted datagrams, records what it receives.</summary>
internal sealed class RawPeer
{
    private readonly VirtualDatagramSocket _socket;

    public RawPeer(DhtTestNetwork net, IPEndPoint? endPoint = null, NodeId? id = null)
    {
        _socket = net.Network.CreateSocket(endPoint);
        Id = id ?? NodeId.Sha1(System.Text.Encoding.ASCII.GetBytes(_socket.LocalEndPoint.ToString()));
        _socket.Start((data, from) => Received.Add((data.ToArray(), from)));
    }

    public NodeId Id { get; }

    public IPEndPoint EndPoint => _socket.LocalEndPoint;

    public List<(byte[] Data, IPEndPoint From)> Received { get; } = [];

    /// <summary>When set, pings from the node are answered automatically.</summary>
    public bool AnswerPings { get; set; }

    public void Send(ReadOnlySpan<byte> datagram, IPEndPoint to) => _socket.Send(datagram, to);

    public void SendQuery(IPEndPoint to, KrpcMethod method, ushort tid, NodeId? target = null, byte[]? token = null, int? port = null, bool impliedPort = false, bool readOnly = false)
    {
        var m = new KrpcMessage { Type = KrpcMessageType.Query, Method = method, Id = Id, ReadOnly = readOnly, Port = port, ImpliedPort = impliedPort };
        m.SetTransactionId([(byte)(tid >> 8), (byte)tid]);
        if (method == KrpcMethod.FindNode) m.Target = target;
        else m.InfoHash = target;
        if (token is not null) m.SetToken(token);
        var buffer = new byte[1500];
        var n = KrpcCodec.Encode(m, buffer);
        Assert.True(n > 0);
        Send(buffer.AsSpan(0, n), to);
    }

    /// <summary>Decoded messages received so far.</summary>
    public List<KrpcMessage> Messages() => Received.Select(r =>
    {
        Assert.True(KrpcCodec.TryDecode(r.Data, out var m, out var e), e.ToString());
        return m;
    }).ToList();

    /// <summary>Decoded responses and errors received so far (the node's own queries, e.g. BEP 5 pings, left out).</summary>
    public List<KrpcMessage> Replies() => Messages().Where(m => m.Type != KrpcMessageType.Query).ToList();

    /// <summary>Answers every query received so far that has not been answered yet (ping/find_node: our id only).</summary>
    public int AnswerQueries(ref int handled)
    {
        var answered = 0;
        for (; handled < Received.Count; handled++)
        {
            var (data, from) = Received[handled];
            if (!KrpcCodec.TryDecode(data, out var q, out _) || q.Type != KrpcMessageType.Query) continue;
            var r = new KrpcMessage { Type = KrpcMessageType.Response, Id = Id, ExternalAddress = from };
            r.SetTransactionId(q.TransactionId);
            var buffer = new byte[1500];
            Send(buffer.AsSpan(0, KrpcCodec.Encode(r, buffer)), from);
            answered++;
        }

        return answered;
    }
}
