using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Peerway.Net;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// <see cref="SwarmTicker"/>: one client-wide timer ticks every torrent (issue 14 item 9, the idle cost of many
/// torrents), on the client's clock, only while some torrent is registered, and slowly while every torrent is idle.
/// </summary>
public sealed class SwarmTickerTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan IdleInterval = TimeSpan.FromSeconds(1);

    [Fact]
    public void Every_registered_tick_runs_once_per_interval_and_the_timer_stops_when_none_is_left()
    {
        var clock = new CountingTimeProvider(new FakeTimeProvider());
        using var ticker = new SwarmTicker(clock, Interval, IdleInterval);
        int a = 0, b = 0;
        Func<bool> tickA = () => ++a > 0, tickB = () => ++b > 0;

        ticker.Add(tickA);
        ticker.Add(tickB);
        Assert.Equal(1, clock.ActivePeriodicTimers);
        clock.Fake.Advance(Interval * 3);
        Assert.Equal((3, 3), (a, b));

        ticker.Remove(tickA);
        clock.Fake.Advance(Interval * 2);
        Assert.Equal((3, 5), (a, b));

        ticker.Remove(tickB);
        Assert.Equal(0, clock.ActivePeriodicTimers);
        clock.Fake.Advance(Interval * 2);
        Assert.Equal((3, 5), (a, b));

        // Registered again: ticks again, on one new timer.
        ticker.Add(tickA);
        clock.Fake.Advance(Interval);
        Assert.Equal((4, 5), (a, b));
        Assert.Equal(1, clock.ActivePeriodicTimers);
    }

    [Fact]
    public void A_tick_removed_from_inside_a_tick_does_not_deadlock_and_is_not_called_again()
    {
        var clock = new CountingTimeProvider(new FakeTimeProvider());
        using var ticker = new SwarmTicker(clock, Interval, IdleInterval);
        var calls = 0;
        Func<bool>? self = null;
        self = () =>
        {
            calls++;
            ticker.Remove(self!);
            return true;
        };
        ticker.Add(self);
        clock.Fake.Advance(Interval * 3);
        Assert.Equal(1, calls);
        Assert.Equal(0, ticker.Count);
    }

    [Fact]
    public void While_every_torrent_is_idle_the_tick_slows_down_and_a_wake_brings_it_back()
    {
        var clock = new CountingTimeProvider(new FakeTimeProvider());
        using var ticker = new SwarmTicker(clock, Interval, IdleInterval);
        int idleTicks = 0, busyTicks = 0;
        var busy = false;
        ticker.Add(() =>
        {
            idleTicks++;
            return false;
        });
        ticker.Add(() =>
        {
            busyTicks++;
            return busy;
        });

        // The first round finds both idle: from then on one tick a second.
        clock.Fake.Advance(Interval);
        Assert.True(ticker.IsIdle);
        clock.Fake.Advance(Interval * 9);
        Assert.Equal(1, idleTicks);
        clock.Fake.Advance(IdleInterval - Interval * 9);
        Assert.Equal(2, idleTicks);

        // One torrent gets a peer between ticks: the next tick comes after Interval, and they keep coming while it is busy.
        busy = true;
        ticker.Wake();
        Assert.False(ticker.IsIdle);
        clock.Fake.Advance(Interval * 5);
        Assert.Equal((7, 7), (idleTicks, busyTicks));

        // Idle again: slow again after one round.
        busy = false;
        clock.Fake.Advance(Interval);
        Assert.True(ticker.IsIdle);
        clock.Fake.Advance(IdleInterval * 3);
        Assert.Equal(11, idleTicks);
        Assert.Equal(1, clock.ActivePeriodicTimers);
    }

    [Fact]
    public async Task One_client_with_many_torrents_runs_one_periodic_timer_not_one_per_torrent()
    {
        var dir = Directory.CreateTempSubdirectory("pw-ticker-").FullName;
        var clock = new CountingTimeProvider(TimeProvider.System);
        var store = new MemoryStorageFactory();
        var client = new TorrentClient([new TcpStreamTransport()], new TorrentClientOptions { ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, 0)] },
            store, clock);
        try
        {
            await client.StartAsync(CancellationToken.None);
            var before = clock.ActivePeriodicTimers;
            var handles = new List<TorrentHandle>();
            for (var i = 0; i < 20; i++)
            {
                var path = Path.Combine(dir, $"t{i}.bin");
                var content = RandomNumberGenerator.GetBytes(40_000);
                await File.WriteAllBytesAsync(path, content);
                Assert.True(MetainfoParser.TryParse(await TorrentCreator.CreateAsync(path, new TorrentCreateOptions { PieceLength = 16 * 1024 }), out var meta, out _));
                store.Add(meta!.Info, content);
                handles.Add(await client.AddAsync(meta, "seed", new TorrentAddOptions { SeedOnly = true }));
            }

            // Per-torrent timers made this 20 (one 100 ms timer each); the client-wide tick makes it one in all.
            Assert.Equal(before + 1, clock.ActivePeriodicTimers);
            foreach (var h in handles) await client.RemoveAsync(h);
            Assert.Equal(before, clock.ActivePeriodicTimers);
        }
        finally
        {
            await client.DisposeAsync();
            Directory.Delete(dir, true);
        }
    }

    /// <summary>A clock that counts the periodic timers created on it and not yet disposed.</summary>
    private sealed class CountingTimeProvider(TimeProvider inner) : TimeProvider
    {
        private int _active;

        public FakeTimeProvider Fake => (FakeTimeProvider)inner;

        public int ActivePeriodicTimers => Volatile.Read(ref _active);

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override long GetTimestamp() => inner.GetTimestamp();

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override TimeZoneInfo LocalTimeZone => inner.LocalTimeZone;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = inner.CreateTimer(callback, state, dueTime, period);
            if (period == Timeout.InfiniteTimeSpan || period == TimeSpan.Zero) return timer;
            Interlocked.Increment(ref _active);
            return new Counted(timer, this);
        }

        private sealed class Counted(ITimer timer, CountingTimeProvider owner) : ITimer
        {
            private int _disposed;

            public bool Change(TimeSpan dueTime, TimeSpan period) => timer.Change(dueTime, period);

            public void Dispose()
            {
                if (Interlocked.Exchange(ref _disposed, 1) == 0) Interlocked.Decrement(ref owner._active);
                timer.Dispose();
            }

            public ValueTask DisposeAsync()
            {
                if (Interlocked.Exchange(ref _disposed, 1) == 0) Interlocked.Decrement(ref owner._active);
                return timer.DisposeAsync();
            }
        }
    }
}
