using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using Peerway.Nat.Turn;
using Peerway.Net;

namespace Peerway.Nat.Tests.Turn;

/// <summary>The server's ChannelData relay, both ways, allocates nothing per datagram.</summary>
public sealed class TurnRelayAllocationTests
{
    private static readonly IPAddress ServerIp = IPAddress.Parse("198.51.100.1");

    // On a thread-pool thread, away from the test runner's SynchronizationContext: under it the runtime posts a
    // completed transaction's continuations instead of running them inline, and the wire would stop being pumped.
    [Fact]
    public Task Channel_data_is_relayed_both_ways_without_allocating() => Task.Run(RelayWithoutAllocatingAsync);

    private static async Task RelayWithoutAllocatingAsync()
    {
        var time = new FakeTimeProvider();
        var wire = new HandWire();
        var listener = wire.Create(new IPEndPoint(ServerIp, 3478));
        var relays = new HandRelayFactory(wire);
        using var server = new TurnServer([listener], relays, time, new TurnServerOptions
        {
            Realm = "test",
            Users = new Dictionary<string, string> { ["alice"] = "secret" },
            AllowedPeers = [IPNetwork.Parse("203.0.113.0/24")],
        });
        server.Start();

        var peer = wire.Create(new IPEndPoint(IPAddress.Parse("203.0.113.5"), 7000));
        peer.Start((data, from) => peer.Send(data, from)); // an echo
        var echoes = 0;
        using var client = new TurnClient(wire.Create(new IPEndPoint(IPAddress.Parse("192.0.2.10"), 40000)), listener.LocalEndPoint,
            new TurnCredentials("alice", "secret"), time, (data, from) => echoes++);
        var allocated = client.AllocateAsync();
        wire.Pump();
        await allocated;
        var bound = client.BindChannelAsync(peer.LocalEndPoint);
        wire.Pump();
        await bound;

        // Only the server's own handlers are measured (its listener and relay sockets), each call on its own.
        wire.Measured = s => s == listener || relays.Created.Contains(s);
        const int Warmup = 20, Measured = 300;
        var payload = new byte[1000];
        for (var i = 0; i < Warmup + Measured; i++)
        {
            if (i == Warmup)
            {
                wire.Allocated = 0;
                wire.MeasuredCalls = 0;
            }

            client.Send(payload, peer.LocalEndPoint);
            wire.Pump();
        }

        Assert.Equal(Warmup + Measured, echoes);
        Assert.Equal(Warmup + Measured, server.Stats.RelayedToPeer);
        Assert.Equal(Warmup + Measured, server.Stats.RelayedToClient);
        Assert.Equal(2 * Measured, wire.MeasuredCalls);
        Assert.Equal(0, wire.Allocated);
    }

    private sealed class HandRelayFactory(HandWire wire) : IRelaySocketFactory
    {
        private int _next = 50_000;

        public List<HandSocket> Created { get; } = [];

        public bool Supports(AddressFamily family) => family == AddressFamily.InterNetwork;

        public IDatagramSocket? TryCreate(AddressFamily family)
        {
            var socket = wire.Create(new IPEndPoint(ServerIp, ++_next));
            Created.Add(socket);
            return socket;
        }
    }

    /// <summary>
    /// Datagrams wait in preallocated slots until the test pumps them, and are handed over one call at a time on the
    /// test's thread, so the bytes a handler allocates can be read around that call alone.
    /// </summary>
    private sealed class HandWire
    {
        private const int Slots = 64;
        private readonly Dictionary<IPEndPoint, HandSocket> _sockets = [];
        private readonly byte[][] _data = [.. Enumerable.Range(0, Slots).Select(_ => new byte[2048])];
        private readonly int[] _lengths = new int[Slots];
        private readonly IPEndPoint[] _from = new IPEndPoint[Slots];
        private readonly IPEndPoint[] _to = new IPEndPoint[Slots];
        private int _head;
        private int _count;

        public Func<HandSocket, bool> Measured { get; set; } = _ => false;

        public long Allocated { get; set; }

        public int MeasuredCalls { get; set; }

        public HandSocket Create(IPEndPoint endPoint)
        {
            var socket = new HandSocket(this, endPoint);
            _sockets.Add(endPoint, socket);
            return socket;
        }

        public void Enqueue(IPEndPoint from, ReadOnlySpan<byte> data, IPEndPoint to)
        {
            Assert.True(_count < Slots, "the wire is full");
            var slot = (_head + _count) % Slots;
            data.CopyTo(_data[slot]);
            _lengths[slot] = data.Length;
            _from[slot] = from;
            _to[slot] = to;
            _count++;
        }

        public void Pump()
        {
            while (_count > 0)
            {
                var slot = _head;
                _head = (_head + 1) % Slots;
                _count--;
                if (!_sockets.TryGetValue(_to[slot], out var target) || target.Handler is not { } handler) continue;
                var data = _data[slot].AsSpan(0, _lengths[slot]);
                if (!Measured(target))
                {
                    handler(data, _from[slot]);
                    continue;
                }

                var before = GC.GetAllocatedBytesForCurrentThread();
                handler(data, _from[slot]);
                Allocated += GC.GetAllocatedBytesForCurrentThread() - before;
                MeasuredCalls++;
            }
        }
    }

    private sealed class HandSocket(HandWire wire, IPEndPoint endPoint) : IDatagramSocket
    {
        public IPEndPoint LocalEndPoint { get; } = endPoint;

        public DatagramHandler? Handler { get; private set; }

        public void Start(DatagramHandler handler) => Handler = handler;

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote) => wire.Enqueue(LocalEndPoint, datagram, remote);

        public void Dispose() => Handler = null;
    }
}
