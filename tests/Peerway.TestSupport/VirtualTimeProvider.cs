namespace Peerway.TestSupport;

/// <summary>
/// A fake clock for virtual-time tests whose timers wait in a priority queue keyed by (due time, sequence): moving
/// time fires every timer due on the way in that order, each with the clock reading its own due time, so the firing
/// order is deterministic and costs O(log n) per timer, however many are pending. <see cref="ITimer.Change"/> and
/// <see cref="IDisposable.Dispose"/> move or remove a timer in the queue (it knows its place: O(log n), nothing
/// left behind). One-shot actions (<see cref="Schedule"/>, what <see cref="DeterministicScheduler"/> delivers) share
/// the queue, so deliveries and timers run in one order of due time and then of scheduling.
/// </summary>
/// <remarks>
/// <para>What it shares with <c>FakeTimeProvider</c> (Microsoft.Extensions.TimeProvider.Testing): time moves only through
/// <see cref="Advance"/>/<see cref="AdvanceTo"/>, never backwards; timers fire on the thread that moves time, in
/// order of due time and then of scheduling; a timer created (or changed) inside a callback with a due time not after
/// the advance's target fires in the same advance; <c>Change(Timeout.InfiniteTimeSpan, …)</c> disarms a timer,
/// <c>Change</c> on a disposed timer returns false; a periodic timer's next due time is its last one plus the period;
/// <see cref="GetTimestamp"/> counts <see cref="TimeSpan"/> ticks (<see cref="TimestampFrequency"/> is
/// <see cref="TimeSpan.TicksPerSecond"/>); the local time zone is UTC; any thread may read the clock and create,
/// change or dispose timers.</para>
/// <para>Where it differs, on purpose: a callback reads its own due time from the clock (FakeTimeProvider moves to the
/// advance's target first, so every callback of one advance reads the target); a timer due now that is created
/// outside an advance does not fire inside <see cref="CreateTimer"/> or <c>Change</c> (as FakeTimeProvider's does) but
/// at the next advance or <see cref="RunDue(long)"/>, as a real timer fires later on another thread; equal due times
/// are ordered by a sequence number rather than by the time of scheduling; the clock never reads itself forward
/// (no <c>AutoAdvanceAmount</c>); <see cref="Advance"/> does not sleep. Moving time from inside a callback throws
/// (<see cref="InvalidOperationException"/>); another thread that moves time waits for the advance in progress. An
/// exception from a callback ends the advance and propagates to its caller (the clock stays where that callback
/// was due, its queue intact). An armed timer stays in the queue until it fires or is disposed, whether or not
/// anything still refers to its <see cref="ITimer"/>.</para>
/// </remarks>
public sealed class VirtualTimeProvider : TimeProvider
{
    /// <summary>The longest due time or period a timer accepts, as <see cref="System.Threading.Timer"/>.</summary>
    private const long MaxTimeoutMilliseconds = 0xfffffffe;

    private readonly Lock _gate = new();
    private readonly object _advancing = new();
    private readonly EntryQueue _queue = new();
    private long _now;
    private long _sequence;
    private long _fired;
    private long _actionsRun;

