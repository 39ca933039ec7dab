using System.Diagnostics;
using System.Globalization;
using System.Net;
using Peerway.Libp2p;
using Peerway.Net;

namespace Peerway.Benchmarks;

/// <summary>
/// `libp2p-bench handshakes N` | `libp2p-bench stream MIB STREAMS`: two <see cref="Libp2pHost"/>s in this process over
/// loopback TCP (bench/content/libp2p.sh runs it beside tests/interop-peers/libp2p-bench.mjs, the same with js-libp2p).
/// `handshakes`: N dials one after another, each a new TCP connection upgraded (multistream-select, Noise XX with the
/// libp2p payload, Yamux; identify runs as it does for every connection) and closed. `stream`: MIB MiB written over
/// STREAMS Yamux streams of one connection at once and read to the end by the other host. After a warm-up pass, one
/// JSON line: the wall seconds and the process CPU seconds (both hosts).
/// </summary>
internal static class Libp2pBench
{
    private const string Protocol = "/peerway/bench/sink/1.0.0";

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length < 2 || (args[0] != "handshakes" && args[0] != "stream"))
        {
            await Console.Error.WriteLineAsync("usage: libp2p-bench handshakes N | stream MIB STREAMS");
            return 2;
        }

        using var serverKey = PeerKey.Generate();
        using var clientKey = PeerKey.Generate();
        await using var server = new Libp2pHost(serverKey, new TcpStreamTransport());
        await using var client = new Libp2pHost(clientKey, new TcpStreamTransport());
        var sink = new Sink();
        server.Handle(Protocol, (stream, _, ct) => sink.ServeAsync(stream, ct));
        await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        var address = server.ListenAddresses[0];

        var n = int.Parse(args[1], CultureInfo.InvariantCulture);
        if (args[0] == "handshakes")
        {
            _ = await HandshakesAsync(client, address, Math.Max(1, n / 10));
            // The dials alone are timed (a close is not a handshake); the CPU counts everything, closes included.
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var dialing = await HandshakesAsync(client, address, n);
            Report($"\"op\":\"handshakes\",\"n\":{n}", dialing, Process.GetCurrentProcess().TotalProcessorTime - cpu);
        }
        else
        {
            var streams = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 1;
            await using var connection = await client.DialAsync(address, CancellationToken.None);
            await SendAsync(connection, sink, Math.Max(1, n / 8), streams);
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var wall = Stopwatch.StartNew();
            await SendAsync(connection, sink, n, streams);
            Report($"\"op\":\"stream\",\"mib\":{n},\"streams\":{streams}", wall.Elapsed, Process.GetCurrentProcess().TotalProcessorTime - cpu);
        }

        return 0;
    }

    /// <summary>Dials and closes <paramref name="n"/> connections; returns the time spent in the dials alone.</summary>
    private static async Task<TimeSpan> HandshakesAsync(Libp2pHost client, Multiaddr address, int n)
    {
        var dialing = TimeSpan.Zero;
        for (var i = 0; i < n; i++)
        {
            var start = Stopwatch.GetTimestamp();
            var connection = await client.DialAsync(address, CancellationToken.None);
            dialing += Stopwatch.GetElapsedTime(start);
            await connection.DisposeAsync();
        }

        return dialing;
    }

    private static async Task SendAsync(Libp2pConnection connection, Sink sink, int mib, int streams)
    {
        var total = (long)mib << 20;
        var done = sink.Expect(total);
        var chunk = new byte[64 * 1024];
        Random.Shared.NextBytes(chunk);
        var perStream = total / streams;
        await Task.WhenAll(Enumerable.Range(0, streams).Select(async i =>
        {
            await using var stream = await connection.OpenStreamAsync(Protocol, CancellationToken.None);
            var left = i == streams - 1 ? total - (perStream * (streams - 1)) : perStream;
            while (left > 0)
            {
                var n = (int)Math.Min(left, chunk.Length);
                await stream.WriteAsync(chunk.AsMemory(0, n));
                left -= n;
            }
        }));
        await done;
    }

    private static void Report(string label, TimeSpan wall, TimeSpan cpu) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{{\"impl\":\"peerway\",{label},\"seconds\":{wall.TotalSeconds:F4},\"cpu\":{cpu.TotalSeconds:F4}}}"));

    /// <summary>Reads every stream to its end and completes the expectation once the bytes have all arrived.</summary>
    private sealed class Sink
    {
        private long _received;
        private long _expected;
        private TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Expect(long bytes)
        {
            _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
            Interlocked.Exchange(ref _received, 0);
            Interlocked.Exchange(ref _expected, bytes);
            return _done.Task;
        }

        public async Task ServeAsync(Stream stream, CancellationToken ct)
        {
            var buffer = new byte[64 * 1024];
            int n;
            while ((n = await stream.ReadAsync(buffer, ct)) > 0)
            {
                if (Interlocked.Add(ref _received, n) == Interlocked.Read(ref _expected)) _done.TrySetResult();
            }
        }
    }
}
