using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Peerway.Core.Bencoding;
using Peerway.Core.IO;
using Peerway.Torrent.Metainfo;

namespace Peerway.Torrent.Storage;

/// <summary>
/// The torrent's files on disk, written in place. Only whole, SHA-1-verified pieces are ever written (BEP 3: a piece
/// is checked against its hash), so no unverified byte reaches the disk. Files are preallocated sparse (ftruncate).
/// Thread-safe: reads and writes are positional (pread/pwrite); the verified set is guarded by a lock.
/// </summary>
public sealed class TorrentStorage : ITorrentStorage
{
    private readonly TorrentInfo _info;
    private readonly SafeFileHandle?[] _handles;
    private readonly string[] _paths;
    private readonly Lock _gate = new();

    /// <summary>Orders piece writes against the resume snapshot (held across a write and across the snapshot).</summary>
    private readonly Lock _writeOrder = new();

    /// <summary>Held across one <see cref="SaveResume"/> (never taken by the write path).</summary>
    private readonly Lock _resumeGate = new();
    private readonly Bitfield _verified;

    /// <summary>Per file, a second handle with O_DIRECT for aligned piece writes (null: buffered writes only).</summary>
    private readonly SafeFileHandle?[] _direct;

    /// <summary>Page-aligned staging buffer for direct writes (pinned, so its address never moves); guarded by itself.</summary>
    private byte[]? _staging;
    private int _stagingOffset;

    /// <summary>Pieces copied into the staging buffer for a direct write because they were not page-aligned (tests).</summary>
    internal int StagedWrites { get; private set; }

    /// <summary>Whether any file has an O_DIRECT handle (tests: false where the filesystem has no O_DIRECT).</summary>
    internal bool HasDirectWrites
    {
        get
        {
            lock (_direct) return Array.Exists(_direct, h => h is not null);
        }
    }
    private bool _dirtySinceResume;
    private bool _writable;

    /// <summary>The wall clock the resume record's mtime sentinel and the data-sync interval are taken from.</summary>
    private TimeProvider _time = TimeProvider.System;

    /// <summary>How long verified pieces may stay in the page cache only (see <see cref="FileStorageOptions.DataSyncInterval"/>).</summary>
    private TimeSpan _dataSyncInterval = FileStorageOptions.DefaultDataSyncInterval;

    /// <summary>When the data files were last fsynced, or opened (guarded by <c>_resumeGate</c>).</summary>
    private DateTimeOffset _lastDataSync;

    /// <summary>
    /// The pieces whose bytes are known to be on the device: the verified set at the last data fsync, plus what the resume
    /// file trusted on open as synced (guarded by <c>_resumeGate</c>). Verified pieces not in it are "unsynced".
    /// </summary>
    private Bitfield _synced;

    /// <summary>Whether the last resume record listed unsynced pieces (a due data sync then saves even with nothing new).</summary>
    private bool _unsyncedRecorded;

    /// <summary>This boot of the kernel (<see cref="BootId"/>); null where there is none: every save then fsyncs the data.</summary>
    private readonly string? _bootId = BootId.Current;

    /// <summary>Data fsyncs done by resume saves since open (tests).</summary>
    internal int DataSyncs { get; private set; }

    /// <summary>Per file: whether we wrote a piece into it since it was opened (guarded by <c>_writeOrder</c>).</summary>
    private readonly bool[] _written;

    /// <summary>Per file: skipped (file priorities): not created; its bytes of verified pieces go to the parts file. Guarded by <c>_writeOrder</c>.</summary>
    private bool[] _skipped;

    /// <summary>The download directory and each file's path components under it (to create a file that stops being skipped).</summary>
    private string _root = "";
    private string[][] _components = [];

    /// <summary>
    /// The parts file (libtorrent's <c>.parts</c>): the bytes of files not on disk (skipped) from pieces shared with
    /// wanted files, each at its offset in the torrent's byte stream (a sparse file). Created at the first such write;
    /// set under <c>_writeOrder</c>.
    /// </summary>
    private SafeFileHandle? _parts;

    private TorrentStorage(TorrentInfo info, string[] paths, SafeFileHandle?[] handles, string resumePath)
    {
        _info = info;
        _paths = paths;
        _handles = handles;
        _direct = new SafeFileHandle?[handles.Length];
        _verified = new Bitfield(info.PieceCount);
        _synced = new Bitfield(info.PieceCount);
        _written = new bool[handles.Length];
        _skipped = new bool[handles.Length];
        ResumePath = resumePath;
    }

    /// <summary>The resume file (by default under <see cref="ResumeDirectory"/> of the download directory).</summary>
    public string ResumePath { get; }

    /// <summary>Where the bytes of skipped files from shared pieces are kept (next to the resume file).</summary>
    public string PartsPath => Path.ChangeExtension(ResumePath, ".parts");

    /// <summary>Where, under the download directory, resume files are kept unless another path is given.</summary>
    public const string ResumeDirectory = ".peerway";