    /// <summary>A clock reading midnight, 1 January 2000 (UTC), as FakeTimeProvider's default.</summary>
    public VirtualTimeProvider()
        : this(new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero))
    {
    }

    /// <summary>A clock reading <paramref name="start"/>.</summary>
    public VirtualTimeProvider(DateTimeOffset start)
    {
        Start = start.ToUniversalTime();
        _now = Start.UtcTicks;
    }

    /// <summary>What the clock read when it was made.</summary>
    public DateTimeOffset Start { get; }

    /// <summary>Timers and actions waiting in the queue.</summary>
    public int Pending
    {
        get
        {
            lock (_gate) return _queue.Count;
        }
    }

    /// <summary>The due time of the first timer or action in the queue; null when the queue is empty.</summary>
    public DateTimeOffset? NextDue
    {
        get
        {
            lock (_gate) return _queue.Count == 0 ? null : new DateTimeOffset(_queue.Peek().Due, TimeSpan.Zero);
        }
    }

    /// <summary>Timer callbacks and actions run so far.</summary>
    public long Fired => Interlocked.Read(ref _fired);

    /// <summary>Actions (<see cref="Schedule"/>) run so far.</summary>
    public long ActionsRun => Interlocked.Read(ref _actionsRun);

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow() => new(Volatile.Read(ref _now), TimeSpan.Zero);

    /// <inheritdoc />
    public override long GetTimestamp() => Volatile.Read(ref _now);

    /// <inheritdoc />
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <inheritdoc />
    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    /// <inheritdoc />
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new Timer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Runs <paramref name="action"/> once, <paramref name="delay"/> from now (a delay below zero is zero), on
    /// the thread that moves time there. Cheaper than a timer: no <see cref="ITimer"/>, no way to cancel.</summary>
    public void Schedule(TimeSpan delay, Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        var entry = new Once(action);
        lock (_gate)
        {
            entry.Due = _now + Math.Max(0, delay.Ticks);
            entry.Sequence = ++_sequence;
            _queue.Push(entry);
        }
    }

    /// <summary>Moves time forward by <paramref name="delta"/>, firing what falls due on the way (see <see cref="AdvanceTo"/>).</summary>
    public void Advance(TimeSpan delta)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delta, TimeSpan.Zero);
        EnterAdvance();
        try
        {
            Fire(Volatile.Read(ref _now) + delta.Ticks, long.MaxValue);
        }
        finally
        {
            Monitor.Exit(_advancing);
        }
    }

    /// <summary>
    /// Moves time to <paramref name="target"/>, firing every timer and action due at or before it in order of due time
    /// and then of scheduling (including those they schedule for then), each with the clock at its due time; the clock
    /// then reads <paramref name="target"/>. Returns how many fired; after <paramref name="max"/> it stops there (the
    /// clock at the last one's due time), so a test can bound a livelock.
    /// </summary>
    public long AdvanceTo(DateTimeOffset target, long max = long.MaxValue)
    {
        EnterAdvance();
        try
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(target.UtcTicks, Volatile.Read(ref _now), nameof(target));
            return Fire(target.UtcTicks, max);
        }
        finally
        {
            Monitor.Exit(_advancing);
        }
    }

    /// <summary>Fires what is due now (and what that schedules for now), at most <paramref name="max"/>; time stays.
    /// Returns how many fired.</summary>
    public long RunDue(long max = long.MaxValue)
    {
        EnterAdvance();
        try
        {
            return Fire(Volatile.Read(ref _now), max);
        }
        finally
        {
            Monitor.Exit(_advancing);
        }
    }

    /// <summary>
    /// Runs until the next due time: when something is due at or before <paramref name="limit"/>, moves time to the
    /// first due time and fires everything due then (see <see cref="AdvanceTo"/>) and returns true; otherwise leaves the
    /// clock where it is and returns false.
    /// </summary>
    public bool AdvanceToNextDue(DateTimeOffset limit)
    {
        EnterAdvance();
        try
        {
            long next;
            lock (_gate)
            {
                if (_queue.Count == 0 || _queue.Peek().Due > limit.UtcTicks) return false;
                next = Math.Max(_queue.Peek().Due, _now);
            }

            Fire(next, long.MaxValue);
            return true;
        }
        finally
        {
            Monitor.Exit(_advancing);
        }
    }

    /// <summary>
    /// Fires, in order, what is due at or before <paramref name="target"/> (ticks), at most <paramref name="max"/>;
    /// when it stops because nothing more is due, the clock reads <paramref name="target"/>. The caller holds
    /// <see cref="_advancing"/>.
    /// </summary>
    private long Fire(long target, long max)
    {
        long fired = 0;
        while (true)
        {
            Entry entry;
            lock (_gate)
            {
                if (_queue.Count == 0 || _queue.Peek().Due > target)
                {
                    if (target > _now) Volatile.Write(ref _now, target);
                    return fired;
                }

                if (fired == max) return fired;
                entry = _queue.Pop();
                if (entry.Due > _now) Volatile.Write(ref _now, entry.Due);
                entry.Popped(this);
            }

            fired++;
            Interlocked.Increment(ref _fired);
            if (entry is Once) Interlocked.Increment(ref _actionsRun);
            entry.Run();
        }
    }

    /// <summary>Takes the right to move time: waits for another thread's advance, refuses one from inside a callback.</summary>
    private void EnterAdvance()
    {
        if (Monitor.IsEntered(_advancing)) throw new InvalidOperationException("Time cannot be moved from inside a timer callback or scheduled action.");
        Monitor.Enter(_advancing);
    }

    private static void Validate(TimeSpan value, string name)
    {
        if (value == Timeout.InfiniteTimeSpan) return;
        if (value < TimeSpan.Zero || value.TotalMilliseconds > MaxTimeoutMilliseconds) throw new ArgumentOutOfRangeException(name, value, "must be Timeout.InfiniteTimeSpan or between 0 and 0xfffffffe ms");
    }

    /// <summary>Something in the queue. Its fields belong to the clock's gate.</summary>
    private abstract class Entry
    {
        public long Due;
        public long Sequence;

        /// <summary>Where it sits in the queue's heap; -1 when not queued.</summary>
        public int Index = -1;

        /// <summary>Called under the gate as the entry leaves the queue to fire (a periodic timer re-arms here).</summary>
        public virtual void Popped(VirtualTimeProvider clock)
        {
        }

        /// <summary>Called outside the gate.</summary>
        public abstract void Run();

        public bool Before(Entry other) => Due < other.Due || (Due == other.Due && Sequence < other.Sequence);
    }

    private sealed class Once(Action action) : Entry
    {
        public override void Run() => action();
    }

    private sealed class Timer(VirtualTimeProvider clock, TimerCallback callback, object? state) : Entry, ITimer
    {
        private long _period;
        private bool _disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            Validate(dueTime, nameof(dueTime));
            Validate(period, nameof(period));
            lock (clock._gate)
            {
                if (_disposed) return false;
                if (Index >= 0) clock._queue.Remove(this);
                if (dueTime == Timeout.InfiniteTimeSpan) return true;
                _period = period == Timeout.InfiniteTimeSpan ? 0 : period.Ticks;
                Due = clock._now + dueTime.Ticks;
                Sequence = ++clock._sequence;
                clock._queue.Push(this);
                return true;
            }
        }

        public override void Popped(VirtualTimeProvider owner)
        {
            if (_period <= 0) return;
            Due += _period;
            Sequence = ++owner._sequence;
            owner._queue.Push(this);
        }

        public override void Run() => callback(state);

        public void Dispose()
        {
            lock (clock._gate)
            {
                _disposed = true;
                if (Index >= 0) clock._queue.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>A binary min-heap of entries by (due, sequence) in which each entry knows its index, so one can be
    /// removed or moved without a search. Used under the clock's gate.</summary>
    private sealed class EntryQueue
    {
        private Entry[] _heap = new Entry[64];

        public int Count { get; private set; }

        public Entry Peek() => _heap[0];

        public void Push(Entry entry)
        {
            if (Count == _heap.Length) Array.Resize(ref _heap, Count * 2);
            Place(entry, Count++);
            Up(entry.Index);
        }

        public Entry Pop()
        {
            var top = _heap[0];
            RemoveAt(0);
            return top;
        }

        public void Remove(Entry entry) => RemoveAt(entry.Index);

        private void RemoveAt(int index)
        {
            var removed = _heap[index];
            removed.Index = -1;
            var last = _heap[--Count];
            _heap[Count] = null!;
            if (index == Count) return;
            Place(last, index);
            if (index > 0 && last.Before(_heap[(index - 1) / 2])) Up(index);
            else Down(index);
        }

        private void Place(Entry entry, int index)
        {
            _heap[index] = entry;
            entry.Index = index;
        }

        private void Up(int index)
        {
            var entry = _heap[index];
            while (index > 0)
            {
                var parent = (index - 1) / 2;
                if (!entry.Before(_heap[parent])) break;
                Place(_heap[parent], index);
                index = parent;
            }

            Place(entry, index);
        }

        private void Down(int index)
        {
            var entry = _heap[index];
            while (true)
            {
                var child = (2 * index) + 1;
                if (child >= Count) break;
                if (child + 1 < Count && _heap[child + 1].Before(_heap[child])) child++;
                if (!_heap[child].Before(entry)) break;
                Place(_heap[child], index);
                index = child;
            }

            Place(entry, index);
        }
    }
}
