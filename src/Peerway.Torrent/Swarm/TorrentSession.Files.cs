using Microsoft.Extensions.Logging;
using Peerway.Torrent.Metainfo;

namespace Peerway.Torrent.Swarm;

/// <summary>File priorities: which files are downloaded, and which first (see <see cref="FilePriorities"/>).</summary>
public sealed partial class TorrentSession
{
    private IReadOnlyList<FilePriority>? _filePriorities;

    /// <summary>
    /// Chooses the file priorities once the info dictionary is known (at once for a .torrent, after BEP 9 for a magnet);
    /// null, or a null result: every file, normal priority.
    /// </summary>
    public Func<TorrentInfo, IReadOnlyList<FilePriority>?>? FileSelection { get; init; }

    /// <summary>The file priorities in force (one per <see cref="TorrentInfo.ContentFiles"/> entry); null: every file, normal.</summary>
    public IReadOnlyList<FilePriority>? CurrentFilePriorities
    {
        get
        {
            lock (_gate) return _filePriorities;
        }
    }

    private IReadOnlyList<FilePriority>? ResolveFilePriorities(TorrentInfo info)
    {
        lock (_gate)
        {
            _filePriorities ??= FileSelection?.Invoke(info) is { } chosen ? [.. chosen] : null;
            if (_filePriorities is not null) FilePriorities.Validate(info, _filePriorities);
            return _filePriorities;
        }
    }

    /// <summary>
    /// Changes the file priorities while running (one per <see cref="TorrentInfo.ContentFiles"/> entry). A file that is
    /// no longer skipped is created at once (with what the parts file holds of it); requests and interest follow at once.
    /// <see cref="Completed"/> completes the first time every wanted piece is verified.
    /// </summary>
    /// <exception cref="InvalidOperationException">The info dictionary is not known yet.</exception>
    public void SetFilePriorities(IReadOnlyList<FilePriority> priorities)
    {
        ArgumentNullException.ThrowIfNull(priorities);
        (TorrentInfo Info, Storage.ITorrentStorage Storage) view;
        lock (_gate)
        {
            if (_info is null || _storage is null || _picker is null) throw new InvalidOperationException("the torrent's files are not known yet");
            FilePriorities.Validate(_info, priorities);
            view = (_info, _storage);
        }

        // Disk work (creating files, copying from the parts file) outside the engine's lock.
        view.Storage.SetSkippedFiles(FilePriorities.SkippedFiles(view.Info, priorities));
        lock (_gate)
        {
            _filePriorities = [.. priorities];
            _picker!.SetPiecePriorities(FilePriorities.ForPieces(view.Info, priorities));
            _log.LogInformation("file priorities of {Name}: {Wanted} of {Count} files wanted", view.Info.Name, priorities.Count(p => p != FilePriority.Skip), priorities.Count);
            foreach (var c in _connections)
            {
                UpdateInterest(c);
                RequestMore(c);
            }

            if (_picker.IsDone && !_completed.Task.IsCompleted)
            {
                _tasks.Add(Scheduler.RunAsync(() =>
                {
                    SaveResumeSafely();
                    _completed.TrySetResult();
                }, CancellationToken.None));
            }
        }
    }
}
