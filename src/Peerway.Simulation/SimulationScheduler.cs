namespace Peerway.Simulation;

/// <summary>Something the <see cref="SimulationScheduler"/> runs at a virtual instant.</summary>
internal interface ISimulationEvent
{
    /// <summary>Runs the event. <paramref name="token"/> is the value given when it was scheduled.</summary>
    void Run(long token);
}

/// <summary>
/// A single-threaded discrete-event scheduler: events run in order of (virtual time, insertion sequence), so a run
/// with the same seed and the same inputs is identical. Virtual time only moves when the next event is taken.
/// </summary>
/// <remarks>
/// It is also the <see cref="Peerway.Net.IDeliveryScheduler"/> of a <see cref="Peerway.Net.VirtualNetwork"/>. Events
/// run with <see cref="SynchronizationContext.Current"/> cleared on purpose: with one (a test runner's, say), .NET
/// refuses to inline
/// <c>ConfigureAwait(false)</c> continuations and sends them to the thread pool. Without one, a continuation runs
/// inline on the thread that completed its task — the scheduler thread, as long as the code under test completes
/// tasks from its datagram handlers and timers. Anything that still arrives from another thread is counted in
/// <see cref="ThreadViolations"/> and queued through a thread-safe inbox.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "_inboxSignal is a SemaphoreSlim whose wait handle is never requested, so it holds nothing to dispose.")]
public sealed class SimulationScheduler : Peerway.Net.IDeliveryScheduler
{
    // Keys compare through IComparable on a struct (no comparer object): the queue's sift loops then compare inline.
    private readonly PriorityQueue<Item, Key> _queue = new();
    private readonly Dictionary<long, Lane> _lanes = [];
    private readonly int _seed;
    private readonly System.Collections.Concurrent.ConcurrentQueue<(Item Item, long DelayTicks)> _inbox = new();
    private readonly SemaphoreSlim _inboxSignal = new(0);
    private long _sequence;
    private int _ownerThread;
    private long _threadViolations;
    private long _faults;

    /// <summary>Creates a scheduler at virtual time zero whose <see cref="Random"/> is seeded with <paramref name="seed"/>.</summary>
    public SimulationScheduler(int seed)
    {
        _seed = seed;
        Random = new Random(seed);
        Time = new SimulatedTimeProvider(this);
    }

    /// <summary>The seed this run started from.</summary>
    public int Seed => _seed;

    /// <summary>The run's deterministic random source. Use only from the scheduler thread.</summary>
    public Random Random { get; }

    /// <summary>Virtual time (a <see cref="TimeProvider"/> whose timers are events of this scheduler).</summary>
    public SimulatedTimeProvider Time { get; }

    /// <summary>Virtual time since the start, in <see cref="TimeSpan"/> ticks.</summary>
    public long NowTicks { get; private set; }

    /// <summary>Virtual time since the start (<see cref="NowTicks"/> as a <see cref="TimeSpan"/>).</summary>
    public TimeSpan Now => TimeSpan.FromTicks(NowTicks);

    /// <summary>Events run so far.</summary>
    public long EventsRun { get; private set; }

    /// <summary>Events waiting (including cancelled timers not yet reached).</summary>
    public int Pending { get; private set; }

    /// <summary>Calls into the simulation from a thread other than the one running it (an engine escaping its
    /// scheduler, e.g. through <c>Task.Run</c>): each one breaks determinism.</summary>
    public long ThreadViolations => Interlocked.Read(ref _threadViolations);

    /// <summary>Where the first call from a foreign thread came from (for the bug report).</summary>
    public string? FirstViolation { get; private set; }

    /// <summary>Events that threw; the first is kept in <see cref="FirstFault"/>.</summary>
    public long Faults => _faults;

    /// <summary>The first exception an event threw (<see langword="null"/>: none); see <see cref="Faults"/>.</summary>
    public Exception? FirstFault { get; private set; }

    /// <summary>When true (the default), an event that throws stops the run by rethrowing.</summary>
    public bool ThrowOnFault { get; init; } = true;

    /// <summary>Runs <paramref name="action"/> after <paramref name="delay"/> of virtual time.</summary>
    public void Schedule(TimeSpan delay, Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        Enqueue(delay.Ticks, new ActionEvent(action), 0);
    }

    /// <summary>How long (real time) a run waits, when no event is left, for work arriving from other threads
    /// before concluding the run is stuck. Only code that escapes the scheduler (a determinism bug) needs it.</summary>
    public TimeSpan ForeignThreadGrace { get; init; } = TimeSpan.FromSeconds(2);

    internal void Enqueue(long delayTicks, ISimulationEvent e, long token)
    {
        if (delayTicks < 0) delayTicks = 0;
        if (!CheckThread())
        {
            _inbox.Enqueue((new Item(e, token), delayTicks));
            _inboxSignal.Release();
            return;
        }

        Pending++;
        _queue.Enqueue(new Item(e, token), new Key(NowTicks + delayTicks, _sequence++));
    }

