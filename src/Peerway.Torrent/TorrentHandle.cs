using Peerway.Core;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent;

/// <summary>Where a torrent of a <see cref="TorrentClient"/> stands.</summary>
public enum TorrentState
{
    /// <summary>Waiting for the info dictionary from peers (BEP 9).</summary>
    FetchingMetadata,

    /// <summary>Some pieces are still missing.</summary>
    Downloading,

    /// <summary>Every piece is verified; uploading to peers that want it.</summary>
    Seeding,

    /// <summary>Stopped by <see cref="TorrentHandle.PauseAsync"/>: no peers, storage closed; <see cref="TorrentHandle.ResumeAsync"/> continues.</summary>
    Paused,

    /// <summary>The storage failed (e.g. the disk is full, or the content does not fit); see <see cref="TorrentHandle.Error"/>.</summary>
    Failed,

    /// <summary>Removed from its client.</summary>
    Removed,
}

/// <summary>
/// One torrent of a <see cref="TorrentClient"/>: its progress, its state, and pause/resume/remove at run time.
/// Thread-safe.
/// </summary>
public sealed class TorrentHandle
{
    private readonly TorrentClient _client;
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<TorrentInfo> _metadata = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TorrentSession? _session;
    private TorrentSessionStats? _lastStats;
    private bool _paused;
    private bool _removed;
    private IReadOnlyList<FilePriority>? _filePriorities;

    internal TorrentHandle(TorrentClient client, NodeId infoHash, TorrentInfo? info, string savePath, TorrentAddOptions options)
    {
        _client = client;
        InfoHash = infoHash;
        KnownInfo = info;
        SavePath = savePath;
        Options = options;
    }

    /// <summary>The torrent's info-hash (v1, or the truncated v2 one for a v2-only torrent).</summary>
    public NodeId InfoHash { get; }

    /// <summary>The directory the content is (or goes) under.</summary>
    public string SavePath { get; }

    /// <summary>How it was added.</summary>
    public TorrentAddOptions Options { get; }

    /// <summary>The info dictionary, once known (at once for a .torrent; from peers for a magnet link).</summary>
    public TorrentInfo? Info => Current?.Info ?? KnownInfo;

    /// <summary>The info dictionary known when the torrent was added or last paused.</summary>
    internal TorrentInfo? KnownInfo { get; set; }

    /// <summary>The engine running the torrent; null while paused or after removal.</summary>
    internal TorrentSession? Current
    {
        get
        {
            lock (_gate) return _session;
        }
    }

    /// <summary>The engine of the torrent (for trackers run beside the client); null while paused or after removal.</summary>
    public TorrentSession? Session => Current;

    /// <summary>Why the torrent failed (<see cref="TorrentState.Failed"/>); null otherwise.</summary>
    public Exception? Error { get; private set; }

    /// <summary>Completes when every piece is verified; faults when the storage fails; cancelled when removed before.</summary>
    public Task Completed => _completed.Task;

    /// <summary>Completes when the info dictionary is known.</summary>
    public Task<TorrentInfo> MetadataReady => _metadata.Task;

    /// <summary>Raised (on a pool thread) when <see cref="State"/> changes through the client: paused, resumed, completed, failed, removed.</summary>
    public event EventHandler<TorrentState>? StateChanged;

    /// <summary>Where the torrent stands.</summary>
    public TorrentState State
    {
        get
        {
            lock (_gate)
            {
                if (_removed) return TorrentState.Removed;
                if (Error is not null) return TorrentState.Failed;
                if (_paused) return TorrentState.Paused;
                if (_completed.Task.IsCompletedSuccessfully) return TorrentState.Seeding;
                return Info is null ? TorrentState.FetchingMetadata : TorrentState.Downloading;
            }
        }
    }

    /// <summary>Progress and transfer totals (while paused: as they were when it paused).</summary>
    public TorrentSessionStats GetStats() =>
        Current?.GetStats() ?? _lastStats ?? new TorrentSessionStats(Info?.PieceCount ?? 0, 0, Info?.TotalLength ?? 0, 0, 0, 0, 0, 0, 0, 0, new Dictionary<NodeId, long>(), Info is not null);

    /// <summary>Stops the torrent: its peers are closed, its storage saved and closed; other torrents are not touched.</summary>
    public Task PauseAsync() => _client.PauseAsync(this);

    /// <summary>Starts a paused torrent again (the storage is reopened and what was verified is kept).</summary>
    public Task ResumeAsync(CancellationToken ct = default) => _client.ResumeAsync(this, ct);

