using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Peerway.Content.Hashing;
using Peerway.Core.Multiformats;

namespace Peerway.Content.UnixFs;

public sealed partial class UnixFsImporter
{
    /// <summary>Chunks per batch: a worker reads and hashes this many consecutive chunks at once (one per SHA-256 lane).</summary>
    internal const int BatchChunks = Sha256x16.Lanes;

    /// <summary>Batches in flight per worker (each with a read buffer of a batch, unless the file is mapped).</summary>
    internal const int PipelineSlotsPerWorker = LeafPipeline.SlotsPerWorker;

    /// <summary>
    /// Where chunks come from, a batch of <see cref="BatchChunks"/> at a time: a window of a memory-mapped file (no copy;
    /// any worker maps any batch), positional reads of a file, or a stream read in order. Every chunk is exactly
    /// ChunkSize bytes except the last (ipfs-unixfs-importer fixed-size chunker), so a short batch ends the input.
    /// </summary>
    /// <remarks>
    /// A mapped file is imported up to the length it had when the import started; a file that is only appended to
    /// imports the bytes it had at the start. A file found shorter before a window is mapped fails the import with an
    /// IOException. Truncating it while a mapped window is being hashed makes the kernel raise SIGBUS on the lost pages,
    /// which ends the process (.NET aborts with an AccessViolationException, as any program that maps its input dies,
    /// e.g. ripgrep).
    /// </remarks>
    internal sealed unsafe class ChunkSource : IDisposable
    {
        private readonly Stream? _stream;
        private readonly SafeFileHandle? _file;
        private readonly MemoryMappedFile? _map;
        private readonly long _start;

        /// <param name="content">The bytes to import, read from its current position.</param>
        /// <param name="chunkSize">Bytes per leaf chunk.</param>
        /// <param name="mapAbove">A file with more bytes than this left is memory-mapped (long.MaxValue: never).</param>
        public ChunkSource(Stream content, int chunkSize, long mapAbove)
        {
            ChunkSize = chunkSize;
            BatchBytes = BatchChunks * chunkSize;
            if (content is FileStream { CanSeek: true } file)
            {
                _file = file.SafeFileHandle;
                _start = file.Position;
                Remaining = Math.Max(0, RandomAccess.GetLength(_file) - _start);
                _map = Remaining > Math.Max(0, mapAbove) ? TryMap(_file) : null;
            }
            else
            {
                _stream = content;
                Remaining = RemainingOf(content);
            }
        }

        public int ChunkSize { get; }

        public int BatchBytes { get; }

        /// <summary>Any worker may read any batch, concurrently (a file); otherwise batches are read in order, one at a time.</summary>
        public bool Positional => _file is not null;

        /// <summary>Batches are hashed where the file is mapped: no read buffers.</summary>
        public bool Mapped => _map is not null;

        /// <summary>Bytes left when the import starts, or -1 when unknown (not seekable); exact for a mapped file.</summary>
        public long Remaining { get; }

        /// <summary>Reads chunk <paramref name="index"/> (inline imports); fewer than ChunkSize bytes only at the end.</summary>
        public int Read(long index, Span<byte> destination) => ReadAt(index * ChunkSize, destination);

        /// <summary>Maps batch <paramref name="index"/>; <see cref="Batch.Length"/> is 0 past the end.</summary>
        public Batch MapBatch(long index)
        {
            var offset = index * BatchBytes;
            var length = (int)Math.Clamp(Remaining - offset, 0, BatchBytes);
            if (length == 0)
            {
                return default;
            }

            // A file cut short since the import started would raise SIGBUS on the lost pages and end the process:
            // check its length before each window so that this ends the import with an error instead (what remains is
            // a truncation during the ~1.5 ms a window is hashed).
            if (RandomAccess.GetLength(_file!) < _start + offset + length)
            {
                throw new IOException("The file shrank while it was being imported.");
            }

            var view = _map!.CreateViewAccessor(_start + offset, length, MemoryMappedFileAccess.Read);
            try
            {
                byte* pointer = null;
                view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
                try
                {
                    return new Batch(pointer + view.PointerOffset, length, view);
                }
                catch
                {
                    view.SafeMemoryMappedViewHandle.ReleasePointer();
                    throw;
                }
            }
            catch
            {
                view.Dispose();
                throw;
            }
        }

        /// <summary>Reads batch <paramref name="index"/> into <paramref name="destination"/> (BatchBytes long); returns its length.</summary>
        public int ReadBatch(long index, Span<byte> destination) => ReadAt(index * BatchBytes, destination);

