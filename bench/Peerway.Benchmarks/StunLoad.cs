using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Peerway.Nat.Stun;

namespace Peerway.Benchmarks;

/// <summary>
/// Closed-loop STUN Binding load: each client thread keeps a window of requests outstanding on its own UDP socket and
/// sends a new one per response (or refills the window after 100 ms of silence). Prints responses per second.
/// </summary>
internal static class StunLoad
{
    public static int Run(string[] args)
    {
        var server = IPEndPoint.Parse(args[0]);
        var seconds = Option(args, "--seconds", 10);
        var clients = Option(args, "--clients", 4);
        var window = Option(args, "--window", 32);
        long total = 0;
        var stop = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(seconds);
        var threads = Enumerable.Range(0, clients).Select(_ => new Thread(() =>
        {
            using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Connect(server);
            socket.ReceiveTimeout = 100;
            var request = new byte[28];
            var buffer = new byte[1500];
            long count = 0;
            void SendOne()
            {
                var w = new StunWriter(request, StunMethod.Binding, StunClass.Request, Guid.NewGuid().ToByteArray().AsSpan(0, 12));
                socket.Send(request.AsSpan(0, w.Length));
            }

            for (var i = 0; i < window; i++) SendOne();
            while (stop.Elapsed < deadline)
            {
                try
                {
                    var n = socket.Receive(buffer);
                    if (n >= 20 && buffer[0] == 0x01 && buffer[1] == 0x01) count++;
                    SendOne();
                }
                catch (SocketException)
                {
                    for (var i = 0; i < window; i++) SendOne();
                }
            }

            Interlocked.Add(ref total, count);
        })).ToList();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        var rate = total / stop.Elapsed.TotalSeconds;
        Console.WriteLine(rate.ToString("F0", CultureInfo.InvariantCulture));
        return total > 0 ? 0 : 1;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
