using System.Diagnostics;
using System.Globalization;
using System.Net;
using BenchmarkDotNet.Attributes;
using Peerway.Net;
using Peerway.Simulation;
using Peerway.WebRtc.Sctp;

namespace Peerway.Benchmarks;

/// <summary>
/// SCTP bulk transfer, Peerway ↔ Peerway, over the virtual network with user-space loss: two
/// <see cref="SctpAssociation"/>s (no DTLS: each packet one datagram) on the discrete-event
/// <see cref="SimulationScheduler"/>, one reliable ordered stream, 64 KiB messages. The virtual time is the protocol's
/// (congestion control, fast retransmit, delayed SACK, RTO), the wall time the engine's CPU cost. Loss is where other
/// non-browser stacks fall short (pion/sctp#218, sipsorcery#1391).
/// </summary>
[MemoryDiagnoser]
public class SctpBenchmarks
{
    [Params(0.0, 0.01)]
    public double Loss { get; set; }

    /// <summary>8 MiB from one association to the other; returns the virtual time it took.</summary>
    [Benchmark]
    public TimeSpan Transfer8MiB() => SctpWorld.Transfer(8, Loss, TimeSpan.FromMilliseconds(5), seed: 1).Virtual;

    /// <summary><c>sctp-loss [--mib M] [--rounds N] [--latency-ms L]</c>: goodput in virtual and wall time at 0 % and 1 % loss.</summary>
    public static int Report(string[] args)
    {
        var mib = Option(args, "--mib", 32);
        var rounds = Option(args, "--rounds", 5);
        var latency = TimeSpan.FromMilliseconds(Option(args, "--latency-ms", 5));
        SctpWorld.Transfer(1, 0, latency, 0); // warm-up (JIT)
        var results = new Dictionary<double, List<SctpWorld.Outcome>> { [0.0] = [], [0.01] = [] };
        for (var r = 0; r < rounds; r++)
        {
            foreach (var loss in results.Keys) results[loss].Add(SctpWorld.Transfer(mib, loss, latency, seed: r + 1));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"SCTP over the virtual network: {mib} MiB in 64 KiB messages, one-way latency {latency.TotalMilliseconds} ms (RTT {2 * latency.TotalMilliseconds} ms), {rounds} interleaved rounds, medians"));
        foreach (var (loss, list) in results)
        {
            static double Median(IEnumerable<double> v)
            {
                var a = v.Order().ToArray();
                return a.Length % 2 == 1 ? a[a.Length / 2] : (a[(a.Length / 2) - 1] + a[a.Length / 2]) / 2;
            }

            var bytes = mib * 1048576.0;
            var goodput = list.Select(o => bytes / o.Virtual.TotalSeconds / 1e6).ToList();
            var wall = list.Select(o => bytes / o.Wall.TotalSeconds / 1e6).ToList();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"loss {loss * 100:F0} %: goodput {Median(goodput):F1} MB/s of virtual time ({string.Join(", ", goodput.Select(g => g.ToString("F1", CultureInfo.InvariantCulture)))}); engine {Median(wall):F1} MB/s of wall time; packets dropped {Median(list.Select(o => (double)o.Dropped)):F0}, fast retransmits {Median(list.Select(o => (double)o.FastRetransmits)):F0}, chunks retransmitted {Median(list.Select(o => (double)o.Retransmitted)):F0}, timeouts {Median(list.Select(o => (double)o.Timeouts)):F0}, intact {list.All(o => o.Intact)}"));
        }

        return 0;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}

/// <summary>Two associations on the simulation scheduler, joined by a lossy virtual link.</summary>
internal static class SctpWorld
{
    public sealed record Outcome(TimeSpan Virtual, TimeSpan Wall, long Dropped, long FastRetransmits, long Retransmitted, long Timeouts, bool Intact);

    private sealed class Sink(int expected) : ISctpHandler
    {
        private int _next;

        public bool Established { get; private set; }

        public int Received { get; private set; }

        public bool InOrder { get; private set; } = true;

        public string? Closed { get; private set; }

        public void OnEstablished() => Established = true;

        public bool OnMessage(ushort stream, uint ppid, byte[] data)
        {
            // Every message carries its index in its first 4 bytes: in order, and each once.
            if (BitConverter.ToInt32(data) != _next++ || data.Length != 65536) InOrder = false;
            Received++;
            return false;
        }

        public void OnIncomingStreamReset(ushort stream)
        {
        }

        public void OnOutgoingStreamReset(ushort stream)
        {
        }

        public void OnBufferedAmountLow(ushort stream)
        {
        }

        public void OnClosed(string reason) => Closed = reason;

        public bool Done => Received >= expected || Closed is not null;
    }

    /// <summary>Sends <paramref name="mib"/> MiB A→B with at most 4 MiB queued, as a data channel's sender would.</summary>
    public static Outcome Transfer(int mib, double loss, TimeSpan latency, int seed)
    {
        var sim = new SimulationScheduler(seed);
        var net = new VirtualNetwork(sim, new VirtualLinkOptions { LossRate = loss, Seed = seed, Latency = (_, _) => latency });
        var sa = net.CreateSocket(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 5000));
        var sb = net.CreateSocket(new IPEndPoint(IPAddress.Parse("10.0.0.2"), 5000));
        var count = mib * 16;
        var sinkA = new Sink(0);
        var sinkB = new Sink(count);
        using var a = new SctpAssociation(new SctpOptions(), sim.Time, p => sa.Send(p, sb.LocalEndPoint), sinkA);
        using var b = new SctpAssociation(new SctpOptions(), sim.Time, p => sb.Send(p, sa.LocalEndPoint), sinkB);
        sa.Start((d, _) => a.Receive(d));
        sb.Start((d, _) => b.Receive(d));
        a.Connect();
        sim.RunUntil(() => sinkA.Established && sinkB.Established, TimeSpan.FromSeconds(30));
        var message = new byte[65536];
        new Random(seed).NextBytes(message);
        var wall = Stopwatch.StartNew();
        var start = sim.Now;
        var sent = 0;
        while (!sinkB.Done)
        {
            while (sent < count && a.BufferedAmount(1) < (4L << 20))
            {
                BitConverter.TryWriteBytes(message, sent++);
                if (!a.Send(1, 53, message, unordered: false)) break;
            }

            if (sim.Now - start > TimeSpan.FromHours(1)) break;
            sim.RunFor(TimeSpan.FromMilliseconds(1));
        }

        var elapsed = sim.Now - start;
        wall.Stop();
        var (fast, timeouts, chunks) = a.Retransmissions;
        return new Outcome(elapsed, wall.Elapsed, net.Dropped, fast, chunks, timeouts, sinkB.Received == count && sinkB.InOrder);
    }
}
