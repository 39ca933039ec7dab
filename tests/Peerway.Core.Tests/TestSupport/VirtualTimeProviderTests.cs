using Microsoft.Extensions.Time.Testing;
using Peerway.TestSupport;

namespace Peerway.Core.Tests.TestSupport;

/// <summary>
/// The fake clock of our own (<see cref="VirtualTimeProvider"/>): what it shares with FakeTimeProvider (order,
/// Change, Dispose, periodic timers, timestamps) is checked against FakeTimeProvider itself where the two agree, and
/// where it differs on purpose (each callback reads its own due time; a timer due now fires at the next advance, not
/// inside CreateTimer) the test says so.
/// </summary>
public sealed class VirtualTimeProviderTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    /// <summary>The same timers on both clocks: what fired, in which order, after one advance.</summary>
    private static List<string> FiringOrder(TimeProvider time, Action<TimeSpan> advance)
    {
        var fired = new List<string>();
        var timers = new List<ITimer>
        {
            time.CreateTimer(_ => fired.Add("c30"), null, Ms(30), Timeout.InfiniteTimeSpan),
            time.CreateTimer(_ => fired.Add("a10"), null, Ms(10), Timeout.InfiniteTimeSpan),
            time.CreateTimer(_ => fired.Add("b10"), null, Ms(10), Timeout.InfiniteTimeSpan),
            time.CreateTimer(_ => fired.Add("p25"), null, Ms(25), Ms(25)),
            time.CreateTimer(_ => fired.Add("never"), null, Ms(1000), Timeout.InfiniteTimeSpan),
        };
        timers.Add(time.CreateTimer(_ => fired.Add("disposed"), null, Ms(5), Timeout.InfiniteTimeSpan));
        timers[^1].Dispose();
        timers.Add(time.CreateTimer(_ => fired.Add("disarmed"), null, Ms(5), Timeout.InfiniteTimeSpan));
        timers[^1].Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        timers.Add(time.CreateTimer(_ => fired.Add("moved"), null, Ms(5), Timeout.InfiniteTimeSpan));
        timers[^1].Change(Ms(40), Timeout.InfiniteTimeSpan);
        advance(Ms(60));
        foreach (var timer in timers) timer.Dispose();
        return fired;
    }

    [Fact]
    public void Timers_fire_in_order_of_due_time_then_of_scheduling_as_FakeTimeProvider_fires_them()
    {
        var fake = new FakeTimeProvider(T0);
        var expected = FiringOrder(fake, fake.Advance);
        var clock = new VirtualTimeProvider(T0);
        var actual = FiringOrder(clock, clock.Advance);

        Assert.Equal(["a10", "b10", "p25", "c30", "moved", "p25"], expected);
        Assert.Equal(expected, actual);
        Assert.Equal(T0 + Ms(60), clock.GetUtcNow());
    }

    [Fact]
    public void Each_callback_reads_its_own_due_time_where_FakeTimeProvider_reads_the_advance_target()
    {
        var clock = new VirtualTimeProvider(T0);
        var fake = new FakeTimeProvider(T0);
        var seen = new List<TimeSpan>();
        var fakeSeen = new List<TimeSpan>();
        using var a = clock.CreateTimer(_ => seen.Add(clock.GetUtcNow() - T0), null, Ms(10), Ms(20));
        using var b = fake.CreateTimer(_ => fakeSeen.Add(fake.GetUtcNow() - T0), null, Ms(10), Ms(20));

        clock.Advance(Ms(55));
        fake.Advance(Ms(55));

        Assert.Equal([Ms(10), Ms(30), Ms(50)], seen);
        Assert.Equal([Ms(55), Ms(55), Ms(55)], fakeSeen);
        Assert.Equal(T0 + Ms(55), clock.GetUtcNow());
    }

    [Fact]
    public void A_periodic_timer_fires_once_per_period_and_its_next_due_time_is_the_last_plus_the_period()
    {
        var clock = new VirtualTimeProvider(T0);
        var times = new List<TimeSpan>();
        using var timer = clock.CreateTimer(_ => times.Add(clock.GetUtcNow() - T0), null, TimeSpan.Zero, Ms(100));

        clock.Advance(Ms(250));
        Assert.Equal([TimeSpan.Zero, Ms(100), Ms(200)], times);
        Assert.Equal(T0 + Ms(300), clock.NextDue);
        clock.Advance(Ms(49));
        Assert.Equal(3, times.Count);
        clock.Advance(Ms(1));
        Assert.Equal(Ms(300), times[^1]);
    }

    [Fact]
    public void Change_while_due_moves_the_timer_and_Change_from_its_own_callback_rearms_it()
    {
        var clock = new VirtualTimeProvider(T0);
        var fired = new List<(string Name, TimeSpan At)>();
        ITimer? b = null;
        ITimer? self = null;
        using var a = clock.CreateTimer(_ =>
        {
            fired.Add(("a", clock.GetUtcNow() - T0));
            b!.Change(Ms(10), Timeout.InfiniteTimeSpan); // b is due now too: this moves it 10 ms on
        }, null, Ms(10), Timeout.InfiniteTimeSpan);
        b = clock.CreateTimer(_ => fired.Add(("b", clock.GetUtcNow() - T0)), null, Ms(10), Timeout.InfiniteTimeSpan);
        var rearmed = 0;
        self = clock.CreateTimer(_ =>
        {
            fired.Add(("self", clock.GetUtcNow() - T0));
            if (++rearmed < 3) self!.Change(Ms(5), Timeout.InfiniteTimeSpan);
        }, null, Ms(12), Timeout.InfiniteTimeSpan);

        clock.Advance(Ms(100));

        Assert.Equal([("a", Ms(10)), ("self", Ms(12)), ("self", Ms(17)), ("b", Ms(20)), ("self", Ms(22))], fired);
        b.Dispose();
        self.Dispose();
    }

    [Fact]
    public void Dispose_inside_a_callback_stops_that_timer_and_any_other_even_when_due_at_the_same_instant()
    {
        var clock = new VirtualTimeProvider(T0);
        var fired = new List<string>();
        ITimer? victim = null;
        ITimer? periodic = null;
        using var killer = clock.CreateTimer(_ =>
        {
            fired.Add("killer");
            victim!.Dispose();
        }, null, Ms(10), Timeout.InfiniteTimeSpan);
        victim = clock.CreateTimer(_ => fired.Add("victim"), null, Ms(10), Timeout.InfiniteTimeSpan);
        periodic = clock.CreateTimer(_ =>
        {
            fired.Add("periodic");
            periodic!.Dispose();
        }, null, Ms(5), Ms(5));

        clock.Advance(Ms(100));

        Assert.Equal(["periodic", "killer"], fired);
        Assert.Equal(0, clock.Pending);
        Assert.False(victim.Change(Ms(1), Timeout.InfiniteTimeSpan));
        Assert.False(periodic.Change(Ms(1), Timeout.InfiniteTimeSpan));
    }

    [Fact]
    public void A_timer_created_inside_a_callback_for_now_fires_in_the_same_advance_after_those_already_due()
    {
        var clock = new VirtualTimeProvider(T0);
        var fake = new FakeTimeProvider(T0);
        foreach (var (time, advance) in new (TimeProvider, Action<TimeSpan>)[] { (clock, clock.Advance), (fake, fake.Advance) })
        {
            var fired = new List<string>();
            var inner = new List<ITimer>();
            using var first = time.CreateTimer(_ =>
            {
                fired.Add("first");
                inner.Add(time.CreateTimer(_ => fired.Add("made now"), null, TimeSpan.Zero, Timeout.InfiniteTimeSpan));
            }, null, Ms(10), Timeout.InfiniteTimeSpan);
            using var second = time.CreateTimer(_ => fired.Add("second"), null, Ms(10), Timeout.InfiniteTimeSpan);
            using var later = time.CreateTimer(_ => fired.Add("later"), null, Ms(11), Timeout.InfiniteTimeSpan);

            advance(Ms(10));

            Assert.Equal(["first", "second", "made now"], fired);
            inner.ForEach(t => t.Dispose());
        }
    }

    [Fact]
    public void A_timer_due_now_made_outside_an_advance_fires_at_the_next_one_not_inside_CreateTimer()
    {
        // FakeTimeProvider fires it inside CreateTimer, before the caller holds the ITimer; a real timer fires later,
        // on another thread. This clock fires it when time is next moved (or RunDue runs what is due).
        var clock = new VirtualTimeProvider(T0);
        var fired = 0;
        using var timer = clock.CreateTimer(_ => fired++, null, TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        Assert.Equal(0, fired);
        Assert.Equal(1, clock.RunDue());
        Assert.Equal(1, fired);
        Assert.Equal(T0, clock.GetUtcNow());

        var fake = new FakeTimeProvider(T0);
        var fakeFired = 0;
        using var fakeTimer = fake.CreateTimer(_ => fakeFired++, null, TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        Assert.Equal(1, fakeFired);
    }

    [Fact]
    public void Run_until_next_due_moves_to_the_first_due_time_and_fires_only_what_is_due_then()
    {
        var clock = new VirtualTimeProvider(T0);
        var fired = new List<string>();
        using var a = clock.CreateTimer(_ => fired.Add("a"), null, Ms(7), Timeout.InfiniteTimeSpan);
        using var b = clock.CreateTimer(_ => fired.Add("b"), null, Ms(7), Timeout.InfiniteTimeSpan);
        clock.Schedule(Ms(9), () => fired.Add("action"));

        Assert.True(clock.AdvanceToNextDue(T0 + Ms(100)));
        Assert.Equal(["a", "b"], fired);
        Assert.Equal(T0 + Ms(7), clock.GetUtcNow());
        Assert.False(clock.AdvanceToNextDue(T0 + Ms(8)));
        Assert.Equal(T0 + Ms(7), clock.GetUtcNow());
        Assert.True(clock.AdvanceToNextDue(T0 + Ms(9)));
        Assert.Equal(["a", "b", "action"], fired);
        Assert.Equal(T0 + Ms(9), clock.GetUtcNow());
        Assert.Null(clock.NextDue);
        Assert.Equal(1, clock.ActionsRun);
        Assert.Equal(3, clock.Fired);
    }

    [Fact]
    public void Timestamps_count_ticks_and_elapsed_time_follows_the_clock()
    {
        var clock = new VirtualTimeProvider(T0);
        var fake = new FakeTimeProvider(T0);
        Assert.Equal(fake.TimestampFrequency, clock.TimestampFrequency);
        Assert.Equal(TimeSpan.TicksPerSecond, clock.TimestampFrequency);
        Assert.Equal(fake.GetTimestamp(), clock.GetTimestamp());
        var start = clock.GetTimestamp();
        clock.Advance(Ms(1234.5));
        Assert.Equal(Ms(1234.5), clock.GetElapsedTime(start));
        Assert.Equal(T0 + Ms(1234.5), clock.GetUtcNow());
        Assert.Equal(TimeZoneInfo.Utc, clock.LocalTimeZone);
        Assert.Equal(T0, clock.Start);
    }

    [Fact]
    public void Time_never_goes_back_and_bad_timeouts_are_refused_as_by_a_real_timer()
    {
        var clock = new VirtualTimeProvider(T0);
        clock.Advance(Ms(10));
        Assert.Throws<ArgumentOutOfRangeException>(() => clock.Advance(Ms(-1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => clock.AdvanceTo(T0));
        Assert.Throws<ArgumentOutOfRangeException>(() => clock.CreateTimer(_ => { }, null, Ms(-2), Timeout.InfiniteTimeSpan));
        using var timer = clock.CreateTimer(_ => { }, null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        Assert.Throws<ArgumentOutOfRangeException>(() => timer.Change(Ms(1), TimeSpan.FromDays(50)));
        Assert.Equal(0, clock.Pending);
        Assert.Equal(T0 + Ms(10), clock.GetUtcNow());
    }

    [Fact]
    public void Moving_time_from_inside_a_callback_is_refused_and_the_outer_advance_goes_on()
    {
        var clock = new VirtualTimeProvider(T0);
        Exception? refused = null;
        var fired = new List<TimeSpan>();
        using var a = clock.CreateTimer(_ => refused = Record.Exception(() => clock.Advance(Ms(100))), null, Ms(1), Timeout.InfiniteTimeSpan);
        using var b = clock.CreateTimer(_ => fired.Add(clock.GetUtcNow() - T0), null, Ms(2), Timeout.InfiniteTimeSpan);
        clock.Advance(Ms(5));
        Assert.IsType<InvalidOperationException>(refused);
        Assert.Equal([Ms(2)], fired);
        Assert.Equal(T0 + Ms(5), clock.GetUtcNow());
    }

    [Fact]
    public void A_callback_that_throws_ends_the_advance_at_its_due_time_and_leaves_the_rest_queued()
    {
        var clock = new VirtualTimeProvider(T0);
        var fired = 0;
        using var bad = clock.CreateTimer(_ => throw new InvalidOperationException("boom"), null, Ms(3), Timeout.InfiniteTimeSpan);
        using var good = clock.CreateTimer(_ => fired++, null, Ms(4), Timeout.InfiniteTimeSpan);
        Assert.Throws<InvalidOperationException>(() => clock.Advance(Ms(10)));
        Assert.Equal(T0 + Ms(3), clock.GetUtcNow());
        Assert.Equal(0, fired);
        clock.Advance(Ms(7));
        Assert.Equal(1, fired);
    }

    [Fact]
    public async Task Delays_and_cancellation_timeouts_built_on_the_clock_complete_when_it_reaches_them()
    {
        var clock = new VirtualTimeProvider(T0);
        var delay = Task.Delay(Ms(50), clock);
        using var cts = new CancellationTokenSource(Ms(80), clock);
        clock.Advance(Ms(49));
        Assert.False(delay.IsCompleted);
        clock.Advance(Ms(1));
        await delay;
        Assert.False(cts.IsCancellationRequested);
        clock.Advance(Ms(30));
        Assert.True(cts.IsCancellationRequested);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Random_creates_changes_and_disposals_fire_as_a_sorted_list_would(int seed)
    {
        // The model: every armed timer's (due, order of its last arming); a fired list must be that, sorted.
        var random = new Random(seed);
        var clock = new VirtualTimeProvider(T0);
        var fired = new List<int>();
        var timers = new List<ITimer>();
        var model = new Dictionary<int, (long Due, long Order)>();
        long order = 0;
        for (var op = 0; op < 5000; op++)
        {
            var roll = random.Next(10);
            if (roll < 5 || timers.Count == 0)
            {
                var id = timers.Count;
                var due = random.Next(1000);
                timers.Add(clock.CreateTimer(_ => fired.Add(id), null, TimeSpan.FromTicks(due), Timeout.InfiniteTimeSpan));
                model[id] = (due, order++);
            }
            else if (roll < 8)
            {
                var id = random.Next(timers.Count);
                var due = random.Next(1000);
                if (timers[id].Change(TimeSpan.FromTicks(due), Timeout.InfiniteTimeSpan)) model[id] = (due, order++);
            }
            else
            {
                var id = random.Next(timers.Count);
                timers[id].Dispose();
                model.Remove(id);
            }
        }

        Assert.Equal(model.Count, clock.Pending);
        clock.Advance(TimeSpan.FromTicks(1000));
        Assert.Equal(model.OrderBy(kv => kv.Value.Due).ThenBy(kv => kv.Value.Order).Select(kv => kv.Key), fired);
        Assert.Equal(0, clock.Pending);
    }

    [Fact]
    public void Timers_made_changed_and_disposed_on_other_threads_during_advances_fire_once_each_unless_disposed()
    {
        // Every timer is due at least a second after it is made and the advancing thread stops at half a second
        // while they are made, so none can fire between its Create and its Dispose.
        var clock = new VirtualTimeProvider(T0);
        var fired = new int[4 * 2000];
        var kept = 0;
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            var random = new Random(t);
            for (var i = 0; i < 2000; i++)
            {
                var id = (t * 2000) + i;
                var timer = clock.CreateTimer(_ => Interlocked.Increment(ref fired[id]), null, Ms(1000 + random.Next(50)), Timeout.InfiniteTimeSpan);
                if (i % 3 == 0) timer.Change(Ms(1000 + random.Next(50)), Timeout.InfiniteTimeSpan);
                if (i % 4 == 0) timer.Dispose();
                else Interlocked.Increment(ref kept);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        while (threads.Any(t => t.IsAlive) && clock.GetUtcNow() < T0 + Ms(500)) clock.Advance(Ms(1));
        threads.ForEach(t => t.Join());
        Assert.Equal(0, fired.Sum());
        clock.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal(kept, fired.Sum());
        Assert.All(fired, f => Assert.InRange(f, 0, 1));
        Assert.Equal(0, clock.Pending);
    }

    [Fact]
    public void The_scheduler_on_this_clock_runs_deliveries_and_timers_in_one_order_each_at_its_due_time()
    {
        var clock = new VirtualTimeProvider(T0);
        var scheduler = new DeterministicScheduler(clock);
        var ran = new List<(string What, TimeSpan At)>();
        void Note(string what) => ran.Add((what, clock.GetUtcNow() - T0));
        scheduler.Schedule(Ms(7), () => Note("delivery 7"));
        using var timer = clock.CreateTimer(_ =>
        {
            Note("timer 3");
            scheduler.Schedule(Ms(1), () => Note("delivery 4"));
        }, null, Ms(3), Timeout.InfiniteTimeSpan);
        scheduler.Schedule(TimeSpan.Zero, () => Note("delivery 0"));
        scheduler.Schedule(Ms(12), () => Note("delivery 12"));

        Assert.Equal(1, scheduler.RunDue());
        Assert.True(scheduler.RunUntil(() => ran.Count == 5, Ms(10), TimeSpan.FromSeconds(1)));

        Assert.Equal([("delivery 0", TimeSpan.Zero), ("timer 3", Ms(3)), ("delivery 4", Ms(4)), ("delivery 7", Ms(7)), ("delivery 12", Ms(12))], ran);
        Assert.Equal(T0 + Ms(20), clock.GetUtcNow()); // the condition is checked once per step
        Assert.Equal(4, scheduler.Executed);
        Assert.Equal(4, scheduler.Scheduled);
    }

    [Fact]
    public void The_scheduler_on_this_clock_fails_instead_of_hanging_when_it_never_goes_idle()
    {
        var clock = new VirtualTimeProvider(T0);
        var scheduler = new DeterministicScheduler(clock);
        void Again() => scheduler.Schedule(TimeSpan.Zero, Again);
        Again();
        Assert.Throws<InvalidOperationException>(() => scheduler.RunUntilIdle(maxSteps: 1000));
    }
}
