using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;
using Peerway.Core.Threading;
using Peerway.Net;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Swarm;

/// <summary>
/// The swarm engine for one torrent: dials peers through an <see cref="IStreamTransport"/> and takes the incoming ones
/// its router hands it, speaks BEP 3/6/9/10/11, picks pieces, chokes, verifies and stores through an
/// <see cref="ITorrentStorage"/>. All protocol state is guarded by one lock (<c>_gate</c>); disk reads and hashing run
/// outside it (block reads on the connection's own task, piece checks and writes on the disk queue). Time comes from
/// the <see cref="TimeProvider"/>. Standalone it owns its listener, limits and disk queue; under a
/// <see cref="TorrentClient"/> it shares the client's.
/// </summary>
public sealed partial class TorrentSession : IAsyncDisposable
{
    /// <summary>The engine's clock tick: connection upkeep, request refill, upload budget (one timer per client: <see cref="SwarmTicker"/>).</summary>
    internal static readonly TimeSpan TickInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>The tick while every torrent of the client is idle (see <see cref="TickIdle"/>): only resume files can be due.</summary>
    internal static readonly TimeSpan IdleTickInterval = TimeSpan.FromSeconds(1);

    internal const ulong OurReserved = PeerHandshake.DhtBit | PeerHandshake.FastBit | PeerHandshake.ExtensionBit;

    private readonly TorrentSessionOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly ITorrentStorageFactory _storageFactory;
    private readonly string _savePath;
    private readonly bool _seedOnly;
    private readonly Lock _gate = new();
    private readonly Random _random;
    private readonly List<PeerConnection> _connections = [];
    private readonly HashSet<IPEndPoint> _candidates = [];
    private readonly HashSet<IPEndPoint> _connecting = [];

    /// <summary>Endpoints whose dial failed (refused, timed out, or closed before a handshake): failures so far and when to retry.</summary>
    private readonly Dictionary<IPEndPoint, (int Failures, DateTimeOffset RetryAt)> _redials = [];
    private readonly HashSet<IPEndPoint> _bannedEndPoints = [];
    private readonly HashSet<NodeId> _bannedIds = [];
    private readonly Dictionary<NodeId, long> _receivedByPeerId = [];

    /// <summary>Failed pieces each peer contributed to, across its connections (a peer that reconnects keeps its strikes).</summary>
    private readonly Dictionary<NodeId, int> _hashStrikes = [];
    private readonly Dictionary<int, PieceBuffer> _pieceBuffers = [];
    private readonly List<Task> _tasks = [];

    /// <summary>Incoming connections handed over by the router (see AdoptIncoming): tracked without <c>_gate</c>.</summary>
    private readonly BackgroundTasks _incoming = new();
    private readonly CancellationTokenSource _cts = new();
    private readonly TaskCompletionSource _completed;
    private readonly TaskCompletionSource<TorrentInfo> _metadata;
    private readonly Choker _choker;

    private readonly IStreamTransport _transport;
    private readonly RateBucket? _uploadBucket;

    /// <summary>The client's shared parts; for a standalone session its own, made when it starts.</summary>
    private SwarmShared _shared;

    /// <summary>Registered with the ticker (<see cref="StartAsync"/> ran): candidates may be dialled (under <c>_gate</c>).</summary>
    private bool _started;
    private bool _ownsShared;

    /// <summary>Pieces of ours in the disk queue; when it reaches zero during disposal, <see cref="_diskDrained"/> completes.</summary>
    private int _diskQueued;
    private readonly TaskCompletionSource _diskDrained;
    private TorrentInfo? _info;
    private ITorrentStorage? _storage;
    private PiecePicker? _picker;
    private Bitfield? _have;
    private readonly Func<bool> _tick;
    private long _ticks;
    private long _downloaded;
    private long _uploaded;
    private int _hashFailures;
    private DateTimeOffset _lastResume;

    /// <summary>The periodic resume save in flight, if any (one at a time; guarded by <c>_gate</c>, awaited on dispose with <c>_tasks</c>).</summary>
    private Task _resumeSave = Task.CompletedTask;
    private DateTimeOffset _lastPex;
    private byte[]? _metadataBuffer;
    private bool[]? _metadataHave;
    private int _initializing;
    private int _disposed;

