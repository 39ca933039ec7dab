using System.Buffers;
using System.Runtime.ExceptionServices;
using Microsoft.Win32.SafeHandles;

namespace Peerway.Content.UnixFs;

public sealed partial class UnixFsImporter
{
    /// <summary>
    /// Where chunks come from: positional reads of a file (any worker reads any chunk, no shared position), or a
    /// stream read in order. Every chunk is exactly ChunkSize bytes except the last (ipfs-unixfs-importer fixed-size
    /// chunker), so a read shorter than ChunkSize ends the input.
    /// </summary>
    private sealed class ChunkSource
    {
        private readonly Stream? _stream;
        private readonly SafeFileHandle? _file;
        private readonly long _start;

        public ChunkSource(Stream content, int chunkSize)
        {
            ChunkSize = chunkSize;
            if (content is FileStream { CanSeek: true } file)
            {
                _file = file.SafeFileHandle;
                _start = file.Position;
                Remaining = Math.Max(0, RandomAccess.GetLength(_file) - _start);
            }
            else
            {
                _stream = content;
                Remaining = content.CanSeek ? Math.Max(0, content.Length - content.Position) : -1;
            }
        }

        public int ChunkSize { get; }

        /// <summary>Any worker may read any chunk, concurrently (a file); otherwise chunks are read in order, one at a time.</summary>
        public bool Positional => _file is not null;

        /// <summary>Bytes left when the import starts, or -1 when unknown (not seekable); only a hint (a file may change).</summary>
        public long Remaining { get; }

        /// <summary>Reads chunk <paramref name="index"/>; fewer than ChunkSize bytes only at the end of the input.</summary>
        public int Read(long index, Span<byte> destination)
        {
            if (_file is null)
            {
                return _stream!.ReadAtLeast(destination, destination.Length, throwOnEndOfStream: false);
            }

            var position = _start + (index * ChunkSize);
            var total = 0;
            while (total < destination.Length)
            {
                var read = RandomAccess.Read(_file, destination[total..], position + total);
                if (read == 0)
                {
                    break;
                }

                total += read;
            }

            return total;
        }
    }

    /// <summary>
    /// Reads, hashes and stores leaves on <see cref="ImportOptions.HashParallelism"/> worker threads while the calling
    /// thread links them, in file order, into the balanced DAG. A ring of chunk buffers bounds memory
    /// (<see cref="SlotsPerWorker"/> chunks per worker, whatever the file size); a worker waits for its slot to be
    /// consumed, the consumer waits for the next leaf in order.
    /// </summary>
    private sealed class LeafPipeline : IDisposable
    {
        private const int SlotsPerWorker = 3;
        private const int Free = 0;
        private const int Filling = 1;
        private const int Ready = 2;

        private readonly UnixFsImporter _importer;
        private readonly ChunkSource _source;
        private readonly byte[][] _buffers;
        private readonly PreparedLeaf[] _leaves;
        private readonly int[] _state;
        private readonly Thread[] _workers;
        private readonly Lock _claim = new();
        // A monitor (not a Lock): the consumer and the workers wait on it for slot changes.
        private readonly object _gate = new();
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
            for (var i = 0; i < slots; i++)
            {
                _buffers[i] = ArrayPool<byte>.Shared.Rent(LeafHeaderRoom + source.ChunkSize + LeafTrailerRoom);
            }

            _leaves = new PreparedLeaf[slots];
            _state = new int[slots];
            _workers = new Thread[workers];
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
                var slot = (int)(index % _buffers.Length);
                PreparedLeaf leaf;
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
                    leaf = _leaves[slot];
                }

                // An input that ends on a chunk boundary leaves an empty last read: not a chunk (except a file's first).
                if (leaf.ContentSize == 0 && index > 0)
                {
                    return;
                }

                consume(leaf);
                lock (_gate)
                {
                    _state[slot] = Free;
                    if (_workersWaiting > 0)
                    {
                        Monitor.PulseAll(_gate);
                    }
                }

                if (leaf.ContentSize < (ulong)_source.ChunkSize)
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
                while (true)
                {
                    long index;
                    int slot;
                    var length = -1;
                    lock (_claim)
                    {
                        lock (_gate)
                        {
                            while (!_stopped && !_ended && _state[(int)(_nextClaim % _buffers.Length)] != Free)
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
                            slot = (int)(index % _buffers.Length);
                            _state[slot] = Filling;
                        }

                        if (!_source.Positional)
                        {
                            length = ReadChunk(index, slot);
                        }
                    }

                    if (_source.Positional)
                    {
                        length = ReadChunk(index, slot);
                    }

                    // The empty read after an input that ends on a chunk boundary is no chunk: not stored (the consumer drops it).
                    var leaf = length == 0 && index > 0 ? default : _importer.StoreLeaf(_buffers[slot], length);
                    lock (_gate)
                    {
                        _leaves[slot] = leaf;
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

        private int ReadChunk(long index, int slot)
        {
            var length = _source.Read(index, _buffers[slot].AsSpan(LeafHeaderRoom, _source.ChunkSize));
            if (length < _source.ChunkSize)
            {
                lock (_gate)
                {
                    _ended = true; // no worker claims a chunk past the end
                    Monitor.PulseAll(_gate);
                }
            }

            return length;
        }

        public void Dispose()
        {
            Stop();
            foreach (var worker in _workers)
            {
                worker.Join();
            }

            foreach (var buffer in _buffers)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private delegate void LeafConsumer(in PreparedLeaf leaf);
}
