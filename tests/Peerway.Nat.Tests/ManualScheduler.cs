using Microsoft.Extensions.Time.Testing;
using Peerway.Net;

namespace Peerway.Nat.Tests;

/// <summary>
/// Runs deliveries when the test says so, at FakeTimeProvider time: one thread drives the network, and a test moves
/// the world by fake time alone (no wall-clock waits).
/// </summary>
internal sealed class ManualScheduler(FakeTimeProvider time) : IDeliveryScheduler
{
    private readonly Lock _gate = new();
    private readonly List<(DateTimeOffset Due, long Seq, Action Action)> _queue = [];
    private long _seq;

    public FakeTimeProvider Time => time;

    public long Scheduled => Interlocked.Read(ref _seq);

    public void Schedule(TimeSpan delay, Action action)
    {
        lock (_gate) _queue.Add((time.GetUtcNow() + delay, Interlocked.Increment(ref _seq), action));
    }

    /// <summary>Runs every due delivery (including ones they cause); returns how many ran.</summary>
    public int RunDue()
    {
        var ran = 0;
        while (true)
        {
            (DateTimeOffset Due, long Seq, Action Action) next;
            lock (_gate)
            {
                var now = time.GetUtcNow();
                var i = _queue.FindIndex(e => e.Due <= now);
                if (i < 0) return ran;
                next = _queue[i];
                _queue.RemoveAt(i);
            }

            next.Action();
            ran++;
        }
    }

    /// <summary>
    /// Runs every due delivery (STUN/TURN transactions complete inline, so what they trigger is scheduled before the
    /// delivery returns), and only when nothing is due moves the clock on by <paramref name="step"/>, until
    /// <paramref name="done"/> or <paramref name="max"/> of fake time.
    /// </summary>
    /// <remarks>
    /// Runs without the test runner's SynchronizationContext: under one, the runtime refuses to inline a completed
    /// task's continuations and posts them to the thread pool, which would race this loop.
    /// </remarks>
    public void RunUntil(Func<bool> done, TimeSpan max, TimeSpan? step = null)
    {
        var context = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            var end = time.GetUtcNow() + max;
            while (!done() && time.GetUtcNow() < end)
            {
                if (RunDue() > 0) continue;
                time.Advance(step ?? TimeSpan.FromMilliseconds(10));
            }
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(context);
        }
    }

    /// <summary>Starts <paramref name="start"/> outside the test runner's context and runs until its task ends.</summary>
    public Task<T> Run<T>(Func<Task<T>> start, TimeSpan max)
    {
        var context = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        Task<T> task;
        try
        {
            task = start();
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(context);
        }

        RunUntil(() => task.IsCompleted, max);
        return task.IsCompleted ? task : throw new TimeoutException($"Not done after {max} of fake time.");
    }
}
