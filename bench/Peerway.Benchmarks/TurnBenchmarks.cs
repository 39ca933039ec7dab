using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Peerway.Nat.Stun;
using Peerway.Nat.Turn;
using Peerway.Net;

namespace Peerway.Benchmarks;

/// <summary>
/// CPU and memory of 1,000 authenticated TURN allocations (Allocate with long-term credentials, relay socket creation,
/// response with MESSAGE-INTEGRITY), driven synchronously through the server's listener with in-memory sockets.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, iterationCount: 5, warmupCount: 1, invocationCount: 1)]
public class TurnBenchmarks
{
    private const int Allocations = 1000;
    private TurnServer _server = null!;
    private Listener _listener = null!;
    private byte[][] _requests = [];
    private IPEndPoint[] _clients = [];

    [IterationSetup]
    public void Setup()
    {
        _listener = new Listener();
        _server = new TurnServer([_listener], new Relays(), TimeProvider.System, new TurnServerOptions
        {
            Realm = "bench",
            Users = new Dictionary<string, string> { ["u"] = "p" },
            UserQuota = Allocations,
        });
        _server.Start();
        var key = StunAttributes.LongTermKey("u", "bench", "p");
        _clients = [.. Enumerable.Range(0, Allocations).Select(i => new IPEndPoint(IPAddress.Parse("192.0.2.1"), 10_000 + i))];

        // One challenge gives the nonce (per client IP).
        var probe = new byte[128];
        var w0 = new StunWriter(probe, StunMethod.Allocate, StunClass.Request, StunClient.NewTransactionId());
        w0.AddUInt32(StunAttributeType.RequestedTransport, 17u << 24);
        w0.AddUtf8(StunAttributeType.Software, "a request long enough for the challenge");
        _listener.Handler!(probe.AsSpan(0, w0.Length), _clients[0]);
        StunMessage.TryDecode(_listener.Last, out var challenge, out _);
        challenge!.TryGetText(StunAttributeType.Nonce, 763, out var nonce);

        _requests = new byte[Allocations][];
        for (var i = 0; i < Allocations; i++)
        {
            var b = new byte[256];
            var w = new StunWriter(b, StunMethod.Allocate, StunClass.Request, StunClient.NewTransactionId());
            w.AddUInt32(StunAttributeType.RequestedTransport, 17u << 24);
            w.AddUtf8(StunAttributeType.Username, "u");
            w.AddUtf8(StunAttributeType.Realm, "bench");
            w.AddUtf8(StunAttributeType.Nonce, nonce);
            w.AddMessageIntegrity(key);
            w.AddFingerprint();
            _requests[i] = b[..w.Length];
        }
    }

    [Benchmark(OperationsPerInvoke = Allocations)]
    public int Allocate()
    {
        for (var i = 0; i < Allocations; i++) _listener.Handler!(_requests[i], _clients[i]);
        return _server.AllocationCount;
    }

    [IterationCleanup]
    public void Cleanup() => _server.Dispose();

    private sealed class Listener : IDatagramSocket
    {
        public DatagramHandler? Handler { get; private set; }

        public byte[] Last { get; private set; } = [];

        public IPEndPoint LocalEndPoint { get; } = new(IPAddress.Parse("192.0.2.2"), 3478);

        public void Start(DatagramHandler handler) => Handler = handler;

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote) => Last = datagram.ToArray();

        public void Dispose()
        {
        }
    }

    private sealed class Relays : IRelaySocketFactory
    {
        private int _port = 20_000;

        public bool Supports(AddressFamily family) => family == AddressFamily.InterNetwork;

        public IDatagramSocket? TryCreate(AddressFamily family) => new RelaySocket(new IPEndPoint(IPAddress.Parse("192.0.2.2"), _port++));
    }

    private sealed class RelaySocket(IPEndPoint local) : IDatagramSocket
    {
        public IPEndPoint LocalEndPoint { get; } = local;

        public void Start(DatagramHandler handler)
        {
        }

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
        }

        public void Dispose()
        {
        }
    }
}
