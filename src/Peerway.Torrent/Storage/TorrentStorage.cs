using System.Buffers;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Peerway.Core.Bencoding;
using Peerway.Torrent.Metainfo;

namespace Peerway.Torrent.Storage;

/// <summary>
/// The torrent's files on disk, written in place. Only whole, SHA-1-verified pieces are ever written (BEP 3: a piece
/// is checked against its hash), so no unverified byte reaches the disk. Files are preallocated sparse (ftruncate).
/// Thread-safe: reads and writes are positional (pread/pwrite); the verified set is guarded by a lock.
/// </summary>
public sealed class TorrentStorage : IDisposable
{
    private readonly TorrentInfo _info;
    private readonly SafeFileHandle?[] _handles;
    private readonly string[] _paths;
    private readonly Lock _gate = new();

    /// <summary>Orders piece writes against the resume snapshot (held across a write and across the snapshot).</summary>
    private readonly Lock _writeOrder = new();
    private readonly Bitfield _verified;

    /// <summary>Per file, a second handle with O_DIRECT for aligned piece writes (null: buffered writes only).</summary>
    private readonly SafeFileHandle?[] _direct;

    /// <summary>Page-aligned staging buffer for direct writes (pinned, so its address never moves); guarded by itself.</summary>
    private byte[]? _staging;
    private int _stagingOffset;
    private bool _dirtySinceResume;
    private bool _writable;

    private TorrentStorage(TorrentInfo info, string[] paths, SafeFileHandle?[] handles, string resumePath)
    {
        _info = info;
        _paths = paths;
        _handles = handles;
        _direct = new SafeFileHandle?[handles.Length];
        _verified = new Bitfield(info.PieceCount);
        ResumePath = resumePath;
    }

    public string ResumePath { get; }

    /// <summary>Where the torrent's content lives: the file (single) or the directory (multi).</summary>
    public static string ContentPath(TorrentInfo info, string directory) => Path.Combine(directory, info.Name);

    /// <summary>Number of pieces verified on open (from the resume file and the recheck) — what a restart kept.</summary>
    public int PiecesKeptOnOpen { get; private set; }

    /// <summary>Number of pieces whose data was hashed on open because the resume file was missing or not trusted.</summary>
    public int PiecesRechecked { get; private set; }

    public Bitfield Verified
    {
        get
        {
            lock (_gate)
            {
                Bitfield.TryFromBytes(_verified.AsSpan(), _verified.Count, out var copy);
                return copy!;
            }
        }
    }

    public int VerifiedCount
    {
        get
        {
            lock (_gate) return _verified.SetCount;
        }
    }

    public bool IsComplete => VerifiedCount == _info.PieceCount;

    public bool HasPiece(int piece)
    {
        lock (_gate) return _verified[piece];
    }

    /// <summary>
    /// Opens (creating and preallocating when <paramref name="create"/>) the files under <paramref name="directory"/>,
    /// then establishes which pieces are valid: the resume file is trusted only for pieces whose files all still have
    /// the recorded size and mtime; every other piece with data on disk is re-hashed.
    /// </summary>
    /// <param name="directWrites">Write verified pieces with O_DIRECT where the filesystem allows it (Linux).</param>
    public static TorrentStorage Open(TorrentInfo info, string directory, bool create, string? resumePath = null, CancellationToken ct = default, bool directWrites = false)
    {
        ArgumentNullException.ThrowIfNull(info);
        var root = Path.GetFullPath(directory);
        var paths = new string[info.Files.Count];
        var handles = new SafeFileHandle?[info.Files.Count];
        for (var i = 0; i < info.Files.Count; i++)
        {
            var f = info.Files[i];
            var full = info.IsMultiFile ? Path.Combine([root, info.Name, .. f.Path]) : Path.Combine(root, info.Name);
            full = Path.GetFullPath(full);
            // Defence in depth: the parser already rejects traversal; a path must stay under the root.
            if (!full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal)) throw new InvalidDataException($"path escapes the download directory: {f.RelativePath}");
            paths[i] = full;
        }

