namespace Peerway.Simulation;

/// <summary>
/// Virtual time for code under simulation: the clock is the <see cref="SimulationScheduler"/>'s, and every timer is
/// an event in its queue, so <c>Task.Delay(t, time)</c>, <c>CancellationTokenSource(t, time)</c> and engine timers
/// all fire deterministically, on the scheduler thread, without waiting in real time.
/// </summary>
public sealed class SimulatedTimeProvider : TimeProvider
{
    /// <summary>The wall-clock instant virtual time zero maps to (fixed, so runs are reproducible).</summary>
    public static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly SimulationScheduler _scheduler;

    internal SimulatedTimeProvider(SimulationScheduler scheduler) => _scheduler = scheduler;

    /// <summary>Returns <see cref="Epoch"/> plus the scheduler's virtual time.</summary>
    public override DateTimeOffset GetUtcNow() => Epoch.AddTicks(_scheduler.NowTicks);

    /// <summary>Returns the scheduler's virtual time, in <see cref="TimeSpan"/> ticks since the start of the run.</summary>
    public override long GetTimestamp() => _scheduler.NowTicks;

    /// <summary><see cref="TimeSpan.TicksPerSecond"/>: a timestamp is a virtual <see cref="TimeSpan"/> tick count.</summary>
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <summary>UTC, so that local times are the same on every machine.</summary>
    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    /// <summary>Creates a timer whose firings are events of the scheduler, run on the scheduler thread at virtual times.
    /// <see cref="Timeout.InfiniteTimeSpan"/> as <paramref name="dueTime"/> leaves it stopped, as <paramref name="period"/> makes it
    /// fire once. Throws <see cref="ArgumentOutOfRangeException"/> for other negative spans.</summary>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new SimTimer(_scheduler, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>A timer whose firings are scheduler events. <see cref="Change"/> invalidates queued firings by bumping a
    /// generation number (lazy deletion: stale entries are skipped when reached).</summary>
    /// <remarks>A disposed timer still waits in the queue until its due time, so <see cref="Dispose"/> lets go of the
    /// callback and its state: an engine's state for an answered query (a query timer is disposed within a round trip but
    /// waits out its whole timeout) must not live on, through the queue, into an older GC generation.</remarks>
    private sealed class SimTimer(SimulationScheduler scheduler, TimerCallback callback, object? state) : ITimer, ISimulationEvent
    {
        private TimerCallback? _callback = callback;
        private object? _state = state;
        private long _generation;
        private long _periodTicks;
        private bool _disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            if (_disposed) return false;
            ValidateSpan(dueTime, nameof(dueTime));
            ValidateSpan(period, nameof(period));
            _generation++;
            _periodTicks = period == Timeout.InfiniteTimeSpan ? 0 : period.Ticks;
            if (dueTime != Timeout.InfiniteTimeSpan) scheduler.EnqueueRecurring(dueTime.Ticks, this, _generation);
            return true;
        }

        public void Run(long token)
        {
            if (_disposed || token != _generation) return;
            if (_periodTicks > 0) scheduler.EnqueueRecurring(_periodTicks, this, _generation);
            _callback!(_state);
        }

        public void Dispose()
        {
            _disposed = true;
            _generation++;
            _callback = null;
            _state = null;
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }

        private static void ValidateSpan(TimeSpan span, string name)
        {
            if (span < TimeSpan.Zero && span != Timeout.InfiniteTimeSpan)
            {
                throw new ArgumentOutOfRangeException(name, span, "A timer period must be non-negative or infinite.");
            }
        }
    }
}
