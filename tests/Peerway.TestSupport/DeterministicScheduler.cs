using Microsoft.Extensions.Time.Testing;
using Peerway.Net;
using Xunit;

namespace Peerway.TestSupport;

/// <summary>
/// The one deterministic delivery scheduler for <see cref="VirtualNetwork"/> tests: deliveries run only when the test
/// calls <see cref="RunDue"/>, <see cref="RunUntilIdle"/> or <see cref="RunUntil"/>, on the test's thread, in order
/// of due time and then of scheduling; virtual time moves only through the shared clock (whose timers also fire on
/// the test's thread). <see cref="Schedule"/> may be called from any thread.
/// </summary>
/// <remarks>
/// <para>Over a <see cref="VirtualTimeProvider"/> the deliveries wait in the clock's own queue, with its timers: both
/// run in one order of due time and then of scheduling, each at its due time, and a step of
/// <see cref="RunUntil"/> runs everything due within it as it falls due. Over a <c>FakeTimeProvider</c> the deliveries
/// wait in a queue of their own: a step moves the clock (firing its timers) and then runs the deliveries due.</para>
/// <para>The run methods run without the test runner's SynchronizationContext (as a console host or the simulator
/// would): under one, the runtime refuses to inline a completed task's continuations and posts them to the thread
/// pool, which would race this loop.</para>
/// </remarks>
public sealed class DeterministicScheduler : IDeliveryScheduler
{
    private readonly Lock _gate = new();
    private readonly PriorityQueue<Action, (long DueTicks, long Seq)> _queue = new();
    private readonly FakeTimeProvider? _fake;
    private readonly VirtualTimeProvider? _clock;
    private const long MaxSteps = 50_000_000;
    private long _seq;
    private long _executed;
    private int _runner;

    /// <summary>Deliveries in a queue of their own; <paramref name="time"/>'s timers fire when a step moves it.</summary>
    public DeterministicScheduler(FakeTimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        _fake = time;
        Time = time;
    }

    /// <summary>Deliveries in <paramref name="time"/>'s queue, in one order with its timers.</summary>
    public DeterministicScheduler(VirtualTimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        _clock = time;
        Time = time;
    }

    /// <summary>The clock: a <c>FakeTimeProvider</c> or a <see cref="VirtualTimeProvider"/>.</summary>
    public TimeProvider Time { get; }

    /// <summary>How many deliveries have been scheduled.</summary>
    public long Scheduled => Interlocked.Read(ref _seq);

    /// <summary>How many deliveries have run.</summary>
    public long Executed => _clock?.ActionsRun ?? Interlocked.Read(ref _executed);

    /// <summary>True on the thread that is running this scheduler's deliveries right now (inside a run method).</summary>
    public bool OnRunnerThread => Volatile.Read(ref _runner) == Environment.CurrentManagedThreadId;

    public void Schedule(TimeSpan delay, Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        if (_clock is not null)
        {
            Interlocked.Increment(ref _seq);
            _clock.Schedule(delay, action);
            return;
        }

        var due = Time.GetUtcNow() + (delay > TimeSpan.Zero ? delay : TimeSpan.Zero);
        lock (_gate) _queue.Enqueue(action, (due.UtcTicks, Interlocked.Increment(ref _seq)));
    }

    /// <summary>Runs every due delivery, including the ones they schedule; returns how many ran.</summary>
    public int RunDue() => RunDue(long.MaxValue);

    /// <summary>Runs due deliveries until none is left (bounded, so a livelock fails the test instead of hanging it).</summary>
    public void RunUntilIdle(long maxSteps = MaxSteps) => RunAsRunner(() => RunBounded(maxSteps));

    /// <summary>
    /// Runs due deliveries; when none is due and <paramref name="done"/> is false, advances virtual time by
    /// <paramref name="step"/>. Returns whether <paramref name="done"/> held within <paramref name="max"/> of virtual time.
    /// </summary>
    public bool RunUntil(Func<bool> done, TimeSpan step, TimeSpan max)
    {
        ArgumentNullException.ThrowIfNull(done);
        var limit = Time.GetUtcNow() + max;
        var reached = false;
        RunAsRunner(() =>
        {
            while (true)
            {
                if (RunBounded(MaxSteps) > 0) continue;
                if (done())
                {
                    reached = true;
                    return;
                }

                var now = Time.GetUtcNow();
                if (now >= limit) return;
                if (_clock is not null)
                {
                    // Everything due within the step runs as it falls due, in one order; bounded like RunBounded.
                    var end = now + step < limit ? now + step : limit;
                    if (_clock.AdvanceTo(end, MaxSteps) >= MaxSteps) throw new InvalidOperationException("Scheduler did not go idle.");
                }
                else
                {
                    _fake!.Advance(step); // fires due TimeProvider timers on this thread
                }
            }
        });
        return reached;
    }

    /// <summary>Runs until <paramref name="task"/> completes and returns its result.</summary>
    public T Await<T>(Task<T> task, TimeSpan? max = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        Assert.True(RunUntil(() => task.IsCompleted, TimeSpan.FromMilliseconds(250), max ?? TimeSpan.FromMinutes(5)), "task did not complete in virtual time");
#pragma warning disable VSTHRD002 // the task has completed (asserted above): this only unwraps its result
        return task.GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
    }

    /// <summary>Starts <paramref name="start"/> outside the test runner's context and runs until its task ends.</summary>
    public Task<T> RunAsync<T>(Func<Task<T>> start, TimeSpan max, TimeSpan? step = null)
    {
        ArgumentNullException.ThrowIfNull(start);
        Task<T>? task = null;
        RunAsRunner(() => task = start());
        RunUntil(() => task!.IsCompleted, step ?? TimeSpan.FromMilliseconds(10), max);
        return task!.IsCompleted ? task : throw new TimeoutException($"Not done after {max} of fake time.");
    }

    /// <summary>Runs <paramref name="action"/> without a SynchronizationContext, so continuations it triggers run inline.</summary>
    public static void RunInline(Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        var context = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            action();
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(context);
        }
    }

    /// <summary><see cref="RunInline"/>, marking this thread as the runner meanwhile (see <see cref="OnRunnerThread"/>).</summary>
    private void RunAsRunner(Action action)
    {
        var previous = Interlocked.Exchange(ref _runner, Environment.CurrentManagedThreadId);
        try
        {
            RunInline(action);
        }
        finally
        {
            Volatile.Write(ref _runner, previous);
        }
    }

    private int RunBounded(long maxSteps)
    {
        var ran = RunDue(maxSteps);
        return ran >= maxSteps ? throw new InvalidOperationException("Scheduler did not go idle.") : ran;
    }

    private int RunDue(long maxSteps)
    {
        if (_clock is not null) return (int)Math.Min(int.MaxValue, _clock.RunDue(maxSteps));
        var ran = 0;
        while (ran < maxSteps)
        {
            Action? next;
            lock (_gate)
            {
                if (!_queue.TryPeek(out next, out var key) || key.DueTicks > Time.GetUtcNow().UtcTicks) return ran;
                _queue.Dequeue();
            }

            Interlocked.Increment(ref _executed);
            next();
            ran++;
        }

        return ran;
    }
}
