using Microsoft.Win32.SafeHandles;
using Peerway.Content;
using Peerway.Core.Multiformats;

namespace Peerway.Node.Content;

/// <summary>Where a pack stopped being readable: the first record whose header did not decode (nothing after it is indexed).</summary>
internal readonly record struct PackProblem(string Path, long Offset, PackRecordError Error);

/// <summary>
/// A repository's pack files: blocks appended one record after another (<see cref="PackRecord"/>) to
/// <c>packs/NNNNNN.pack</c>, instead of one file per block, so that storing a block costs a write, not a file's creation
/// (open, mkdir, rename and an inode per block). The index (multihash → pack, offset, length) is held in memory: built by
/// reading the records' headers on first use and extended by reading the new records on a miss, so a process sees the
/// blocks another process appended meanwhile (an <c>ipfs serve</c> those of a concurrent <c>get</c> or <c>add</c>).
/// <para>
/// Several processes share one repository: a pack has at most one writer at a time, the process holding an exclusive
/// flock on its <c>NNNNNN.lock</c> (kernel-released when the process dies); others append to another pack or start a new
/// one. A writer appends under its own lock, whole records in order, so a reader only ever indexes a record whose header
/// and data lie below the file's length. A crash mid-append leaves a torn tail (a partial record) that readers stop at
/// and that the next writer to take the pack cuts off before appending. A header that does not decode (not a torn tail)
/// stops the pack there: recorded in <see cref="Problems"/>, no record after it indexed, the pack never written again.
/// Block data is not trusted: a read of a block another instance wrote hashes it against its multihash.
/// </para>
/// Thread-safe: one lock owns the index, the pack list and the writer; reads of block data (pread) run outside it.
/// </summary>
internal sealed class PackFiles
{
    /// <summary>A writer starts a new pack rather than grow one past this.</summary>
    public const long MaxPackBytes = 1L << 30;

    private const string PackExtension = ".pack";
    private const string LockExtension = ".lock";
    private const int MaxCreateAttempts = 64;