        resumePath ??= Path.Combine(root, ".peerway", info.InfoHash + ".resume");
        var storage = new TorrentStorage(info, paths, handles, resumePath) { _writable = create };
        var fresh = new bool[paths.Length];
        try
        {
            for (var i = 0; i < paths.Length; i++)
            {
                if (info.Files[i].IsPadding)
                {
                    // BEP 47: padding files are zeros that exist only in the piece stream; nothing is opened or created.
                    fresh[i] = true;
                    continue;
                }

                if (create)
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(paths[i])!);
                    // A file we create now holds no data: its pieces need no hashing (only zeros could be there).
                    fresh[i] = !File.Exists(paths[i]) || new FileInfo(paths[i]).Length == 0;
                    handles[i] = File.OpenHandle(paths[i], FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
                    // Sparse preallocation: extending with ftruncate allocates no blocks.
                    if (RandomAccess.GetLength(handles[i]!) != info.Files[i].Length) RandomAccess.SetLength(handles[i]!, info.Files[i].Length);
                    if (directWrites) storage._direct[i] = DirectIo.TryOpenForDirectWrites(paths[i]);
                }
                else
                {
                    if (!File.Exists(paths[i])) throw new FileNotFoundException($"missing file: {paths[i]}", paths[i]);
                    handles[i] = File.OpenHandle(paths[i], FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                    if (RandomAccess.GetLength(handles[i]!) != info.Files[i].Length) throw new InvalidDataException($"wrong size: {paths[i]}");
                }
            }

            storage.Establish(fresh, ct);
            return storage;
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    private void Establish(bool[] fresh, CancellationToken ct)
    {
        var trustedFiles = LoadResume(out var resumed);
        var buffer = ArrayPool<byte>.Shared.Rent(_info.PieceLength);
        try
        {
            for (var piece = 0; piece < _info.PieceCount; piece++)
            {
                ct.ThrowIfCancellationRequested();
                var (first, last) = FilesOf(piece);
                var trusted = resumed is not null && Enumerable.Range(first, last - first + 1).All(f => trustedFiles[f]);
                if (trusted)
                {
                    if (resumed![piece]) _verified.Set(piece);
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
            if (_info.Files[file].IsPadding)
            {
                span.Clear();
                continue;
            }

            var at = fileOffset;
            while (span.Length > 0)
            {
                var n = RandomAccess.Read(_handles[file]!, span, at);
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
    /// through it from the aligned staging buffer; the unaligned rest (a file's tail, a multi-file boundary) is buffered.
    /// </summary>
    private void WritePiece(int piece, ReadOnlySpan<byte> data)
    {
        // BEP 47: a padding file's bytes (zeros, already checked by the piece hash) are not stored.
        var segments = Segments((long)piece * _info.PieceLength, data.Length);
        segments.RemoveAll(s => _info.Files[s.File].IsPadding);
        if (!segments.Exists(s => _direct[s.File] is not null))
        {
            foreach (var (file, fileOffset, from, count) in segments) RandomAccess.Write(_handles[file]!, data.Slice(from, count), fileOffset);
            return;
        }

        lock (_direct)
        {
            if (_staging is null || _staging.Length - _stagingOffset < data.Length)
            {
                var size = _info.PieceLength + DirectIo.Alignment;
                _staging = GC.AllocateUninitializedArray<byte>(size, pinned: true);
                var address = (long)Marshal.UnsafeAddrOfPinnedArrayElement(_staging, 0);
                _stagingOffset = (int)((DirectIo.Alignment - (address % DirectIo.Alignment)) % DirectIo.Alignment);
            }

            var staged = _staging.AsSpan(_stagingOffset, data.Length);
            data.CopyTo(staged);
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
                        RandomAccess.Write(direct!, staged.Slice(from, aligned), fileOffset);
                    }
                    catch (IOException)
                    {
                        // EINVAL: a device with a larger logical block than we assumed. Stay buffered for this file.
                        _direct[file] = null;
                        direct!.Dispose();
                        aligned = 0;
                    }
                }

                if (aligned < count) RandomAccess.Write(_handles[file]!, staged.Slice(from + aligned, count - aligned), fileOffset + aligned);
            }
        }
    }

    public static bool VerifyPiece(TorrentInfo info, int piece, ReadOnlySpan<byte> data)
    {
        ArgumentNullException.ThrowIfNull(info);
        if (data.Length != info.PieceSize(piece)) return false;
        Span<byte> hash = stackalloc byte[TorrentLimits.Sha1Length];
        SHA1.HashData(data, hash);
        return hash.SequenceEqual(info.PieceHash(piece));
    }

    /// <summary>
    /// Crash-safe resume: flush the data files (so every piece we record is durable), write the verified set and each
    /// file's size and mtime to a temporary file, fsync it, then rename it over the old one (atomic on POSIX).
    /// </summary>
    public void SaveResume()
    {
        if (!_writable) return;
        byte[] bits;
        var files = new List<BValue>();
        // The verified set and the files' mtimes are taken at one instant (no piece write in between), and every file
        // modified recently has its mtime set back to a sentinel (whole seconds, 2 s in the past) before it is recorded:
        // a piece written after this snapshot then always changes the mtime, so the next start rehashes instead of
        // trusting a resume file that does not list that piece (mtimes have a coarse clock tick: without the
        // sentinel, a write in the same tick as the snapshot would leave the mtime equal and the piece forgotten).
        lock (_writeOrder)
        {
            lock (_gate)
            {
                if (!_dirtySinceResume && File.Exists(ResumePath)) return;
                bits = _verified.AsSpan().ToArray();
                _dirtySinceResume = false;
            }

            var now = DateTime.UtcNow;
            var sentinel = new DateTime(now.Ticks - (now.Ticks % TimeSpan.TicksPerSecond), DateTimeKind.Utc).AddSeconds(-2);
            for (var i = 0; i < _paths.Length; i++)
            {
                if (_info.Files[i].IsPadding)
                {
                    files.Add(new BList([new BInteger(_info.Files[i].Length), new BInteger(0)]));
                    continue;
                }

                var fi = new FileInfo(_paths[i]);
                if (fi.LastWriteTimeUtc > sentinel)
                {
                    File.SetLastWriteTimeUtc(_paths[i], sentinel);
                    fi.Refresh();
                }

                files.Add(new BList([new BInteger(fi.Length), new BInteger(fi.LastWriteTimeUtc.Ticks)]));
            }
        }

        foreach (var h in _handles)
        {
            if (h is not null && !h.IsClosed && _writable) RandomAccess.FlushToDisk(h);
        }

        lock (_direct)
        {
            // O_DIRECT bypasses the page cache, not the device's write cache: fsync those handles too.
            foreach (var h in _direct)
            {
                if (h is not null && !h.IsClosed) RandomAccess.FlushToDisk(h);
            }
        }

        var doc = new BDictionary
        {
            ["files"] = new BList(files),
            ["info-hash"] = new BString(_info.InfoHash.ToArray()),
            ["pieces"] = new BString(bits),
        };
        Directory.CreateDirectory(Path.GetDirectoryName(ResumePath)!);
        var tmp = ResumePath + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            fs.Write(Bencode.Encode(doc));
            fs.Flush(flushToDisk: true);
        }

        File.Move(tmp, ResumePath, overwrite: true);
    }

    /// <summary>Per file: whether the resume file's size+mtime match what is on disk. <paramref name="resumed"/> is null when untrusted.</summary>
    private bool[] LoadResume(out Bitfield? resumed)
    {
        resumed = null;
        var trusted = new bool[_paths.Length];
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

        for (var i = 0; i < _paths.Length; i++)
        {
            if (_info.Files[i].IsPadding)
            {
                trusted[i] = true;
                continue;
            }

            var fi = new FileInfo(_paths[i]);
            trusted[i] = files.Items[i] is BList { Items: [BInteger size, BInteger mtime] } && fi.Exists && fi.Length == size.Value && fi.LastWriteTimeUtc.Ticks == mtime.Value;
        }

        return trusted;
    }

    public void Dispose()
    {
        foreach (var h in _handles) h?.Dispose();
        lock (_direct)
        {
            foreach (var h in _direct) h?.Dispose();
        }

    }
}
