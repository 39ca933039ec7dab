using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Peerway.Libp2p.Yamux;
using Peerway.Net;

namespace Peerway.Libp2p.Tests;

/// <summary>
/// Issue 19 item 7: a peer that opens thousands of streams, never reads, floods streams with data nobody reads, or
/// stops reading the connection is limited and dropped alone, while another peer of the same host keeps being served.
/// Hosts over real loopback TCP; the attacker is a host whose own limits are lifted, driving its Yamux session directly.
/// </summary>
public sealed class AbuseTests
{
    private const string Echo = "/peerway/test/echo/1.0.0";
    private const string Source = "/peerway/test/source/1.0.0";
    private const string Hold = "/peerway/test/hold/1.0.0";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_peer_opening_thousands_of_streams_is_refused_past_the_limit_and_dropped_alone()
    {
        await using var world = await World.StartAsync(new Libp2pHostOptions());
        var attacker = await world.DialAsync(new Libp2pHostOptions { Yamux = new YamuxOptions { MaxStreams = 100_000 } });
        var honest = await world.DialAsync(new Libp2pHostOptions());
        await EchoAsync(honest.Connection);

        // Streams that never name a protocol: the host keeps 1,024 of them waiting, refuses the rest with RST, and
        // after 256 refusals sends go-away and closes the connection.
        try
        {
            for (var i = 0; i < 5_000; i++) await attacker.Connection.Session.OpenStreamAsync(CancellationToken.None);
        }
        catch (IOException)
        {
            // The go-away arrived: the session refuses further streams.
        }

        await attacker.Connection.Closed.WaitAsync(Bound);
        await attacker.Inbound.Closed.WaitAsync(Bound);
        Assert.DoesNotContain(world.Server.Connections, c => c.RemotePeer.Equals(attacker.Host.PeerId));

        // The other peer's connection was never touched.
        await EchoAsync(honest.Connection);
        Assert.False(honest.Connection.Closed.IsCompleted);
        Assert.Contains(world.Server.Connections, c => c.RemotePeer.Equals(honest.Host.PeerId));
    }

