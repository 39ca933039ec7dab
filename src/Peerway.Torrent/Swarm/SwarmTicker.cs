namespace Peerway.Torrent.Swarm;

/// <summary>
/// The engine's clock tick for every torrent of one client (a standalone session has its own): one timer on the
/// client's <see cref="TimeProvider"/> calls each registered torrent's tick in turn, instead of one timer per torrent
/// (100 idle torrents cost 1,000 thread-pool wake-ups a second that way; docs/BENCHMARKS.md). The timer runs only
/// while some torrent is registered. A tick that is still running when the next is due makes that one skip rather than
/// run alongside it, and <see cref="Remove"/> returns only once no tick of the removed torrent is running.
/// </summary>
internal sealed class SwarmTicker(TimeProvider time, TimeSpan interval) : IDisposable
{
    private readonly Lock _gate = new();

    /// <summary>Held while the registered ticks run.</summary>
    private readonly Lock _running = new();
    private Action[] _ticks = [];
    private ITimer? _timer;
    private bool _disposed;

    public TimeSpan Interval { get; } = interval;

    /// <summary>Torrents ticked now.</summary>
    public int Count => Volatile.Read(ref _ticks).Length;

    /// <summary>Calls <paramref name="tick"/> every <see cref="Interval"/> from now until it is removed.</summary>
    public void Add(Action tick)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Volatile.Write(ref _ticks, [.. _ticks, tick]);
            _timer ??= time.CreateTimer(static state => ((SwarmTicker)state!).Tick(), this, Interval, Interval);
        }
    }

    /// <summary>Stops calling <paramref name="tick"/>; on return none of its calls is running (unless this is one of them).</summary>
    public void Remove(Action tick)
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
            foreach (var tick in Volatile.Read(ref _ticks)) tick();
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
