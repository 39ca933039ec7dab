using System.Net;
using BenchmarkDotNet.Attributes;
using Peerway.Core;
using Peerway.Dht;

namespace Peerway.Benchmarks;

/// <summary>KRPC (BEP 5) codec hot paths. Goal: decoding a get_peers query allocates nothing beyond the message.</summary>
[MemoryDiagnoser]
public class KrpcBenchmarks
{
    private readonly byte[] _buffer = new byte[KrpcCodec.MaxDatagramLength];
    private readonly KrpcMessage _reused = new();
    private byte[] _ping = [];
    private byte[] _getPeers = [];
    private byte[] _getPeersResponse = [];
    private KrpcMessage _pingMessage = new();
    private KrpcMessage _getPeersMessage = new();
    private KrpcMessage _responseMessage = new();

    [GlobalSetup]
    public void Setup()
    {
        _ping = "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:v4:LT\u0001\u00021:y1:qe"u8.ToArray();
        _getPeers = "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:v4:LT\u0001\u00021:y1:qe"u8.ToArray();
        var response = new KrpcMessage { Type = KrpcMessageType.Response, Id = NodeId.Sha1("me"u8), ExternalAddress = new IPEndPoint(IPAddress.Parse("203.0.113.5"), 51413) };
        response.SetTransactionId("aa"u8);
        response.SetVersion("PW\0\u0001"u8);
        response.SetToken([1, 2, 3, 4, 5, 6, 7, 8]);
        response.Nodes = KrpcCodec.WriteCompactNodes(
            Enumerable.Range(1, 8).Select(i => new NodeContact(NodeId.Sha1([(byte)i]), new IPEndPoint(IPAddress.Parse($"198.51.100.{i}"), 6881))),
            System.Net.Sockets.AddressFamily.InterNetwork);
        _getPeersResponse = _buffer.AsSpan(0, KrpcCodec.Encode(response, _buffer)).ToArray();
        KrpcCodec.TryDecode(_ping, out _pingMessage, out _);
        KrpcCodec.TryDecode(_getPeers, out _getPeersMessage, out _);
        _responseMessage = response;
    }

    [Benchmark(Description = "decode ping query (new message)")]
    public KrpcMessage DecodePing() => KrpcCodec.TryDecode(_ping, out var m, out _) ? m : m;

    [Benchmark(Description = "decode get_peers query (new message)")]
    public KrpcMessage DecodeGetPeers() => KrpcCodec.TryDecode(_getPeers, out var m, out _) ? m : m;

    [Benchmark(Description = "decode get_peers query (reused message)")]
    public KrpcError DecodeGetPeersReused() => KrpcCodec.Decode(_getPeers, _reused);

    [Benchmark(Description = "decode get_peers response, 8 nodes")]
    public KrpcError DecodeGetPeersResponse() => KrpcCodec.Decode(_getPeersResponse, _reused);

    [Benchmark(Description = "encode ping query")]
    public int EncodePing() => KrpcCodec.Encode(_pingMessage, _buffer);

    [Benchmark(Description = "encode get_peers query")]
    public int EncodeGetPeers() => KrpcCodec.Encode(_getPeersMessage, _buffer);

    [Benchmark(Description = "encode get_peers response, 8 nodes")]
    public int EncodeGetPeersResponse() => KrpcCodec.Encode(_responseMessage, _buffer);
}

/// <summary>
/// One DhtNode answering queries end to end (decode, rate limit, routing-table update, token, encode, send) over an
/// in-memory socket that discards replies: the library-level ceiling of queries answered per second.
/// </summary>
[MemoryDiagnoser]
public class DhtServeBenchmarks
{
    private readonly CapturingSocket _socket = new();
    private DhtNode? _node;
    private byte[] _ping = [];
    private byte[] _getPeers = [];
    private readonly IPEndPoint _from = new(IPAddress.Parse("198.51.100.7"), 6881);

    [GlobalSetup]
    public void Setup()
    {
        _node = new DhtNode(_socket, TimeProvider.System, new DhtOptions { RandomSeed = 1, MaxQueriesPerIpPerSecond = 1e12, RateLimitBurst = int.MaxValue });
        _node.Start();
        // A populated routing table (200 queriers) so find_node/get_peers replies carry 8 nodes.
        var random = new Random(1);
        for (var i = 0; i < 200; i++)
        {
            var q = new KrpcMessage { Type = KrpcMessageType.Query, Method = KrpcMethod.Ping, Id = NodeId.Random(random) };
            q.SetTransactionId([1, 2]);
            var buffer = new byte[256];
            var from = new IPEndPoint(new IPAddress([203, 0, (byte)(i >> 8), (byte)i]), 6881);
            _socket.Capture = true;
            _socket.Deliver(buffer.AsSpan(0, KrpcCodec.Encode(q, buffer)), from);
            _socket.Capture = false;
            // The node pings each new querier (BEP 5: only good nodes are handed out); answer so it becomes good.
            foreach (var sent in _socket.Captured)
            {
                if (!KrpcCodec.TryDecode(sent, out var ping, out _) || ping.Type != KrpcMessageType.Query) continue;
                var r = new KrpcMessage { Type = KrpcMessageType.Response, Id = q.Id };
                r.SetTransactionId(ping.TransactionId);
                _socket.Deliver(buffer.AsSpan(0, KrpcCodec.Encode(r, buffer)), from);
            }

            _socket.Captured.Clear();
        }

        _ping = "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"u8.ToArray();
        _getPeers = "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe"u8.ToArray();
    }

    [GlobalCleanup]
    public async Task CleanupAsync() => await _node!.DisposeAsync();

    [Benchmark(Description = "answer ping")]
    public int AnswerPing()
    {
        _socket.Deliver(_ping, _from);
        return _socket.LastLength;
    }

    [Benchmark(Description = "answer get_peers (8 nodes + token)")]
    public int AnswerGetPeers()
    {
        _socket.Deliver(_getPeers, _from);
        return _socket.LastLength;
    }

    private sealed class CapturingSocket : Peerway.Net.IDatagramSocket
    {
        private Peerway.Net.DatagramHandler? _handler;

        public IPEndPoint LocalEndPoint { get; } = new(IPAddress.Parse("192.0.2.1"), 6881);

        public int LastLength { get; private set; }

        public void Start(Peerway.Net.DatagramHandler handler) => _handler = handler;

        public bool Capture { get; set; }

        public List<byte[]> Captured { get; } = [];

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
            LastLength = datagram.Length;
            if (Capture) Captured.Add(datagram.ToArray());
        }

        public void Deliver(ReadOnlySpan<byte> datagram, IPEndPoint from) => _handler!(datagram, from);

        public void Dispose()
        {
        }
    }
}
