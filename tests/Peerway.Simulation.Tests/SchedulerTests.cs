using System.Net;
using Peerway.Net;

namespace Peerway.Simulation.Tests;

public sealed class SchedulerTests
{
    [Fact]
    public void Events_run_in_time_order_and_ties_in_insertion_order()
    {
        var s = new SimulationScheduler(1);
        var log = new List<string>();
        s.Schedule(TimeSpan.FromMilliseconds(30), () => log.Add("c@" + s.Now.TotalMilliseconds));
        s.Schedule(TimeSpan.FromMilliseconds(10), () => log.Add("a@" + s.Now.TotalMilliseconds));
        s.Schedule(TimeSpan.FromMilliseconds(10), () =>
        {
            log.Add("b@" + s.Now.TotalMilliseconds);
            s.Schedule(TimeSpan.Zero, () => log.Add("b2@" + s.Now.TotalMilliseconds));
        });
        s.RunUntil(TimeSpan.FromSeconds(1));
        Assert.Equal(["a@10", "b@10", "b2@10", "c@30"], log);
        Assert.Equal(TimeSpan.FromSeconds(1), s.Now);
        Assert.Equal(4, s.EventsRun);
    }

    [Fact]
    public void Timers_of_equal_delay_interleave_with_other_events_in_time_then_insertion_order()
    {
        // Timers wait in one FIFO lane per delay; the run must still follow (virtual time, insertion sequence) across
        // lanes and plain events, exactly as one priority queue would.
        var s = new SimulationScheduler(1);
        var log = new List<string>();
        var timers = new List<ITimer>();
        void Timer(string name, int ms) => timers.Add(s.Time.CreateTimer(_ => log.Add($"{name}@{s.Now.TotalMilliseconds}"), null, TimeSpan.FromMilliseconds(ms), Timeout.InfiniteTimeSpan));
        Timer("t1", 100);                                        // due 100, lane 100
        s.Schedule(TimeSpan.FromMilliseconds(100), () => log.Add($"e1@{s.Now.TotalMilliseconds}")); // due 100, after t1
        Timer("u1", 50);                                         // due 50, lane 50
        s.Schedule(TimeSpan.FromMilliseconds(20), () =>
        {
            Timer("t2", 100);                                    // due 120
            Timer("u2", 50);                                     // due 70
            s.Schedule(TimeSpan.FromMilliseconds(80), () => log.Add($"e2@{s.Now.TotalMilliseconds}")); // due 100, after e1
        });
        s.Schedule(TimeSpan.FromMilliseconds(70), () =>
        {
            timers[^1].Dispose();                                // u2 cancelled at its own instant, before it runs
            Timer("t3", 50);                                     // due 120, after t2
        });
        s.RunUntil(TimeSpan.FromSeconds(1));
        Assert.Equal(["u1@50", "t1@100", "e1@100", "e2@100", "t2@120", "t3@120"], log);
        Assert.Equal(0, s.Pending);
    }

    [Fact]
    public void RunUntil_leaves_later_events_queued()
    {
        var s = new SimulationScheduler(1);
        var ran = 0;
        s.Schedule(TimeSpan.FromSeconds(5), () => ran++);
        s.RunUntil(TimeSpan.FromSeconds(4));
        Assert.Equal(0, ran);
        Assert.Equal(1, s.Pending);
        s.RunFor(TimeSpan.FromSeconds(1));
        Assert.Equal(1, ran);
    }

