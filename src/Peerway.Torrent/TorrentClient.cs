using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;
using Peerway.Net;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent;

/// <summary>
/// A BitTorrent client: every torrent of the process in one place (the shape of MonoTorrent's <c>ClientEngine</c> and
/// anacrolix/torrent's <c>Client</c>). It owns the listeners — one port for all torrents, on each transport given —
/// and routes each incoming connection to its torrent by info-hash (for MSE, by the SKEY the peer's req2 hash names);
/// all torrents share one connection limit, one upload and one download rate limit, and one disk queue. Torrents are
/// added, paused, resumed and removed at run time. Two clients in one process are independent.
/// </summary>
/// <remarks>
/// Nothing here opens a socket: peers are reached through the <see cref="IStreamTransport"/>s, pieces stored through
/// the <see cref="ITorrentStorageFactory"/>, and time read from the <see cref="TimeProvider"/>, so a client runs as well
/// on a virtual network, in memory and on a fake clock as on TCP and disk. <see cref="DisposeAsync"/> stops every
/// torrent and awaits every task the client started.
/// </remarks>
public sealed partial class TorrentClient : IAsyncDisposable
{
    private readonly IReadOnlyList<IStreamTransport> _transports;
    private readonly TorrentClientOptions _options;
    private readonly ITorrentStorageFactory _storage;
    private readonly TimeProvider _time;
    private readonly ITorrentDht? _dht;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _log;
    private readonly SwarmShared _shared;
    private readonly Lock _gate = new();
    private readonly Dictionary<NodeId, TorrentHandle> _torrents = [];
    private readonly Dictionary<TorrentHandle, DhtPeerSource> _dhtSources = [];
    private readonly List<Task> _tasks = [];

    /// <summary>Serialises add, pause, resume and remove (each awaits a session's start or stop).</summary>
    private readonly SemaphoreSlim _changes = new(1, 1);
    private int _started;
    private int _disposed;

    /// <summary>Creates a client; <see cref="StartAsync"/> binds its listeners.</summary>
    /// <param name="transports">How peers are reached: every one of the kinds <see cref="TorrentClientOptions.Transports"/> allows
    /// listens, in this order (the first sets the port); dials go to uTP first, then the others (see <see cref="TransportDialer"/>).</param>
    /// <param name="options">What the torrents share (validated here).</param>
    /// <param name="storage">Opens each torrent's storage.</param>
    /// <param name="time">The clock of every engine (timeouts, rates, choking rounds, file mtimes of the storage it makes).</param>
    /// <param name="dht">A DHT to find peers in and announce to; null: none (trackers, PEX and given peers only).</param>
    /// <param name="loggers">Where the engines log; null: nowhere.</param>
    public TorrentClient(IReadOnlyList<IStreamTransport> transports, TorrentClientOptions options, ITorrentStorageFactory storage, TimeProvider time,
        ITorrentDht? dht = null, ILoggerFactory? loggers = null)
    {
        ArgumentNullException.ThrowIfNull(transports);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(time);
        options.Validate();
        _transports = SelectTransports(transports, options);
        _options = options;
        _storage = storage;
        _time = time;
        _dht = dht;
        _loggers = loggers ?? NullLoggerFactory.Instance;
        _log = _loggers.CreateLogger<TorrentClient>();
        var budget = new ConnectionBudget(options.MaxConnections);
        var scheduler = options.Scheduler is { } executor ? new EngineScheduler(executor) : EngineScheduler.ThreadPool;
        var router = new PeerRouter(new PeerRouterOptions(options.HandshakeTimeout, options.MaxConnections, options.MaxConnectionsPerIp, options.Encryption),
            budget, time, _loggers.CreateLogger<PeerRouter>(), scheduler);
        _shared = new SwarmShared(budget,
            options.UploadRateLimit is { } up ? new RateBucket(up, time) : null,
            options.DownloadRateLimit is { } down ? new RateBucket(down, time) : null,
            new DiskQueue(_loggers.CreateLogger<DiskQueue>(), scheduler), router, scheduler, new SwarmTicker(time, TorrentSession.TickInterval, TorrentSession.IdleTickInterval));
        PeerId = options.PeerId ?? TorrentSession.NewPeerId();
        _dialer = new TransportDialer(DialTransports(_transports, options, time), options.UtpConnectTimeout, time, _loggers.CreateLogger<TransportDialer>());
    }

