using System.Net;

namespace Peerway.Net;

/// <summary>
/// Per-IP token bucket for incoming requests (DHT queries; STUN and TURN answers to strangers). The table of IPs is
/// bounded: when full, the least recently seen IP is forgotten (it will start again with a full bucket, which only helps
/// that one IP). Not thread-safe: the owner calls it under its lock (DhtNode, StunServer, TurnServer).
/// </summary>
/// <remarks>
/// The table is one array of structs: an open-addressing hash table (linear probing, at most half full, backward-shift
/// deletion) whose occupied slots are also linked, by index, into a least-recently-seen list. No object per tracked IP,
/// and no array at all while no IP is tracked — the usual state of a node that is queried now and then (a simulator
/// holds 10^6 limiters).
/// </remarks>
public sealed class RateLimiter(double ratePerSecond, int burst, int maxTracked = RateLimiter.DefaultMaxTracked)
{
    /// <summary>IPs tracked at once (memory bound under floods from many addresses).</summary>
    public const int DefaultMaxTracked = 10_000;

    /// <summary>Slots of the first table (a power of two).</summary>
    private const int MinCapacity = 16;

    private const int None = -1;

    private readonly long _idleTicks = TimeSpan.FromSeconds(burst / ratePerSecond).Ticks;
    private Slot[]? _slots;
    private int _count;
    private int _oldest = None; // least recently seen
    private int _newest = None;

    /// <summary>IPs in the table now (at most the <c>maxTracked</c> given to the constructor).</summary>
    public int Tracked => _count;

    /// <summary>Takes one token from <paramref name="ip"/>'s bucket at time <paramref name="now"/>; false when the bucket is empty (the request is to be dropped). Not thread-safe.</summary>
    public bool TryAcquire(IPAddress ip, DateTimeOffset now)
    {
        // Forget IPs idle long enough for their bucket to be full again: a full bucket is what a new IP gets, so this
        // changes no decision, and the table holds only the IPs of the last burst/rate seconds (2 s by default)
        // instead of everything since the last maintenance tick.
        var nowTicks = now.UtcTicks;
        ForgetIdle(nowTicks);
        var i = Find(ip);
        if (i >= 0)
        {
            Unlink(i);
            LinkNewest(i);
        }
        else
        {
            if (_count >= maxTracked) Remove(_oldest);
            i = Insert(ip, nowTicks);
        }

        ref var b = ref _slots![i];
        var elapsed = TimeSpan.FromTicks(nowTicks - b.UpdatedTicks).TotalSeconds;
        if (elapsed > 0) b.Tokens = Math.Min(burst, b.Tokens + (elapsed * ratePerSecond));
        b.UpdatedTicks = nowTicks;
        if (b.Tokens < 1) return false;
        b.Tokens -= 1;
        return true;
    }

    /// <summary>Forgets IPs whose bucket has refilled completely (idle long enough).</summary>
    public void PruneIdle(DateTimeOffset now) => ForgetIdle(now.UtcTicks);

    /// <summary>Drops the least recently seen IPs whose bucket has refilled: tokens ≥ 0, so after burst/rate seconds
    /// min(burst, tokens + elapsed × rate) is exactly burst, the state of an IP never seen.</summary>
    private void ForgetIdle(long nowTicks)
    {
        while (_oldest != None && nowTicks - _slots![_oldest].UpdatedTicks >= _idleTicks) Remove(_oldest);
    }

    private int Home(IPAddress ip) => ip.GetHashCode() & (_slots!.Length - 1);

    private int Find(IPAddress ip)
    {
        if (_slots is null) return None;
        var mask = _slots.Length - 1;
        for (var i = Home(ip); _slots[i].Ip is { } occupant; i = (i + 1) & mask)
        {
            if (occupant.Equals(ip)) return i;
        }

        return None;
    }

    /// <summary>Adds <paramref name="ip"/> (not in the table) with a full bucket, as the newest; returns its slot.</summary>
    private int Insert(IPAddress ip, long nowTicks)
    {
        if (_slots is null) _slots = new Slot[MinCapacity];
        else if ((_count + 1) * 2 > _slots.Length) Resize(_slots.Length * 2);
        var mask = _slots.Length - 1;
        var i = Home(ip);
        while (_slots[i].Ip is not null) i = (i + 1) & mask;
        _slots[i] = new Slot { Ip = ip, Tokens = burst, UpdatedTicks = nowTicks };
        _count++;
        LinkNewest(i);
        return i;
    }

    /// <summary>Rehashes into <paramref name="capacity"/> slots, keeping the least-recently-seen order.</summary>
    private void Resize(int capacity)
    {
        var old = _slots!;
        var from = _oldest;
        _slots = new Slot[capacity];
        _count = 0;
        _oldest = _newest = None;
        var mask = capacity - 1;
        for (var j = from; j != None; j = old[j].Next)
        {
            var i = Home(old[j].Ip!);
            while (_slots[i].Ip is not null) i = (i + 1) & mask;
            _slots[i] = old[j];
            _count++;
            LinkNewest(i);
        }
    }

    /// <summary>Removes the IP in slot <paramref name="i"/>; the table is released when it becomes empty.</summary>
    private void Remove(int i)
    {
        Unlink(i);
        _count--;
        if (_count == 0)
        {
            _slots = null;
            return;
        }

        // Backward-shift deletion: move later entries of the probe run into the hole when their home slot allows it.
        var slots = _slots!;
        var mask = slots.Length - 1;
        var hole = i;
        for (var j = (hole + 1) & mask; slots[j].Ip is { } ip; j = (j + 1) & mask)
        {
            var home = Home(ip);
            // Slot j may move to the hole unless its home lies cyclically in (hole, j].
            var stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
            if (stays) continue;
            Move(j, hole);
            hole = j;
        }

        slots[hole] = default;
    }

    /// <summary>Moves the entry in slot <paramref name="from"/> to the empty slot <paramref name="to"/>, keeping its place in
    /// the list.</summary>
    private void Move(int from, int to)
    {
        var slots = _slots!;
        slots[to] = slots[from];
        ref var moved = ref slots[to];
        if (moved.Prev == None) _oldest = to;
        else slots[moved.Prev].Next = to;
        if (moved.Next == None) _newest = to;
        else slots[moved.Next].Prev = to;
    }

    private void LinkNewest(int i)
    {
        ref var s = ref _slots![i];
        s.Prev = _newest;
        s.Next = None;
        if (_newest == None) _oldest = i;
        else _slots[_newest].Next = i;
        _newest = i;
    }

    private void Unlink(int i)
    {
        ref var s = ref _slots![i];
        if (s.Prev == None) _oldest = s.Next;
        else _slots[s.Prev].Next = s.Next;
        if (s.Next == None) _newest = s.Prev;
        else _slots[s.Next].Prev = s.Prev;
    }

    /// <summary>A tracked IP (null: the slot is empty), its bucket and its neighbours in the least-recently-seen list.</summary>
    private struct Slot
    {
        public IPAddress? Ip;
        public double Tokens;
        public long UpdatedTicks;
        public int Prev;
        public int Next;
    }
}
