using Peerway.Content.Blocks;
using Peerway.Content.Hashing;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;

namespace Peerway.Content.Tests;

/// <summary>
/// The importer's read/hash pipeline: positional reads of a file on several workers, ordered reads of a stream, and
/// the calling thread alone must all build the same DAG, and failures or cancellation must end the import (no hang).
/// </summary>
public sealed class ImportPipelineTests
{
    private const int Chunk = 100;

    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static ImportOptions Options(int parallelism, bool v1) =>
        new() { ChunkSize = Chunk, MaxLinksPerNode = 4, HashParallelism = parallelism, CidVersion = v1 ? 1 : 0 };

    private static async Task<byte[]> ExportAsync(IBlockStore store, Cid cid)
    {
        using var output = new MemoryStream();
        var result = await new UnixFsExporter(store).ExportFileAsync(cid, output, CancellationToken.None);
        Assert.True(result.Ok, result.ToString());
        return output.ToArray();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(Chunk - 1)]
    [InlineData(Chunk)]
    [InlineData(Chunk + 1)]
    [InlineData(5 * Chunk)]
    [InlineData((5 * Chunk) + 3)]
    [InlineData(97 * Chunk)]
    [InlineData((97 * Chunk) + 1)]
    public async Task A_file_read_by_parallel_workers_gives_the_same_dag_as_one_thread(int length)
    {
        var content = RandomBytes(length, length);
        var path = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(path, content);
            foreach (var v1 in new[] { false, true })
            {
                var referenceStore = new MemoryBlockStore();
                var reference = new UnixFsImporter(referenceStore, Options(1, v1)).ImportBytes(content);
                foreach (var parallelism in new[] { 2, 3, 8 })
                {
                    var store = new MemoryBlockStore();
                    using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
                    var fromFile = await new UnixFsImporter(store, Options(parallelism, v1)).ImportFileAsync(file, CancellationToken.None);
                    Assert.Equal(reference, fromFile);
                    Assert.Equal(content, await ExportAsync(store, fromFile.Cid));
                    Assert.Equal(referenceStore.Count, store.Count); // no stray block (e.g. an empty last read)

                    using var stream = new MemoryStream(content, writable: false);
#pragma warning disable VSTHRD103 // the synchronous ImportFile is what this checks, against the async reference
                    var fromStream = new UnixFsImporter(new MemoryBlockStore(), Options(parallelism, v1)).ImportFile(stream, CancellationToken.None);
#pragma warning restore VSTHRD103
                    Assert.Equal(reference, fromStream);
                }
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    private const int Batch = UnixFsImporter.BatchChunks * Chunk;

    /// <summary>Both ways of hashing full batches (issue 24), where this CPU runs them; Auto picks one of these.</summary>
    private static Sha256Path[] Sha256Paths => Sha256x16.IsSupported ? [Sha256Path.MultiBuffer, Sha256Path.Platform] : [Sha256Path.Platform];

    [Theory]
    [InlineData((4 * Chunk) + 1)] // the smallest file the workers import
    [InlineData(Batch - 1)]
    [InlineData(Batch)]
    [InlineData(Batch + 1)]
    [InlineData((2 * Batch) - Chunk)]
    [InlineData((2 * Batch) - 1)]
    [InlineData(2 * Batch)]
    [InlineData((2 * Batch) + Chunk)]
    [InlineData((17 * Batch) + (3 * Chunk) + 7)] // more batches than the ring has slots
    public async Task A_mapped_file_gives_the_same_dag_as_reads_a_stream_and_one_thread_around_batch_boundaries(int length)
    {
        var content = RandomBytes(length, length);
        var path = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(path, content);
            foreach (var v1 in new[] { false, true })
            {
                var reference = new UnixFsImporter(new MemoryBlockStore(), Options(1, v1)).ImportBytes(content);
                foreach (var (map, sha256) in new[] { true, false }.SelectMany(m => Sha256Paths.Select(p => (m, p))))
                {
                    // A keeping store (leaf blocks assembled and stored) and a discarding one (hashed without assembling).
                    var store = new MemoryBlockStore();
                    var options = Options(2, v1) with { MapFiles = map, Sha256 = sha256 };
                    Assert.Equal(reference, ImportPath(path, store, options));
                    Assert.Equal(content, await ExportAsync(store, reference.Cid));
                    Assert.Equal(reference, ImportPath(path, new NullBlockStore(), options));
                }

                using var stream = new MemoryStream(content, writable: false);
#pragma warning disable VSTHRD103 // the synchronous ImportFile is what this checks, against the async reference
                Assert.Equal(reference, new UnixFsImporter(new NullBlockStore(), Options(2, v1)).ImportFile(stream, CancellationToken.None));
#pragma warning restore VSTHRD103
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(0, 1)] // dag-pb leaves, CIDv0
    [InlineData(1, 1)] // raw leaves, CIDv1
    [InlineData(0, 3)]
    public async Task Full_size_chunks_hashed_sixteen_at_a_time_give_the_same_dag_as_one_thread(int cidVersion, int extraChunks)
    {
        // 262,144-byte chunks: a full batch goes through the 16-lane SHA-256 or 16 platform calls (forced each way),
        // the rest one by one; the reference is the calling thread alone, chunk by chunk with the platform's SHA-256.
        var content = RandomBytes((UnixFsImporter.BatchChunks + extraChunks) * ImportOptions.DefaultChunkSize + 5, cidVersion);
        var path = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(path, content);
            var referenceStore = new MemoryBlockStore();
            var reference = new UnixFsImporter(referenceStore, new ImportOptions { CidVersion = cidVersion, HashParallelism = 1 }).ImportBytes(content);
            foreach (var sha256 in Sha256Paths)
            {
                var options = new ImportOptions { CidVersion = cidVersion, HashParallelism = 2, Sha256 = sha256 };
                var store = new MemoryBlockStore();
                Assert.Equal(reference, ImportPath(path, store, options));
                Assert.Equal(referenceStore.Count, store.Count);
                Assert.Equal(content, await ExportAsync(store, reference.Cid));
                Assert.Equal(reference, ImportPath(path, new NullBlockStore(), options));
                Assert.Equal(reference, ImportPath(path, new NullBlockStore(), options with { MapFiles = false }));
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_mapped_file_cut_short_after_the_start_fails_with_an_error_instead_of_a_fault()
    {
        // The mapping was made for 3 batches; the file then loses its last two. Mapping batch 1 must fail with an
        // IOException (touching its pages would raise SIGBUS and end the process), and batch 0 still maps.
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, RandomBytes(3 * Batch, 12));
            using var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
            using var source = new UnixFsImporter.ChunkSource(input, Chunk, mapAbove: 0);
            Assert.True(source.Mapped);
            using (var writer = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
            {
                writer.SetLength(Batch + 1);
            }

            var first = source.MapBatch(0);
            try
            {
                Assert.Equal(Batch, first.Length);
            }
            finally
            {
                first.Release();
            }

            var error = Assert.Throws<IOException>(() => source.MapBatch(1));
            Assert.Contains("shrank", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task A_named_pipe_is_read_in_order_not_mapped()
    {
        // A FIFO is no regular file: FileStream cannot seek it, so it takes the ordered read path.
        var content = RandomBytes((3 * Batch) + 17, 11);
        var fifo = Path.Combine(Path.GetTempPath(), "peerway-test-" + Guid.NewGuid().ToString("N"));
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [fifo]))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        try
        {
            // Opening a FIFO blocks until the other end opens: the writer runs on its own task.
            var writer = Task.Run(async () =>
            {
                await using var output = new FileStream(fifo, FileMode.Open, FileAccess.Write);
                await output.WriteAsync(content);
            });
            await using var input = new FileStream(fifo, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
            Assert.False(input.CanSeek);
            var fromPipe = await new UnixFsImporter(new MemoryBlockStore(), Options(2, v1: false)).ImportFileAsync(input, CancellationToken.None);
            await writer;
            Assert.Equal(new UnixFsImporter(new MemoryBlockStore(), Options(1, v1: false)).ImportBytes(content), fromPipe);
        }
        finally
        {
            File.Delete(fifo);
        }
    }

    private static ImportResult ImportPath(string path, IBlockStore store, ImportOptions options)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        return new UnixFsImporter(store, options).ImportFile(file, CancellationToken.None);
    }

    [Fact]
    public void A_file_stream_is_imported_from_its_current_position()
    {
        var content = RandomBytes(50 * Batch, 7);
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, content);
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
            file.Position = 1234; // the mapped windows start mid-page
            var tail = new UnixFsImporter(new MemoryBlockStore(), Options(2, v1: true)).ImportFile(file, CancellationToken.None);
            var expected = new UnixFsImporter(new MemoryBlockStore(), Options(1, v1: true)).ImportBytes(content.AsSpan(1234));
            Assert.Equal(expected, tail);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void A_read_failure_ends_the_import_with_that_error(int parallelism)
    {
        using var stream = new FailingStream(failAfter: 40 * Chunk);
        var importer = new UnixFsImporter(new MemoryBlockStore(), Options(parallelism, v1: false));
        var error = Assert.Throws<IOException>(() => importer.ImportFile(stream, CancellationToken.None));
        Assert.Equal(FailingStream.Message, error.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Cancellation_ends_the_import(int parallelism)
    {
        using var cancel = new CancellationTokenSource();
        using var stream = new FailingStream(failAfter: long.MaxValue) { OnRead = count => { if (count == 30) cancel.Cancel(); } };
        var importer = new UnixFsImporter(new MemoryBlockStore(), Options(parallelism, v1: false));
        Assert.ThrowsAny<OperationCanceledException>(() => importer.ImportFile(stream, cancel.Token));
    }

    [Fact]
    public void A_blockstore_failure_ends_the_import_and_stops_the_workers()
    {
        const int leaves = 5_000;
        var store = new FailingStore(failOnPut: 25);
        using var stream = new MemoryStream(RandomBytes(leaves * Chunk, 3), writable: false);
        var importer = new UnixFsImporter(store, Options(3, v1: true));
        Assert.Throws<IOException>(() => importer.ImportFile(stream, CancellationToken.None));
        // The import returns only once every worker has stopped: nothing is stored after it, and the workers did not go
        // on to the end. (How many batches other workers finish before they see the failure depends on scheduling, so
        // the bound is the input, not a count of batches.)
        var afterImport = store.Puts;
        Assert.InRange(afterImport, 25, leaves - 1);
        var again = new FailingStore(failOnPut: int.MaxValue);
        stream.Position = 0;
        _ = new UnixFsImporter(again, Options(3, v1: true)).ImportFile(stream, CancellationToken.None);
        Assert.Equal(afterImport, store.Puts);
    }

    /// <summary>Deterministic bytes, failing with an IOException once <c>failAfter</c> bytes have been read.</summary>
    private sealed class FailingStream(long failAfter) : Stream
    {
        public const string Message = "disk on fire";
        private long _position;
        private int _reads;

        public Action<int>? OnRead { get; init; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            OnRead?.Invoke(++_reads);
            if (_position >= failAfter)
            {
                throw new IOException(Message);
            }

            buffer.Fill((byte)_position);
            _position += buffer.Length;
            return buffer.Length;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private sealed class FailingStore(int failOnPut) : IBlockStore
    {
        private int _puts;

        public int Puts => Volatile.Read(ref _puts);

        public bool Has(Cid cid) => false;

        public ContentError TryGet(Cid cid, out byte[]? block)
        {
            block = null;
            return ContentError.NotFound;
        }

        public void Put(Cid cid, ReadOnlySpan<byte> block)
        {
            if (Interlocked.Increment(ref _puts) == failOnPut)
            {
                throw new IOException("no space left on device");
            }
        }
    }
}