    /// <summary>
    /// The HTTP client web seeds (BEP 19) are fetched with (keep-alive connections, several per server); null: web
    /// seeds are not used (logged once per torrent that has some).
    /// </summary>
    public HttpClient? WebSeedHttp { get; init; }

    /// <summary>Our peer id, the same for every torrent.</summary>
    public NodeId PeerId { get; }

    /// <summary>The bound listen endpoints (after <see cref="StartAsync"/>).</summary>
    public IReadOnlyList<IPEndPoint> LocalEndPoints => _shared.Router.LocalEndPoints;

    /// <summary>The one port every torrent is reached on; 0 before <see cref="StartAsync"/> or without listeners.</summary>
    public int Port => _shared.Router.Port;

    /// <summary>An incoming connection was admitted by the shared router (before its handshake); what tests of admission watch.</summary>
    internal event Action<IPEndPoint>? IncomingAdmitted
    {
        add => _shared.Router.IncomingAdmitted += value;
        remove => _shared.Router.IncomingAdmitted -= value;
    }

    /// <summary>The torrents, in no particular order.</summary>
    public IReadOnlyList<TorrentHandle> Torrents
    {
        get
        {
            lock (_gate) return [.. _torrents.Values];
        }
    }

    /// <summary>Registered peer connections across all torrents.</summary>
    public int ConnectionCount => _shared.Connections.Count;

    /// <summary>
    /// Binds every transport on every <see cref="TorrentClientOptions.ListenEndPoints"/> entry (one port: a 0 port
    /// takes the first bound one). A taken endpoint throws the transport's <see cref="IOException"/>.
    /// </summary>
    public async Task StartAsync(CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("the client is already started");
        var port = 0;
        foreach (var at in _options.ListenEndPoints)
        {
            var endPoint = at.Port == 0 && port != 0 ? new IPEndPoint(at.Address, port) : at;
            foreach (var transport in _transports)
            {
                await _shared.Router.ListenAsync(transport, endPoint, ct).ConfigureAwait(false);
                if (port == 0) port = _shared.Router.Port;
                endPoint = new IPEndPoint(endPoint.Address, port);
            }
        }
    }

    /// <summary>Adds a magnet link: its info dictionary is fetched from peers (BEP 9), then its content under <paramref name="savePath"/>.</summary>
    public Task<TorrentHandle> AddAsync(MagnetLink magnet, string savePath, TorrentAddOptions? options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(magnet);
        var peers = new List<IPEndPoint>((options ?? new()).Peers);
        foreach (var p in magnet.Peers)
        {
            if (MagnetLink.TryParsePeer(p, out var ep)) peers.Add(ep!);
        }

        return AddAsync(magnet.InfoHash, null, savePath, (options ?? new()) with { Peers = peers }, ct);
    }

    /// <summary>Adds a magnet link with the default <see cref="TorrentAddOptions"/>; see <see cref="AddAsync(MagnetLink, string, TorrentAddOptions?, CancellationToken)"/>.</summary>
    public Task<TorrentHandle> AddAsync(MagnetLink magnet, string savePath) => AddAsync(magnet, savePath, null, CancellationToken.None);

    /// <summary>Adds a magnet link, not cancellable; see <see cref="AddAsync(MagnetLink, string, TorrentAddOptions?, CancellationToken)"/>.</summary>
    public Task<TorrentHandle> AddAsync(MagnetLink magnet, string savePath, TorrentAddOptions? options) => AddAsync(magnet, savePath, options, CancellationToken.None);

