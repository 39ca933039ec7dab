using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Core;
using Peerway.Torrent;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Trackers;

namespace Peerway.Node.Daemon;

/// <summary>A request the node refuses (bad download-dir, unknown torrent): its message goes back to the RPC client.</summary>
public sealed class NodeRequestException : Exception
{
    public NodeRequestException(string message) : base(message)
    {
    }

    public NodeRequestException()
    {
    }

    public NodeRequestException(string message, Exception innerException) : base(message, innerException)
    {
    }
}

/// <summary>One torrent of the node: its client handle plus what the RPC reports (id, dates, rates, trackers).</summary>
public sealed class NodeTorrent
{
    private long _rateDown;
    private long _rateUp;
    private long _lastDown;
    private long _lastUp;

    internal NodeTorrent(int id, TorrentHandle handle, string downloadDir, long addedDate, IReadOnlyList<string> trackers, IReadOnlyList<string> peers, long? uploadLimit)
    {
        Id = id;
        Handle = handle;
        DownloadDir = downloadDir;
        AddedDate = addedDate;
        Trackers = trackers;
        Peers = peers;
        UploadLimit = uploadLimit;
    }

    /// <summary>The RPC id (transmission's small integer), kept across restarts.</summary>
    public int Id { get; }

    public TorrentHandle Handle { get; internal set; }

    public string DownloadDir { get; }

    /// <summary>Unix seconds.</summary>
    public long AddedDate { get; }

    /// <summary>Unix seconds of completion; 0 while incomplete.</summary>
    public long DoneDate { get; internal set; }

    public IReadOnlyList<string> Trackers { get; }

    internal IReadOnlyList<string> Peers { get; }

    /// <summary>This torrent's upload cap in bytes/s (null: none).</summary>
    public long? UploadLimit { get; internal set; }

    internal TrackerAnnouncer? Announcer { get; set; }

    /// <summary>Download rate over the last sampling interval, bytes/s.</summary>
    public long RateDownload => Interlocked.Read(ref _rateDown);

    public long RateUpload => Interlocked.Read(ref _rateUp);

    public string Name => Handle.Info?.Name ?? Handle.InfoHash.ToString();

    internal void Sample(double seconds)
    {
        var stats = Handle.GetStats();
        if (seconds > 0)
        {
            Interlocked.Exchange(ref _rateDown, (long)(Math.Max(0, stats.Downloaded - _lastDown) / seconds));
            Interlocked.Exchange(ref _rateUp, (long)(Math.Max(0, stats.Uploaded - _lastUp) / seconds));
        }

        _lastDown = stats.Downloaded;
        _lastUp = stats.Uploaded;
    }

    internal void ResetRates()
    {
        Interlocked.Exchange(ref _rateDown, 0);
        Interlocked.Exchange(ref _rateUp, 0);
        _lastDown = Handle.GetStats().Downloaded;
        _lastUp = Handle.GetStats().Uploaded;
    }
}

/// <summary>What torrent-add asks for: a magnet link or a .torrent, where, and whether to start.</summary>
public sealed record NodeAddRequest(MagnetLink? Magnet, TorrentMetainfo? Metainfo, string? DownloadDir, bool Paused);