    [Fact]
    public async Task A_peer_that_never_reads_a_stream_holds_only_that_stream_at_its_window()
    {
        var firstHalf = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var allSent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var world = await World.StartAsync(new Libp2pHostOptions());
        world.Server.Handle(Source, async (stream, _, ct) =>
        {
            await stream.WriteAsync(new byte[YamuxOptions.InitialWindow / 2], ct);
            firstHalf.TrySetResult();
            await stream.WriteAsync(new byte[8 << 20], ct);
            allSent.TrySetResult();
        });
        var attacker = await world.DialAsync(new Libp2pHostOptions());
        var honest = await world.DialAsync(new Libp2pHostOptions());

        await using var stuck = await attacker.Connection.OpenStreamAsync(Source, CancellationToken.None).WaitAsync(Bound);
        await firstHalf.Task.WaitAsync(Bound);

        // The writer is held at the window: the same connection keeps carrying other streams, and the other peer is
        // served (a sender that ignored the window would have been dropped for sending past it).
        await EchoAsync(attacker.Connection);
        await EchoAsync(honest.Connection);
        Assert.False(allSent.Task.IsCompleted);
        Assert.InRange(attacker.Connection.Session.BufferedBytes, YamuxOptions.InitialWindow / 2, YamuxOptions.InitialWindow);
        Assert.False(attacker.Connection.Closed.IsCompleted);
        Assert.Equal(0L, attacker.Inbound.Session.BufferedBytes);

        // Reading the stream releases the writer: nothing was lost.
        var total = 0L;
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await stuck.ReadAsync(buffer).AsTask().WaitAsync(Bound)) > 0) total += n;
        await allSent.Task.WaitAsync(Bound);
        Assert.Equal((YamuxOptions.InitialWindow / 2) + (8 << 20), total);
    }

    [Fact]
    public async Task A_peer_flooding_streams_with_unread_data_is_bounded_by_the_session_buffer_and_dropped_alone()
    {
        const long cap = 4L << 20;
        var options = new Libp2pHostOptions { Yamux = new YamuxOptions { MaxBufferedBytes = cap, MaxRefusedStreams = 8 } };
        await using var world = await World.StartAsync(options);
        world.Server.Handle(Hold, (_, connection, ct) => connection.Closed.WaitAsync(ct));
        var attacker = await world.DialAsync(new Libp2pHostOptions());
        var honest = await world.DialAsync(new Libp2pHostOptions());

        // Each stream is within its window (half of it, so no write waits), but nobody reads any of them.
        var flood = new byte[YamuxOptions.InitialWindow / 2];
        var streams = new List<Stream>();
        for (var i = 0; i < 1_000; i++)
        {
            Stream stream;
            try
            {
                stream = await attacker.Connection.OpenStreamAsync(Hold, CancellationToken.None).WaitAsync(Bound);
            }
            catch (IOException)
            {
                // Once the buffer is full even a stream's protocol proposal is data nobody will read: reset.
                if (attacker.Connection.Closed.IsCompleted) break;
                continue;
            }

            streams.Add(stream);
            try
            {
                await stream.WriteAsync(flood).AsTask().WaitAsync(Bound);
            }
            catch (IOException)
            {
                // This stream was reset past the session's bound; the attacker goes on with another.
            }
        }

        await attacker.Connection.Closed.WaitAsync(Bound);
        Assert.InRange(attacker.Inbound.Session.PeakBufferedBytes, cap - flood.Length, cap);
        // Only the streams that fit in the bound were ever opened: the rest were reset at their first bytes.
        Assert.Equal(cap / flood.Length, streams.Count);
        await EchoAsync(honest.Connection);
        Assert.False(honest.Connection.Closed.IsCompleted);
        Assert.DoesNotContain(world.Server.Connections, c => c.RemotePeer.Equals(attacker.Host.PeerId));
    }

    [Fact]
    public async Task A_peer_that_stops_reading_the_connection_is_dropped_after_the_write_timeout()
    {
        var time = new FakeTimeProvider();
        var options = new YamuxOptions();
        var stalled = new StalledConnection();
        await using var session = new YamuxSession(stalled, client: false, options, log: null, time);
        var pair = new DuplexPair();
        await using var healthyClient = new YamuxSession(pair.A, client: true, options, log: null, time);
        await using var healthyServer = new YamuxSession(pair.B, client: false, options, log: null, time);
        session.Start();
        healthyClient.Start();
        healthyServer.Start();

        var ping = session.PingAsync(time, CancellationToken.None);
        await stalled.WriteStarted.Task.WaitAsync(Bound);
        time.Advance(options.WriteTimeout - TimeSpan.FromSeconds(1));
        Assert.False(session.Closed.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        await session.Closed.WaitAsync(Bound);
        await Assert.ThrowsAsync<IOException>(() => ping.WaitAsync(Bound));

        // Another session on the same clock is untouched.
        await healthyClient.PingAsync(time, CancellationToken.None).WaitAsync(Bound);
        Assert.False(healthyClient.Closed.IsCompleted);
    }

    private static async Task EchoAsync(Libp2pConnection connection)
    {
        await using var stream = await connection.OpenStreamAsync(Echo, CancellationToken.None).WaitAsync(Bound);
        var message = RandomNumberGenerator.GetBytes(1000);
        await stream.WriteAsync(message).AsTask().WaitAsync(Bound);
        var got = new byte[message.Length];
        await stream.ReadExactlyAsync(got).AsTask().WaitAsync(Bound);
        Assert.Equal(message, got);
    }

    private sealed record Client(Libp2pHost Host, Libp2pConnection Connection, Libp2pConnection Inbound);

    /// <summary>A server host with an echo handler, and the clients dialled to it; disposes all of them.</summary>
    private sealed class World : IAsyncDisposable
    {
        private readonly ConcurrentDictionary<PeerId, TaskCompletionSource<Libp2pConnection>> _inbound = new();
        private readonly List<PeerKey> _keys = [];
        private readonly List<Libp2pHost> _clients = [];

        private World(Libp2pHost server, PeerKey key)
        {
            Server = server;
            _keys.Add(key);
            Server.Connected += c => Inbound(c.RemotePeer).TrySetResult(c);
        }

        public Libp2pHost Server { get; }

        public static async Task<World> StartAsync(Libp2pHostOptions options)
        {
            var key = PeerKey.Generate();
            var world = new World(new Libp2pHost(key, new TcpStreamTransport(), options), key);
            world.Server.Handle(Echo, async (stream, _, ct) =>
            {
                var buffer = new byte[4096];
                int n;
                while ((n = await stream.ReadAsync(buffer, ct)) > 0) await stream.WriteAsync(buffer.AsMemory(0, n), ct);
            });
            await world.Server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
            return world;
        }

        public async Task<Client> DialAsync(Libp2pHostOptions options)
        {
            var key = PeerKey.Generate();
            _keys.Add(key);
            var host = new Libp2pHost(key, new TcpStreamTransport(), options);
            _clients.Add(host);
            var connection = await host.DialAsync(Server.ListenAddresses[0], CancellationToken.None).WaitAsync(Bound);
            var inbound = await Inbound(key.Id).Task.WaitAsync(Bound);
            return new Client(host, connection, inbound);
        }

        private TaskCompletionSource<Libp2pConnection> Inbound(PeerId peer) =>
            _inbound.GetOrAdd(peer, _ => new TaskCompletionSource<Libp2pConnection>(TaskCreationOptions.RunContinuationsAsynchronously));

        public async ValueTask DisposeAsync()
        {
            foreach (var c in _clients) await c.DisposeAsync();
            await Server.DisposeAsync();
            foreach (var k in _keys) k.Dispose();
        }
    }

    /// <summary>A connection whose peer reads nothing: every write waits (its buffers are full), reads wait too.</summary>
    private sealed class StalledConnection : Stream
    {
        public TaskCompletionSource WriteStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await new TaskCompletionSource().Task.WaitAsync(cancellationToken);
            return 0;
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            WriteStarted.TrySetResult();
            await new TaskCompletionSource().Task.WaitAsync(cancellationToken);
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