    /// <summary>Adds a .torrent: its content goes (or, with <see cref="TorrentAddOptions.SeedOnly"/>, is) under <paramref name="savePath"/>.</summary>
    /// <exception cref="InvalidDataException">Seeding only, and the content there does not match.</exception>
    /// <exception cref="Peerway.Core.IO.OutputConflictException">A file there is not this torrent's (see <see cref="TorrentStorage.Open"/>).</exception>
    public Task<TorrentHandle> AddAsync(TorrentMetainfo metainfo, string savePath, TorrentAddOptions? options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(metainfo);
        options ??= new();
        // BEP 17 "httpseeds" (Hoffman style, a server-side script) is not supported: say so, use the rest.
        if (metainfo.HttpSeeds.Count > 0) _log.LogInformation("torrent {InfoHash}: ignoring {Count} BEP 17 httpseeds (not supported; BEP 19 url-list is)", metainfo.InfoHash, metainfo.HttpSeeds.Count);
        var seeds = options.WebSeeds.Concat(metainfo.WebSeeds.Select(w => new Uri(w))).Distinct().ToList();
        return AddAsync(metainfo.InfoHash, metainfo.Info, savePath, options with { WebSeeds = seeds }, ct);
    }

    /// <summary>Adds a .torrent with the default <see cref="TorrentAddOptions"/>; see <see cref="AddAsync(TorrentMetainfo, string, TorrentAddOptions?, CancellationToken)"/>.</summary>
    public Task<TorrentHandle> AddAsync(TorrentMetainfo metainfo, string savePath) => AddAsync(metainfo, savePath, null, CancellationToken.None);

    /// <summary>Adds a .torrent, not cancellable; see <see cref="AddAsync(TorrentMetainfo, string, TorrentAddOptions?, CancellationToken)"/>.</summary>
    public Task<TorrentHandle> AddAsync(TorrentMetainfo metainfo, string savePath, TorrentAddOptions? options) => AddAsync(metainfo, savePath, options, CancellationToken.None);

    /// <summary>Adds a torrent by its info dictionary (the same as a .torrent without trackers).</summary>
    public Task<TorrentHandle> AddAsync(TorrentInfo info, string savePath, TorrentAddOptions? options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(info);
        return AddAsync(info.InfoHash, info, savePath, options ?? new(), ct);
    }

    /// <summary>Adds a torrent by its info dictionary with the default <see cref="TorrentAddOptions"/>; see <see cref="AddAsync(TorrentInfo, string, TorrentAddOptions?, CancellationToken)"/>.</summary>
    public Task<TorrentHandle> AddAsync(TorrentInfo info, string savePath) => AddAsync(info, savePath, null, CancellationToken.None);

    /// <summary>Adds a torrent by its info dictionary, not cancellable; see <see cref="AddAsync(TorrentInfo, string, TorrentAddOptions?, CancellationToken)"/>.</summary>
    public Task<TorrentHandle> AddAsync(TorrentInfo info, string savePath, TorrentAddOptions? options) => AddAsync(info, savePath, options, CancellationToken.None);

