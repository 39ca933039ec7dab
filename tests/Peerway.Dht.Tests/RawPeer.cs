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

    /// <summary>BEP 44: a write token from <paramref name="node"/> (a get for <paramref name="target"/>).</summary>
    public byte[] GetToken(DhtTestNetwork net, DhtNode node, NodeId target)
    {
        var reply = Get(net, node, target);
        Assert.True(reply.HasToken);
        return reply.Token.ToArray();
    }

    /// <summary>BEP 44: whether <paramref name="node"/> answers a get for <paramref name="target"/> with a value.</summary>
    public bool HasItem(DhtTestNetwork net, DhtNode node, NodeId target) => Get(net, node, target).HasItemValue;

    private KrpcMessage Get(DhtTestNetwork net, DhtNode node, NodeId target)
    {
        Received.Clear();
        var m = new KrpcMessage { Type = KrpcMessageType.Query, Method = KrpcMethod.Get, Id = Id, Target = target };
        m.SetTransactionId("gt"u8);
        var buffer = new byte[1500];
        Send(buffer.AsSpan(0, KrpcCodec.Encode(m, buffer)), node.LocalEndPoint);
        net.Scheduler.RunUntilIdle();
        var reply = Replies().Single(r => r.TransactionId.SequenceEqual("gt"u8));
        Received.Clear();
        return reply;
    }

    /// <summary>BEP 44 put of <paramref name="item"/>, with fields optionally replaced (to forge bad puts).</summary>
    public void SendPut(IPEndPoint to, byte[] token, DhtItem item, long? cas, byte[]? salt, byte[]? signature)
    {
        var m = new KrpcMessage { Type = KrpcMessageType.Query, Method = KrpcMethod.Put, Id = Id, ItemValue = item.Value, HasItemValue = true, ItemCas = cas };
        m.SetTransactionId("pt"u8);
        m.SetToken(token);
        if (item.IsMutable) (m.ItemKey, m.ItemSignature, m.ItemSalt, m.ItemSeq) = (item.PublicKey, signature ?? item.Signature, salt ?? item.Salt, item.Sequence);
        var buffer = new byte[4096];
        var n = KrpcCodec.Encode(m, buffer);
        Assert.True(n > 0);
        Send(buffer.AsSpan(0, n), to);
    }

    /// <summary>Answers every BEP 44 get received so far with <paramref name="mutable"/> (mutable targets) or
    /// <paramref name="immutableValue"/> (others), whatever they ask — a lying node.</summary>
    public int AnswerGets(DhtItem mutable, byte[] immutableValue)
    {
        var answered = 0;
        foreach (var (data, from) in Received.ToList())
        {
            if (!KrpcCodec.TryDecode(data, out var q, out _) || q.Type != KrpcMessageType.Query || q.Method != KrpcMethod.Get) continue;
            var r = new KrpcMessage { Type = KrpcMessageType.Response, Id = Id, ItemValue = q.Target == mutable.Target ? mutable.Value : immutableValue, HasItemValue = true };
            if (q.Target == mutable.Target) (r.ItemKey, r.ItemSignature, r.ItemSeq) = (mutable.PublicKey, mutable.Signature, mutable.Sequence);
            r.SetTransactionId(q.TransactionId);
            r.SetToken("t"u8);
            var buffer = new byte[2048];
            Send(buffer.AsSpan(0, KrpcCodec.Encode(r, buffer)), from);
            answered++;
        }

        Received.Clear();
        return answered;
    }
}
