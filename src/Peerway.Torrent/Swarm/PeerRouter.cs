using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Core;
using Peerway.Core.Threading;
using Peerway.Net;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Swarm;

/// <summary>Settings of the incoming-connection router.</summary>
internal sealed record PeerRouterOptions(TimeSpan HandshakeTimeout, int MaxHandshakes, int MaxConnectionsPerIp, EncryptionPolicy Encryption);

/// <summary>
/// Accepts peer connections on the client's listeners (one port for every torrent) and hands each to its torrent:
/// an MSE connection by the SKEY its req2 hash names (MSE: "HASH('req2', SKEY) xor HASH('req3', S)"; the responder
/// tries every active torrent's SKEY), a plain one by the info-hash of its BitTorrent handshake (BEP 3). A connection
/// for no active torrent, or that fails its handshake, is dropped alone. Admission limits the connections still in the
/// handshake: <see cref="PeerRouterOptions.MaxConnectionsPerIp"/> per address (with the registered ones) and
/// <see cref="PeerRouterOptions.MaxHandshakes"/> in all, the oldest making room once it has waited a second.
/// </summary>
/// <remarks>
/// Lock order: the router's lock is a leaf. A session may call into the router while it holds its own lock
/// (<see cref="HandshakeDone"/>, <see cref="Attach"/>, <see cref="Port"/>), so nothing here calls a session, closes a
/// connection (whose cancellation callbacks run inline) or starts a task while holding it: a connection that must go
/// is picked under the lock and closed after it is released, and each admitted connection is routed on its own task,
/// so a session busy under its lock never stalls the accept loop.
/// </remarks>
internal sealed class PeerRouter : IAsyncDisposable
{
    /// <summary>
    /// A waiting handshake this old may be closed to let a newcomer start: a real peer sends its 68 bytes at once, so one
    /// still silent after a second is far more likely a connection that will never send them. Younger ones are left
    /// alone, so a burst of arrivals cannot close each other's handshakes before they are read.
    /// </summary>
    private static readonly TimeSpan HandshakeGrace = TimeSpan.FromSeconds(1);

    /// <summary>A plain handshake up to and including the info-hash: pstrlen, pstr, reserved, info_hash (BEP 3).</summary>
    private const int InfoHashEnd = 1 + 19 + 8 + NodeId.Length;

    private readonly PeerRouterOptions _options;
    private readonly ConnectionBudget _budget;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly Dictionary<NodeId, TorrentSession> _torrents = [];
    private readonly List<PendingIncoming> _handshaking = [];
    private readonly List<IStreamListener> _listeners = [];
    private readonly BackgroundTasks _tasks = new();

    /// <summary>The bound endpoints, replaced (never changed) under the lock: read without it.</summary>
    private volatile IReadOnlyList<IPEndPoint> _localEndPoints = [];
    private readonly CancellationTokenSource _cts = new();
    private int _disposed;

    private readonly EngineScheduler _scheduler;

    public PeerRouter(PeerRouterOptions options, ConnectionBudget budget, TimeProvider time, ILogger log, EngineScheduler scheduler)
    {
        _scheduler = scheduler;
        _options = options;
        _budget = budget;
        _time = time;
        _log = log;
    }

    /// <summary>Raised (outside the lock) when an incoming connection was admitted and its handshake timeout started.</summary>
    public event Action<IPEndPoint>? IncomingAdmitted;

    /// <summary>The bound endpoints, in the order they were asked for.</summary>
    public IReadOnlyList<IPEndPoint> LocalEndPoints => _localEndPoints;

    /// <summary>The first listener's port (0 before any).</summary>
    public int Port => LocalEndPoints is [var first, ..] ? first.Port : 0;