    /// <summary>Where the torrent's content lives: the file (single) or the directory (multi).</summary>
    public static string ContentPath(TorrentInfo info, string directory) => Path.Combine(directory, info.Name);

    /// <summary>Number of pieces verified on open (from the resume file and the recheck) — what a restart kept.</summary>
    public int PiecesKeptOnOpen { get; private set; }

    /// <summary>Number of pieces whose data was hashed on open because the resume file was missing or not trusted.</summary>
    public int PiecesRechecked { get; private set; }

    /// <summary>A copy of the pieces verified so far. Thread-safe.</summary>
    public Bitfield Verified
    {
        get
        {
            lock (_gate) return _verified.Clone();
        }
    }

    /// <summary>Number of pieces verified so far. Thread-safe.</summary>
    public int VerifiedCount
    {
        get
        {
            lock (_gate) return _verified.SetCount;
        }
    }

    /// <summary>True when every piece is verified.</summary>
    public bool IsComplete => VerifiedCount == _info.PieceCount;

    /// <summary>True when piece <paramref name="piece"/> is verified. Thread-safe.</summary>
    public bool HasPiece(int piece)
    {
        lock (_gate) return _verified[piece];
    }

    /// <summary>
    /// Opens the files under <paramref name="directory"/> and establishes which pieces are valid: the resume file is
    /// trusted only for pieces whose files all still have the recorded size and mtime; every other piece with data on
    /// disk is re-hashed. With <paramref name="create"/> (a download) the files are opened through
    /// <see cref="OutputDirectory"/> (no symbolic link below the directory is followed, only regular files are opened),
    /// files already there are treated as resume data as libtorrent and transmission do (their verified pieces are kept,
    /// only the torrent's pieces are ever written into them), then missing files are created and all are preallocated.
    /// An existing file that does not fit the torrent (see <see cref="CheckExistingFiles"/>) is left untouched and
    /// <see cref="Peerway.Core.IO.OutputConflictException"/> is thrown, unless <paramref name="overwrite"/>; nothing on disk changes
    /// before every file has passed these checks.
    /// </summary>
    /// <param name="info">The torrent whose files are opened.</param>
    /// <param name="directory">The directory the content is (or goes) under.</param>
    /// <param name="create">A download: create and preallocate missing files; false: the files must exist (seeding).</param>
    /// <param name="resumePath">The resume file to trust and update; null: every piece on disk is hashed.</param>
    /// <param name="directWrites">Write verified pieces with O_DIRECT where the filesystem allows it (Linux).</param>
    /// <param name="overwrite">Write into (and truncate to size) existing files that do not fit the torrent.</param>
    /// <param name="time">The wall clock for file mtimes (the resume record's sentinel); null: the system clock.</param>
    /// <param name="skippedFiles">Per entry of <see cref="TorrentInfo.Files"/>: not to be created (see <see cref="SetSkippedFiles"/>); null: none.</param>
    /// <param name="dataSyncInterval">How long verified pieces may stay unsynced (see <see cref="FileStorageOptions.DataSyncInterval"/>); null: its default.</param>
    /// <param name="ct">Cancels the hashing of pieces on disk.</param>
    public static TorrentStorage Open(TorrentInfo info, string directory, bool create, string? resumePath = null, bool directWrites = false, bool overwrite = false, TimeProvider? time = null, IReadOnlyList<bool>? skippedFiles = null, TimeSpan? dataSyncInterval = null, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dataSyncInterval ?? TimeSpan.Zero, TimeSpan.Zero, nameof(dataSyncInterval));
        ArgumentNullException.ThrowIfNull(info);
        var root = Path.GetFullPath(directory);
        var paths = new string[info.Files.Count];
        var components = new string[info.Files.Count][];
        var handles = new SafeFileHandle?[info.Files.Count];
        for (var i = 0; i < info.Files.Count; i++)
        {
            var f = info.Files[i];
            components[i] = info.IsMultiFile ? [info.Name, .. f.Path] : [info.Name];
            var full = Path.GetFullPath(Path.Combine([root, .. components[i]]));
            // Defence in depth: the parser already rejects traversal; a path must stay under the root.
            if (!full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal)) throw new InvalidDataException($"path escapes the download directory: {f.RelativePath}");
            paths[i] = full;
        }

        // Our own resume file lives in the output tree too: it is checked like the torrent's files.
        string[]? resumeComponents = resumePath is null ? [ResumeDirectory, info.InfoHash + ".resume"] : null;
        resumePath ??= Path.Combine(root, ResumeDirectory, info.InfoHash + ".resume");
        var storage = new TorrentStorage(info, paths, handles, resumePath)
        {
            _writable = create,
            _time = time ?? TimeProvider.System,
            _root = root,
            _components = components,
            _dataSyncInterval = dataSyncInterval ?? FileStorageOptions.DefaultDataSyncInterval,
        };
        storage._lastDataSync = storage._time.GetUtcNow();
        if (skippedFiles is not null)
        {
            if (skippedFiles.Count != info.Files.Count) throw new ArgumentException($"{skippedFiles.Count} skip flags for {info.Files.Count} files", nameof(skippedFiles));
            storage._skipped = [.. skippedFiles];
        }

        try
        {
            if (create)
            {
                storage.OpenForDownload(root, components, resumeComponents, overwrite, directWrites, ct);
                return storage;
            }

            for (var i = 0; i < paths.Length; i++)
            {
                // BEP 47: padding files are zeros that exist only in the piece stream; nothing is opened or created.
                if (info.Files[i].IsPadding) continue;
                if (!File.Exists(paths[i])) throw new FileNotFoundException($"missing file: {paths[i]}", paths[i]);
                handles[i] = File.OpenHandle(paths[i], FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                if (RandomAccess.GetLength(handles[i]!) != info.Files[i].Length) throw new InvalidDataException($"wrong size: {paths[i]}");
            }

            storage.Establish(fresh: info.Files.Select(f => f.IsPadding).ToArray(), ct);
            return storage;
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    private void OpenForDownload(string root, string[][] components, string[]? resumeComponents, bool overwrite, bool directWrites, CancellationToken ct)
    {
        using var output = OutputDirectory.Open(root, create: true);
        if (resumeComponents is not null) output.OpenExistingFile(resumeComponents, writable: false)?.Dispose();
        _parts = resumeComponents is not null
            ? output.OpenExistingFile([.. resumeComponents[..^1], Path.GetFileName(PartsPath)], writable: true)
            : File.Exists(PartsPath) ? File.OpenHandle(PartsPath, FileMode.Open, FileAccess.ReadWrite) : null;
        var fresh = new bool[_paths.Length];
        for (var i = 0; i < _paths.Length; i++)
        {
            // BEP 47: padding files are zeros that exist only in the piece stream; nothing is opened or created.
            if (_info.Files[i].IsPadding)
            {
                fresh[i] = true;
                continue;
            }

            _handles[i] = output.OpenExistingFile(components[i], writable: true);
            // A file we are about to create holds no data: its pieces need no hashing (only zeros could be there),
            // unless a parts file may hold its bytes of shared pieces.
            fresh[i] = _handles[i] is null ? _parts is null : RandomAccess.GetLength(_handles[i]!) == 0;
        }

        var ours = Establish(fresh, ct);
        CheckExistingFiles(ours, overwrite);
        for (var i = 0; i < _paths.Length; i++)
        {
            if (_info.Files[i].IsPadding) continue;
            if (_handles[i] is null)
            {
                // A skipped file is not created (its bytes of shared pieces go to the parts file).
                if (_skipped[i]) continue;
                _handles[i] = output.CreateFile(components[i]);
                _written[i] = true;
                CopyFromParts(i);
            }

            // Sparse preallocation: extending with ftruncate allocates no blocks (shrinking happens only with overwrite).
            if (RandomAccess.GetLength(_handles[i]!) != _info.Files[i].Length)
            {
                RandomAccess.SetLength(_handles[i]!, _info.Files[i].Length);
                _written[i] = true;
            }

            if (directWrites) _direct[i] = DirectIo.TryOpenForDirectWrites(_handles[i]!);
        }

        // Record the files as this download's at once: a crash that tears the first piece written into a file must not
        // make the next start take the file for someone else's (see CheckExistingFiles).
        if (Array.Exists(_written, w => w))
        {
            lock (_gate) _dirtySinceResume = true;
        }

        SaveResume();
    }

    /// <summary>
    /// An existing file fits the torrent when the resume file lists it (ours), or when it is no larger than the torrent's
    /// file and either one of the pieces it overlaps verifies or it holds only zero bytes (a preallocated file nothing
    /// was written into yet). Anything else (a larger file, or a different file of that name) holds data we did not
    /// write: it is not touched unless <paramref name="overwrite"/>.
    /// </summary>
    private void CheckExistingFiles(bool[] ours, bool overwrite)
    {
        for (var i = 0; i < _paths.Length; i++)
        {
            var f = _info.Files[i];
            if (f.IsPadding || ours[i] || _handles[i] is not { } handle) continue;
            var length = RandomAccess.GetLength(handle);
            string? misfit = null;
            if (length > f.Length)
            {
                misfit = string.Create(CultureInfo.InvariantCulture, $"{length} bytes, larger than the torrent's {f.Length}");
            }
            else if (length > 0 && !AnyPieceVerified(f) && HasNonZeroByte(handle, length))
            {
                misfit = "none of its pieces verifies";
            }

            if (misfit is not null && !overwrite)
            {
                throw new OutputConflictException(_paths[i], OutputConflict.DoesNotFit, $"{_paths[i]} exists and does not fit the torrent ({misfit})");
            }
        }
    }

    private bool AnyPieceVerified(TorrentFileEntry file)
    {
        if (file.Length == 0) return false;
        var first = (int)(file.Offset / _info.PieceLength);
        var last = (int)((file.Offset + file.Length - 1) / _info.PieceLength);
        for (var p = first; p <= last; p++)
        {
            if (_verified[p]) return true;
        }

        return false;
    }

    private static bool HasNonZeroByte(SafeFileHandle handle, long length)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            for (long at = 0; at < length;)
            {
                var n = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - at)), at);
                if (n == 0) return false;
                if (buffer.AsSpan(0, n).ContainsAnyExcept((byte)0)) return true;
                at += n;
            }

            return false;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Sets the verified pieces; returns, per file, whether the resume file lists it at its current size: a file of
    /// this download (even if a crash tore a piece write after the resume file was saved), not someone else's.
    /// </summary>
    private bool[] Establish(bool[] fresh, CancellationToken ct)
    {
        var trustedFiles = LoadResume(out var resumed, out var recorded, out var unsynced, out var sameBoot);
        var buffer = ArrayPool<byte>.Shared.Rent(_info.PieceLength);
        try
        {
            for (var piece = 0; piece < _info.PieceCount; piece++)
            {
                ct.ThrowIfCancellationRequested();
                var (first, last) = FilesOf(piece);
                var trusted = resumed is not null && Enumerable.Range(first, last - first + 1).All(f => trustedFiles[f]);
                // A piece recorded as verified but not yet synced is trusted only within the boot that wrote it: its bytes
                // were in the page cache, which a process's crash keeps and only a kernel crash or power loss (a new
                // boot) can lose. After a new boot it is hashed again.
                if (trusted && (!resumed![piece] || unsynced is null || !unsynced[piece] || sameBoot))
                {
                    if (resumed[piece])
                    {
                        _verified.Set(piece);
                        if (unsynced is null || !unsynced[piece]) _synced.Set(piece);
                    }

                    continue;
                }

                if (Enumerable.Range(first, last - first + 1).All(f => fresh[f] || _info.Files[f].Length == 0) && _info.PieceSize(piece) > 0) continue;
                PiecesRechecked++;
                if (CheckOnDisk(piece, buffer)) _verified.Set(piece);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        PiecesKeptOnOpen = _verified.SetCount;
        _dirtySinceResume = PiecesRechecked > 0;
        _unsyncedRecorded = _synced.SetCount != _verified.SetCount;
        return resumed is null ? new bool[_paths.Length] : recorded;
    }

    private bool CheckOnDisk(int piece, byte[] buffer)
    {
        var size = _info.PieceSize(piece);
        var span = buffer.AsSpan(0, size);
        Read(piece, 0, span);
        Span<byte> hash = stackalloc byte[TorrentLimits.Sha1Length];
        SHA1.HashData(span, hash);
        return hash.SequenceEqual(_info.PieceHash(piece));
    }

    /// <summary>The first and last file index a piece overlaps (zero-length files in between included).</summary>
    private (int First, int Last) FilesOf(int piece)
    {
        var start = (long)piece * _info.PieceLength;
        var end = start + _info.PieceSize(piece);
        int first = -1, last = -1;
        for (var i = 0; i < _info.Files.Count; i++)
        {
            var f = _info.Files[i];
            if (f.Offset + f.Length > start && f.Offset < end)
            {
                if (first < 0) first = i;
                last = i;
            }
        }

        return first < 0 ? (0, 0) : (first, last);
    }

    /// <summary>Reads <paramref name="destination"/>.Length bytes of piece <paramref name="piece"/> starting at <paramref name="begin"/>.</summary>
    public void Read(int piece, int begin, Span<byte> destination)
    {
        var offset = ((long)piece * _info.PieceLength) + begin;
        foreach (var (file, fileOffset, from, count) in Segments(offset, destination.Length))
        {
            var span = destination.Slice(from, count);
            // A padding file (BEP 47), or a file not created yet (while existing files are checked on open): zeros.
            // A file not on disk (skipped) has its bytes of verified shared pieces in the parts file.
            var parts = _parts;
            if (_info.Files[file].IsPadding || (_handles[file] is null && parts is null))
            {
                span.Clear();
                continue;
            }

            var handle = _handles[file] ?? parts!;
            var at = _handles[file] is null ? _info.Files[file].Offset + fileOffset : fileOffset;
            while (span.Length > 0)
            {
                var n = RandomAccess.Read(handle, span, at);
                if (n == 0)
                {
                    span.Clear();
                    break;
                }

                span = span[n..];
                at += n;
            }
        }
    }

    /// <summary>
    /// Reads consecutive bytes of <paramref name="piece"/> into <paramref name="destinations"/> in turn: one preadv where
    /// the whole range lies in one file on disk (a run of blocks costs one system call instead of one per block),
    /// otherwise (a file boundary, a padding or skipped file) each destination as <see cref="Read(int, int, Span{byte})"/>.
    /// </summary>
    public void Read(int piece, int begin, IReadOnlyList<Memory<byte>> destinations)
    {
        ArgumentNullException.ThrowIfNull(destinations);
        long total = 0;
        foreach (var destination in destinations) total += destination.Length;
        var offset = ((long)piece * _info.PieceLength) + begin;
        var file = FileAt(offset);
        var f = _info.Files[file];
        var handle = _handles[file];
        var n = 0L;
        if (total > 0 && !f.IsPadding && handle is not null && offset + total <= f.Offset + f.Length)
        {
            n = RandomAccess.Read(handle, destinations, offset - f.Offset);
            if (n == total) return;
        }

        // The general path for what the scattered read did not cover (a short read at the end of a file reads zeros).
        foreach (var destination in destinations)
        {
            if (n >= destination.Length)
            {
                n -= destination.Length;
                begin += destination.Length;
                continue;
            }

            Read(piece, begin + (int)n, destination.Span[(int)n..]);
            begin += destination.Length;
            n = 0;
        }
    }

    /// <summary>The file holding byte <paramref name="offset"/> of the torrent's stream (the last file if it is past the end).</summary>
    private int FileAt(long offset)
    {
        for (var i = 0; i < _info.Files.Count; i++)
        {
            var f = _info.Files[i];
            if (f.Length > 0 && offset >= f.Offset && offset < f.Offset + f.Length) return i;
        }

        return _info.Files.Count - 1;
    }

    /// <summary>The file segments a byte range of the torrent's stream maps onto (BEP 3: files are concatenated in order).</summary>
    private List<(int File, long FileOffset, int BufferOffset, int Count)> Segments(long offset, int length)
    {
        var result = new List<(int, long, int, int)>(2);
        var done = 0;
        for (var i = 0; i < _info.Files.Count && done < length; i++)
        {
            var f = _info.Files[i];
            var pos = offset + done;
            if (f.Length == 0 || pos >= f.Offset + f.Length || pos < f.Offset) continue;
            var count = (int)Math.Min(length - done, f.Offset + f.Length - pos);
            result.Add((i, pos - f.Offset, done, count));
            done += count;
        }

        return result;
    }

    /// <summary>
    /// Verifies a whole piece against its SHA-1 and only then writes it. Returns false (and writes nothing) on mismatch.
    /// </summary>
    public bool TryWriteVerifiedPiece(int piece, ReadOnlySpan<byte> data)
    {
        if (data.Length != _info.PieceSize(piece)) return false;
        Span<byte> hash = stackalloc byte[TorrentLimits.Sha1Length];
        SHA1.HashData(data, hash);
        if (!hash.SequenceEqual(_info.PieceHash(piece))) return false;
        lock (_gate)
        {
            if (_verified[piece]) return true;
        }

        // The write and the verified bit change together with respect to SaveResume's snapshot (see there).
        lock (_writeOrder)
        {
            WritePiece(piece, data);
            lock (_gate)
            {
                _verified.Set(piece);
                _dirtySinceResume = true;
            }
        }

        return true;
    }

    /// <summary>
    /// Writes a whole piece in place. Where the file has an O_DIRECT handle, the block-aligned part of each segment goes
    /// through it from <paramref name="data"/> when that is page-aligned, else from the aligned staging buffer; the
    /// unaligned rest (a file's tail, a multi-file boundary) is buffered.
    /// </summary>
    private void WritePiece(int piece, ReadOnlySpan<byte> data)
    {
        // BEP 47: a padding file's bytes (zeros, already checked by the piece hash) are not stored.
        var segments = Segments((long)piece * _info.PieceLength, data.Length);
        segments.RemoveAll(s => _info.Files[s.File].IsPadding);
        foreach (var (file, fileOffset, from, count) in segments.Where(s => _handles[s.File] is null))
        {
            _parts ??= CreatePartsFile();
            RandomAccess.Write(_parts, data.Slice(from, count), _info.Files[file].Offset + fileOffset);
        }

        segments.RemoveAll(s => _handles[s.File] is null);
        foreach (var segment in segments) _written[segment.File] = true;
        if (!segments.Exists(s => _direct[s.File] is not null))
        {
            foreach (var (file, fileOffset, from, count) in segments) RandomAccess.Write(_handles[file]!, data.Slice(from, count), fileOffset);
            return;
        }

        lock (_direct)
        {
            // A page-aligned piece (the swarm assembles pieces in PieceBuffers, on the pinned heap) goes as it is.
            if (IsPageAligned(data) && WriteSegments(segments, data, disableOnFailure: false)) return;
            if (_staging is null || _staging.Length - _stagingOffset < data.Length)
            {
                var size = _info.PieceLength + DirectIo.Alignment;
                _staging = GC.AllocateUninitializedArray<byte>(size, pinned: true);
                var address = (long)Marshal.UnsafeAddrOfPinnedArrayElement(_staging, 0);
                _stagingOffset = (int)((DirectIo.Alignment - (address % DirectIo.Alignment)) % DirectIo.Alignment);
            }

            var staged = _staging.AsSpan(_stagingOffset, data.Length);
            data.CopyTo(staged);
            StagedWrites++;
            WriteSegments(segments, staged, disableOnFailure: true);
        }
    }

    /// <summary>Whether <paramref name="data"/> starts on a <see cref="DirectIo.Alignment"/> boundary (its address now).</summary>
    private static bool IsPageAligned(ReadOnlySpan<byte> data) =>
        Unsafe.ByteOffset(ref Unsafe.NullRef<byte>(), ref MemoryMarshal.GetReference(data)) % DirectIo.Alignment == 0;

    /// <summary>
    /// Writes a page-aligned <paramref name="data"/> (the whole piece): the block-aligned part of each segment through the
    /// file's O_DIRECT handle, the rest buffered. When a direct write fails (EINVAL: a device with a larger logical
    /// block than we assumed, or memory that was not pinned moved after the alignment check), either the file stays
    /// buffered from then on (<paramref name="disableOnFailure"/>) or false is returned and the caller writes the
    /// whole piece again from its staging buffer.
    /// </summary>
    private bool WriteSegments(List<(int File, long FileOffset, int BufferOffset, int Count)> segments, ReadOnlySpan<byte> data, bool disableOnFailure)
    {
        foreach (var (file, fileOffset, from, count) in segments)
        {
            var direct = _direct[file];
            var aligned = direct is not null && fileOffset % DirectIo.Alignment == 0 && from % DirectIo.Alignment == 0
                ? count / DirectIo.Alignment * DirectIo.Alignment
                : 0;
            if (aligned > 0)
            {
                try
                {
                    RandomAccess.Write(direct!, data.Slice(from, aligned), fileOffset);
                }
                catch (IOException)
                {
                    if (!disableOnFailure) return false;
                    _direct[file] = null;
                    direct!.Dispose();
                    aligned = 0;
                }
            }

            if (aligned < count) RandomAccess.Write(_handles[file]!, data.Slice(from + aligned, count - aligned), fileOffset + aligned);
        }

        return true;
    }

    /// <summary>True when the SHA-1 of <paramref name="data"/> is piece <paramref name="piece"/>'s hash in <paramref name="info"/>.</summary>
    public static bool VerifyPiece(TorrentInfo info, int piece, ReadOnlySpan<byte> data)
    {
        ArgumentNullException.ThrowIfNull(info);
        if (data.Length != info.PieceSize(piece)) return false;
        Span<byte> hash = stackalloc byte[TorrentLimits.Sha1Length];
        SHA1.HashData(data, hash);
        return hash.SequenceEqual(info.PieceHash(piece));
    }

    /// <summary>
    /// Crash-safe resume: write the verified set and each file's size and mtime to a temporary file, fsync it, then
    /// rename it over the old one (atomic on POSIX) and fsync the directory. The data files are fsynced first when
    /// <see cref="FileStorageOptions.DataSyncInterval"/> has passed since the last time; pieces verified since then are
    /// recorded as unsynced with this boot's id, and a later open trusts them only in the same boot (see Establish).
    /// </summary>
    public void SaveResume()
    {
        if (!_writable) return;
        // One save at a time (the periodic one, the one at completion, the one at shutdown): they share the temporary file.
        lock (_resumeGate) SaveResumeLocked();
    }

    private void SaveResumeLocked()
    {
        byte[] bits;
        var files = new List<BValue>();
        // The data is fsynced when an interval has passed since the last time (or always, where there is no boot id to
        // tell a process's crash from the kernel's); in between, the record lists what is verified but maybe not yet on
        // the device as "unsynced" with this boot's id (see Establish).
        var clock = _time.GetUtcNow();
        var syncData = _bootId is null || _dataSyncInterval <= TimeSpan.Zero || clock - _lastDataSync >= _dataSyncInterval;
        // The verified set and the files' mtimes are taken at one instant (no piece write in between), and every file
        // modified recently has its mtime set back to a sentinel (whole seconds, 2 s in the past) before it is recorded:
        // a piece written after this snapshot then always changes the mtime, so the next start rehashes instead of
        // trusting a resume file that does not list that piece (mtimes have a coarse clock tick: without the
        // sentinel, a write in the same tick as the snapshot would leave the mtime equal and the piece forgotten).
        lock (_writeOrder)
        {
            lock (_gate)
            {
                if (!_dirtySinceResume && !(syncData && _unsyncedRecorded) && File.Exists(ResumePath)) return;
                bits = _verified.AsSpan().ToArray();
                _dirtySinceResume = false;
            }

            var now = _time.GetUtcNow().UtcDateTime;
            var sentinel = new DateTime(now.Ticks - (now.Ticks % TimeSpan.TicksPerSecond), DateTimeKind.Utc).AddSeconds(-2);
            for (var i = 0; i < _paths.Length; i++)
            {
                if (_info.Files[i].IsPadding)
                {
                    files.Add(new BList([new BInteger(_info.Files[i].Length), new BInteger(0)]));
                    continue;
                }

                // A file not on disk (skipped): recorded as absent; its bytes of verified pieces are in the parts file.
                if (_handles[i] is null)
                {
                    files.Add(new BList([new BInteger(-1), new BInteger(0)]));
                    continue;
                }

                // Through the handle, never the path: the file we opened is the one recorded. Only files we wrote into
                // get the sentinel; a file of the user's that we only read keeps its mtime.
                var handle = _handles[i]!;
                var mtime = File.GetLastWriteTimeUtc(handle);
                if (_written[i] && mtime > sentinel)
                {
                    File.SetLastWriteTimeUtc(handle, sentinel);
                    mtime = File.GetLastWriteTimeUtc(handle);
                }

                files.Add(new BList([new BInteger(RandomAccess.GetLength(handle)), new BInteger(mtime.Ticks)]));
            }
        }

        // fsync(2) after the snapshot makes every write the snapshot counts durable; piece writes go on meanwhile (they
        // wait for neither lock), and what they write is not in this record. The fsync of a file being written can
        // take hundreds of milliseconds (it commits the filesystem's journal): holding a lock the write path takes
        // across it stalled the download each time (docs/BENCHMARKS.md, issue 14 item 9, sixth round).
        if (syncData)
        {
            SyncData();
            _lastDataSync = clock;
            // Every write the snapshot counts happened before the fsync: those pieces are on the device now.
            if (Bitfield.TryFromBytes(bits, _info.PieceCount, out var nowSynced)) _synced = nowSynced!;
        }

        var unsynced = new byte[bits.Length];
        var synced = _synced.AsSpan();
        var anyUnsynced = false;
        for (var i = 0; i < bits.Length; i++)
        {
            unsynced[i] = (byte)(bits[i] & ~synced[i]);
            anyUnsynced |= unsynced[i] != 0;
        }

        var doc = new BDictionary
        {
            ["files"] = new BList(files),
            ["info-hash"] = new BString(_info.InfoHash.ToArray()),
            ["pieces"] = new BString(bits),
        };
        if (_bootId is not null) doc["boot-id"] = new BString(_bootId);
        if (anyUnsynced) doc["unsynced"] = new BString(unsynced);
        _unsyncedRecorded = anyUnsynced;
        Directory.CreateDirectory(Path.GetDirectoryName(ResumePath)!);
        var tmp = ResumePath + ".tmp";
        // Unlink whatever a crash left (a link is removed, not followed), then O_EXCL: never writes through a link.
        File.Delete(tmp);
        using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            fs.Write(Bencode.Encode(doc));
            fs.Flush(flushToDisk: true);
        }

        File.Move(tmp, ResumePath, overwrite: true);
        OutputDirectory.Sync(Path.GetDirectoryName(ResumePath)!); // fsync(2): the rename is durable once its directory is synced
    }

    /// <summary>fsync(2) of every data file (and the parts file): what was written through them is on the device after it.</summary>
    private void SyncData()
    {
        DataSyncs++;
        foreach (var h in _handles.Append(_parts))
        {
            if (h is not null && !h.IsClosed && _writable) RandomAccess.FlushToDisk(h);
        }

        // O_DIRECT bypasses the page cache, not the device's write cache: fsync those handles too.
        SafeFileHandle?[] direct;
        lock (_direct) direct = [.. _direct];
        foreach (var h in direct)
        {
            if (h is null || h.IsClosed) continue;
            try
            {
                RandomAccess.FlushToDisk(h);
            }
            catch (ObjectDisposedException)
            {
                // A direct write failed since the copy and the file went buffered (WriteSegments): its bytes are
                // written through the buffered handle, fsynced above.
            }
        }
    }

    /// <summary>Per file: whether the resume file's size+mtime match what is on disk. <paramref name="resumed"/> is null when untrusted.</summary>
    /// <param name="recorded">Per file: whether the resume file lists it at its current size (whatever its mtime).</param>
    /// <param name="resumed">The record's verified pieces; null when there is no record or it does not decode.</param>
    /// <param name="unsynced">The pieces the record lists as verified but not yet fsynced (null: none, or a record from before the field).</param>
    /// <param name="sameBoot">Whether the record was written during this boot of the kernel.</param>
    private bool[] LoadResume(out Bitfield? resumed, out bool[] recorded, out Bitfield? unsynced, out bool sameBoot)
    {
        resumed = null;
        unsynced = null;
        sameBoot = false;
        var trusted = new bool[_paths.Length];
        recorded = new bool[_paths.Length];
        if (!File.Exists(ResumePath)) return trusted;
        var bytes = File.ReadAllBytes(ResumePath);
        if (!Bencode.TryDecode(bytes, out var value, out _) || value is not BDictionary d) return trusted;
        if (d["info-hash"] is not BString ih || !ih.Value.Span.SequenceEqual(_info.InfoHash.ToArray())) return trusted;
        if (d["pieces"] is not BString p || !Bitfield.TryFromBytes(p.Value.Span, _info.PieceCount, out resumed)) return trusted;
        if (d["files"] is not BList files || files.Items.Count != _paths.Length)
        {
            resumed = null;
            return trusted;
        }

        // An "unsynced" entry that does not decode trusts nothing of the record's pieces beyond what was synced: all of
        // them are treated as unsynced.
        if (d["unsynced"] is { } u)
        {
            if (u is not BString us || !Bitfield.TryFromBytes(us.Value.Span, _info.PieceCount, out unsynced)) unsynced = resumed!.Clone();
        }

        sameBoot = _bootId is not null && d["boot-id"] is BString bs && bs.Value.Span.SequenceEqual(Encoding.UTF8.GetBytes(_bootId));

        for (var i = 0; i < _paths.Length; i++)
        {
            if (_info.Files[i].IsPadding)
            {
                trusted[i] = true;
                continue;
            }

            // A file recorded absent (skipped) that is still absent: its bytes are in the parts file, fsynced with the record.
            if (_handles[i] is null && files.Items[i] is BList { Items: [BInteger { Value: -1 }, BInteger] })
            {
                trusted[i] = true;
                continue;
            }

            recorded[i] = files.Items[i] is BList { Items: [BInteger size, BInteger] } && _handles[i] is { } handle && RandomAccess.GetLength(handle) == size.Value;
            trusted[i] = recorded[i] && files.Items[i] is BList { Items: [_, BInteger mtime] } && File.GetLastWriteTimeUtc(_handles[i]!).Ticks == mtime.Value;
        }

        return trusted;
    }

    /// <summary>
    /// Changes which files are skipped while running (per entry of <see cref="TorrentInfo.Files"/>): a file no longer
    /// skipped is created now, with the bytes of its verified pieces copied from the parts file; a file that becomes
    /// skipped and is already on disk stays there (and keeps being written).
    /// </summary>
    public void SetSkippedFiles(IReadOnlyList<bool> skipped)
    {
        ArgumentNullException.ThrowIfNull(skipped);
        if (skipped.Count != _paths.Length) throw new ArgumentException($"{skipped.Count} skip flags for {_paths.Length} files", nameof(skipped));
        lock (_writeOrder)
        {
            _skipped = [.. skipped];
            if (!_writable) return;
            OutputDirectory? output = null;
            try
            {
                for (var i = 0; i < _paths.Length; i++)
                {
                    if (_skipped[i] || _info.Files[i].IsPadding || _handles[i] is not null) continue;
                    output ??= OutputDirectory.Open(_root, create: true);
                    var handle = output.OpenExistingFile(_components[i], writable: true) ?? output.CreateFile(_components[i]);
                    if (RandomAccess.GetLength(handle) != _info.Files[i].Length) RandomAccess.SetLength(handle, _info.Files[i].Length);
                    _handles[i] = handle;
                    _written[i] = true;
                    CopyFromParts(i);
                }
            }
            finally
            {
                output?.Dispose();
            }

            lock (_gate) _dirtySinceResume = true;
        }
    }

    /// <summary>Copies file <paramref name="file"/>'s bytes of verified pieces from the parts file into the file just created.</summary>
    private void CopyFromParts(int file)
    {
        if (_parts is null) return;
        var f = _info.Files[file];
        if (f.Length == 0) return;
        RandomAccess.SetLength(_handles[file]!, f.Length);
        var first = (int)(f.Offset / _info.PieceLength);
        var last = (int)((f.Offset + f.Length - 1) / _info.PieceLength);
        var buffer = ArrayPool<byte>.Shared.Rent(_info.PieceLength);
        try
        {
            for (var p = first; p <= last; p++)
            {
                if (!HasPiece(p)) continue;
                var start = Math.Max(f.Offset, (long)p * _info.PieceLength);
                var end = Math.Min(f.Offset + f.Length, ((long)p * _info.PieceLength) + _info.PieceSize(p));
                var span = buffer.AsSpan(0, (int)(end - start));
                var n = RandomAccess.Read(_parts, span, start);
                span[n..].Clear();
                RandomAccess.Write(_handles[file]!, span, start - f.Offset);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private SafeFileHandle CreatePartsFile()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(PartsPath)!);
        // Never through a link: an existing entry there that is not ours was refused on open (or appeared since).
        return File.OpenHandle(PartsPath, FileMode.CreateNew, FileAccess.ReadWrite);
    }

    /// <summary>Closes the files.</summary>
    public void Dispose()
    {
        _parts?.Dispose();
        foreach (var h in _handles) h?.Dispose();
        lock (_direct)
        {
            foreach (var h in _direct) h?.Dispose();
        }

    }
}