/// <summary>
/// The node's torrents on one <see cref="TorrentClient"/>: RPC ids, trackers, rates, and the saved state — every change
/// is written before it is acknowledged — a torrent's to its own record, <c>DATA/torrents/HASH.json</c>, the session's
/// to <c>DATA/state.json</c>, each replaced atomically and fsynced within a second (<see cref="NodeStore"/>) — and each torrent's info dictionary to
/// <c>DATA/torrents/HASH.info</c>, so a node killed at any moment comes back with every torrent; the
/// pieces already verified are kept by the storage's resume file (or re-hashed), never downloaded again. It owns the
/// client: <see cref="DisposeAsync"/> disposes it.
/// </summary>
public sealed class NodeTorrents : IAsyncDisposable
{
    private static readonly TimeSpan RateInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan StateSyncInterval = TimeSpan.FromSeconds(1);
    private readonly TorrentClient _client;
    private readonly NodeStore _store;
    private readonly IReadOnlyList<string> _allowedRoots;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _log;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private readonly UdpTrackerClient? _udp;
    private readonly SemaphoreSlim _changes = new(1, 1);
    private readonly Lock _gate = new();
    // Orders the writes of the saved state (each snapshot is taken and written under it), apart from _gate so that
    // readers of the torrents never wait for an fsync.
    private readonly Lock _saveGate = new();
    private readonly SortedDictionary<int, NodeTorrent> _torrents = [];
    private readonly List<Task> _tasks = [];
    private readonly CancellationTokenSource _stop = new();
    private SavedSettings _settings = new();
    private IReadOnlyList<string> _pins = [];
    private int _nextId = 1;
    private long _version;
    private int _disposed;

