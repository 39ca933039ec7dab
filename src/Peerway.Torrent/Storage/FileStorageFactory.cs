using Peerway.Torrent.Metainfo;

namespace Peerway.Torrent.Storage;

/// <summary>Settings of the file-system storage.</summary>
public sealed record FileStorageOptions
{
    /// <summary>
    /// Write verified pieces with O_DIRECT where the filesystem allows it (Linux; elsewhere, or on failure, buffered).
    /// It skips the copy into new page-cache pages (CPU), but each write then waits for the device: a download runs no
    /// faster than the disk writes one piece after another. Off by default, as libtorrent, transmission and aria2 write
    /// through the page cache: on a VM disk that took ~250 MB/s for sequential 512 KiB direct writes, 1 GiB over
    /// loopback went 159 → 205 and 171 → 221 MB/s with buffered writes in two runs (docs/BENCHMARKS.md, issue 14 item 9,
    /// sixth round).
    /// </summary>
    public bool DirectWrites { get; init; }

    /// <summary>
    /// Write into existing files of the download that do not fit the torrent (larger, or a different file of that name:
    /// see <see cref="TorrentStorage.Open"/>); false: such a file is left untouched and the torrent does not start.
    /// Symbolic links and non-regular files are refused either way.
    /// </summary>
    public bool OverwriteExistingFiles { get; init; }

    /// <summary>The default of <see cref="DataSyncInterval"/>: 30 s, the kernel's own dirty-page expiry (dirty_expire_centisecs).</summary>
    public static readonly TimeSpan DefaultDataSyncInterval = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often a resume save fsyncs the data files (at most; the saves themselves come every
    /// <c>TorrentSessionOptions.ResumeInterval</c>). In between, the resume record lists the pieces verified since the
    /// last fsync as unsynced, with the kernel's boot id: a restart in the same boot trusts them (a process's crash
    /// keeps the page cache), a restart after a kernel crash or power loss hashes them again. So a download is never
    /// slowed by fsync (libtorrent, transmission and aria2 do not fsync their data either) and a resume never trusts a
    /// piece that may not be on disk. <see cref="TimeSpan.Zero"/>: fsync at every save (the data is durable when
    /// the save returns). Where the system has no boot id (not Linux), every save fsyncs.
    /// </summary>
    public TimeSpan DataSyncInterval
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
            field = value;
        }
    } = DefaultDataSyncInterval;
}

/// <summary>Torrents stored as their files on disk (<see cref="TorrentStorage"/>); file mtimes come from the clock given.</summary>
public sealed class FileStorageFactory : ITorrentStorageFactory
{
    private readonly FileStorageOptions _options;
    private readonly TimeProvider _time;

    /// <summary>Creates the factory; <paramref name="time"/> dates the resume records' mtime sentinels.</summary>
    public FileStorageFactory(FileStorageOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        _options = options;
        _time = time;
    }

    /// <inheritdoc/>
    public ITorrentStorage Open(TorrentInfo info, string savePath, bool seedOnly, CancellationToken ct) => Open(info, savePath, seedOnly, null, ct);

    /// <inheritdoc/>
    public ITorrentStorage Open(TorrentInfo info, string savePath, bool seedOnly, IReadOnlyList<bool>? skippedFiles, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(info);
        ArgumentException.ThrowIfNullOrEmpty(savePath);
        var storage = TorrentStorage.Open(info, savePath, create: !seedOnly, ct: ct, directWrites: _options.DirectWrites,
            overwrite: _options.OverwriteExistingFiles, time: _time, skippedFiles: seedOnly ? null : skippedFiles,
            dataSyncInterval: _options.DataSyncInterval);
        if (seedOnly && !storage.IsComplete)
        {
            storage.Dispose();
            throw new InvalidDataException($"{TorrentStorage.ContentPath(info, savePath)}: the content does not match the torrent ({storage.VerifiedCount}/{info.PieceCount} pieces verify)");
        }

        return storage;
    }
}