        private int ReadAt(long offset, Span<byte> destination)
        {
            if (_file is null)
            {
                return _stream!.ReadAtLeast(destination, destination.Length, throwOnEndOfStream: false);
            }

            var total = 0;
            while (total < destination.Length)
            {
                var read = RandomAccess.Read(_file, destination[total..], _start + offset + total);
                if (read == 0)
                {
                    break;
                }

                total += read;
            }

            return total;
        }

        /// <summary>Maps a regular file read-only; null when it cannot be mapped (a device, /proc, a full address space).</summary>
        private static MemoryMappedFile? TryMap(SafeFileHandle file)
        {
            try
            {
                return MemoryMappedFile.CreateFromFile(file, mapName: null, capacity: 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
            }
            catch (IOException)
            {
                return null; // the read path serves it
            }
            catch (UnauthorizedAccessException)
            {
                return null;
            }
            catch (ArgumentException)
            {
                return null; // a length that changed to 0 since it was measured
            }
        }

        public void Dispose() => _map?.Dispose();
    }

    /// <summary>Bytes left in a seekable stream, or -1.</summary>
    private static long RemainingOf(Stream content) =>
        content.CanSeek ? Math.Max(0, content.Length - content.Position) : -1;

    /// <summary>A batch's bytes: in a mapped view (unmapped after hashing) or in a read buffer.</summary>
    internal readonly unsafe struct Batch(byte* bytes, int length, MemoryMappedViewAccessor? view)
    {
        public byte* Bytes { get; } = bytes;

        public int Length { get; } = length;

        /// <summary>Unmaps the view: the pointer's reference first, or Dispose would leave the window mapped.</summary>
        public void Release()
        {
            if (view is not null)
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
                view.Dispose();
            }
        }
    }

    /// <summary>
    /// Reads, hashes and stores leaves on <see cref="ImportOptions.HashParallelism"/> worker threads while the calling
    /// thread links them, in file order, into the balanced DAG. Work is handed out in batches of
    /// <see cref="BatchChunks"/> consecutive chunks, hashed 16 at a time with <see cref="Sha256x16"/> or one by one with
    /// the platform's SHA-256, whichever is faster on this CPU (<see cref="Sha256PathChooser"/>, resolved once here). A
    /// ring of <see cref="SlotsPerWorker"/> batch slots per worker bounds memory whatever the file size (a mapped window
    /// per batch in flight, or one read buffer per slot); a worker waits for its slot to be consumed, the consumer waits
    /// for the next batch in order.
    /// </summary>
    private sealed unsafe class LeafPipeline : IDisposable
    {
        internal const int SlotsPerWorker = 2;
        private const int Free = 0;
        private const int Filling = 1;
        private const int Ready = 2;

        private readonly UnixFsImporter _importer;
        private readonly ChunkSource _source;
        private readonly byte[]?[] _buffers;
        private readonly PreparedLeaf[][] _leaves;
        private readonly int[] _counts;
        private readonly bool[] _last;
        private readonly int[] _state;
        private readonly Thread[] _workers;
        private readonly Lock _claim = new();
        // A monitor (not a Lock): the consumer and the workers wait on it for slot changes.
        private readonly object _gate = new();
        private readonly bool _multiBuffer;
        private long _nextClaim;

        // Who waits on _gate: a state change pulses only when someone it can unblock is waiting (fewer context switches).
        private bool _consumerWaiting;
        private int _workersWaiting;
        private bool _ended;
        private bool _stopped;
        private ExceptionDispatchInfo? _failure;

        public LeafPipeline(UnixFsImporter importer, ChunkSource source, int workers)
        {
            _importer = importer;
            _source = source;
            var slots = workers * SlotsPerWorker;
            _buffers = new byte[slots][];
            _leaves = new PreparedLeaf[slots][];
            for (var i = 0; i < slots; i++)
            {
                _leaves[i] = new PreparedLeaf[BatchChunks];
            }

            _counts = new int[slots];
            _last = new bool[slots];
            _state = new int[slots];
            _workers = new Thread[workers];
            // Only full batches can take the lanes: a file shorter than one is not worth measuring for (~13 ms).
            var fullBatches = source.Remaining < 0 || source.Remaining >= source.BatchBytes;
            _multiBuffer = fullBatches && Sha256PathChooser.Resolve(importer._options.Sha256) == Sha256Path.MultiBuffer;
            for (var i = 0; i < workers; i++)
            {
                _workers[i] = new Thread(Work) { IsBackground = true, Name = "unixfs-leaf-" + i };
                _workers[i].Start();
            }
        }

