using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using Peerway.Core;
using Peerway.Dht;
using Peerway.Nat.Stun;
using Peerway.Nat.Turn;
using Peerway.Net;
using Peerway.Torrent.Trackers;

namespace Peerway.Node.Tests;

/// <summary>
/// Issue 20 §5: no UDP server of Peerway (DHT, STUN, TURN's UDP listener, BEP 15 tracker) sends a stranger more bytes than
/// it receives from it. One source floods each server, with its default options, at 1,000 datagrams per (fake) second:
/// first garbage, which must draw nothing at all, then valid but unsolicited requests, which must draw no more bytes
/// than they carry. Bytes are counted at the server's socket, so nothing is lost in a kernel buffer.
/// </summary>
public sealed class UdpAmplificationTests
{
    private const int FloodSize = 5_000;
    private static readonly IPEndPoint Server = new(IPAddress.Parse("198.51.100.1"), 3478);
    private static readonly IPEndPoint Attacker = new(IPAddress.Parse("203.0.113.7"), 40_000);

    public static TheoryData<string> Servers() => ["dht", "stun", "turn", "udp-tracker"];

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task Garbage_from_one_source_draws_no_answer(string server)
    {
        await using var world = await FloodedServer.StartAsync(server);
        var random = new Random(20);
        for (var i = 0; i < FloodSize; i++) world.Deliver(Garbage(random, i));

        Assert.True(world.Socket.BytesIn > 0);
        Assert.Equal(0, world.Socket.BytesOut);
    }

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task Valid_unsolicited_requests_from_one_source_draw_no_more_bytes_than_they_carry(string server)
    {
        await using var world = await FloodedServer.StartAsync(server);
        var requests = ValidRequests(server);
        for (var i = 0; i < FloodSize; i++) world.Deliver(requests[i % requests.Count]);

        Assert.True(world.Socket.DatagramsOut > 0, "the server answers valid requests at all");
        var ratio = (double)world.Socket.BytesOut / world.Socket.BytesIn;
        Assert.True(ratio <= 1.0, $"{server}: {world.Socket.BytesOut} bytes out for {world.Socket.BytesIn} in (x{ratio:F2})");
    }

    /// <summary>Random bytes, and near-misses of each protocol: a KRPC dictionary without "y", truncated or unsolicited
    /// STUN, a ChannelData frame without a channel, a BEP 15 header with a wrong magic.</summary>
    private static byte[] Garbage(Random random, int i)
    {
        switch (i % 6)
        {
            case 0:
                return "d1:t1:ae"u8.ToArray();
            case 1:
            {
                var b = new byte[random.Next(1, 200)];
                random.NextBytes(b);
                b[0] &= 0x3F; // not ChannelData either
                return b;
            }

            case 2:
                return Stun(StunMethod.Binding, StunClass.SuccessResponse)[..random.Next(1, 20)];
            case 3:
                return Stun(StunMethod.Binding, StunClass.SuccessResponse); // a response nobody asked for
            case 4:
                return [0x40, 0x01, 0x00, 0x04, 1, 2, 3, 4];
            default:
            {
                var b = new byte[16];
                BinaryPrimitives.WriteInt64BigEndian(b, 0x41727101980 + 1);
                return b;
            }
        }
    }

