using System.Runtime.ExceptionServices;

namespace Peerway.Core.Threading;

/// <summary>
/// The background tasks an engine has started and not yet seen finish (STYLE.md §9: an engine keeps every task it
/// starts and awaits them in <c>DisposeAsync</c>; a fire-and-forget <c>_ = SendAsync(...)</c> hides a failure).
/// Thread-safe; a finished task leaves the set by itself.
/// </summary>
public sealed class BackgroundTasks
{
    private readonly Lock _gate = new();
    private readonly HashSet<Task> _running = [];

    // Tasks that failed, kept until WhenAllAsync reports them: one that fails long before disposal is not lost.
    private readonly HashSet<Task> _failed = [];

    /// <summary>How many tracked tasks have not finished yet.</summary>
    public int Count
    {
        get
        {
            lock (_gate) return _running.Count;
        }
    }

    /// <summary>Keeps <paramref name="task"/> until it finishes; <see cref="WhenAllAsync"/> awaits it.</summary>
    public void Track(Task task)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (task.IsCompleted && task.Status == TaskStatus.RanToCompletion) return;
        lock (_gate) _running.Add(task);
        // A ContinueWith run synchronously, not an await continuation (GetAwaiter().OnCompleted): when a task has an
        // await continuation, the runtime runs every later one (WhenAllAsync's, an engine's DisposeAsync awaiting it)
        // on the thread pool instead of inline, which took an engine's disposal off a single-threaded scheduler.
        _ = task.ContinueWith(static (t, state) => ((BackgroundTasks)state!).Forget(t), this, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>
    /// Completes when every tracked task has finished, including tasks tracked while it waits; a task that failed
    /// rethrows its exception here, so a failure in the background is observed by whoever disposes the engine.
    /// </summary>
    public async Task WhenAllAsync()
    {
        var seen = new HashSet<Task>();
        while (true)
        {
            Task[] pending;
            lock (_gate) pending = [.. _running.Where(seen.Add)];
            if (pending.Length == 0) break;
            await Task.WhenAll(pending).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            lock (_gate)
            {
                foreach (var t in pending.Where(t => t.IsFaulted)) _failed.Add(t);
            }
        }

        // A cancelled task is a shutdown, not a failure.
        List<Exception> failures;
        lock (_gate)
        {
            failures = [.. _failed.SelectMany(t => t.Exception!.InnerExceptions)];
            _failed.Clear();
        }

        if (failures.Count == 1) ExceptionDispatchInfo.Throw(failures[0]);
        if (failures.Count > 1) throw new AggregateException(failures);
    }

    private void Forget(Task task)
    {
        lock (_gate)
        {
            _running.Remove(task);
            if (task.IsFaulted) _failed.Add(task);
        }
    }
}