    /// <summary>Binds a listener and starts accepting on it.</summary>
    public async Task ListenAsync(IStreamTransport transport, IPEndPoint at, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(transport);
        var listener = await transport.ListenAsync(at, ct).ConfigureAwait(false);
        lock (_gate)
        {
            if (_disposed == 0)
            {
                _listeners.Add(listener);
                _localEndPoints = [.. _listeners.Select(l => l.LocalEndPoint)];
                _tasks.Track(AcceptLoopAsync(listener, _cts.Token));
                return;
            }
        }

        await listener.DisposeAsync().ConfigureAwait(false);
        throw new ObjectDisposedException(nameof(PeerRouter));
    }

    public void Add(TorrentSession session)
    {
        lock (_gate)
        {
            if (!_torrents.TryAdd(session.InfoHash, session)) throw new InvalidOperationException($"torrent {session.InfoHash} is already active");
        }
    }

    public void Remove(TorrentSession session)
    {
        lock (_gate)
        {
            if (_torrents.TryGetValue(session.InfoHash, out var s) && ReferenceEquals(s, session)) _torrents.Remove(session.InfoHash);
        }
    }

    private async Task AcceptLoopAsync(IStreamListener listener, CancellationToken ct)
    {
        // Started under the lock: nothing of the loop runs before it is released.
        await _scheduler.Yield();
        while (true)
        {
            IStreamConnection? connection;
            try
            {
                connection = await listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or IOException)
            {
                return;
            }

            if (connection is null) return;
            var pending = new PendingIncoming(this, connection, _time.GetUtcNow());
            bool admitted;
            Action? closeOldest;
            lock (_gate) admitted = AdmitLocked(pending, out closeOldest);

            closeOldest?.Invoke();
            if (!admitted)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                continue;
            }

            // Its own task (RouteAsync yields first): negotiating, and handing the connection to its session (which
            // takes the session's lock), never run inline on the accept loop.
            _tasks.Track(RouteAsync(pending, ct));
            IncomingAdmitted?.Invoke(pending.Remote);
        }
    }

    private static IPAddress IpOf(IPEndPoint remote) => remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address;

    /// <summary>Admits <paramref name="conn"/> or not; <paramref name="closeOldest"/>: a handshake to close (after the lock) for it.</summary>
    private bool AdmitLocked(PendingIncoming conn, out Action? closeOldest)
    {
        closeOldest = null;
        if (_disposed != 0) return false;
        var ip = IpOf(conn.Remote);
        if (_handshaking.Count(p => IpOf(p.Remote).Equals(ip)) + _budget.CountFrom(ip) >= _options.MaxConnectionsPerIp)
        {
            _log.LogDebug("refusing {Peer}: {Limit} connections from its address", conn, _options.MaxConnectionsPerIp);
            return false;
        }

        if (_handshaking.Count >= _options.MaxHandshakes)
        {
            var oldest = _handshaking[0];
            if (conn.Opened - oldest.Opened < HandshakeGrace)
            {
                _log.LogDebug("refusing {Peer}: {Count} handshakes already waiting", conn, _handshaking.Count);
                return false;
            }

            _handshaking.RemoveAt(0);
            _log.LogDebug("closing {Peer}: still in the handshake while {Count} others wait", oldest, _handshaking.Count);
            closeOldest = oldest.MarkClosedLocked();
        }

        _handshaking.Add(conn);
        return true;
    }

    /// <summary>Negotiates (plain or MSE), finds the torrent and hands the connection over; drops it alone otherwise.</summary>
    private async Task RouteAsync(PendingIncoming pending, CancellationToken ct)
    {
        await _scheduler.Yield();
        var left = pending.Opened + _options.HandshakeTimeout - _time.GetUtcNow();
        using var deadline = new CancellationTokenSource(left > TimeSpan.Zero ? left : TimeSpan.Zero, _time);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
        var (result, target) = await NegotiateAsync(pending.Connection.Stream, timeout.Token).ConfigureAwait(false);
        if (!result.Succeeded || target is null || !target.AdoptIncoming(pending, result))
        {
            _log.LogDebug("dropping incoming {Peer}: {Error}", pending.Remote, result.Succeeded ? "no active torrent for its info-hash" : result.Error);
            HandshakeDone(pending);
            await pending.Connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<(MseResult Result, TorrentSession? Target)> NegotiateAsync(Stream stream, CancellationToken ct)
    {
        byte[][] skeys;
        lock (_gate) skeys = _torrents.Keys.Select(k => k.ToArray()).ToArray();
        try
        {
            var result = await MseNegotiator.AcceptAsync(stream, skeys, _options.Encryption, ct).ConfigureAwait(false);
            if (!result.Succeeded) return (result, null);
            if (result.Method != CryptoMethods.None) return (result, Find(result.Skey.Span));
            // Plain: read on to the info-hash, which names the torrent; the session reads the handshake from the start.
            var prefix = result.Prefix;
            var filled = prefix.Length;
            if (filled < InfoHashEnd)
            {
                Array.Resize(ref prefix, InfoHashEnd);
                while (filled < InfoHashEnd)
                {
                    var n = await stream.ReadAsync(prefix.AsMemory(filled), ct).ConfigureAwait(false);
                    if (n == 0) return (MseResult.Failed(MseError.Closed), null);
                    filled += n;
                }
            }

            return (MseResult.Plain(prefix), Find(prefix.AsSpan(InfoHashEnd - NodeId.Length, NodeId.Length)));
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            return (MseResult.Failed(MseError.Closed), null);
        }
    }

    private TorrentSession? Find(ReadOnlySpan<byte> infoHash)
    {
        if (infoHash.Length != NodeId.Length) return null;
        var id = new NodeId(infoHash.ToArray());
        lock (_gate) return _torrents.GetValueOrDefault(id);
    }

    /// <summary>The connection's BitTorrent handshake was read (or it ended): it no longer counts as handshaking.</summary>
    public void HandshakeDone(PendingIncoming pending)
    {
        lock (_gate) _handshaking.Remove(pending);
    }

    /// <summary>The connection built after MSE; false when the entry was closed meanwhile (the caller disposes it).</summary>
    public bool Attach(PendingIncoming pending, PeerConnection connection)
    {
        lock (_gate) return pending.AttachLocked(connection);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _scheduler.CancelAsync(_cts).ConfigureAwait(false);
        IStreamListener[] listeners;
        List<Action> closes;
        lock (_gate)
        {
            listeners = [.. _listeners];
            closes = [.. _handshaking.Select(p => p.MarkClosedLocked())];
        }

        foreach (var close in closes) close();
        foreach (var l in listeners) await l.DisposeAsync().ConfigureAwait(false);
        await _tasks.WhenAllAsync().ConfigureAwait(false);
        _cts.Dispose();
    }
}

/// <summary>
/// An accepted connection from admission until its BitTorrent handshake is read: first the bare transport connection
/// (while MSE is negotiated and the torrent found), then its <see cref="PeerConnection"/>. Changes under the router's lock.
/// </summary>
internal sealed class PendingIncoming(PeerRouter router, IStreamConnection connection, DateTimeOffset opened)
{
    public PeerRouter Router { get; } = router;

    public IStreamConnection Connection { get; } = connection;

    public IPEndPoint Remote { get; } = connection.RemoteEndPoint;

    public DateTimeOffset Opened { get; } = opened;

    private PeerConnection? _peer;
    private bool _closed;

    public bool AttachLocked(PeerConnection peer)
    {
        if (_closed) return false;
        _peer = peer;
        return true;
    }

    /// <summary>Marks the entry closed (a later <see cref="AttachLocked"/> fails); returns what closes it, to call after the lock.</summary>
    public Action MarkClosedLocked()
    {
        _closed = true;
        return _peer is { } c ? c.Close : Connection.Abort;
    }

    public override string ToString() => Remote.ToString();
}