    private readonly string _directory;
    private readonly int _maxTrusted;
    private readonly Lock _gate = new();
    private readonly List<Pack> _packs = [];
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);
    private readonly Dictionary<Multihash, Location> _index = [];
    private readonly List<PackProblem> _problems = [];
    private bool _loaded;
    private Pack? _writer;
    private SafeFileHandle? _writeHandle;
    private FileStream? _writeLock;
    private int _trusted;

    /// <param name="directory">The packs directory (created on the first append).</param>
    /// <param name="maxTrusted">How many blocks this instance appends whose reads skip the hash (its caller vouched for them).</param>
    public PackFiles(string directory, int maxTrusted)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        _directory = directory;
        _maxTrusted = maxTrusted;
    }

    /// <summary>Packs that stopped at a record that did not decode.</summary>
    public IReadOnlyList<PackProblem> Problems
    {
        get
        {
            lock (_gate) return [.. _problems];
        }
    }

    /// <summary>True when a pack holds <paramref name="multihash"/>; with <paramref name="refresh"/>, a miss first reads what other processes appended.</summary>
    public bool Contains(Multihash multihash, bool refresh)
    {
        lock (_gate) return TryLocate(multihash, refresh, out _);
    }

    /// <summary>The block under <paramref name="cid"/>'s multihash, verified unless this instance appended it; <see cref="ContentError.NotFound"/> when no pack holds it.</summary>
    public ContentError TryGet(Cid cid, bool refresh, out byte[]? block)
    {
        ArgumentNullException.ThrowIfNull(cid);
        block = null;
        Location location;
        lock (_gate)
        {
            if (!TryLocate(cid.Multihash, refresh, out location)) return ContentError.NotFound;
        }

        var bytes = new byte[location.Length];
        if (ReadAll(location.Pack.Handle, bytes, location.Offset) != bytes.Length) return ContentError.Truncated;
        if (!location.Trusted && !cid.Multihash.Matches(bytes)) return ContentError.HashMismatch;
        block = bytes;
        return ContentError.None;
    }

    /// <summary>Appends a block (<see cref="PackRecord.Fits"/> must hold) unless a pack already holds it.</summary>
    public void Append(Multihash multihash, ReadOnlySpan<byte> block)
    {
        ArgumentNullException.ThrowIfNull(multihash);
        if (!PackRecord.Fits(multihash, block.Length)) throw new ArgumentOutOfRangeException(nameof(block), "the block does not fit a pack record");
        Span<byte> header = stackalloc byte[PackRecord.MaxHeaderLength];
        lock (_gate)
        {
            if (TryLocate(multihash, refresh: false, out _)) return;
            var headerLength = PackRecord.WriteHeader(multihash, block.Length, header);
            var recordLength = (long)headerLength + block.Length;
            if (_writer is null || (_writer.End > 0 && _writer.End + recordLength > MaxPackBytes)) OpenWriter(recordLength);
            var at = _writer!.End;
            try
            {
                RandomAccess.Write(_writeHandle!, header[..headerLength], at);
                RandomAccess.Write(_writeHandle!, block, at + headerLength);
            }
            catch (IOException)
            {
                // Disk full or an I/O error: cut the partial record off so that the next append does not follow a torn one.
                RandomAccess.SetLength(_writeHandle!, at);
                throw;
            }

            _writer.End = at + recordLength;
            var trusted = _trusted < _maxTrusted;
            if (trusted) _trusted++;
            _index[multihash] = new Location(_writer, at + headerLength, block.Length, trusted);
        }
    }

    /// <summary>How many blocks the packs hold, what other processes appended included.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                _loaded = true;
                Refresh();
                return _index.Count;
            }
        }
    }

    /// <summary>Test hook: the pack file and offset of a block's bytes.</summary>
    internal (string Path, long Offset, int Length)? LocationOf(Multihash multihash)
    {
        lock (_gate)
        {
            return TryLocate(multihash, refresh: true, out var l) ? (l.Pack.Path, l.Offset, l.Length) : null;
        }
    }

    /// <summary>Test hook: gives up the pack this instance appends to, as the kernel does for a process that dies.</summary>
    internal void ReleaseWriterForTests()
    {
        lock (_gate) ReleaseWriter();
    }

    private bool TryLocate(Multihash multihash, bool refresh, out Location location)
    {
        if (!_loaded)
        {
            _loaded = true;
            Refresh();
        }
        else if (!_index.TryGetValue(multihash, out location) && refresh)
        {
            Refresh();
        }

        return _index.TryGetValue(multihash, out location);
    }

    /// <summary>Opens the packs that appeared and indexes what was appended to the others since the last look.</summary>
    private void Refresh()
    {
        if (!Directory.Exists(_directory)) return;
        foreach (var path in Directory.EnumerateFiles(_directory, "*" + PackExtension))
        {
            if (_known.Contains(path)) continue;
            SafeFileHandle handle;
            try
            {
                handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            }
            catch (FileNotFoundException)
            {
                continue;
            }

            _known.Add(path);
            _packs.Add(new Pack(path, handle));
        }

        foreach (var pack in _packs)
        {
            if (pack != _writer) Scan(pack);
        }
    }

    /// <summary>Indexes the whole records past <see cref="Pack.End"/>; returns the file's length.</summary>
    private long Scan(Pack pack)
    {
        var length = RandomAccess.GetLength(pack.Handle);
        if (pack.Stop != PackRecordError.None) return length;
        Span<byte> buffer = stackalloc byte[PackRecord.MaxHeaderLength];
        while (pack.End < length)
        {
            var read = ReadAll(pack.Handle, buffer[..(int)Math.Min(buffer.Length, length - pack.End)], pack.End);
            var error = PackRecord.TryReadHeader(buffer[..read], out var header);
            // A header or data not all below the length: a torn tail, or a record being appended (read again later).
            if (error == PackRecordError.Truncated) break;
            if (error != PackRecordError.None)
            {
                pack.Stop = error;
                _problems.Add(new PackProblem(pack.Path, pack.End, error));
                break;
            }

            if (pack.End + header.RecordLength > length) break;
            _index.TryAdd(header.Multihash, new Location(pack, pack.End + header.HeaderLength, header.DataLength, Trusted: false));
            pack.End += header.RecordLength;
        }

        return length;
    }

    /// <summary>Takes a pack to append to: one no other process writes with room for <paramref name="needed"/> bytes, else a new one.</summary>
    private void OpenWriter(long needed)
    {
        if (_writer is not null)
        {
            _writer.Full = true;
            ReleaseWriter();
        }

        Directory.CreateDirectory(_directory);
        Refresh();
        foreach (var pack in _packs.OrderBy(p => p.Path, StringComparer.Ordinal))
        {
            if (pack.Full || pack.Stop != PackRecordError.None || pack.End + needed > MaxPackBytes) continue;
            var exclusive = TryLock(pack.Path);
            if (exclusive is null) continue;
            // No other process appends to it now: index it to its last whole record and cut off a torn tail (a writer
            // that died mid-append), unless a record that does not decode stops it.
            var length = Scan(pack);
            if (pack.Stop != PackRecordError.None || pack.End + needed > MaxPackBytes)
            {
                exclusive.Dispose();
                continue;
            }

            var handle = File.OpenHandle(pack.Path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
            if (length > pack.End) RandomAccess.SetLength(handle, pack.End);
            (_writer, _writeHandle, _writeLock) = (pack, handle, exclusive);
            return;
        }

        var next = _packs.Select(p => int.TryParse(Path.GetFileNameWithoutExtension(p.Path), out var n) ? n : 0).DefaultIfEmpty(0).Max() + 1;
        for (var attempt = 0; attempt < MaxCreateAttempts; attempt++, next++)
        {
            var path = Path.Combine(_directory, next.ToString("D6", System.Globalization.CultureInfo.InvariantCulture) + PackExtension);
            var exclusive = TryLock(path);
            if (exclusive is null) continue;
            SafeFileHandle handle;
            try
            {
                handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
            }
            catch (IOException) when (File.Exists(path))
            {
                // Made by a process that has let it go since: the next refresh indexes it.
                exclusive.Dispose();
                continue;
            }

            var pack = new Pack(path, File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete));
            _known.Add(path);
            _packs.Add(pack);
            (_writer, _writeHandle, _writeLock) = (pack, handle, exclusive);
            return;
        }

        throw new IOException($"cannot start a pack file in {_directory}");
    }

    private void ReleaseWriter()
    {
        _writeHandle?.Dispose();
        _writeLock?.Dispose();
        (_writer, _writeHandle, _writeLock) = (null, null, null);
    }

    /// <summary>The exclusive flock on a pack's lock file (the right to append to it), or null when another holder has it.</summary>
    private static FileStream? TryLock(string packPath)
    {
        try
        {
            // FileShare.None: .NET takes flock(LOCK_EX | LOCK_NB) and throws if another open file description holds it.
            return new FileStream(Path.ChangeExtension(packPath, LockExtension), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static int ReadAll(SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = RandomAccess.Read(handle, buffer[total..], offset + total);
            if (n == 0) break;
            total += n;
        }

        return total;
    }

    private sealed class Pack(string path, SafeFileHandle handle)
    {
        public string Path { get; } = path;

        /// <summary>A read-only handle, kept open for the process's life (the packs are few).</summary>
        public SafeFileHandle Handle { get; } = handle;

        /// <summary>The end of the last whole record indexed.</summary>
        public long End { get; set; }

        /// <summary>The error of a record that did not decode: nothing past <see cref="End"/> is read again.</summary>
        public PackRecordError Stop { get; set; }

        /// <summary>This instance wrote it up to <see cref="MaxPackBytes"/>.</summary>
        public bool Full { get; set; }
    }

    private readonly record struct Location(Pack Pack, long Offset, int Length, bool Trusted);
}