    /// <param name="infoHash">The torrent's BEP 3 info-hash.</param>
    /// <param name="info">The info dictionary; null for a magnet link (fetched from peers, BEP 9).</param>
    /// <param name="storage">Opens the torrent's storage once the info dictionary is known.</param>
    /// <param name="savePath">The directory the content is (or goes) under.</param>
    /// <param name="seedOnly">The content must already be complete there (a seeder sharing its own files).</param>
    /// <param name="transport">Dials peers; standalone, also listens on <see cref="TorrentSessionOptions.ListenAddress"/>.</param>
    /// <param name="options">The session's settings (validated here).</param>
    /// <param name="time">The clock for every timer of the session.</param>
    /// <param name="logger">Null: no logging.</param>
    public TorrentSession(NodeId infoHash, TorrentInfo? info, ITorrentStorageFactory storage, string savePath, bool seedOnly, TorrentSessionOptions options, IStreamTransport transport, TimeProvider time, ILogger? logger = null)
        : this(infoHash, info, storage, savePath, seedOnly, options, transport, time, logger, shared: null)
    {
    }

    internal TorrentSession(NodeId infoHash, TorrentInfo? info, ITorrentStorageFactory storage, string savePath, bool seedOnly, TorrentSessionOptions options, IStreamTransport transport, TimeProvider time, ILogger? logger, SwarmShared? shared)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(transport);
        options.Validate();
        if (info is not null && info.InfoHash != infoHash) throw new ArgumentException("info does not match the info-hash", nameof(info));
        InfoHash = infoHash;
        _info = info;
        _storageFactory = storage;
        _savePath = savePath;
        _seedOnly = seedOnly;
        _options = options;
        _time = time;
        _transport = transport;
        _log = logger ?? NullLogger.Instance;
        _shared = shared!;
        // Continuations asynchronous on the thread pool; inline under the client's executor (see EngineScheduler).
        var completion = Scheduler.CompletionOptions;
        _completed = new(completion);
        _metadata = new(completion);
        _diskDrained = new(completion);
        _uploadBucket = shared?.Upload ?? (options.UploadRateLimit is { } rate ? new RateBucket(rate, time) : null);
        _random = options.RandomSeed is { } seed ? new Random(seed) : new Random();
        _choker = new Choker(time, options.Choker, _random);
        PeerId = options.PeerId ?? NewPeerId();
        _tick = Tick;
    }

    /// <summary>"-PW0001-" followed by random bytes (Azureus style).</summary>
    internal static NodeId NewPeerId()
    {
        var bytes = new byte[NodeId.Length];
        System.Security.Cryptography.RandomNumberGenerator.Fill(bytes);
        "-PW0001-"u8.CopyTo(bytes);
        return new NodeId(bytes);
    }

    /// <summary>The torrent's info-hash.</summary>
    public NodeId InfoHash { get; }

    /// <summary>Our 20-byte peer id in this session.</summary>
    public NodeId PeerId { get; }

    /// <summary>The info dictionary; null until known (a magnet link before BEP 9 metadata).</summary>
    public TorrentInfo? Info => _info;

    /// <summary>The port peers reach us on (the client's, under a <see cref="TorrentClient"/>); 0 before the start.</summary>
    public int ListenPort => _shared?.Router.Port ?? 0;

    /// <summary>Completes when every piece is verified on disk.</summary>
    public Task Completed => _completed.Task;

    /// <summary>Completes when the info dictionary is known (at once for a .torrent; via BEP 9 for a magnet).</summary>
    public Task<TorrentInfo> MetadataReady => _metadata.Task;

    /// <summary>Raised (outside the lock, on the verifier task) when a piece has verified and been written.</summary>
    internal event Action<int>? PieceVerified;

    /// <summary>Raised (outside the lock) after a block was handed to a peer's socket: (peer id, block).</summary>
    internal event Action<NodeId, BlockRequest>? BlockUploaded;

    /// <summary>Raised (outside the lock) when a registered peer's connection has ended.</summary>
    internal event Action<NodeId>? PeerDisconnected;

    /// <summary>Raised (outside the lock) when, under an upload cap, a peer's requests wait for the token bucket.</summary>
    internal event Action? RequestsWaiting;

    /// <summary>Raised (outside the lock) when a peer completed the handshake and was registered.</summary>
    internal event Action<NodeId>? PeerConnected;

    /// <summary>Raised (outside the lock) when a peer sends a BEP 5 PORT message: a DHT node to add.</summary>
    public event Action<IPEndPoint>? DhtNodeSeen;

    /// <summary>BEP 27: the torrent is private (no DHT, no PEX, no local discovery).</summary>
    public bool IsPrivate => _info?.IsPrivate ?? false;

    /// <summary>Where this engine runs what it does not run inline: the client's; standalone, the thread pool.</summary>
    internal EngineScheduler Scheduler => _shared?.Scheduler ?? EngineScheduler.ThreadPool;

    /// <summary>Starts the session: opens the storage once the info dictionary is known and starts dialling and the timers.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        if (_info is not null)
        {
            await Scheduler.RunAsync(() => InitializeStorage(_info, ct), ct).ConfigureAwait(false);
        }

        if (_shared is null)
        {
            var budget = new ConnectionBudget(_options.MaxConnections);
            var routerOptions = new PeerRouterOptions(_options.HandshakeTimeout, _options.MaxConnections, _options.MaxConnectionsPerIp, _options.Encryption);
            var router = new PeerRouter(routerOptions, budget, _time, _log, EngineScheduler.ThreadPool);
            router.IncomingAdmitted += ep => IncomingAdmitted?.Invoke(ep);
            _shared = new SwarmShared(budget, null, null, new DiskQueue(_log, EngineScheduler.ThreadPool), router, EngineScheduler.ThreadPool, new SwarmTicker(_time, TickInterval, IdleTickInterval));
            _ownsShared = true;
            await router.ListenAsync(_transport, new IPEndPoint(_options.ListenAddress, _options.ListenPort), ct).ConfigureAwait(false);
        }

        _shared.Router.Add(this);
        _shared.Ticker.Add(_tick);
        lock (_gate)
        {
            _started = true;
            // Peers given before the start (the command line's, a magnet's) are dialled now, not at the first tick.
            DialNowLocked();
        }
    }

    private void InitializeStorage(TorrentInfo info, CancellationToken ct)
    {
        var priorities = ResolveFilePriorities(info);
        var storage = _storageFactory.Open(info, _savePath, _seedOnly, priorities is null ? null : FilePriorities.SkippedFiles(info, priorities), ct);

        lock (_gate)
        {
            _info = info;
            _storage = storage;
            _have = storage.Verified;
            _picker = new PiecePicker(info.PieceCount, info.PieceSize, _have, _random);
            if (priorities is not null) _picker.SetPiecePriorities(FilePriorities.ForPieces(info, priorities));
            _lastResume = _time.GetUtcNow();
            foreach (var c in _connections) AdoptEarlyAvailability(c);
        }

        _metadata.TrySetResult(info);
        if (storage.IsComplete || _picker!.IsDone) _completed.TrySetResult();
    }

    /// <summary>Adds peers to dial (from trackers, the DHT, PEX, the command line).</summary>
    public void AddPeers(IEnumerable<IPEndPoint> peers)
    {
        ArgumentNullException.ThrowIfNull(peers);
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            foreach (var p in peers)
            {
                if (p.Port == 0 || _bannedEndPoints.Contains(p) || InBackOffLocked(p, now)) continue;
                if (ListenPort != 0 && p.Port == ListenPort && (IPAddress.IsLoopback(p.Address) || p.Address.Equals(IPAddress.Any))) continue;
                _candidates.Add(p);
            }

            DialNowLocked();
            if (_candidates.Count > 0) _shared?.Ticker.Wake();
        }
    }

    /// <summary>
    /// Dials candidates at once, up to the connection limits, instead of at the next tick: a tracker's first answer
    /// would otherwise wait up to a tick (<see cref="TickInterval"/>; <see cref="IdleTickInterval"/> when the ticker
    /// was idle) before the first connection, and a download's first byte with it. Candidates over the limits, and
    /// redials after their back-off, are still the tick's.
    /// </summary>
    private void DialNowLocked()
    {
        if (_started && !_cts.IsCancellationRequested) DialWantedLocked();
    }

    /// <summary>Dials as many candidates as the torrent's and the client's connection limits leave room for.</summary>
    private void DialWantedLocked()
    {
        if (_candidates.Count == 0) return;
        var wanted = Math.Min(_options.MaxConnections - _connections.Count, _shared.Connections.Free) - _connecting.Count;
        if (wanted > 0) DialCandidatesLocked(wanted);
    }

    /// <summary>A snapshot of the session's counters. Thread-safe.</summary>
    public TorrentSessionStats GetStats()
    {
        lock (_gate)
        {
            return new TorrentSessionStats(_info?.PieceCount ?? 0, _have?.SetCount ?? 0, _info?.TotalLength ?? 0, _downloaded, _uploaded,
                _connections.Count, _hashFailures, _bannedIds.Count, _storage?.PiecesKeptOnOpen ?? 0, _storage?.PiecesRechecked ?? 0,
                new Dictionary<NodeId, long>(_receivedByPeerId), _info is not null);
        }
    }

    /// <summary>The endpoints of connected peers (for PEX and diagnostics).</summary>
    public IReadOnlyList<IPEndPoint> ConnectedPeers()
    {
        lock (_gate) return _connections.Select(c => c.ListenEndPoint ?? c.Remote).ToList();
    }

    private async Task DialAsync(IPEndPoint endPoint, CancellationToken ct)
    {
        PeerConnection conn;
        try
        {
            conn = await ConnectPeerAsync(endPoint, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or IOException)
        {
            lock (_gate)
            {
                _connecting.Remove(endPoint);
                ScheduleRedialLocked(endPoint);
                RequestRendezvousLocked(endPoint);
            }

            return;
        }

        lock (_gate) _connecting.Remove(endPoint);
        var registered = await RunConnectionAsync(conn, ct).ConfigureAwait(false);
        lock (_gate)
        {
            if (registered && (conn.BytesReceived > 0 || !WantsDataLocked())) _redials.Remove(endPoint);
            // A full peer drops its least useful connection for a newcomer (see TorrentSession.Admission): while we
            // still want data, a peer that dropped us is dialled again, with the same back-off.
            if (!registered || (WantsDataLocked() && !conn.Evicted)) ScheduleRedialLocked(endPoint);
        }
    }

    /// <summary>
    /// A peer that refused us, or closed before the handshake completed, may just not be ready yet (libtorrent drops
    /// connections to a torrent it is still checking; a peer given on the command line may start after us): it is tried
    /// again after <see cref="TorrentSessionOptions.RedialDelay"/>, doubling per failure, up to
    /// <see cref="TorrentSessionOptions.MaxDialAttempts"/> attempts (libtorrent also retries with a growing delay).
    /// </summary>
    private void ScheduleRedialLocked(IPEndPoint endPoint)
    {
        if (_disposed != 0 || _bannedEndPoints.Contains(endPoint)) return;
        var failures = (_redials.TryGetValue(endPoint, out var r) ? r.Failures : 0) + 1;
        if (failures >= _options.MaxDialAttempts)
        {
            _redials.Remove(endPoint);
            _log.LogDebug("giving up on {Peer} after {Failures} failed dials", endPoint, failures);
            return;
        }

        var delay = _options.RedialDelay * Math.Pow(2, Math.Min(failures - 1, 16));
        if (delay > _options.MaxRedialDelay) delay = _options.MaxRedialDelay;
        _redials[endPoint] = (failures, _time.GetUtcNow() + delay);
    }

    /// <summary>
    /// Whether <paramref name="endPoint"/> waits out a redial back-off: a source (PEX, tracker, DHT) naming it again does
    /// not cut the wait short (libtorrent keeps a peer's failcount and last_connected when a source re-adds it).
    /// </summary>
    private bool InBackOffLocked(IPEndPoint endPoint, DateTimeOffset now) =>
        _redials.TryGetValue(endPoint, out var r) && r.RetryAt > now && r.RetryAt != DateTimeOffset.MaxValue;

    /// <summary>Runs one connection to its end; true when it got past the handshake and was registered.</summary>
    private async Task<bool> RunConnectionAsync(PeerConnection conn, CancellationToken ct, PendingIncoming? pending = null)
    {
        var registered = false;
        try
        {
            conn.StartPump();
            var ours = new byte[PeerWire.HandshakeLength];
            PeerWire.WriteHandshake(ours, new PeerHandshake(OurReserved, InfoHash, PeerId));
            if (conn.Outgoing) conn.Send(w => BuffersExtensions.Write(w, ours));
            // libtorrent's handshake_timeout, on the session's clock; for an accepted peer it runs from admission, so an
            // MSE negotiation and the handshake after it share one deadline.
            var handshakeLeft = pending is null ? _options.HandshakeTimeout : pending.Opened + _options.HandshakeTimeout - _time.GetUtcNow();
            using var handshakeTimeout = new CancellationTokenSource(handshakeLeft > TimeSpan.Zero ? handshakeLeft : TimeSpan.Zero, _time);
            using var handshakeCt = CancellationTokenSource.CreateLinkedTokenSource(ct, conn.Closing, handshakeTimeout.Token);
            PeerHandshake? theirs;
            try
            {
                theirs = await conn.ReadHandshakeAsync(handshakeCt.Token).ConfigureAwait(false);
            }
            finally
            {
                pending?.Router.HandshakeDone(pending);
            }

            if (theirs is not { } hs || hs.InfoHash != InfoHash)
            {
                // BEP 3: a peer whose first bytes are no handshake for this torrent is dropped (e.g. garbage over a data channel).
                _log.LogDebug("dropping {Peer}: {Reason}", conn, theirs is null ? "no BitTorrent handshake" : "a handshake for another torrent");
                return false;
            }

            if (!conn.Outgoing) conn.Send(w => BuffersExtensions.Write(w, ours));
            conn.Handshake = hs;
            conn.PeerId = hs.PeerId;
            lock (_gate)
            {
                if (!Register(conn)) return false;
                registered = true;
            }

            PeerConnected?.Invoke(conn.PeerId);

            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, conn.Closing);
            var error = await conn.ReadLoopAsync(HandleFrame, AfterBatchAsync, linked.Token).ConfigureAwait(false);
            if (error != PeerWireError.None) _log.LogDebug("dropping {Peer}: {Error}", conn, error);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            _log.LogDebug("connection {Peer} ended: {Message}", conn, ex.Message);
        }
        finally
        {
            List<(int Piece, PieceBuffer Data)>? orphaned = null;
            if (registered)
            {
                lock (_gate)
                {
                    Unregister(conn);
                    // Pieces this connection completed in the batch its loop ended in (a bad frame, a reset) never reached
                    // AfterBatchAsync: their blocks are all here and no longer asked of anyone, so they go to the disk
                    // queue now, or the piece would be neither stored nor requested again.
                    _completedPieces.Remove(conn, out orphaned);
                }
            }

            if (orphaned is not null) await HandOverOrphanedPiecesAsync(orphaned).ConfigureAwait(false);
            await conn.DisposeAsync().ConfigureAwait(false);
            if (registered) PeerDisconnected?.Invoke(conn.PeerId);
        }

        return registered;
    }

    /// <summary>Hands complete pieces of a connection that ended to the disk queue; while stopping, their buffers go back.</summary>
    private async Task HandOverOrphanedPiecesAsync(List<(int Piece, PieceBuffer Data)> pieces)
    {
        for (var i = 0; i < pieces.Count; i++)
        {
            try
            {
                await EnqueueCompletePiecesAsync([pieces[i]]).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The session is stopping: nothing will verify these; the piece stays missing for the next start.
                for (var j = i; j < pieces.Count; j++) _shared.Disk.Buffers.Return(pieces[j].Data);
                return;
            }
        }
    }

    private bool IsBanned(PeerConnection conn) =>
        _bannedIds.Contains(conn.PeerId) || (conn.Outgoing && _bannedEndPoints.Contains(conn.Remote)) ||
        (conn.ListenEndPoint is not null && _bannedEndPoints.Contains(conn.ListenEndPoint));

    private bool Register(PeerConnection conn)
    {
        if (_disposed != 0 || conn.PeerId == PeerId || IsBanned(conn)) return false;
        if (_connections.Find(c => c.PeerId == conn.PeerId) is { } existing)
        {
            // Two peers that dial each other at once end up with two connections, and each side may register a
            // different one first. Both sides keep the connection opened by the lower peer ID (libtorrent's rule),
            // so they agree on one instead of each dropping the one the other kept.
            if (!InitiatedByLowerId(conn) || InitiatedByLowerId(existing)) return false;
            existing.Close();
            RemoveConnectionLocked(existing);
            foreach (var r in existing.Outstanding) _picker?.OnRequestDropped(existing, r.Piece, r.Begin);
            existing.Outstanding.Clear();
            if (existing.PeerHas is not null) _picker?.RemoveAvailability(existing.PeerHas);
        }

        if (!MakeRoomLocked(conn)) return false;
        _connections.Add(conn);
        _shared.Connections.Add(IpOf(conn));
        _shared.Ticker.Wake();
        var fast = conn.Fast;
        // BEP 3: the bitfield (or, BEP 6, have all / have none) is the first message after the handshake.
        if (_have is not null && _info is not null)
        {
            if (fast && _have.IsComplete) conn.Send(w => PeerWire.WriteSimple(w, PeerMessageType.HaveAll));
            else if (fast && _have.IsEmpty) conn.Send(w => PeerWire.WriteSimple(w, PeerMessageType.HaveNone));
            else if (!_have.IsEmpty) conn.Send(w => PeerWire.WriteBitfield(w, _have.AsSpan()));
        }
        else if (fast)
        {
            conn.Send(w => PeerWire.WriteSimple(w, PeerMessageType.HaveNone));
        }

        if (conn.Handshake.SupportsExtensions) SendExtendedHandshake(conn);
        if (fast && _info is not null) GrantAllowedFast(conn);
        if (conn.Handshake.SupportsDht && _options.DhtPort is { } dhtPort) conn.Send(w => PeerWire.WritePort(w, (ushort)dhtPort));
        return true;
    }

    private bool InitiatedByLowerId(PeerConnection conn) => conn.Outgoing ? PeerId < conn.PeerId : conn.PeerId < PeerId;

    private void SendExtendedHandshake(PeerConnection conn)
    {
        var extensions = new Dictionary<string, byte> { ["ut_metadata"] = ExtendedHandshake.UtMetadataId };
        if (!IsPrivate) extensions["ut_pex"] = ExtendedHandshake.UtPexId;
        if (_options.Holepunch) extensions[HolepunchCodec.ExtensionName] = ExtendedHandshake.UtHolepunchId;
        var payload = new ExtendedHandshake
        {
            Extensions = extensions,
            ListenPort = ListenPort,
            Client = _options.ClientName,
            RequestQueue = _options.MaxIncomingRequests,
            MetadataSize = _info?.RawInfo.Length,
            YourIp = conn.Remote.Address,
        }.Encode();
        conn.Send(w => PeerWire.WriteExtended(w, ExtendedHandshake.HandshakeId, payload));
    }

    private void GrantAllowedFast(PeerConnection conn)
    {
        foreach (var p in AllowedFast.Generate(conn.Remote.Address, InfoHash, _info!.PieceCount, _options.AllowedFastCount))
        {
            conn.AllowedFastToPeer.Add(p);
            conn.Send(w => PeerWire.WriteIndex(w, PeerMessageType.AllowedFast, p));
        }
    }

    private void Unregister(PeerConnection conn)
    {
        if (!RemoveConnectionLocked(conn)) return;
        foreach (var r in conn.Outstanding) _picker?.OnRequestDropped(conn, r.Piece, r.Begin);
        conn.Outstanding.Clear();
        if (conn.PeerHas is not null) _picker?.RemoveAvailability(conn.PeerHas);
        ReleaseSeedingClaims(conn);
        // A peer that left may come back (PEX, tracker); a banned one may not. It is dialled after the redial back-off,
        // not at once: a full peer that dropped us for a newcomer would otherwise be dialled again on the next tick and
        // drop another peer for us, round and round (libtorrent waits min_reconnect_time before reconnecting to a peer).
        if (conn.ListenEndPoint is { } ep && !_bannedEndPoints.Contains(ep) && !conn.Outgoing && !conn.Evicted)
        {
            ScheduleRedialLocked(ep);
            _shared.Ticker.Wake();
        }
        foreach (var c in _connections) RequestMore(c);
    }

    private bool RemoveConnectionLocked(PeerConnection conn)
    {
        if (!_connections.Remove(conn)) return false;
        _shared.Connections.Remove(IpOf(conn));
        return true;
    }

    private void Ban(PeerConnection conn, string reason)
    {
        _log.LogWarning("banning {Peer} ({PeerId}): {Reason}", conn, conn.PeerId, reason);
        _bannedIds.Add(conn.PeerId);
        _bannedEndPoints.Add(conn.Remote);
        if (conn.ListenEndPoint is not null) _bannedEndPoints.Add(conn.ListenEndPoint);
        _candidates.RemoveWhere(_bannedEndPoints.Contains);
        conn.Close();
    }

    /// <summary>One tick (see <see cref="SwarmTicker"/>); false when the torrent is idle (nothing but its resume file to look after).</summary>
    private bool Tick()
    {
        if (_cts.IsCancellationRequested) return false;
        var now = _time.GetUtcNow();
        if (TickIdle(now)) return false;
        lock (_gate)
        {
            _ticks++;
            WakeWebSeedsLocked();
            var dueRechoke = _ticks % Math.Max(1, (long)(_options.Choker.RechokeInterval / TickInterval)) == 1;
            if (dueRechoke) Rechoke();
            UpdateActivityLocked(now);
            var snapshot = SnapshotConnectionsLocked();
            foreach (var c in snapshot)
            {
                if (now - c.LastReceived > _options.IdleTimeout)
                {
                    c.Close();
                    continue;
                }

                if (now - c.LastSent > _options.KeepAliveInterval) c.Send(PeerWire.WriteKeepAlive);
                // Adaptive queue depth: enough requests to cover ~2 s of this peer's rate (libtorrent's rule of thumb).
                var reqq = c.Extended?.RequestQueue ?? 250;
                var desired = (int)(c.DownloadRate * 2 / TorrentLimits.BlockLength) + _options.MinQueueDepth;
                c.QueueDepth = Math.Clamp(desired, _options.MinQueueDepth, Math.Min(_options.MaxQueueDepth, reqq));
                // A peer that stopped delivering gives its requests back, so a vanished peer cannot stall the download.
                if (c.Outstanding.Count > 0 && now - c.LastBlockReceived > _options.RequestTimeout)
                {
                    foreach (var r in c.Outstanding) _picker?.OnRequestDropped(c, r.Piece, r.Begin);
                    c.Outstanding.Clear();
                    c.LastBlockReceived = now;
                }

                // Pieces a peer rejected are asked of it again after a second (others may not have them after all).
                if (_ticks % 10 == 0) c.RejectedPieces.Clear();
                RequestMore(c);
                if (_info is null) RequestMetadata(c);
            }

            ReturnSnapshot(snapshot);
            if (!IsPrivate && now - _lastPex >= _options.PexInterval)
            {
                _lastPex = now;
                SendPex();
            }

            if (_storage is not null && now - _lastResume >= _options.ResumeInterval && _resumeSave.IsCompleted)
            {
                // Beside the tick, not in it: the save's fsyncs take up to hundreds of milliseconds on a file being
                // written, and the tick refills every peer's requests (docs/BENCHMARKS.md, issue 14 item 9, sixth round).
                _lastResume = now;
                _resumeSave = Scheduler.RunAsync(SaveResumeSafely, CancellationToken.None);
                _tasks.Add(_resumeSave);
            }

            if (_redials.Count > 0) MoveDueRedialsLocked(now);
            DialWantedLocked();
            _tasks.RemoveAll(static t => t.IsCompleted);
        }

        ServeRateLimited();
        return true;
    }

    /// <summary>Endpoints whose redial back-off is over become candidates again.</summary>
    private void MoveDueRedialsLocked(DateTimeOffset now)
    {
        var due = _endPointScratch;
        due.Clear();
        foreach (var (ep, r) in _redials)
        {
            if (r.RetryAt <= now) due.Add(ep);
        }

        foreach (var ep in due)
        {
            // Left in _redials (with its failure count) until a dial gets through the handshake.
            _redials[ep] = (_redials[ep].Failures, DateTimeOffset.MaxValue);
            _candidates.Add(ep);
        }

        due.Clear();
    }

    /// <summary>Dials up to <paramref name="wanted"/> candidates not connected or being dialled.</summary>
    private void DialCandidatesLocked(int wanted)
    {
        var dial = _endPointScratch;
        dial.Clear();
        foreach (var ep in _candidates)
        {
            if (dial.Count >= wanted) break;
            if (!_connecting.Contains(ep) && !IsConnectedTo(ep)) dial.Add(ep);
        }

        foreach (var ep in dial)
        {
            _candidates.Remove(ep);
            _connecting.Add(ep);
            _tasks.Add(DialAsync(ep, _cts.Token));
        }

        dial.Clear();
    }

    /// <summary>
    /// The tick of a torrent with no peer connected, being dialled, or waiting to be dialled or redialled: nothing to
    /// rechoke, time out, refill, announce or dial, so only the resume file can be due. Returns false (having done
    /// nothing) when there is more to do. One client holding many torrents without peers spends its idle ticks here,
    /// without allocating (bench/torrent/idle-torrents.sh).
    /// </summary>
    private bool TickIdle(DateTimeOffset now)
    {
        bool saveResume;
        lock (_gate)
        {
            if (_connections.Count > 0 || _connecting.Count > 0 || _candidates.Count > 0 || _redials.Count > 0) return false;
            _ticks++;
            _tasks.RemoveAll(static t => t.IsCompleted);
            saveResume = _storage is not null && now - _lastResume >= _options.ResumeInterval;
            if (saveResume) _lastResume = now;
        }

        if (saveResume) SaveResumeSafely();
        return true;
    }

    private bool IsConnectedTo(IPEndPoint ep)
    {
        foreach (var c in _connections)
        {
            if (ep.Equals(c.ListenEndPoint) || (c.Outgoing && ep.Equals(c.Remote))) return true;
        }

        return false;
    }

    /// <summary>Endpoints collected under the lock by one tick step at a time (never held across a call out).</summary>
    private readonly List<IPEndPoint> _endPointScratch = [];

    /// <summary>A reused list of spare connection snapshots: a tick walks a copy, since closing a peer may unregister it inline.</summary>
    private readonly Stack<List<PeerConnection>> _spareSnapshots = new();

    /// <summary>A copy of <see cref="_connections"/> to walk while the walk may change it; give it back with <see cref="ReturnSnapshot"/>.</summary>
    private List<PeerConnection> SnapshotConnectionsLocked()
    {
        var list = _spareSnapshots.Count > 0 ? _spareSnapshots.Pop() : [];
        list.AddRange(_connections);
        return list;
    }

    private void ReturnSnapshot(List<PeerConnection> list)
    {
        list.Clear();
        _spareSnapshots.Push(list);
    }

    private void SaveResumeSafely()
    {
        try
        {
            _storage?.SaveResume();
        }
        catch (IOException ex)
        {
            _log.LogWarning("could not save the resume file: {Message}", ex.Message);
        }
        catch (ObjectDisposedException)
        {
            // Shutting down.
        }
    }

    private void Rechoke()
    {
        var seeding = _have?.IsComplete ?? false;
        var unchoke = _choker.Rechoke(_connections, seeding);
        foreach (var c in _connections)
        {
            var should = unchoke.Contains(c);
            if (should && c.AmChoking)
            {
                c.AmChoking = false;
                c.Send(w => PeerWire.WriteSimple(w, PeerMessageType.Unchoke));
            }
            else if (!should && !c.AmChoking)
            {
                c.AmChoking = true;
                c.Send(w => PeerWire.WriteSimple(w, PeerMessageType.Choke));
                // BEP 3: choking discards the peer's pending requests; BEP 6: say so explicitly (except allowed-fast ones).
                var keep = new Queue<BlockRequest>();
                foreach (var r in c.IncomingRequests)
                {
                    if (c.Fast && c.AllowedFastToPeer.Contains(r.Piece)) keep.Enqueue(r);
                    else if (c.Fast) c.Send(w => PeerWire.WriteBlockMessage(w, PeerMessageType.RejectRequest, r.Piece, r.Begin, r.Length));
                }

                c.IncomingRequests.Clear();
                foreach (var r in keep) c.IncomingRequests.Enqueue(r);
                ReleaseSeedingClaims(c);
            }
        }
    }

    private void SendPex()
    {
        var everyone = _connections.Where(c => c.ListenEndPoint is not null).Select(c => c.ListenEndPoint!).ToHashSet();
        foreach (var c in _connections)
        {
            var id = c.Extended?.ExtensionId("ut_pex") ?? 0;
            // WebTorrent keeps PEX out of WebRTC peers (its browser build has no ut_pex).
            if (id == 0 || c.Kind == StreamTransportKind.WebRtc) continue;
            var added = everyone.Where(e => !e.Equals(c.ListenEndPoint) && !c.PexSent.Contains(e)).Take(50).ToList();
            var dropped = c.PexSent.Where(e => !everyone.Contains(e)).Take(50).ToList();
            if (added.Count == 0 && dropped.Count == 0) continue;
            foreach (var a in added) c.PexSent.Add(a);
            foreach (var d in dropped) c.PexSent.Remove(d);
            var payload = new PexMessage(added, dropped).Encode();
            c.Send(w => PeerWire.WriteExtended(w, id, payload));
        }
    }

    /// <summary>Closes every connection, stops the session's tasks and awaits them, and closes the storage.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await Scheduler.CancelAsync(_cts).ConfigureAwait(false);
        if (_shared is not null)
        {
            _shared.Ticker.Remove(_tick);
            _shared.Router.Remove(this);
            if (_ownsShared) await _shared.Router.DisposeAsync().ConfigureAwait(false);
        }

        Task[] tasks;
        lock (_gate)
        {
            foreach (var c in _connections) c.Close();
            FailStreamWaitersLocked();
            tasks = [.. _tasks];
        }

        await Task.WhenAll(tasks).ConfigureAwait(false);
        await _incoming.WhenAllAsync().ConfigureAwait(false);
        // Pieces already queued are still checked and written (as before a shutdown), then the storage closes.
        if (Interlocked.CompareExchange(ref _diskQueued, 0, 0) > 0) await _diskDrained.Task.ConfigureAwait(false);
        if (_ownsShared)
        {
            await _shared!.Disk.DisposeAsync().ConfigureAwait(false);
            _shared.Ticker.Dispose();
        }
        SaveResumeSafely();
        _storage?.Dispose();
        _cts.Dispose();
        _metadata.TrySetCanceled();
        _completed.TrySetCanceled();
    }
}
