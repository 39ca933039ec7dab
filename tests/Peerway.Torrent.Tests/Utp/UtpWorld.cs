using System.Net;
using Microsoft.Extensions.Time.Testing;
using Peerway.Net;
using Peerway.Torrent.Utp;

namespace Peerway.Torrent.Tests.Utp;

/// <summary>
/// A deterministic, single-threaded world for uTP engine tests: a <see cref="VirtualNetwork"/> whose deliveries wait in
/// a queue ordered by due time on a <see cref="FakeTimeProvider"/>; a loop runs what is due, then moves time on by at
/// most a millisecond (so the transports' 50 ms timers fire on time). Random per-datagram latency reorders,
/// <see cref="DuplicateRate"/> duplicates, the link's loss rate drops, and a path MTU (Ethernet's 1,500 unless told;
/// null for none) drops datagrams too large for it. Transports complete waiters inline, and the
/// loop runs without a SynchronizationContext, so readers and writers run on the loop's thread too.
/// </summary>
internal sealed class UtpWorld : IDeliveryScheduler
{
    private readonly PriorityQueue<Action, (DateTimeOffset, long)> _queue = new();
    private readonly Random _random;
    private readonly List<UtpTransport> _transports = [];
    private long _sequence;

    /// <param name="spikeRate">The share of datagrams held up by a further random delay of up to <paramref name="spike"/>
    /// (a busy host that runs its socket late: spurious timeouts, resends of what arrived, heavy reordering).</param>
    public UtpWorld(double lossRate = 0, double duplicateRate = 0, TimeSpan? latency = null, TimeSpan? maxJitter = null, int seed = 7, int? mtu = 1500,
        double spikeRate = 0, TimeSpan? spike = null)
    {
        _random = new Random(seed);
        DuplicateRate = duplicateRate;
        var jitter = maxJitter ?? TimeSpan.Zero;
        var baseLatency = latency ?? TimeSpan.FromMilliseconds(1);
        Network = new VirtualNetwork(this, new VirtualLinkOptions
        {
            LossRate = lossRate,
            Seed = seed,
            Latency = (_, _) => baseLatency + (jitter * _random.NextDouble())
                + (spikeRate > 0 && _random.NextDouble() < spikeRate ? (spike ?? TimeSpan.Zero) * _random.NextDouble() : TimeSpan.Zero),
            Mtu = (_, _) => PathMtu ?? int.MaxValue,
        });
        PathMtu = mtu;
    }

    /// <summary>The MTU of every path (null: none); a test may change it while packets flow.</summary>
    public int? PathMtu { get; set; }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public VirtualNetwork Network { get; }

    public double DuplicateRate { get; }

    public long Duplicated { get; private set; }

    public void Schedule(TimeSpan delay, Action action)
    {
        var due = Time.GetUtcNow() + delay;
        _queue.Enqueue(action, (due, _sequence++));
        if (DuplicateRate > 0 && _random.NextDouble() < DuplicateRate)
        {
            Duplicated++;
            _queue.Enqueue(action, (due + TimeSpan.FromMilliseconds(_random.Next(0, 5)), _sequence++));
        }
    }

    public IDatagramSocket Socket(int host) => Network.CreateSocket(new IPEndPoint(IPAddress.Parse("10.0.0." + host), 6881));

    public UtpTransport Transport(int host, UtpOptions? options = null, Func<IDatagramSocket, IDatagramSocket>? wrap = null)
    {
        var socket = Socket(host);
        var transport = new UtpTransport(wrap is null ? socket : wrap(socket), Time,
            (options ?? new UtpOptions()) with { CompleteInline = true, RandomSeed = host });
        _transports.Add(transport);
        return transport;
    }

    /// <summary>Runs deliveries and timers until <paramref name="done"/> holds or <paramref name="limit"/> of virtual time passed.</summary>
    public bool RunUntil(Func<bool> done, TimeSpan limit)
    {
        var ok = false;
        RunInline(() => ok = Loop(done, limit));
        return ok;
    }

    private bool Loop(Func<bool> done, TimeSpan limit)
    {
        var end = Time.GetUtcNow() + limit;
        while (!done())
        {
            if (_queue.TryPeek(out _, out var key) && key.Item1 <= Time.GetUtcNow())
            {
                _queue.Dequeue()();
                continue;
            }

            if (Time.GetUtcNow() >= end) return false;
            var next = _queue.TryPeek(out _, out var k) ? k.Item1 - Time.GetUtcNow() : TimeSpan.FromMilliseconds(1);
            Time.Advance(next < TimeSpan.FromMilliseconds(1) ? next : TimeSpan.FromMilliseconds(1));
        }

        return true;
    }

    /// <summary>Runs <paramref name="task"/>'s world until it completes and returns its result.</summary>
    public T Await<T>(Task<T> task, TimeSpan? limit = null)
    {
        Assert.True(RunUntil(() => task.IsCompleted, limit ?? TimeSpan.FromMinutes(10)), "task did not complete in virtual time");
#pragma warning disable VSTHRD002 // the task has completed (asserted above): this only unwraps its result
        return task.GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
    }

    /// <summary>Starts <paramref name="start"/> without a SynchronizationContext, so its continuations run inline.</summary>
    public static T RunInline<T>(Func<T> start)
    {
        var context = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            return start();
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(context);
        }
    }

    public void Dispose()
    {
        foreach (var t in _transports)
        {
            Await(RunInline(async () =>
            {
                await t.DisposeAsync();
                return true;
            }));
        }
    }
}
