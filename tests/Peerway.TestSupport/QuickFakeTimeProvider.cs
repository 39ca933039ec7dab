using System.Runtime.CompilerServices;
using Microsoft.Extensions.Time.Testing;

namespace Peerway.TestSupport;

/// <summary>
/// A <see cref="FakeTimeProvider"/> whose <see cref="GetUtcNow"/> reads the clock without scanning the timers. The
/// base class's reading also scans every pending timer for one that is due, which makes each reading O(timers): in a
/// simulated swarm of 100 clients that scan took three quarters of the CPU (docs/BENCHMARKS.md, "Swarm scaling"), and
/// it grows with the square of the swarm. The scan can find a due timer only when one was scheduled at or before the
/// current time since the last scan (every change of the time wakes due timers itself, and a periodic timer's next due
/// time is in the future), so this scans, through the base class, only then: timers fire exactly as before.
/// </summary>
public sealed class QuickFakeTimeProvider(DateTimeOffset start) : FakeTimeProvider(start)
{
    /// <summary>Set when a timer was scheduled with a due time not in the future since the last scan.</summary>
    private int _maybeDue;

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow()
    {
        if (AutoAdvanceAmount == TimeSpan.Zero && Volatile.Read(ref _maybeDue) == 0) return Now(this);
        Volatile.Write(ref _maybeDue, 0);
        return base.GetUtcNow();
    }

    /// <inheritdoc />
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        if (dueTime <= TimeSpan.Zero) MaybeDue();
        return new Timer(this, base.CreateTimer(callback, state, dueTime, period));
    }

    private void MaybeDue() => Volatile.Write(ref _maybeDue, 1);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_now")]
    private static extern ref DateTimeOffset Now(FakeTimeProvider time);

    /// <summary>The base class's timer, noting a reschedule that may be due at once.</summary>
    private sealed class Timer(QuickFakeTimeProvider owner, ITimer inner) : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            if (dueTime <= TimeSpan.Zero) owner.MaybeDue();
            return inner.Change(dueTime, period);
        }

        public void Dispose() => inner.Dispose();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
