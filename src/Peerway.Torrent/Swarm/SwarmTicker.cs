namespace Peerway.Torrent.Swarm;

/// <summary>
/// The engine's clock tick for every torrent of one client (a standalone session has its own): one timer on the
/// client's <see cref="TimeProvider"/> calls each registered torrent's tick in turn, instead of one timer per torrent.
/// The timer runs only while some torrent is registered, and while every torrent is idle (no peer connected, dialled
/// or waiting to be dialled: its tick returns false) it slows to <see cref="IdleInterval"/>; a torrent that gets work
/// between ticks calls <see cref="Wake"/>, which brings the next tick back to <see cref="Interval"/>. 100 idle torrents
/// cost 1,000 thread-pool wake-ups a second with one 100 ms timer each (docs/BENCHMARKS.md). A tick that is still
/// running when the next is due makes that one skip rather than run alongside it, and <see cref="Remove"/> returns
/// only once no tick of the removed torrent is running.
/// </summary>
internal sealed class SwarmTicker(TimeProvider time, TimeSpan interval, TimeSpan idleInterval) : IDisposable
{
    private readonly Lock _gate = new();

    /// <summary>Held while the registered ticks run.</summary>
    private readonly Lock _running = new();
    private Func<bool>[] _ticks = [];
    private ITimer? _timer;
    private bool _idle;

    /// <summary>Set by <see cref="Wake"/>: some torrent got work while a round was running (or since the last one).</summary>
    private bool _woken;
    private bool _disposed;

    public TimeSpan Interval { get; } = interval;

    /// <summary>The period while every torrent is idle.</summary>
    public TimeSpan IdleInterval { get; } = idleInterval;

    /// <summary>Torrents ticked now.</summary>
    public int Count => Volatile.Read(ref _ticks).Length;

    /// <summary>Whether the timer runs at <see cref="IdleInterval"/> now.</summary>
    public bool IsIdle
    {
        get
        {
            lock (_gate) return _idle;
        }
    }

    /// <summary>Calls <paramref name="tick"/> (true: the torrent has work) every <see cref="Interval"/> from now until it is removed.</summary>
    public void Add(Func<bool> tick)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Volatile.Write(ref _ticks, [.. _ticks, tick]);
            _woken = true;
            if (_timer is null) _timer = time.CreateTimer(static state => ((SwarmTicker)state!).Tick(), this, Interval, Interval);
            else if (_idle) _timer.Change(Interval, Interval);
            _idle = false;
        }
    }

    /// <summary>Some torrent got work (a peer to dial, a connection): tick every <see cref="Interval"/> again.</summary>
    public void Wake()
    {
        lock (_gate)
        {
            _woken = true;
            if (!_idle || _timer is null) return;
            _idle = false;
            _timer.Change(Interval, Interval);
        }
    }

    /// <summary>Stops calling <paramref name="tick"/>; on return none of its calls is running (unless this is one of them).</summary>
    public void Remove(Func<bool> tick)
    {
        ITimer? stopped = null;
        lock (_gate)
        {
            var i = Array.IndexOf(_ticks, tick);
            if (i < 0) return;
            Volatile.Write(ref _ticks, [.. _ticks[..i], .. _ticks[(i + 1)..]]);
            if (_ticks.Length == 0)
            {
                stopped = _timer;
                _timer = null;
                _idle = false;
            }
        }

        stopped?.Dispose();
        // A tick that read the old list may still be calling the removed one: wait for it to end (Lock is reentrant,
        // so a torrent removed from inside a tick does not wait for itself).
        lock (_running)
        {
        }
    }

    private void Tick()
    {
        if (!_running.TryEnter()) return;
        try
        {
            lock (_gate) _woken = false;
            var busy = false;
            foreach (var tick in Volatile.Read(ref _ticks)) busy |= tick();
            lock (_gate)
            {
                if (_timer is null) return;
                var idle = !busy && !_woken;
                if (idle == _idle) return;
                _idle = idle;
                var period = idle ? IdleInterval : Interval;
                _timer.Change(period, period);
            }
        }
        finally
        {
            _running.Exit();
        }
    }

    public void Dispose()
    {
        ITimer? timer;
        lock (_gate)
        {
            _disposed = true;
            _ticks = [];
            timer = _timer;
            _timer = null;
        }

        timer?.Dispose();
        lock (_running)
        {
        }
    }
}
