using System.Net;
using Peerway.Net;
using Peerway.Torrent.Utp;

namespace Peerway.Torrent.Tests.Utp;

public sealed class UtpLedbatTests
{
    /// <summary>
    /// A rate-limited link in front of one or more sockets: datagrams leave one after another at
    /// <see cref="BytesPerSecond"/>, waiting in a drop-tail queue of at most <see cref="MaxQueue"/> of sending time, so
    /// the time a datagram waits is the queuing delay LEDBAT measures.
    /// </summary>
    private sealed class Bottleneck(UtpWorld world, double bytesPerSecond, TimeSpan maxQueue)
    {
        private DateTimeOffset _busyUntil = DateTimeOffset.MinValue;

        public double BytesPerSecond => bytesPerSecond;

        public TimeSpan MaxQueue => maxQueue;

        public List<(DateTimeOffset At, TimeSpan Waited)> UtpDelays { get; } = [];

        public void Send(IDatagramSocket inner, ReadOnlySpan<byte> datagram, IPEndPoint remote, bool isUtp)
        {
            var now = world.Time.GetUtcNow();
            var start = _busyUntil > now ? _busyUntil : now;
            if (start - now > maxQueue) return; // drop-tail
            _busyUntil = start + TimeSpan.FromSeconds(datagram.Length / bytesPerSecond);
            var wait = start - now;
            if (isUtp) UtpDelays.Add((now, wait));
            var copy = datagram.ToArray();
            world.Schedule(_busyUntil - now, () => inner.Send(copy, remote));
        }
    }

    private sealed class ShapedSocket(IDatagramSocket inner, Bottleneck link, bool isUtp) : IDatagramSocket
    {
        public IPEndPoint LocalEndPoint => inner.LocalEndPoint;

        public void Start(DatagramHandler handler) => inner.Start(handler);

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote) => link.Send(inner, datagram, remote, isUtp);

        public void Dispose() => inner.Dispose();
    }

    /// <summary>
    /// RFC 6817 §2.4 / libtorrent: over a 1 MB/s bottleneck (20 ms each way, a 500 ms queue) uTP alone fills the link
    /// while keeping the queue near the 100 ms target (not the 500 ms a loss-based flow would fill); when an
    /// unresponsive flow takes 60 % of the link, uTP's share falls to what is left and the queue stays near target.
    /// </summary>
    [Fact]
    public void The_window_settles_where_queuing_delay_is_near_the_100_ms_target_and_yields_to_competing_traffic()
    {
        var world = new UtpWorld(latency: TimeSpan.FromMilliseconds(20));
        var link = new Bottleneck(world, 1_000_000, TimeSpan.FromMilliseconds(500));
        var server = world.Transport(1);
        var client = world.Transport(2, wrap: s => new ShapedSocket(s, link, isUtp: true));
        var competitor = world.Socket(3);
        var sink = world.Socket(4);
        sink.Start((_, _) => { });
        var listener = world.Await(UtpWorld.RunInline(() => server.ListenAsync(server.LocalEndPoint, CancellationToken.None).AsTask()));
        var arrivals = new List<(DateTimeOffset At, int Bytes)>();
        var stop = false;
        _ = UtpWorld.RunInline(() => SinkAsync(listener, arrivals, world));
        var connection = world.Await(UtpWorld.RunInline(() => client.ConnectAsync(server.LocalEndPoint, CancellationToken.None).AsTask()));
        var writer = UtpWorld.RunInline(() => SourceAsync(connection, () => stop));
        var start = world.Time.GetUtcNow();
        var delays = new List<(DateTimeOffset At, int Micros)>();

        // Phase A: 0-20 s uTP alone. Phase B: from 20 s, a constant 600 kB/s flow through the same link.
        var competitorOn = false;
        var nextCompetitor = start + TimeSpan.FromSeconds(20);
        var payload = new byte[1200];
        world.RunUntil(() =>
        {
            var now = world.Time.GetUtcNow();
            if (delays.Count == 0 || now - delays[^1].At >= TimeSpan.FromMilliseconds(100))
            {
                delays.Add((now, ((UtpStreamConnection)connection).Stats.QueuingDelayMicroseconds));
            }

            if (now >= nextCompetitor)
            {
                competitorOn = true;
                link.Send(competitor, payload, sink.LocalEndPoint, isUtp: false);
                nextCompetitor += TimeSpan.FromSeconds(payload.Length / 600_000.0);
            }

            return now - start >= TimeSpan.FromSeconds(40);
        }, TimeSpan.FromSeconds(41));
        Assert.True(competitorOn);
        stop = true;

        double Rate(double from, double to) =>
            arrivals.Where(a => a.At - start >= TimeSpan.FromSeconds(from) && a.At - start < TimeSpan.FromSeconds(to)).Sum(a => a.Bytes) / (to - from);
        double QueueMs(double from, double to) =>
            link.UtpDelays.Where(d => d.At - start >= TimeSpan.FromSeconds(from) && d.At - start < TimeSpan.FromSeconds(to)).Average(d => d.Waited.TotalMilliseconds);
        double SampleMs(double from, double to) =>
            delays.Where(d => d.At - start >= TimeSpan.FromSeconds(from) && d.At - start < TimeSpan.FromSeconds(to)).Average(d => d.Micros / 1000.0);

        var alone = Rate(8, 20);
        var shared = Rate(28, 40);
        var report = $"uTP alone {alone / 1000:F0} kB/s, queue {QueueMs(8, 20):F0} ms, samples {SampleMs(8, 20):F0} ms; " +
                     $"with 600 kB/s competing {shared / 1000:F0} kB/s, queue {QueueMs(28, 40):F0} ms, samples {SampleMs(28, 40):F0} ms";
        Assert.True(alone > 0.85 * link.BytesPerSecond, report);
        Assert.InRange(QueueMs(8, 20), 60, 140);
        Assert.InRange(SampleMs(8, 20), 60, 140);
        Assert.True(shared < 0.5 * link.BytesPerSecond && shared > 0.2 * link.BytesPerSecond, report);
        Assert.InRange(QueueMs(28, 40), 60, 160);
        world.Dispose();
    }

    private static async Task SinkAsync(IStreamListener listener, List<(DateTimeOffset, int)> arrivals, UtpWorld world)
    {
        var c = (await listener.AcceptAsync(CancellationToken.None))!;
        var buffer = new byte[65_536];
        int n;
        while ((n = await c.Stream.ReadAsync(buffer)) > 0) arrivals.Add((world.Time.GetUtcNow(), n));
    }

    private static async Task SourceAsync(IStreamConnection c, Func<bool> stop)
    {
        var chunk = new byte[65_536];
        while (!stop()) await c.Stream.WriteAsync(chunk);
    }
}
