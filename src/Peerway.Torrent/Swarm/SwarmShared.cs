using System.Net;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Peerway.Torrent.Storage;

namespace Peerway.Torrent.Swarm;

/// <summary>
/// What the torrents of one client share (one standalone session has its own): the connection limit, the upload
/// token bucket, the disk queue and the router of incoming connections. Each part has its own lock, taken last
/// (never while calling out), so a session may use them under its <c>_gate</c>; the clock tick of every torrent.
/// </summary>
internal sealed class SwarmShared(ConnectionBudget connections, RateBucket? upload, RateBucket? download, DiskQueue disk, PeerRouter router, EngineScheduler scheduler, SwarmTicker ticker)
{
    /// <summary>Where the engines run what they do not run inline.</summary>
    public EngineScheduler Scheduler { get; } = scheduler;

    public ConnectionBudget Connections { get; } = connections;

    /// <summary>The shared upload cap; null: none at this level (a torrent may still have its own).</summary>
    public RateBucket? Upload { get; } = upload;

    /// <summary>The shared download cap; null: none.</summary>
    public RateBucket? Download { get; } = download;

    public DiskQueue Disk { get; } = disk;

    public PeerRouter Router { get; } = router;

    /// <summary>One timer that ticks every torrent (TorrentSession.Tick) in turn.</summary>
    public SwarmTicker Ticker { get; } = ticker;
}

/// <summary>Registered peer connections across torrents: one limit in all, and how many come from each address.</summary>
internal sealed class ConnectionBudget(int max)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<IPAddress, int> _perIp = [];
    private int _count;

    public int Max { get; } = max;

    public int Count
    {
        get
        {
            lock (_gate) return _count;
        }
    }

    public bool IsFull => Count >= Max;

    public int Free => Math.Max(0, Max - Count);

    public int CountFrom(IPAddress ip)
    {
        lock (_gate) return _perIp.GetValueOrDefault(ip);
    }

    public void Add(IPAddress ip)
    {
        lock (_gate)
        {
            _count++;
            _perIp[ip] = _perIp.GetValueOrDefault(ip) + 1;
        }
    }

    public void Remove(IPAddress ip)
    {
        lock (_gate)
        {
            _count--;
            if (_perIp.GetValueOrDefault(ip) <= 1) _perIp.Remove(ip);
            else _perIp[ip]--;
        }
    }
}

/// <summary>
/// A token bucket on the engine's clock: <see cref="Refill"/> adds rate × elapsed since the last refill (at most one
/// second's worth, and never less than the largest block a peer may request, so a cap below the block size still
/// serves); takers consume whole blocks.
/// </summary>
internal sealed class RateBucket(long rate, TimeProvider time)
{
    private readonly Lock _gate = new();
    private long _tokens;
    private long _last;

    public long Rate { get; } = rate;

    public void Refill()
    {
        var now = time.GetTimestamp();
        lock (_gate)
        {
            var elapsed = _last == 0 ? TimeSpan.Zero : time.GetElapsedTime(_last, now);
            _last = now;
            var capacity = Math.Max(Rate, Wire.PeerWire.MaxRequestLength);
            _tokens = Math.Min(capacity, _tokens + (long)(Rate * elapsed.TotalSeconds));
        }
    }

    public bool HasTokens
    {
        get
        {
            lock (_gate) return _tokens > 0;
        }
    }

    /// <summary>
    /// Takes <paramref name="amount"/> tokens, going into debt if need be, and waits (on the clock) until the debt is
    /// paid back at the bucket's rate: a reader that calls this after each batch is held to the rate on average.
    /// </summary>
    public async ValueTask ConsumeAsync(long amount, CancellationToken ct)
    {
        if (amount <= 0) return;
        Refill();
        long debt;
        lock (_gate)
        {
            _tokens -= amount;
            debt = -_tokens;
        }

        if (debt > 0) await Task.Delay(TimeSpan.FromSeconds((double)debt / Rate), time, ct).ConfigureAwait(false);
    }

    /// <summary>Takes <paramref name="amount"/> tokens if that many are there.</summary>
    public bool TryTake(long amount)
    {
        lock (_gate)
        {
            if (amount > _tokens) return false;
            _tokens -= amount;
            return true;
        }
    }
}

/// <summary>
/// The disk I/O queue: complete pieces waiting to be hashed and written, from every torrent, handled by one task in
/// arrival order so hashing and writes overlap the network receive. A full queue makes the connections that complete
/// pieces wait (back-pressure on their reads).
/// </summary>
internal sealed class DiskQueue : IAsyncDisposable
{
    /// <summary>Complete pieces waiting for the verifier.</summary>
    public const int Capacity = 16;

    private readonly Channel<(TorrentSession Session, int Piece, PieceBuffer Data)> _queue;
    private readonly Task _worker;
    private readonly ILogger _log;

    /// <param name="log">Logs write failures.</param>
    /// <param name="scheduler">Runs the worker. Under a custom (single-threaded) scheduler a queued piece is handed to the
    /// worker synchronously, in the writer's call, instead of through the thread pool.</param>
    public DiskQueue(ILogger log, EngineScheduler scheduler)
    {
        _log = log;
        _queue = Channel.CreateBounded<(TorrentSession, int, PieceBuffer)>(new BoundedChannelOptions(Capacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
            AllowSynchronousContinuations = !scheduler.IsThreadPool,
        });
        _worker = scheduler.RunAsync(WorkAsync);
    }

    /// <summary>Where the pieces bound for this queue are assembled (page-aligned, so direct writes need no staging copy).</summary>
    public PieceBufferPool Buffers { get; } = new();

    public ValueTask EnqueueAsync(TorrentSession session, int piece, PieceBuffer data, CancellationToken ct) => _queue.Writer.WriteAsync((session, piece, data), ct);

    private async Task WorkAsync()
    {
        await foreach (var (session, piece, data) in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                session.VerifyAndStore(piece, data);
            }
            catch (Exception ex) when (ex is InvalidOperationException or ObjectDisposedException)
            {
                _log.LogDebug("piece {Piece} of {InfoHash} dropped: {Message}", piece, session.InfoHash, ex.Message);
            }
            finally
            {
                Buffers.Return(data);
                session.DiskItemDone();
            }
        }
    }

    /// <summary>Handles what is queued, then stops.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _worker.ConfigureAwait(false);
    }
}