    /// <summary>
    /// Like <see cref="Enqueue"/>, for events whose delay recurs (timers: every query timeout of an engine has the same
    /// delay). Events with the same delay, enqueued as time advances, are already in (time, sequence) order, so they
    /// wait in a FIFO lane and only each lane's head sits in the priority queue: O(1) instead of O(log n) per event,
    /// and the same order as <see cref="Enqueue"/> (hence the same run).
    /// </summary>
    internal void EnqueueRecurring(long delayTicks, ISimulationEvent e, long token)
    {
        if (delayTicks < 0) delayTicks = 0;
        if (!CheckThread())
        {
            _inbox.Enqueue((new Item(e, token), delayTicks));
            _inboxSignal.Release();
            return;
        }

        if (!_lanes.TryGetValue(delayTicks, out var lane))
        {
            lane = new Lane(this);
            _lanes.Add(delayTicks, lane);
        }

        Pending++;
        var key = new Key(NowTicks + delayTicks, _sequence++);
        lane.Items.Enqueue((new Item(e, token), key));
        if (lane.Items.Count == 1) _queue.Enqueue(new Item(lane, 0), key);
    }

    /// <summary>Whether the caller is the thread running the simulation (or none runs yet); otherwise counts a
    /// violation (see <see cref="ThreadViolations"/>).</summary>
    internal bool CheckThread()
    {
        var owner = Volatile.Read(ref _ownerThread);
        if (owner == 0 || owner == Environment.CurrentManagedThreadId) return true;
        if (Interlocked.Increment(ref _threadViolations) == 1) FirstViolation = Environment.StackTrace;
        return false;
    }

    private void DrainInbox()
    {
        while (_inbox.TryDequeue(out var e))
        {
            Pending++;
            _queue.Enqueue(e.Item, new Key(NowTicks + e.DelayTicks, _sequence++));
        }
    }

    /// <summary>With nothing left to run, waits (real time) for work posted from other threads: always when the run
    /// waits for a condition (only foreign work can still satisfy it), otherwise only after a violation.</summary>
    private bool WaitForForeignWork(bool waitingForCondition)
    {
        if (!waitingForCondition && Interlocked.Read(ref _threadViolations) == 0 && _inbox.IsEmpty) return false;
        if (!_inboxSignal.Wait(ForeignThreadGrace)) return false;
        DrainInbox();
        return true;
    }

    /// <summary>Runs events until none is due at or before <paramref name="until"/>; the clock then reads
    /// <paramref name="until"/>.</summary>
    public void RunUntil(TimeSpan until) => Run(until.Ticks, static () => false);

    /// <summary>Runs events for <paramref name="duration"/> of virtual time.</summary>
    public void RunFor(TimeSpan duration) => RunUntil(Now + duration);

    /// <summary>Runs until <paramref name="done"/> holds (checked after each event) or the queue is empty.</summary>
    /// <returns>Whether <paramref name="done"/> held.</returns>
    public bool RunUntil(Func<bool> done, TimeSpan? limit = null)
    {
        ArgumentNullException.ThrowIfNull(done);
        var end = limit is { } l ? NowTicks + l.Ticks : long.MaxValue;
        Run(end, done);
        return done();
    }

    /// <summary>Runs a scenario written as an async method to completion on this thread.</summary>
    public T Run<T>(Func<Task<T>> scenario)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        Task<T>? task = null;
        WithContext(() => task = scenario());
        RunUntil(() => task!.IsCompleted);
        if (!task!.IsCompleted) throw new InvalidOperationException("The scenario is waiting on something that will never happen (no events left).");
#pragma warning disable VSTHRD002 // the task has completed (checked above): this only unwraps its result
        return task.GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
    }

    private void WithContext(Action action)
    {
        var previousOwner = _ownerThread;
        // Run with no SynchronizationContext (a test runner's, or a UI's, would get every ConfigureAwait(false)
        // continuation sent to the thread pool instead of inlined).
        var previousContext = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        Volatile.Write(ref _ownerThread, Environment.CurrentManagedThreadId);
        try
        {
            action();
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previousContext);
            Volatile.Write(ref _ownerThread, previousOwner);
        }
    }

    private void Run(long endTicks, Func<bool> done)
    {
        WithContext(() =>
        {
            while (!done())
            {
                DrainInbox();
                if (!_queue.TryPeek(out _, out var key))
                {
                    if (WaitForForeignWork(endTicks == long.MaxValue)) continue;
                    break;
                }

                if (key.Time > endTicks) break;
                _queue.TryDequeue(out var item, out _);
                Pending--;
                NowTicks = key.Time;
                EventsRun++;
                try
                {
                    item.Event.Run(item.Token);
                }
                catch (Exception ex) when (!ThrowOnFault && ex is not OutOfMemoryException)
                {
                    _faults++;
                    FirstFault ??= ex;
                }
            }

            if (endTicks != long.MaxValue && NowTicks < endTicks && !done()) NowTicks = endTicks;
        });
    }

    private readonly record struct Item(ISimulationEvent Event, long Token);

    private readonly record struct Key(long Time, long Sequence) : IComparable<Key>
    {
        public int CompareTo(Key other)
        {
            var c = Time.CompareTo(other.Time);
            return c != 0 ? c : Sequence.CompareTo(other.Sequence);
        }
    }

    /// <summary>A FIFO of events with one delay; in the priority queue under its head's key (see <see cref="EnqueueRecurring"/>).</summary>
    private sealed class Lane(SimulationScheduler scheduler) : ISimulationEvent
    {
        public Queue<(Item Item, Key Key)> Items { get; } = new();

        public void Run(long token)
        {
            var (item, _) = Items.Dequeue();
            if (Items.Count > 0) scheduler._queue.Enqueue(new Item(this, 0), Items.Peek().Key);
            item.Event.Run(item.Token);
        }
    }

    private sealed class ActionEvent(Action action) : ISimulationEvent
    {
        public void Run(long token) => action();
    }
}