    /// <summary>The file priorities in force (one per <see cref="TorrentInfo.ContentFiles"/> entry); null: every file, normal.</summary>
    public IReadOnlyList<FilePriority>? FilePriorities
    {
        get
        {
            lock (_gate) return _filePriorities;
        }
    }

    /// <summary>
    /// Changes the file priorities while running or paused (one per <see cref="TorrentInfo.ContentFiles"/> entry; kept
    /// across pause and resume). A file no longer skipped is created at once.
    /// </summary>
    /// <exception cref="InvalidOperationException">The info dictionary is not known yet.</exception>
    public void SetFilePriorities(IReadOnlyList<FilePriority> priorities)
    {
        ArgumentNullException.ThrowIfNull(priorities);
        var info = Info ?? throw new InvalidOperationException("the torrent's files are not known yet");
        Swarm.FilePriorities.Validate(info, priorities);
        lock (_gate) _filePriorities = [.. priorities];
        Current?.SetFilePriorities(priorities);
    }

    /// <summary>The session's file selection: what was set on the handle, else what the add options choose.</summary>
    internal IReadOnlyList<FilePriority>? ResolveFileSelection(TorrentInfo info)
    {
        lock (_gate)
        {
            _filePriorities ??= Options.FileSelection?.Invoke(info) is { } chosen ? [.. chosen] : null;
            return _filePriorities;
        }
    }

    /// <summary>
    /// Opens content file <paramref name="fileIndex"/> (an index into <see cref="TorrentInfo.ContentFiles"/>) as a
    /// seekable <see cref="TorrentFileStream"/> that reads while the torrent downloads: a read of a missing piece makes
    /// the pieces ahead of it time-critical and waits until it verifies. Waits for the info dictionary first.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">No such file.</exception>
    /// <exception cref="InvalidOperationException">The file is skipped (file priorities), or the torrent is not running.</exception>
    public async Task<TorrentFileStream> OpenReadAsync(int fileIndex, TorrentReadOptions? options = null, CancellationToken ct = default)
    {
        options ??= new TorrentReadOptions();
        options.Validate();
        var info = await MetadataReady.WaitAsync(ct).ConfigureAwait(false);
        var files = info.ContentFiles.ToList();
        ArgumentOutOfRangeException.ThrowIfNegative(fileIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(fileIndex, files.Count);
        if (FilePriorities is { } priorities && priorities[fileIndex] == FilePriority.Skip) throw new InvalidOperationException($"file {fileIndex} is skipped");
        var session = Current ?? throw new InvalidOperationException("the torrent is paused or removed");
        await session.MetadataReady.WaitAsync(ct).ConfigureAwait(false);
        return new TorrentFileStream(this, info, files[fileIndex], options);
    }

    /// <summary>Removes the torrent from its client (the content stays on disk).</summary>
    public Task RemoveAsync() => _client.RemoveAsync(this);

    /// <summary>Added stopped: no session until resumed; a known info dictionary is reported at once.</summary>
    internal void AddPaused()
    {
        lock (_gate) _paused = true;
        if (KnownInfo is { } info) _metadata.TrySetResult(info);
    }

    internal void Attach(TorrentSession session)
    {
        lock (_gate)
        {
            _session = session;
            _paused = false;
        }
    }

    /// <summary>Detaches the running session (to pause or remove it); null when none runs.</summary>
    internal TorrentSession? Detach(bool removed)
    {
        TorrentSession? session;
        lock (_gate)
        {
            session = _session;
            _session = null;
            if (session is not null)
            {
                _lastStats = session.GetStats();
                KnownInfo = session.Info ?? KnownInfo;
            }

            if (removed) _removed = true;
            else _paused = true;
        }

        if (removed)
        {
            _completed.TrySetCanceled();
            _metadata.TrySetCanceled();
        }

        return session;
    }

    internal void OnMetadata(TorrentInfo info) => _metadata.TrySetResult(info);

    internal void OnCompleted()
    {
        if (_completed.TrySetResult()) RaiseStateChanged();
    }

    internal void OnFailed(Exception error)
    {
        lock (_gate) Error = error;
        _completed.TrySetException(error);
        _metadata.TrySetException(error);
        RaiseStateChanged();
    }

    internal void RaiseStateChanged() => StateChanged?.Invoke(this, State);

    /// <inheritdoc/>
    public override string ToString() => $"{InfoHash} ({State})";
}
