using System.Diagnostics;
using System.Globalization;
using System.Net;
using Peerway.Nat.Turn;
using Peerway.Net;

namespace Peerway.Benchmarks;

/// <summary>
/// Load for TURN servers (ours or coturn), driven through Peerway's TURN client on real sockets.
/// <c>turn-load</c>: N sessions each allocate, bind a channel to an echo peer and keep a window of ChannelData
/// messages in flight (closed loop: one new message per echoed one; the window is refilled after 100 ms of silence);
/// prints echoed messages/s and payload Mbit/s (each way). <c>turn-alloc</c>: holds N allocations and prints
/// "ready" once all are granted, so a script can read the server's CPU time and memory before and after.
/// <c>udp-echo</c>: the peer, on the same batched sockets as the servers.
/// </summary>
internal static class TurnLoad
{
    private static readonly IPAddress ClientAddress = IPAddress.Parse("127.0.0.2");

    public static async Task<int> RunAsync(string[] args)
    {
        var server = IPEndPoint.Parse(args[0]);
        var peer = IPEndPoint.Parse(Text(args, "--peer", "127.0.0.1:3480"));
        var credentials = new TurnCredentials(Text(args, "--user", "u"), Text(args, "--pass", "p"));
        var sessions = Option(args, "--sessions", 8);
        var window = Option(args, "--window", 32);
        var bytes = Option(args, "--bytes", 1000);
        var seconds = Option(args, "--seconds", 10);
        var warmup = Option(args, "--warmup", 1);
        var payload = new byte[bytes];
        var echoed = new long[sessions];
        var clients = new List<TurnClient>();
        try
        {
            for (var s = 0; s < sessions; s++)
            {
                var index = s;
                TurnClient? client = null;
                var socket = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0), reusePort: false, dedicatedThread: true);
                client = new TurnClient(socket, server, credentials, TimeProvider.System, (data, from) =>
                {
                    // On the socket's receive thread: the next message joins the reply batch (sendmmsg).
                    echoed[index]++;
                    client!.Send(payload, from);
                });
                clients.Add(client);
                await client.AllocateAsync();
                await client.BindChannelAsync(peer);
            }

            // TURN transactions complete inline, so this method now runs on the receive thread of the last session's
            // socket: leave it (the loop below sleeps), or that session would never read its echoes.
            await Task.Yield();
            foreach (var c in clients)
            {
                for (var i = 0; i < window; i++) c.Send(payload, peer);
            }

            var clock = Stopwatch.StartNew();
            var last = new long[sessions];
            long startCount = 0;
            TimeSpan startAt = default;
            var measuring = false;
            var end = TimeSpan.FromSeconds(warmup + seconds);
            while (clock.Elapsed < end)
            {
                Thread.Sleep(100);
                for (var s = 0; s < sessions; s++)
                {
                    var now = Volatile.Read(ref echoed[s]);
                    if (now == last[s])
                    {
                        // Lost messages emptied this session's window: refill it.
                        for (var i = 0; i < window; i++) clients[s].Send(payload, peer);
                    }

                    last[s] = now;
                }

                if (!measuring && clock.Elapsed >= TimeSpan.FromSeconds(warmup))
                {
                    measuring = true;
                    startAt = clock.Elapsed;
                    startCount = Total(echoed);
                }
            }

            var elapsed = (clock.Elapsed - startAt).TotalSeconds;
            var rate = (Total(echoed) - startCount) / elapsed;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{rate:F0} {rate * bytes * 8 / 1e6:F1}"));
            return rate > 0 ? 0 : 1;
        }
        finally
        {
            await ReleaseAsync(clients);
        }
    }

    /// <summary>RFC 8656 §7.3: a Refresh with lifetime 0 deletes the allocation, so the next run starts clean (a
    /// reused client port would otherwise meet its old allocation: 437 Allocation Mismatch).</summary>
    private static async Task ReleaseAsync(List<TurnClient> clients)
    {
        await Task.WhenAll(clients.Select(async c =>
        {
            try
            {
                await c.RefreshAsync(TimeSpan.Zero).WaitAsync(TimeSpan.FromSeconds(2));
            }
            catch (Exception ex) when (ex is TurnException or TimeoutException)
            {
                // Best effort: the allocation expires on its own.
            }
        }));
        foreach (var c in clients) c.Dispose();
    }

    public static async Task<int> AllocateAsync(string[] args)
    {
        var server = IPEndPoint.Parse(args[0]);
        var credentials = new TurnCredentials(Text(args, "--user", "u"), Text(args, "--pass", "p"));
        var count = Option(args, "--count", 1000);
        var parallel = Option(args, "--parallel", 32);
        var clients = new List<TurnClient>();
        using var gate = new SemaphoreSlim(parallel);
        var failed = 0;
        try
        {
            var tasks = Enumerable.Range(0, count).Select(async _ =>
            {
                await gate.WaitAsync();
                try
                {
                    // From 127.0.0.2: a fresh client address, so no port can meet an allocation an earlier load left
                    // on the server for the same 5-tuple (437 Allocation Mismatch).
                    var client = new TurnClient(new UdpDatagramSocket(new IPEndPoint(ClientAddress, 0)), server, credentials, TimeProvider.System, null);
                    lock (clients) clients.Add(client);
                    await client.AllocateAsync(TimeSpan.FromMinutes(10));
                }
                catch (Exception ex) when (ex is TurnException or TimeoutException)
                {
                    if (Interlocked.Increment(ref failed) <= 3) await Console.Error.WriteLineAsync($"allocation failed: {ex.Message}");
                }
                finally
                {
                    gate.Release();
                }
            }).ToList();
            await Task.WhenAll(tasks);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ready {count - failed} allocated, {failed} failed"));
            await Console.Out.FlushAsync();

            // Hold the allocations until the script has read the server's figures (it closes our stdin).
            await Console.In.ReadToEndAsync();
            return failed == 0 ? 0 : 1;
        }
        finally
        {
            await ReleaseAsync(clients);
        }
    }

    public static int Echo(string[] args)
    {
        var bind = IPEndPoint.Parse(args[0]);
        using var socket = new UdpDatagramSocket(bind, reusePort: false, dedicatedThread: true);
        socket.Start((datagram, remote) => socket.Send(datagram, remote));
        Console.WriteLine($"udp-echo: udp {socket.LocalEndPoint}");
        Thread.Sleep(Timeout.Infinite);
        return 0;
    }

    private static long Total(long[] counts)
    {
        long sum = 0;
        for (var i = 0; i < counts.Length; i++) sum += Volatile.Read(ref counts[i]);
        return sum;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static string Text(string[] args, string name, string fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}
