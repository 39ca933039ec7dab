using BenchmarkDotNet.Attributes;
using Peerway.Simulation;

namespace Peerway.Benchmarks;

/// <summary>The simulator's own cost per datagram and per timer (what it adds on top of the engine it drives).</summary>
[MemoryDiagnoser]
public class SimulationBenchmarks
{
    private const int Hosts = 1_000;
    private const int Pings = 10_000;

    /// <summary>10,000 pings and their 10,000 pongs between 1,000 hosts over log-normal links, run to completion.</summary>
    [Benchmark(OperationsPerInvoke = 2 * Pings)]
    public long DatagramSendAndDeliver()
    {
        var s = new SimulationScheduler(1);
        var net = new SimulationNetwork(s);
        var sockets = new SimulationSocket[Hosts];
        for (var i = 0; i < Hosts; i++) sockets[i] = net.CreateSocket();
        byte[] ping = [1, 2, 3, 4, 5, 6, 7, 8];
        foreach (var socket in sockets)
        {
            var me = socket;
            me.Start((d, from) =>
            {
                if (d[0] == 1) me.Send([2], from);
            });
        }

        for (var i = 0; i < Pings; i++) sockets[i % Hosts].Send(ping, sockets[(i * 7 + 3) % Hosts].LocalEndPoint);
        s.RunFor(TimeSpan.FromMinutes(1));
        return net.DatagramsDelivered;
    }

    /// <summary>A query timeout's life: created, then cancelled by the reply (the common case in the DHT).</summary>
    [Benchmark(OperationsPerInvoke = Pings)]
    public long TimerCreateAndDispose()
    {
        var s = new SimulationScheduler(1);
        for (var i = 0; i < Pings; i++)
        {
            var t = s.Time.CreateTimer(static _ => { }, null, TimeSpan.FromSeconds(2), Timeout.InfiniteTimeSpan);
            t.Dispose();
        }

        s.RunFor(TimeSpan.FromSeconds(3));
        return s.EventsRun;
    }
}
