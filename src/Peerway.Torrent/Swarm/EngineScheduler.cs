using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Peerway.Net;

namespace Peerway.Torrent.Swarm;

/// <summary>
/// Where the torrent engine runs work it does not run inline: the start of a connection's or a route's task, storage
/// opening, the disk queue's worker, the send pumps of the peer connections, and events raised off the lock. Without an
/// executor that is the thread pool, as before; given one (<see cref="TorrentClientOptions.Scheduler"/>: the tests' or
/// the simulator's single-threaded, virtual-time <see cref="IDeliveryScheduler"/>) every hop goes there, so an engine on
/// a virtual network and a fake clock never leaves the thread that runs the executor and a run is deterministic. Time is
/// not here: it comes from the engine's <see cref="TimeProvider"/>.
/// </summary>
/// <remarks>
/// An executor is an <see cref="IDeliveryScheduler"/> (work scheduled with a zero delay), not a
/// <see cref="TaskScheduler"/>: an <c>await</c> continuation triggered while a custom <see cref="TaskScheduler"/> runs a
/// task is never inlined, the runtime posts it to the thread pool. For the same reason, with an executor the engine's
/// completion sources run their continuations inline (<see cref="CompletionOptions"/>), the disk queue hands a piece to
/// its worker synchronously (memory storage needs no thread of its own), and cancellation callbacks run inline
/// (<see cref="CancelAsync"/>) instead of on the thread pool.
/// </remarks>
internal sealed class EngineScheduler
{
    /// <summary>The thread pool.</summary>
    public static EngineScheduler ThreadPool { get; } = new(null);

    private readonly IDeliveryScheduler? _executor;

    /// <param name="executor">Runs the work (zero delay); null: the thread pool.</param>
    public EngineScheduler(IDeliveryScheduler? executor)
    {
        _executor = executor;
        Pipes = executor is null ? PipeScheduler.ThreadPool : new ExecutorPipeScheduler(this);
    }

    /// <summary>True for the thread pool: work may run in parallel and continuations hop threads.</summary>
    public bool IsThreadPool => _executor is null;

    /// <summary>The scheduler a <see cref="Pipe"/>'s reader continuations (the send pumps) run on.</summary>
    public PipeScheduler Pipes { get; }

    /// <summary>
    /// Options for the engine's completion sources: on the thread pool their continuations run asynchronously (never
    /// under the completer's locks); under an executor inline, where posting them would leave the executor.
    /// </summary>
    public TaskCreationOptions CompletionOptions => IsThreadPool ? TaskCreationOptions.RunContinuationsAsynchronously : TaskCreationOptions.None;

    /// <summary>Runs <paramref name="work"/> later, on the executor (or the thread pool).</summary>
    public void Post(Action work)
    {
        if (_executor is { } executor) executor.Schedule(TimeSpan.Zero, work);
        else System.Threading.ThreadPool.UnsafeQueueUserWorkItem(static w => w(), work, preferLocal: false);
    }

    /// <summary>Starts <paramref name="work"/> on the executor (what <c>Task.Run</c> did).</summary>
    public Task RunAsync(Func<Task> work)
    {
        if (IsThreadPool) return Task.Run(work);
        var started = new TaskCompletionSource<Task>();
        Post(() =>
        {
            try
            {
                started.SetResult(work());
            }
            catch (Exception ex)
            {
                started.SetException(ex);
            }
        });
        return started.Task.Unwrap();
    }

    /// <summary>Runs <paramref name="work"/> on the executor (what <c>Task.Run</c> did); its exception faults the task.</summary>
    public Task RunAsync(Action work, CancellationToken ct)
    {
        if (IsThreadPool) return Task.Run(work, ct);
        var done = new TaskCompletionSource();
        Post(() =>
        {
            if (ct.IsCancellationRequested)
            {
                done.SetCanceled(ct);
                return;
            }

            try
            {
                work();
                done.SetResult();
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        });
        return done.Task;
    }

    /// <summary>An awaitable that resumes on the executor, later (what <c>await Task.Yield()</c> did on the pool).</summary>
    public YieldAwaitable Yield() => new(this);

    /// <summary>
    /// Cancels <paramref name="cts"/>: on the thread pool with <see cref="CancellationTokenSource.CancelAsync"/> (the
    /// callbacks run there, not under the caller's locks); under an executor inline, since <c>CancelAsync</c> would run
    /// the callbacks on the thread pool, outside it.
    /// </summary>
    public Task CancelAsync(CancellationTokenSource cts)
    {
        if (IsThreadPool) return cts.CancelAsync();
#pragma warning disable VSTHRD103 // inline on purpose: a single-threaded executor has no other thread to run the callbacks
        cts.Cancel();
#pragma warning restore VSTHRD103
        return Task.CompletedTask;
    }

    /// <summary>Resumes the awaiting method on the executor.</summary>
    internal readonly struct YieldAwaitable(EngineScheduler scheduler) : ICriticalNotifyCompletion
    {
        public YieldAwaitable GetAwaiter() => this;

        public bool IsCompleted => false;

        public void GetResult()
        {
        }

        public void OnCompleted(Action continuation) => scheduler.Post(continuation);

        public void UnsafeOnCompleted(Action continuation) => scheduler.Post(continuation);
    }

    /// <summary>A <see cref="PipeScheduler"/> that posts to the executor.</summary>
    private sealed class ExecutorPipeScheduler(EngineScheduler scheduler) : PipeScheduler
    {
        public override void Schedule(Action<object?> action, object? state) => scheduler.Post(() => action(state));
    }
}
