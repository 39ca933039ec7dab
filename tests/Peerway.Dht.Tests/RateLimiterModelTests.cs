using System.Net;
using FsCheck.Xunit;
using Peerway.Dht.Tests.Model;
using Peerway.Net;

namespace Peerway.Dht.Tests;

/// <summary>
/// The rate limiter (one struct array: open addressing plus an index-linked least-recently-seen list) against
/// <see cref="LegacyRateLimiter"/>, the dictionary-and-linked-list limiter it replaced, as a model: random sequences of
/// queries from a few or many IPs (IPv4 and IPv6), at random time steps, with prunes, must give the same decisions and
/// the same number of tracked IPs after every step — through table growth, evictions at the bound, backward-shift
/// deletions and the release of the table when it empties.
/// </summary>
public sealed class RateLimiterModelTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static IPAddress Ip(int i) => i % 5 == 0
        ? IPAddress.Parse($"2001:db8::{i:x}")
        : new IPAddress([10, 0, (byte)(i >> 8), (byte)i]);

    [Property(MaxTest = 300)]
    public void Struct_table_makes_the_same_decisions_as_the_linked_list(int seed, bool manyIps)
    {
        var random = new Random(seed);
        var rate = 1 + random.Next(20);
        var burst = 1 + random.Next(10);
        var maxTracked = 1 + random.Next(manyIps ? 64 : 8);
        var limiter = new RateLimiter(rate, burst, maxTracked);
        var model = new LegacyRateLimiter(rate, burst, maxTracked);
        var ips = Enumerable.Range(1, manyIps ? 200 : 6).Select(Ip).ToArray();
        var now = T0;
        for (var step = 0; step < 2_000; step++)
        {
            now = now.AddTicks(random.Next(4) switch
            {
                0 => 0,
                1 => random.Next(1, 100) * TimeSpan.TicksPerMillisecond,
                2 => random.Next(1, 1_000) * TimeSpan.TicksPerMillisecond,
                _ => random.Next(1, 5) * TimeSpan.TicksPerSecond,
            });
            if (random.Next(50) == 0)
            {
                model.PruneIdle(now);
                limiter.PruneIdle(now);
            }
            else
            {
                // A fresh IPAddress object each time: the table must match by value, not by reference.
                var ip = new IPAddress(ips[random.Next(ips.Length)].GetAddressBytes());
                Assert.Equal(model.TryAcquire(ip, now), limiter.TryAcquire(ip, now));
            }

            Assert.Equal(model.Tracked, limiter.Tracked);
        }
    }
}
