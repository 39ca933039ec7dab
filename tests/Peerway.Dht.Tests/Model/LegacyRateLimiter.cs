using System.Net;

namespace Peerway.Dht.Tests.Model;

/// <summary>
/// The rate limiter before its table became one struct array (a dictionary and a linked list of nodes), kept verbatim
/// as the model for RateLimiterModelTests. Per-IP token bucket for incoming queries. The table of IPs is bounded: when
/// full, the least recently seen IP is forgotten (it will start again with a full bucket, which only helps that one IP). Owned by DhtNode under its lock.
/// </summary>
internal sealed class LegacyRateLimiter(double ratePerSecond, int burst, int maxTracked = LegacyRateLimiter.DefaultMaxTracked)
{
    /// <summary>IPs tracked at once (memory bound under floods from many addresses).</summary>
    public const int DefaultMaxTracked = 10_000;

    /// <summary>Slots the IP table keeps when trimmed (a simulator holds 10^6 limiters; each sees bursts of IPs).</summary>
    private const int MinCapacity = 8;

    private readonly Dictionary<IPAddress, LinkedListNode<Bucket>> _byIp = [];
    private readonly LinkedList<Bucket> _lru = new(); // least recently seen first
    private readonly TimeSpan _idle = TimeSpan.FromSeconds(burst / ratePerSecond);

    public int Tracked => _byIp.Count;

    public bool TryAcquire(IPAddress ip, DateTimeOffset now)
    {
        // Forget IPs idle long enough for their bucket to be full again: a full bucket is what a new IP gets, so this
        // changes no decision, and the table holds only the IPs of the last burst/rate seconds (2 s by default)
        // instead of everything since the last maintenance tick (a simulator holds 10^6 limiters).
        ForgetIdle(now);
        if (_byIp.TryGetValue(ip, out var node))
        {
            _lru.Remove(node);
            _lru.AddLast(node);
        }
        else
        {
            if (_byIp.Count >= maxTracked)
            {
                var oldest = _lru.First!;
                _lru.RemoveFirst();
                _byIp.Remove(oldest.Value.Ip);
            }

            node = _lru.AddLast(new Bucket(ip, burst, now));
            _byIp.Add(ip, node);
        }

        ref var b = ref node.ValueRef;
        var elapsed = (now - b.Updated).TotalSeconds;
        if (elapsed > 0) b.Tokens = Math.Min(burst, b.Tokens + (elapsed * ratePerSecond));
        b.Updated = now;
        if (b.Tokens < 1) return false;
        b.Tokens -= 1;
        return true;
    }

    /// <summary>Forgets IPs whose bucket has refilled completely (idle long enough).</summary>
    public void PruneIdle(DateTimeOffset now)
    {
        ForgetIdle(now);
    }

    /// <summary>Drops the least recently seen IPs whose bucket has refilled: tokens ≥ 0, so after burst/rate seconds
    /// min(burst, tokens + elapsed × rate) is exactly burst, the state of an IP never seen.</summary>
    private void ForgetIdle(DateTimeOffset now)
    {
        var forgot = false;
        while (_lru.First is { } first && now - first.Value.Updated >= _idle)
        {
            _lru.RemoveFirst();
            _byIp.Remove(first.Value.Ip);
            forgot = true;
        }

        // Give back the slots of a burst once it is over (amortised: the table must grow fourfold before the next trim).
        if (forgot && _byIp.Count * 4 < _byIp.Capacity && _byIp.Capacity > MinCapacity) _byIp.TrimExcess();
    }

    /// <summary>A struct held inline in its list node (one object per tracked IP, not two).</summary>
    private struct Bucket(IPAddress ip, double tokens, DateTimeOffset updated)
    {
        public IPAddress Ip { get; } = ip;

        public double Tokens { get; set; } = tokens;

        public DateTimeOffset Updated { get; set; } = updated;
    }
}