    private static List<byte[]> ValidRequests(string server)
    {
        var random = new Random(5);
        switch (server)
        {
            case "dht":
            {
                var id = NodeId.Random(random);
                byte[] Query(KrpcMethod method, Action<KrpcMessage>? set = null)
                {
                    var m = new KrpcMessage { Type = KrpcMessageType.Query, Method = method, Id = id };
                    m.SetTransactionId([1, 2]);
                    set?.Invoke(m);
                    var buffer = new byte[512];
                    return buffer[..KrpcCodec.Encode(m, buffer)];
                }

                return
                [
                    Query(KrpcMethod.Ping),
                    Query(KrpcMethod.FindNode, m => m.Target = NodeId.Random(random)),
                    Query(KrpcMethod.GetPeers, m => m.InfoHash = NodeId.Random(random)),
                    Query(KrpcMethod.AnnouncePeer, m =>
                    {
                        m.InfoHash = NodeId.Random(random);
                        m.Port = 6881;
                        m.SetToken([1, 2, 3, 4]); // a token we were never given
                    }),
                    "d1:q4:ping1:t2:aa1:y1:qe"u8.ToArray(), // parseable, without "a": error 203
                ];
            }

            case "stun":
            case "turn":
                return
                [
                    Stun(StunMethod.Binding, StunClass.Request),
                    Stun(StunMethod.Binding, StunClass.Request, fingerprint: true),
                    Stun(StunMethod.Allocate, StunClass.Request, requestedTransport: true), // TURN: 401 challenge
                    Stun(StunMethod.Refresh, StunClass.Request),
                ];
            default:
            {
                var connect = new byte[16];
                UdpTrackerCodec.WriteConnect(connect, 7);
                var announce = new byte[98];
                var request = new AnnounceRequest(NodeId.Random(random), NodeId.Random(random), 6881, 0, 0, 1000, AnnounceEvent.Started);
                UdpTrackerCodec.WriteAnnounce(announce, connectionId: 12345, transactionId: 8, request, key: 1); // a made-up connection id
                return [connect, announce];
            }
        }
    }

    private static byte[] Stun(StunMethod method, StunClass cls, bool fingerprint = false, bool requestedTransport = false)
    {
        var buffer = new byte[128];
        var w = new StunWriter(buffer, method, cls, StunClient.NewTransactionId());
        if (requestedTransport) w.AddUInt32(StunAttributeType.RequestedTransport, 17u << 24);
        if (fingerprint) w.AddFingerprint();
        return buffer[..w.Length];
    }

    /// <summary>A server engine on a <see cref="CountingSocket"/>, flooded synchronously with fake time.</summary>
    private sealed class FloodedServer : IAsyncDisposable
    {
        private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 6, 0, 0, 0, TimeSpan.Zero));
        private IAsyncDisposable? _async;
        private IDisposable? _sync;

        public CountingSocket Socket { get; } = new(Server);

        public static Task<FloodedServer> StartAsync(string server)
        {
            var world = new FloodedServer();
            switch (server)
            {
                case "dht":
                    var node = new DhtNode(world.Socket, world._time, new DhtOptions { RandomSeed = 1 });
                    node.Start();
                    world._async = node;
                    break;
                case "stun":
                    var stun = new StunServer([world.Socket], new StunServerOptions(), time: world._time);
                    stun.Start();
                    world._sync = stun;
                    break;
                case "turn":
                    var turn = new TurnServer([world.Socket], new NoRelays(), world._time, new TurnServerOptions { Users = new Dictionary<string, string> { ["alice"] = "secret" } });
                    turn.Start();
                    world._sync = turn;
                    break;
                default:
                    var tracker = new TrackerServer(new TrackerServerOptions(), world._time);
                    tracker.StartUdp(world.Socket);
                    world._async = tracker;
                    break;
            }

            return Task.FromResult(world);
        }

        /// <summary>One datagram from the attacker; 1 ms of fake time passes per datagram (1,000 per second).</summary>
        public void Deliver(byte[] datagram)
        {
            Socket.Deliver(datagram, Attacker);
            _time.Advance(TimeSpan.FromMilliseconds(1));
        }

        public async ValueTask DisposeAsync()
        {
            _sync?.Dispose();
            if (_async is not null) await _async.DisposeAsync();
        }
    }

    private sealed class NoRelays : IRelaySocketFactory
    {
        public bool Supports(AddressFamily family) => family == AddressFamily.InterNetwork;

        public IDatagramSocket? TryCreate(AddressFamily family) => null;
    }

    /// <summary>Delivers datagrams synchronously to the server and counts bytes each way.</summary>
    private sealed class CountingSocket(IPEndPoint local) : IDatagramSocket
    {
        private DatagramHandler? _handler;

        public IPEndPoint LocalEndPoint => local;

        public long BytesIn { get; private set; }

        public long BytesOut { get; private set; }

        public long DatagramsOut { get; private set; }

        public void Start(DatagramHandler handler) => _handler = handler;

        public void Deliver(byte[] datagram, IPEndPoint from)
        {
            BytesIn += datagram.Length;
            _handler!(datagram, from);
        }

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
            BytesOut += datagram.Length;
            DatagramsOut++;
        }

        public void Dispose()
        {
        }
    }
}