        /// <summary>Hands every leaf (already stored by its worker), in order, to <paramref name="consume"/>.</summary>
        public void Run(LeafConsumer consume, CancellationToken cancellationToken)
        {
            using var registration = cancellationToken.Register(Stop);
            for (long index = 0; ; index++)
            {
                var slot = (int)(index % _state.Length);
                lock (_gate)
                {
                    while (_state[slot] != Ready && _failure is null && !_stopped)
                    {
                        _consumerWaiting = true;
                        Monitor.Wait(_gate);
                        _consumerWaiting = false;
                    }

                    _failure?.Throw(); // a worker's read failure, on the caller's thread

                    cancellationToken.ThrowIfCancellationRequested();
                }

                var leaves = _leaves[slot];
                for (var i = 0; i < _counts[slot]; i++)
                {
                    consume(leaves[i]);
                }

                var last = _last[slot];
                lock (_gate)
                {
                    _state[slot] = Free;
                    if (_workersWaiting > 0)
                    {
                        Monitor.PulseAll(_gate);
                    }
                }

                if (last)
                {
                    return;
                }
            }
        }

        private void Stop()
        {
            lock (_gate)
            {
                _stopped = true;
                Monitor.PulseAll(_gate);
            }
        }

        private void Work()
        {
            try
            {
                var hasher = new LeafHasher(_importer, _multiBuffer);
                while (true)
                {
                    long index;
                    int slot;
                    Batch batch = default;
                    lock (_claim)
                    {
                        lock (_gate)
                        {
                            while (!_stopped && !_ended && _state[(int)(_nextClaim % _state.Length)] != Free)
                            {
                                _workersWaiting++;
                                Monitor.Wait(_gate);
                                _workersWaiting--;
                            }

                            if (_stopped || _ended)
                            {
                                return;
                            }

                            index = _nextClaim++;
                            slot = (int)(index % _state.Length);
                            _state[slot] = Filling;
                        }

                        if (!_source.Positional)
                        {
                            batch = ReadBatch(index, slot);
                        }
                    }

                    if (_source.Positional)
                    {
                        batch = ReadBatch(index, slot);
                    }

                    try
                    {
                        // An empty input is one empty chunk; an input that ends on a batch boundary has no empty last one.
                        _counts[slot] = batch.Length == 0 && index > 0 ? 0 : hasher.Hash(batch.Bytes, batch.Length, _leaves[slot]);
                    }
                    finally
                    {
                        batch.Release();
                    }

                    lock (_gate)
                    {
                        _last[slot] = batch.Length < _source.BatchBytes;
                        _state[slot] = Ready;
                        if (_consumerWaiting)
                        {
                            Monitor.PulseAll(_gate);
                        }
                    }
                }
            }
            catch (Exception ex)
            {
                // Not swallowed: the consumer rethrows it on the importing thread.
                lock (_gate)
                {
                    _failure ??= ExceptionDispatchInfo.Capture(ex);
                    _stopped = true;
                    Monitor.PulseAll(_gate);
                }
            }
        }

        private Batch ReadBatch(long index, int slot)
        {
            Batch batch;
            if (_source.Mapped)
            {
                batch = _source.MapBatch(index);
            }
            else
            {
                // Pinned (never moved), so hashing can read it through a pointer; allocated on first use only.
                var buffer = _buffers[slot] ??= GC.AllocateUninitializedArray<byte>(_source.BatchBytes, pinned: true);
                var length = _source.ReadBatch(index, buffer);
                batch = new Batch((byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer)), length, view: null);
            }

            if (batch.Length < _source.BatchBytes)
            {
                lock (_gate)
                {
                    _ended = true; // no worker claims a batch past the end
                    Monitor.PulseAll(_gate);
                }
            }

            return batch;
        }