    private async Task<TorrentHandle> AddAsync(NodeId infoHash, TorrentInfo? info, string savePath, TorrentAddOptions options, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(savePath);
        options.Validate();
        await _changes.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            lock (_gate)
            {
                if (_torrents.ContainsKey(infoHash)) throw new InvalidOperationException($"torrent {infoHash} was already added");
            }

            var handle = new TorrentHandle(this, infoHash, info, savePath, options);
            if (options.Paused) handle.AddPaused();
            else await StartSessionAsync(handle, ct).ConfigureAwait(false);
            lock (_gate) _torrents.Add(infoHash, handle);
            return handle;
        }
        finally
        {
            _changes.Release();
        }
    }

    /// <summary>Makes, starts and attaches the handle's engine (add and resume); on failure nothing stays running.</summary>
    private async Task StartSessionAsync(TorrentHandle handle, CancellationToken ct)
    {
        var options = handle.Options.Session with
        {
            Encryption = _options.Encryption,
            HandshakeTimeout = _options.HandshakeTimeout,
            MaxConnectionsPerIp = _options.MaxConnectionsPerIp,
            PeerId = PeerId,
            DhtPort = _dht?.Port,
        };
        var session = new TorrentSession(handle.InfoHash, handle.KnownInfo, _storage, handle.SavePath, handle.Options.SeedOnly, options, _dialer, _time,
            _loggers.CreateLogger<TorrentSession>(), _shared)
        {
            FileSelection = handle.ResolveFileSelection,
        };
        try
        {
            await session.StartAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            await session.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        handle.Attach(session);
        session.AddPeers(handle.Options.Peers);
        if (handle.Options.WebSeeds.Count > 0 && !handle.Options.SeedOnly)
        {
            if (WebSeedHttp is { } http) session.AddWebSeeds(handle.Options.WebSeeds, http, handle.Options.WebSeedOptions);
            else _log.LogWarning("torrent {InfoHash}: {Count} web seeds not used (the client has no HttpClient)", handle.InfoHash, handle.Options.WebSeeds.Count);
        }

        lock (_gate)
        {
            _tasks.RemoveAll(t => t.IsCompleted);
            _tasks.Add(WatchAsync(handle, session));
            if (_dht is not null)
            {
                var source = new DhtPeerSource(session, _dht, _options.Dht, _time, _loggers.CreateLogger<DhtPeerSource>());
                _dhtSources[handle] = source;
                source.Start();
            }
        }

        handle.RaiseStateChanged();
        SessionStarted?.Invoke(handle);
    }

    /// <summary>Forwards one engine's metadata, completion and failure to its handle (until the engine stops).</summary>
    private async Task WatchAsync(TorrentHandle handle, TorrentSession session)
    {
        try
        {
            handle.OnMetadata(await session.MetadataReady.ConfigureAwait(false));
            await session.Completed.ConfigureAwait(false);
            handle.OnCompleted();
        }
        catch (OperationCanceledException)
        {
            // Paused or removed before.
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            _log.LogError("torrent {InfoHash} failed: {Message}", handle.InfoHash, ex.Message);
            handle.OnFailed(ex);
        }
    }

    internal async Task PauseAsync(TorrentHandle handle)
    {
        await _changes.WaitAsync().ConfigureAwait(false);
        try
        {
            await StopSessionAsync(handle, removed: false).ConfigureAwait(false);
        }
        finally
        {
            _changes.Release();
        }

        handle.RaiseStateChanged();
    }

    internal async Task ResumeAsync(TorrentHandle handle, CancellationToken ct)
    {
        await _changes.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            if (handle.State != TorrentState.Paused) return;
            await StartSessionAsync(handle, ct).ConfigureAwait(false);
        }
        finally
        {
            _changes.Release();
        }
    }

    internal async Task RemoveAsync(TorrentHandle handle)
    {
        await _changes.WaitAsync().ConfigureAwait(false);
        try
        {
            lock (_gate)
            {
                if (!_torrents.TryGetValue(handle.InfoHash, out var h) || !ReferenceEquals(h, handle)) return;
                _torrents.Remove(handle.InfoHash);
            }

            await StopSessionAsync(handle, removed: true).ConfigureAwait(false);
        }
        finally
        {
            _changes.Release();
        }

        handle.RaiseStateChanged();
    }

    /// <summary>Stops the handle's engine: its DHT source, its peers (only its own), its storage.</summary>
    private async Task StopSessionAsync(TorrentHandle handle, bool removed)
    {
        var session = handle.Detach(removed);
        if (session is null) return;
        DhtPeerSource? source;
        lock (_gate)
        {
            _dhtSources.Remove(handle, out source);
        }

        if (source is not null) await source.DisposeAsync().ConfigureAwait(false);
        await session.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Stops every torrent, closes the listeners, drains the disk queue and awaits every task the client started.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _changes.WaitAsync().ConfigureAwait(false);
        try
        {
            await _shared.Router.DisposeAsync().ConfigureAwait(false);
            foreach (var handle in Torrents)
            {
                lock (_gate) _torrents.Remove(handle.InfoHash);
                await StopSessionAsync(handle, removed: true).ConfigureAwait(false);
            }

            Task[] tasks;
            lock (_gate) tasks = [.. _tasks];
            await Task.WhenAll(tasks).ConfigureAwait(false);
            await _shared.Disk.DisposeAsync().ConfigureAwait(false);
            _shared.Ticker.Dispose();
        }
        finally
        {
            _changes.Release();
        }

        _changes.Dispose();
    }
}