    public NodeTorrents(TorrentClient client, string dataDirectory, string downloadDirectory, IEnumerable<string> allowedRoots, UdpTrackerClient? udp,
        TimeProvider time, ILoggerFactory loggers)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        ArgumentException.ThrowIfNullOrEmpty(downloadDirectory);
        ArgumentNullException.ThrowIfNull(allowedRoots);
        ArgumentNullException.ThrowIfNull(loggers);
        _client = client;
        _log = loggers.CreateLogger<NodeTorrents>();
        _store = new NodeStore(dataDirectory, _log);
        DefaultDownloadDir = Path.GetFullPath(downloadDirectory);
        _allowedRoots = [DefaultDownloadDir, .. allowedRoots.Select(r => Path.GetFullPath(r))];
        _udp = udp;
        _time = time;
        _loggers = loggers;
    }

    public string DefaultDownloadDir { get; }

    /// <summary>Moves on with every change the node makes (add, remove, start, stop, settings, metadata, completion).</summary>
    internal long Version => Interlocked.Read(ref _version);

    public TorrentClient Client => _client;

    /// <summary>The torrents by id.</summary>
    public IReadOnlyList<NodeTorrent> All
    {
        get
        {
            lock (_gate) return [.. _torrents.Values];
        }
    }

    internal SavedSettings Settings
    {
        get
        {
            lock (_gate) return _settings;
        }
    }

    /// <summary>The content pins (CIDs) saved with the torrents.</summary>
    public IReadOnlyList<string> Pins
    {
        get
        {
            lock (_gate) return _pins;
        }
    }

    public NodeTorrent? Find(int id)
    {
        lock (_gate) return _torrents.GetValueOrDefault(id);
    }

    public NodeTorrent? Find(NodeId infoHash)
    {
        lock (_gate) return _torrents.Values.FirstOrDefault(t => t.Handle.InfoHash == infoHash);
    }

    /// <summary>Loads the saved state and adds every saved torrent back (paused ones paused); starts the rate sampler.</summary>
    public async Task LoadAsync(CancellationToken ct)
    {
        var (saved, torrents) = _store.Load();
        lock (_gate)
        {
            _settings = saved.Settings;
            _pins = saved.Pins;
            _nextId = saved.NextId;
        }

        foreach (var t in torrents)
        {
            if (!NodeId.TryParseHex(t.InfoHash, out var hash))
            {
                _log.LogWarning("state: torrent {Id} has a bad info-hash {Hash}; skipped", t.Id, t.InfoHash);
                continue;
            }

            var info = ReadInfo(hash);
            var peers = t.Peers.Select(p => MagnetLink.TryParsePeer(p, out var ep) ? ep : null).OfType<IPEndPoint>().ToList();
            try
            {
                var handle = await AddToClientAsync(hash, info, t.DownloadDir, peers, t.UploadLimit, ct).ConfigureAwait(false);
                var entry = new NodeTorrent(t.Id, handle, t.DownloadDir, t.AddedDate, t.Trackers, t.Peers, t.UploadLimit) { DoneDate = t.DoneDate };
                lock (_gate) _torrents[t.Id] = entry;
                Watch(entry);
                if (t.Paused) await handle.PauseAsync().ConfigureAwait(false);
                else StartAnnouncer(entry);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                _log.LogError("state: torrent {Id} ({Hash}) could not be restored: {Message}", t.Id, t.InfoHash, ex.Message);
            }
        }

        lock (_gate)
        {
            _tasks.Add(SampleRatesAsync(_stop.Token));
            _tasks.Add(SyncStateAsync(_stop.Token));
        }

        _log.LogInformation("restored {Count} torrents from {Path}", All.Count, _store.TorrentDirectory);
    }

    /// <summary>Adds a torrent; a torrent already there is returned with <c>Duplicate</c> set.</summary>
    public async Task<(NodeTorrent Torrent, bool Duplicate)> AddAsync(NodeAddRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var hash = request.Metainfo?.InfoHash ?? request.Magnet?.InfoHash ?? throw new ArgumentException("a magnet link or a .torrent is needed", nameof(request));
        var dir = ConfineDownloadDir(request.DownloadDir ?? Settings.DownloadDir ?? DefaultDownloadDir);
        await _changes.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (Find(hash) is { } existing) return (existing, true);
            // Where an add's time goes (Debug): the info dictionary's file, the engine's add, the pause, the record.
            var t0 = _time.GetTimestamp();
            var info = request.Metainfo?.Info;
            if (info is not null) _store.WriteInfo(info);
            var peerTexts = request.Magnet?.Peers ?? [];
            var peers = peerTexts.Select(p => MagnetLink.TryParsePeer(p, out var ep) ? ep : null).OfType<IPEndPoint>().ToList();
            var trackers = (request.Metainfo?.Trackers ?? request.Magnet?.Trackers ?? []).Where(IsTrackerUrl).Distinct(StringComparer.Ordinal).ToList();
            Directory.CreateDirectory(dir);
            var t1 = _time.GetTimestamp();
            var handle = await AddToClientAsync(hash, info, dir, peers, null, ct, request.Paused).ConfigureAwait(false);
            var t2 = _time.GetTimestamp();
            NodeTorrent entry;
            lock (_gate)
            {
                entry = new NodeTorrent(_nextId++, handle, dir, _time.GetUtcNow().ToUnixTimeSeconds(), trackers, [.. peerTexts], null);
                _torrents[entry.Id] = entry;
            }

            Watch(entry);
            if (!request.Paused) StartAnnouncer(entry);
            var t3 = _time.GetTimestamp();
            SaveTorrent(entry);
            var t4 = _time.GetTimestamp();
            _log.LogInformation("added torrent {Id} {Hash} into {Dir}", entry.Id, hash, dir);
            _log.LogDebug("add {Id} timing: info file {Info:F2} ms, engine add {Engine:F2} ms, announcer {Announcer:F2} ms, record {Record:F2} ms",
                entry.Id, Ms(t0, t1), Ms(t1, t2), Ms(t2, t3), Ms(t3, t4));
            return (entry, false);
        }
        finally
        {
            _changes.Release();
        }
    }

    private double Ms(long from, long to) => _time.GetElapsedTime(from, to).TotalMilliseconds;

    /// <summary>torrent-start: resumes a stopped torrent.</summary>
    public Task StartAsync(NodeTorrent torrent, CancellationToken ct) => ChangeAsync(torrent, async () =>
    {
        if (torrent.Handle.State != TorrentState.Paused) return;
        await torrent.Handle.ResumeAsync(ct).ConfigureAwait(false);
        torrent.ResetRates();
        StartAnnouncer(torrent);
    }, ct);

    /// <summary>torrent-stop: closes the torrent's peers and storage (other torrents are not touched).</summary>
    public Task StopAsync(NodeTorrent torrent, CancellationToken ct) => ChangeAsync(torrent, async () =>
    {
        if (torrent.Handle.State is TorrentState.Paused or TorrentState.Removed) return;
        await StopAnnouncerAsync(torrent).ConfigureAwait(false);
        await torrent.Handle.PauseAsync().ConfigureAwait(false);
        torrent.ResetRates();
    }, ct);

    /// <summary>torrent-remove; with <paramref name="deleteData"/> the torrent's files (and its resume file) are deleted too.</summary>
    public Task RemoveAsync(NodeTorrent torrent, bool deleteData, CancellationToken ct) => ChangeAsync(null, async () =>
    {
        await StopAnnouncerAsync(torrent).ConfigureAwait(false);
        var info = torrent.Handle.Info;
        await torrent.Handle.RemoveAsync().ConfigureAwait(false);
        lock (_saveGate)
        {
            lock (_gate) _torrents.Remove(torrent.Id);
            _store.DeleteTorrent(torrent.Handle.InfoHash.ToString());
            // next-id, so that the removed torrent's id is not handed out again after a restart.
            SaveSessionLocked();
        }

        if (deleteData && info is not null) DeleteContent(info, torrent.DownloadDir);
    }, ct);

    /// <summary>
    /// torrent-verify: the torrent is stopped, its resume file dropped, and started again, so the storage re-hashes
    /// every piece on disk (a piece that no longer verifies is downloaded again).
    /// </summary>
    public Task VerifyAsync(NodeTorrent torrent, CancellationToken ct) => ChangeAsync(torrent, async () =>
    {
        if (torrent.Handle.Info is null) return;
        var wasRunning = torrent.Handle.State is not (TorrentState.Paused or TorrentState.Removed);
        await StopAnnouncerAsync(torrent).ConfigureAwait(false);
        if (wasRunning) await torrent.Handle.PauseAsync().ConfigureAwait(false);
        File.Delete(ResumePath(torrent));
        await torrent.Handle.ResumeAsync(ct).ConfigureAwait(false);
        if (!wasRunning) await torrent.Handle.PauseAsync().ConfigureAwait(false);
        else StartAnnouncer(torrent);
    }, ct);

    /// <summary>
    /// torrent-set uploadLimit: the torrent's engine is replaced by one with the new cap (its verified pieces are kept
    /// by the resume file written when the old one stopped).
    /// </summary>
    public Task SetUploadLimitAsync(NodeTorrent torrent, long? bytesPerSecond, CancellationToken ct) => ChangeAsync(torrent, async () =>
    {
        if (torrent.UploadLimit == bytesPerSecond) return;
        var paused = torrent.Handle.State == TorrentState.Paused;
        await StopAnnouncerAsync(torrent).ConfigureAwait(false);
        var old = torrent.Handle;
        await old.RemoveAsync().ConfigureAwait(false);
        var peers = torrent.Peers.Select(p => MagnetLink.TryParsePeer(p, out var ep) ? ep : null).OfType<IPEndPoint>().ToList();
        torrent.Handle = await AddToClientAsync(old.InfoHash, old.Info, torrent.DownloadDir, peers, bytesPerSecond, ct).ConfigureAwait(false);
        torrent.UploadLimit = bytesPerSecond;
        Watch(torrent);
        if (paused) await torrent.Handle.PauseAsync().ConfigureAwait(false);
        else StartAnnouncer(torrent);
    }, ct);

    /// <summary>session-set: saves the settings (speed limits apply to the client at the next start of the node).</summary>
    internal void UpdateSettings(Func<SavedSettings, SavedSettings> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_gate) _settings = change(_settings);
        SaveSession();
    }

    /// <summary>Replaces the saved content pins.</summary>
    public void SetPins(IReadOnlyList<string> pins)
    {
        lock (_gate) _pins = pins;
        SaveSession();
    }

    /// <summary>A download-dir from an RPC client, made absolute and confined to the allowed roots.</summary>
    public string ConfineDownloadDir(string dir)
    {
        if (string.IsNullOrWhiteSpace(dir) || !Path.IsPathFullyQualified(dir)) throw new NodeRequestException($"download-dir '{dir}' is not an absolute path");
        var full = Path.GetFullPath(dir).TrimEnd('/');
        foreach (var root in _allowedRoots)
        {
            var r = root.TrimEnd('/');
            if (full == r || full.StartsWith(r + "/", StringComparison.Ordinal)) return full;
        }

        throw new NodeRequestException($"download-dir '{dir}' is outside the allowed roots ({string.Join(", ", _allowedRoots)})");
    }

    /// <summary>Runs one change under the change lock, then saves <paramref name="torrent"/>'s record (null: the change saves itself).</summary>
    private async Task ChangeAsync(NodeTorrent? torrent, Func<Task> change, CancellationToken ct)
    {
        await _changes.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            await change().ConfigureAwait(false);
            if (torrent is not null) SaveTorrent(torrent);
        }
        finally
        {
            _changes.Release();
        }
    }

    private Task<TorrentHandle> AddToClientAsync(NodeId hash, TorrentInfo? info, string dir, IReadOnlyList<IPEndPoint> peers, long? uploadLimit, CancellationToken ct,
        bool paused = false)
    {
        var add = new TorrentAddOptions { Peers = peers, Paused = paused, Session = new TorrentSessionOptions { UploadRateLimit = uploadLimit } };
        return info is not null
            ? _client.AddAsync(info, dir, add, ct)
            : _client.AddAsync(new MagnetLink(hash, null, [], []), dir, add, ct);
    }

    /// <summary>Saves a magnet's info dictionary once fetched, and the completion date.</summary>
    private void Watch(NodeTorrent torrent)
    {
        lock (_gate)
        {
            _tasks.RemoveAll(t => t.IsCompleted);
            _tasks.Add(WatchAsync(torrent, torrent.Handle));
        }
    }

    private async Task WatchAsync(NodeTorrent torrent, TorrentHandle handle)
    {
        try
        {
            var info = await handle.MetadataReady.ConfigureAwait(false);
            if (!File.Exists(_store.InfoPath(info.InfoHash.ToString()))) SaveTorrent(torrent, info);

            await handle.Completed.ConfigureAwait(false);
            if (torrent.DoneDate == 0)
            {
                torrent.DoneDate = _time.GetUtcNow().ToUnixTimeSeconds();
                SaveTorrent(torrent);
            }
        }
        catch (OperationCanceledException)
        {
            // Removed before it had its metadata or completed.
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            // The storage failed: the handle reports it (error / errorString); nothing more to save.
            _log.LogDebug("torrent {Id}: {Message}", torrent.Id, ex.Message);
        }
    }

    private void StartAnnouncer(NodeTorrent torrent)
    {
        if (torrent.Trackers.Count == 0 || torrent.Handle.Session is not { } session) return;
        var announcer = new TrackerAnnouncer(session, torrent.Trackers, _http, _udp, _time, _loggers.CreateLogger<TrackerAnnouncer>());
        announcer.Start();
        torrent.Announcer = announcer;
    }

    private static async Task StopAnnouncerAsync(NodeTorrent torrent)
    {
        if (torrent.Announcer is { } announcer)
        {
            torrent.Announcer = null;
            await announcer.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task SampleRatesAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(RateInterval, _time);
        var last = _time.GetTimestamp();
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                var now = _time.GetTimestamp();
                var seconds = _time.GetElapsedTime(last, now).TotalSeconds;
                last = now;
                foreach (var t in All) t.Sample(seconds);
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }
    }

    /// <summary>Makes the saved state durable once a second (<see cref="NodeStore.SyncPending"/>), off the RPC's path.</summary>
    private async Task SyncStateAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(StateSyncInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false)) SyncState();
        }
        catch (OperationCanceledException)
        {
            // Disposed: DisposeAsync syncs once more.
        }
    }

    private void SyncState()
    {
        try
        {
            _store.SyncPending();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _log.LogError("state: could not fsync the saved state: {Message}", ex.Message);
        }
    }

    private static bool IsTrackerUrl(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" or "udp";

    private static string ResumePath(NodeTorrent torrent) =>
        Path.Combine(torrent.DownloadDir, TorrentStorage.ResumeDirectory, torrent.Handle.InfoHash + ".resume");

    private TorrentInfo? ReadInfo(NodeId hash)
    {
        var path = _store.InfoPath(hash.ToString());
        if (!File.Exists(path)) return null;
        var bytes = File.ReadAllBytes(path);
        if (MetainfoParser.TryParseInfo(bytes, hash, out var info, out var error)) return info;
        _log.LogWarning("{Path}: {Error}; the metadata is fetched from peers again", path, error.Describe());
        return null;
    }

    /// <summary>Deletes the torrent's own files under <paramref name="dir"/> and the directories they leave empty; nothing else.</summary>
    private void DeleteContent(TorrentInfo info, string dir)
    {
        var root = TorrentStorage.ContentPath(info, dir);
        foreach (var file in info.ContentFiles)
        {
            var path = info.IsMultiFile ? Path.Combine([root, .. file.Path]) : root;
            try
            {
                File.Delete(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                _log.LogWarning("could not delete {Path}: {Message}", path, ex.Message);
            }
        }

        if (info.IsMultiFile) DeleteEmptyDirectories(root);
        var resume = Path.Combine(dir, TorrentStorage.ResumeDirectory, info.InfoHash + ".resume");
        File.Delete(resume);
    }

    private static void DeleteEmptyDirectories(string dir)
    {
        if (!Directory.Exists(dir) || new DirectoryInfo(dir).LinkTarget is not null) return;
        foreach (var sub in Directory.GetDirectories(dir)) DeleteEmptyDirectories(sub);
        if (!Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
    }

    /// <summary>
    /// Writes one torrent's record (and <paramref name="info"/>, its info dictionary fetched from peers), unless the
    /// torrent was removed meanwhile: a late save must not bring a removed torrent back.
    /// </summary>
    private void SaveTorrent(NodeTorrent t, TorrentInfo? info = null)
    {
        Interlocked.Increment(ref _version);
        lock (_saveGate)
        {
            SavedTorrent saved;
            lock (_gate)
            {
                if (_torrents.GetValueOrDefault(t.Id) != t) return;
                saved = new SavedTorrent
                {
                    Id = t.Id,
                    InfoHash = t.Handle.InfoHash.ToString(),
                    Name = t.Handle.Info?.Name,
                    DownloadDir = t.DownloadDir,
                    Paused = t.Handle.State == TorrentState.Paused,
                    AddedDate = t.AddedDate,
                    DoneDate = t.DoneDate,
                    Trackers = t.Trackers,
                    Peers = t.Peers,
                    UploadLimit = t.UploadLimit,
                };
            }

            if (info is not null) _store.WriteInfo(info);
            _store.SaveTorrent(saved);
        }
    }

    private void SaveSession()
    {
        lock (_saveGate) SaveSessionLocked();
    }

    private void SaveSessionLocked()
    {
        Interlocked.Increment(ref _version);
        SavedNodeState state;
        lock (_gate) state = new SavedNodeState { NextId = _nextId, Settings = _settings, Pins = _pins };
        _store.SaveSession(state);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        await _changes.WaitAsync().ConfigureAwait(false);
        try
        {
            foreach (var t in All) await StopAnnouncerAsync(t).ConfigureAwait(false);
        }
        finally
        {
            _changes.Release();
        }

        // The client stops every torrent (saving each one's resume file); the watchers end with their handles.
        await _client.DisposeAsync().ConfigureAwait(false);
        Task[] tasks;
        lock (_gate) tasks = [.. _tasks];
        await Task.WhenAll(tasks).ConfigureAwait(false);
        SyncState();
        _http.Dispose();
        _stop.Dispose();
    }
}
