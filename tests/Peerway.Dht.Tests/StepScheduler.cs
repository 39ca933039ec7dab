using Microsoft.Extensions.Time.Testing;
using Peerway.Net;

namespace Peerway.Dht.Tests;

/// <summary>
/// A single-threaded, deterministic delivery scheduler for <see cref="VirtualNetwork"/> tests: deliveries run only when
/// the test calls <see cref="RunUntilIdle"/> / <see cref="RunUntil"/>, on the test's thread; virtual time moves only
/// through the shared <see cref="FakeTimeProvider"/> (whose timers also fire on the test's thread).
/// </summary>
internal sealed class StepScheduler(FakeTimeProvider time) : IDeliveryScheduler
{
    private readonly Queue<Action> _ready = new();
    private readonly List<(DateTimeOffset Due, long Seq, Action Action)> _delayed = [];
    private long _seq;

    public FakeTimeProvider Time { get; } = time;

    public long Executed { get; private set; }

    public void Schedule(TimeSpan delay, Action action)
    {
        if (delay <= TimeSpan.Zero) _ready.Enqueue(action);
        else _delayed.Add((Time.GetUtcNow() + delay, _seq++, action));
    }

    /// <summary>Runs deliveries until none is ready (bounded, so a livelock fails the test instead of hanging it).</summary>
    /// <remarks>
    /// Runs without a SynchronizationContext (as a console host or the simulator would): otherwise the test framework's
    /// context makes the runtime post task continuations to the thread pool instead of running them inline.
    /// </remarks>
    public void RunUntilIdle(long maxSteps = 50_000_000) => RunInline(() =>
    {
        while (_ready.Count > 0)
        {
            if (++Executed > maxSteps) throw new InvalidOperationException("Scheduler did not go idle.");
            _ready.Dequeue()();
        }
    });

    /// <summary>Runs <paramref name="action"/> without a SynchronizationContext, so continuations it triggers run inline.</summary>
    public static void RunInline(Action action)
    {
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

    /// <summary>Runs deliveries; when idle and <paramref name="done"/> is false, advances virtual time by <paramref name="step"/>.</summary>
    public bool RunUntil(Func<bool> done, TimeSpan step, TimeSpan max)
    {
        var limit = Time.GetUtcNow() + max;
        while (true)
        {
            RunUntilIdle();
            if (done()) return true;
            if (Time.GetUtcNow() >= limit) return false;
            RunInline(() => Time.Advance(step)); // fires due TimeProvider timers on this thread

            var now = Time.GetUtcNow();
            foreach (var d in _delayed.Where(d => d.Due <= now).OrderBy(d => d.Due).ThenBy(d => d.Seq).ToList())
            {
                _delayed.Remove(d);
                _ready.Enqueue(d.Action);
            }
        }
    }

    /// <summary>Runs until <paramref name="task"/> completes and returns its result.</summary>
    public T Await<T>(Task<T> task, TimeSpan? max = null)
    {
        Assert.True(RunUntil(() => task.IsCompleted, TimeSpan.FromMilliseconds(250), max ?? TimeSpan.FromMinutes(5)), "task did not complete in virtual time");
        return task.GetAwaiter().GetResult();
    }
}

/// <summary>A virtual network of DhtNodes on one <see cref="StepScheduler"/>.</summary>
internal sealed class DhtTestNetwork : IAsyncDisposable
{
    private readonly List<DhtNode> _nodes = [];

    public DhtTestNetwork(DateTimeOffset? start = null)
    {
        Time = new FakeTimeProvider(start ?? new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        Scheduler = new StepScheduler(Time);
        Network = new VirtualNetwork(Scheduler);
    }

    public FakeTimeProvider Time { get; }

    public StepScheduler Scheduler { get; }

    public VirtualNetwork Network { get; }

    public IReadOnlyList<DhtNode> Nodes => _nodes;

    public DhtNode AddNode(DhtOptions? options = null, System.Net.IPEndPoint? endPoint = null)
    {
        var node = new DhtNode(Network.CreateSocket(endPoint), Time, options ?? new DhtOptions { RandomSeed = _nodes.Count + 1 });
        node.Start();
        _nodes.Add(node);
        return node;
    }

    public T Await<T>(Task<T> task) => Scheduler.Await(task);

    public async ValueTask DisposeAsync()
    {
        foreach (var n in _nodes) await n.DisposeAsync();
    }
}