        public void Dispose()
        {
            Stop();
            foreach (var worker in _workers)
            {
                worker.Join();
            }
        }
    }

    /// <summary>
    /// One worker's leaf builder: hashes the chunks of a batch where they lie (16 at once when every chunk is full and
    /// <paramref name="multiBuffer"/> is set, else one by one) and stores each leaf block.
    /// </summary>
    private sealed unsafe class LeafHasher(UnixFsImporter importer, bool multiBuffer)
    {
        private readonly byte[] _digests = new byte[Sha256x16.Lanes * Sha256x16.DigestSize];
        private byte[]? _block;
        private IncrementalHash? _incremental;

        /// <summary>Builds the leaves of the <paramref name="length"/> bytes at <paramref name="bytes"/>; returns their count.</summary>
        public int Hash(byte* bytes, int length, PreparedLeaf[] leaves)
        {
            var chunkSize = importer._options.ChunkSize;
            var full = length / chunkSize;
            var count = length == 0 ? 1 : (length + chunkSize - 1) / chunkSize;
            if (full == Sha256x16.Lanes && multiBuffer)
            {
                HashFullBatch(bytes, chunkSize, leaves);
                return count;
            }

            for (var i = 0; i < count; i++)
            {
                var chunk = new ReadOnlySpan<byte>(bytes + ((long)i * chunkSize), Math.Min(chunkSize, length - (i * chunkSize)));
                leaves[i] = HashOne(chunk);
            }

            return count;
        }

        private void HashFullBatch(byte* bytes, int chunkSize, PreparedLeaf[] leaves)
        {
            var raw = importer._options.UseRawLeaves;
            Span<byte> header = stackalloc byte[LeafHeaderRoom];
            Span<byte> trailer = stackalloc byte[LeafTrailerRoom];
            var headerLength = raw ? 0 : WriteLeafHeader(chunkSize, header);
            var trailerLength = raw ? 0 : UnixFsData.LeafTrailer(chunkSize, trailer);
            Sha256x16.Hash(header[..headerLength], bytes, chunkSize, chunkSize, trailer[..trailerLength], _digests);
            var blockLength = headerLength + chunkSize + trailerLength;
            for (var i = 0; i < Sha256x16.Lanes; i++)
            {
                var multihash = Multihash.FromSha256Digest(_digests.AsSpan(i * Sha256x16.DigestSize, Sha256x16.DigestSize));
                var cid = raw ? Cid.V1(Cid.RawCodec, multihash) : importer.DagPbCid(multihash);
                leaves[i] = new PreparedLeaf(cid, 0, blockLength, (ulong)chunkSize);
                if (importer._store.KeepsBlocks)
                {
                    var chunk = new ReadOnlySpan<byte>(bytes + ((long)i * chunkSize), chunkSize);
                    importer._store.Put(cid, raw ? chunk : Assemble(header[..headerLength], chunk, trailer[..trailerLength]));
                }
            }
        }

        private PreparedLeaf HashOne(ReadOnlySpan<byte> chunk)
        {
            if (importer._options.UseRawLeaves)
            {
                // ipfs-unixfs-importer buffer-importer: raw leaves are always CIDv1 with the raw codec.
                var rawCid = Cid.V1(Cid.RawCodec, Multihash.Sha256(chunk));
                importer._store.Put(rawCid, chunk);
                return new PreparedLeaf(rawCid, 0, chunk.Length, (ulong)chunk.Length);
            }

            Span<byte> header = stackalloc byte[LeafHeaderRoom];
            Span<byte> trailer = stackalloc byte[LeafTrailerRoom];
            header = header[..WriteLeafHeader(chunk.Length, header)];
            trailer = trailer[..UnixFsData.LeafTrailer(chunk.Length, trailer)];
            Cid cid;
            if (importer._store.KeepsBlocks)
            {
                var block = Assemble(header, chunk, trailer);
                cid = importer.DagPbCid(Multihash.Sha256(block));
                importer._store.Put(cid, block);
            }
            else
            {
                var incremental = _incremental ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                incremental.AppendData(header);
                incremental.AppendData(chunk);
                incremental.AppendData(trailer);
                Span<byte> digest = stackalloc byte[Sha256x16.DigestSize];
                incremental.GetHashAndReset(digest);
                cid = importer.DagPbCid(Multihash.FromSha256Digest(digest));
            }

            return new PreparedLeaf(cid, 0, header.Length + chunk.Length + trailer.Length, (ulong)chunk.Length);
        }

        /// <summary>A dag-pb leaf block in this worker's scratch buffer (valid until the next call).</summary>
        private ReadOnlySpan<byte> Assemble(ReadOnlySpan<byte> header, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> trailer)
        {
            var block = _block ??= new byte[LeafHeaderRoom + importer._options.ChunkSize + LeafTrailerRoom];
            header.CopyTo(block);
            chunk.CopyTo(block.AsSpan(header.Length));
            trailer.CopyTo(block.AsSpan(header.Length + chunk.Length));
            return block.AsSpan(0, header.Length + chunk.Length + trailer.Length);
        }
    }

    private delegate void LeafConsumer(in PreparedLeaf leaf);
}
