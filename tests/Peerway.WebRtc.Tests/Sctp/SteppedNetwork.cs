using System.Net;
using Microsoft.Extensions.Time.Testing;
using Peerway.Net;

namespace Peerway.WebRtc.Tests.Sctp;

/// <summary>
/// A deterministic, single-threaded world for engine tests: a <see cref="VirtualNetwork"/> whose deliveries wait in a
/// queue ordered by due time on a <see cref="FakeTimeProvider"/>, and a loop that runs what is due, then moves time
/// on. Random per-datagram latency reorders, <see cref="DuplicateRate"/> duplicates, the link's loss rate drops.
/// </summary>
internal sealed class SteppedNetwork : IDeliveryScheduler
{
    private readonly PriorityQueue<Action, (DateTimeOffset, long)> _queue = new();
    private readonly Random _random;
    private long _sequence;

    public SteppedNetwork(double lossRate = 0, double duplicateRate = 0, TimeSpan? maxJitter = null, int seed = 7)
    {
        _random = new Random(seed);
        DuplicateRate = duplicateRate;
        var jitter = maxJitter ?? TimeSpan.Zero;
        Network = new VirtualNetwork(this, new VirtualLinkOptions
        {
            LossRate = lossRate,
            Seed = seed,
            Latency = (_, _) => TimeSpan.FromMilliseconds(1) + jitter * _random.NextDouble(),
        });
    }

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

    /// <summary>A socket that sends through this network.</summary>
    public IDatagramSocket Socket(int host) => Network.CreateSocket(new IPEndPoint(IPAddress.Parse("10.0.0." + host), 5000));

    /// <summary>Runs deliveries and timers until <paramref name="done"/> holds or <paramref name="limit"/> of virtual time passed.</summary>
    public bool RunUntil(Func<bool> done, TimeSpan limit)
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
            Time.Advance(TimeSpan.FromMilliseconds(1));
        }

        return true;
    }
}
