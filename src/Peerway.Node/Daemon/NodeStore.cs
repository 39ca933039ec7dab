using Microsoft.Extensions.Logging;
using Peerway.Core;
using Peerway.Torrent.Metainfo;

namespace Peerway.Node.Daemon;

/// <summary>
/// The node's saved state in its data directory: <c>state.json</c> holds the session (next id, settings, pins) and
/// <c>torrents/HASH.json</c> one record per torrent, beside its info dictionary <c>torrents/HASH.info</c>. Each file is
/// replaced atomically (temp file, fsync, rename, directory fsync: <see cref="StateFile.WriteAtomic"/>), so a change to
/// one torrent writes that torrent's record only — adding the n-th torrent costs the same as adding the first, where the
/// single <c>state.json</c> of before rewrote every torrent on every change (O(n²) bytes for n adds). A kill leaves
/// each file either old or new. The fsyncs are not paid per change: a change is acknowledged once its file is renamed
/// into place (atomic, and kept by the kernel when the process is killed), and <see cref="SyncPending"/> — every second,
/// and at shutdown — fsyncs what was written since, so a power loss or an OS crash loses at most the last second of
/// changes, never a torn file (as the storage's resume files, saved every second, and transmission's own settings).
/// The writes are not thread-safe: <see cref="NodeTorrents"/> makes them under its save lock.
/// </summary>
internal sealed class NodeStore
{
    private const string RecordExtension = ".json";
    private readonly string _statePath;
    private readonly ILogger _log;
    private readonly Lock _pendingGate = new();
    private HashSet<string> _pending = new(StringComparer.Ordinal);
    private bool _statePending;

    public NodeStore(string dataDirectory, ILogger log)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        _statePath = Path.Combine(dataDirectory, "state.json");
        TorrentDirectory = Directory.CreateDirectory(Path.Combine(dataDirectory, "torrents")).FullName;
        _log = log;
    }

    /// <summary><c>DATA/torrents</c>: records and info dictionaries.</summary>
    public string TorrentDirectory { get; }

    /// <summary>
    /// The session and every torrent record, by id. A <c>state.json</c> of an older node that still lists its torrents
    /// is migrated first: each torrent gets its record, then <c>state.json</c> is rewritten without them (a kill
    /// between the two migrates again from the same list, which writes the same records). A record that does not parse
    /// is logged and left where it is (not deleted: a person can look at it); a bad <c>state.json</c> throws
    /// <see cref="InvalidDataException"/>.
    /// </summary>
    public (SavedNodeState Session, IReadOnlyList<SavedTorrent> Torrents) Load()
    {
        var session = SavedNodeState.TryRead(_statePath) ?? new SavedNodeState();
        if (session.Torrents.Count > 0)
        {
            foreach (var t in session.Torrents)
            {
                if (NodeId.TryParseHex(t.InfoHash, out var hash)) SavedTorrentFile.Write(RecordPath(hash.ToString()), Complete(t) with { InfoHash = hash.ToString() }, durable: true);
                else _log.LogWarning("state: torrent {Id} has a bad info-hash {Hash}; skipped", t.Id, t.InfoHash);
            }

            session = session with { Torrents = [] };
            session.Write(_statePath);
            _log.LogInformation("state: migrated the torrents of {Path} to one record each in {Dir}", _statePath, TorrentDirectory);
        }

        var torrents = new SortedDictionary<int, SavedTorrent>();
        foreach (var path in Directory.EnumerateFiles(TorrentDirectory, "*" + RecordExtension))
        {
            SavedTorrent? t;
            try
            {
                t = SavedTorrentFile.TryRead(path);
            }
            catch (InvalidDataException ex)
            {
                _log.LogError("state: {Message}; the torrent is not restored", ex.Message);
                continue;
            }

            if (t is null) continue;
            t = Complete(t);
            if (Path.GetFileNameWithoutExtension(path) != t.InfoHash || !torrents.TryAdd(t.Id, t))
            {
                _log.LogError("state: {Path} does not match its info-hash or repeats id {Id}; the torrent is not restored", path, t.Id);
            }
        }

        // An id is never handed out twice, even if the highest ones were removed since state.json last recorded next-id.
        var next = Math.Max(session.NextId, torrents.Count == 0 ? 1 : torrents.Keys.Max() + 1);
        return (session with { NextId = next }, [.. torrents.Values]);
    }

    /// <summary>A record with its lists present (a key left out of the JSON is read as null by the generated reader).</summary>
    private static SavedTorrent Complete(SavedTorrent t) => t with { Trackers = t.Trackers ?? [], Peers = t.Peers ?? [] };

    /// <summary>Replaces one torrent's record.</summary>
    public void SaveTorrent(SavedTorrent torrent)
    {
        ArgumentNullException.ThrowIfNull(torrent);
        var path = RecordPath(torrent.InfoHash);
        SavedTorrentFile.Write(path, torrent, durable: false);
        Pending(path);
    }

    /// <summary>Deletes one torrent's record and info dictionary, durably (the directory is synced).</summary>
    public void DeleteTorrent(string infoHash)
    {
        File.Delete(RecordPath(infoHash));
        File.Delete(InfoPath(infoHash));
        Pending(null);
    }

    /// <summary>Replaces <c>state.json</c> (the session: next id, settings, pins; no torrents).</summary>
    public void SaveSession(SavedNodeState session)
    {
        ArgumentNullException.ThrowIfNull(session);
        (session with { Torrents = [] }).Write(_statePath, durable: false);
        lock (_pendingGate) _statePending = true;
    }

    /// <summary>fsyncs every file written (and every deletion made) since the last call, then their directories.</summary>
    public void SyncPending()
    {
        HashSet<string> files;
        bool state;
        lock (_pendingGate)
        {
            if (_pending.Count == 0 && !_statePending) return;
            (files, _pending) = (_pending, new HashSet<string>(StringComparer.Ordinal));
            (state, _statePending) = (_statePending, false);
        }

        files.Remove("");
        StateFile.Sync(TorrentDirectory, files);
        if (state) StateFile.Sync(Path.GetDirectoryName(_statePath)!, [_statePath]);
    }

    /// <summary>Marks a file (or, with null, a deletion: the directory alone) to be synced.</summary>
    private void Pending(string? path)
    {
        lock (_pendingGate) _pending.Add(path ?? "");
    }

    /// <summary>Writes a torrent's info dictionary (BEP 3: the bytes its info-hash is the SHA-1 of).</summary>
    public void WriteInfo(TorrentInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        var path = InfoPath(info.InfoHash.ToString());
        StateFile.WriteAtomic(path, info.RawInfo.Span, durable: false);
        Pending(path);
    }

    public string InfoPath(string infoHash) => Path.Combine(TorrentDirectory, infoHash + ".info");

    private string RecordPath(string infoHash) => Path.Combine(TorrentDirectory, infoHash + RecordExtension);
}
