using Microsoft.Extensions.Time.Testing;

namespace Peerway.Net.Tests;

/// <summary>
/// A discrete-event <see cref="IDeliveryScheduler"/> on a <see cref="FakeTimeProvider"/>: events run in (due time,
/// order scheduled) on the test's thread, and the clock jumps to each event's due time, so virtual time is exact.
/// </summary>
internal sealed class EventLoop : IDeliveryScheduler
{
    private readonly PriorityQueue<Action, (long Due, long Seq)> _queue = new();
    private long _seq;

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public long NowTicks => Time.GetUtcNow().UtcTicks;

    /// <summary>Virtual time since the loop was made.</summary>
    public TimeSpan Elapsed => Time.GetUtcNow() - new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public int Pending => _queue.Count;

    public void Schedule(TimeSpan delay, Action action) => _queue.Enqueue(action, (NowTicks + Math.Max(0, delay.Ticks), _seq++));

    /// <summary>Runs events until <paramref name="done"/> holds or none is left; without a SynchronizationContext, so
    /// continuations run inline on this thread.</summary>
    public bool RunUntil(Func<bool> done)
    {
        var context = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            while (!done())
            {
                if (!_queue.TryDequeue(out var action, out var key)) return false;
                if (key.Due > NowTicks) Time.Advance(TimeSpan.FromTicks(key.Due - NowTicks));
                action();
            }

            return true;
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(context);
        }
    }

    /// <summary>Starts <paramref name="scenario"/> on this thread and runs events until its task ends.</summary>
    public T Run<T>(Func<Task<T>> scenario)
    {
        Task<T>? task = null;
        RunUntil(() =>
        {
            task ??= scenario();
            return task.IsCompleted;
        });
        Assert.True(task!.IsCompleted, "the scenario waits for something that never happens (no events left)");
#pragma warning disable VSTHRD002 // completed above: this reads the result, it does not wait
        return task.GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
    }

    public void Run(Func<Task> scenario) => Run(async () =>
    {
        await scenario();
        return true;
    });
}