    [Fact]
    public void Timers_fire_in_virtual_time_and_change_or_dispose_cancels_them()
    {
        var s = new SimulationScheduler(1);
        var fired = new List<double>();
        using var periodic = s.Time.CreateTimer(_ => fired.Add(s.Now.TotalSeconds), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2));
        var once = s.Time.CreateTimer(_ => fired.Add(-1), null, TimeSpan.FromSeconds(2), Timeout.InfiniteTimeSpan);
        var moved = s.Time.CreateTimer(_ => fired.Add(100 + s.Now.TotalSeconds), null, TimeSpan.FromSeconds(1.5), Timeout.InfiniteTimeSpan);
        Assert.True(moved.Change(TimeSpan.FromSeconds(4), Timeout.InfiniteTimeSpan));
        once.Dispose();
        s.RunUntil(TimeSpan.FromSeconds(6));
        Assert.Equal([1, 3, 104, 5], fired);
        moved.Dispose();
    }

    [Fact]
    public void Clock_reads_virtual_time()
    {
        var s = new SimulationScheduler(1);
        var t0 = s.Time.GetTimestamp();
        s.RunUntil(TimeSpan.FromMinutes(3));
        Assert.Equal(TimeSpan.FromMinutes(3), s.Time.GetElapsedTime(t0));
        Assert.Equal(SimulatedTimeProvider.Epoch + TimeSpan.FromMinutes(3), s.Time.GetUtcNow());
    }

    [Fact]
    public void Async_scenarios_with_Task_Delay_run_on_the_scheduler_thread_without_real_waiting()
    {
        var s = new SimulationScheduler(1);
        var thread = Environment.CurrentManagedThreadId;
        var result = s.Run(async () =>
        {
            var threads = new HashSet<int>();
            for (var i = 0; i < 10; i++)
            {
                await Task.Delay(TimeSpan.FromHours(1), s.Time);
                threads.Add(Environment.CurrentManagedThreadId);
            }

            return (threads, s.Now);
        });
        Assert.Equal([thread], result.threads);
        Assert.Equal(TimeSpan.FromHours(10), result.Now);
        Assert.Equal(0, s.ThreadViolations);
    }

    [Fact]
    public void Calls_from_another_thread_are_counted_as_violations()
    {
        var s = new SimulationScheduler(1);
        var result = s.Run(async () =>
        {
            await Task.Run(() => s.Schedule(TimeSpan.FromSeconds(1), () => { })).ConfigureAwait(true);
            return s.ThreadViolations;
        });
        Assert.True(result > 0);
    }

    [Fact]
    public void Drives_the_VirtualNetwork_as_its_delivery_scheduler()
    {
        var s = new SimulationScheduler(1);
        var net = new VirtualNetwork(s, new VirtualLinkOptions { Latency = (_, _) => TimeSpan.FromMilliseconds(40) });
        using var a = net.CreateSocket();
        using var b = net.CreateSocket();
        var got = new List<(string, double)>();
        b.Start((d, from) => got.Add((System.Text.Encoding.ASCII.GetString(d), s.Now.TotalMilliseconds)));
        a.Start((_, _) => { });
        a.Send("hi"u8, b.LocalEndPoint);
        s.RunUntil(TimeSpan.FromSeconds(1));
        Assert.Equal([("hi", 40.0)], got);
    }

    [Fact]
    public void Same_seed_gives_an_identical_trace_and_another_seed_a_different_one()
    {
        var a = Trace(7);
        Assert.Equal(a, Trace(7));
        Assert.NotEqual(a, Trace(8));
    }

    /// <summary>Hosts ping random peers with random delays over a lossy network; returns who got what when.</summary>
    private static List<string> Trace(int seed)
    {
        var s = new SimulationScheduler(seed);
        var net = new SimulationNetwork(s, new LatencyModel(), lossRate: 0.1);
        var sockets = Enumerable.Range(0, 20).Select(_ => net.CreateSocket()).ToList();
        var trace = new List<string>();
        foreach (var socket in sockets)
        {
            var me = socket;
            me.Start((d, from) =>
            {
                trace.Add($"{s.NowTicks}:{from}->{me.LocalEndPoint}:{d[0]}");
                if (d[0] < 5) me.Send([(byte)(d[0] + 1)], from);
            });
        }

        for (var i = 0; i < 50; i++)
        {
            s.Schedule(TimeSpan.FromMilliseconds(s.Random.Next(1000)), () =>
            {
                var from = sockets[s.Random.Next(sockets.Count)];
                var to = sockets[s.Random.Next(sockets.Count)];
                from.Send([0], to.LocalEndPoint);
            });
        }

        s.RunUntil(TimeSpan.FromSeconds(10));
        Assert.True(trace.Count > 50);
        return trace;
    }

    [Fact]
    public void Network_drops_datagrams_to_closed_hosts_and_reuses_no_address()
    {
        var s = new SimulationScheduler(1);
        var net = new SimulationNetwork(s);
        var a = net.CreateSocket();
        var b = net.CreateSocket();
        var got = 0;
        b.Start((_, _) => got++);
        a.Send([1], b.LocalEndPoint);
        s.RunFor(TimeSpan.FromSeconds(1));
        b.Dispose();
        a.Send([1], b.LocalEndPoint);
        a.Send([1], new IPEndPoint(IPAddress.Loopback, 6881));
        s.RunFor(TimeSpan.FromSeconds(1));
        Assert.Equal(1, got);
        Assert.Equal(2, net.DatagramsUnreachable);
        var c = net.CreateSocket();
        Assert.NotEqual(b.LocalEndPoint, c.LocalEndPoint);
        Assert.Equal(2, SimulationNetwork.HostOf(c.LocalEndPoint));
    }

    [Fact]
    public void Loss_rate_drops_about_that_fraction()
    {
        var s = new SimulationScheduler(3);
        var net = new SimulationNetwork(s, lossRate: 0.25);
        var a = net.CreateSocket();
        var b = net.CreateSocket();
        var got = 0;
        b.Start((_, _) => got++);
        for (var i = 0; i < 10_000; i++) a.Send([1], b.LocalEndPoint);
        s.RunFor(TimeSpan.FromSeconds(5));
        Assert.InRange(got, 7_300, 7_700);
        Assert.Equal(10_000 - got, net.DatagramsLost);
    }
}
