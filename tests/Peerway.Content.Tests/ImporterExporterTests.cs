using FsCheck.Xunit;
using Peerway.Content.Blocks;
using Peerway.Content.DagPb;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;

namespace Peerway.Content.Tests;

[Collection(nameof(AllocationSensitive))]
public sealed class ImporterExporterTests
{
    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static async Task<byte[]> ExportAsync(IBlockStore store, Cid cid)
    {
        using var output = new MemoryStream();
        var result = await new UnixFsExporter(store).ExportFileAsync(cid, output, CancellationToken.None);
        Assert.True(result.Ok, result.ToString());
        return output.ToArray();
    }

    [Fact]
    public void A_single_chunk_file_is_its_own_root()
    {
        var store = new MemoryBlockStore();
        var content = RandomBytes(1000, 1);
        var v0 = new UnixFsImporter(store, new ImportOptions()).ImportBytes(content);
        var v1 = new UnixFsImporter(store, new ImportOptions { CidVersion = 1 }).ImportBytes(content);
        Assert.Equal(0, v0.Cid.Version);
        Assert.Equal(Cid.RawCodec, v1.Cid.Codec);
        Assert.Equal(Multihash.Sha256(content), v1.Cid.Multihash); // a raw leaf is the bytes themselves
        Assert.Equal(2, store.Count);
    }

    [Fact]
    public void One_chunk_past_a_full_node_gives_a_root_with_two_links()
    {
        var store = new MemoryBlockStore();
        var options = new ImportOptions { ChunkSize = 16, CidVersion = 1 };
        var content = RandomBytes((16 * 174) + 1, 2);
        var root = new UnixFsImporter(store, options).ImportBytes(content);
        Assert.Equal(ContentError.None, new UnixFsExporter(store).TryLoad(root.Cid, out var node));
        Assert.Equal(2, node!.Pb!.Links.Count);
        Assert.Equal(new ulong[] { 16 * 174, 1 }, node.Data!.BlockSizes);
        Assert.Equal((ulong)content.Length, node.Data.FileSize);
        Assert.Equal((ulong)content.Length, root.ContentSize);
    }

    [Fact]
    public void One_chunk_past_a_full_three_level_tree_hangs_under_a_new_root_through_a_chain()
    {
        // Balanced layout (boxo balanced.Layout / fillNodeRec; ipfs-unixfs-importer balanced()): when a tree of depth
        // d is full, a new root takes it as first child and the next chunk descends through single-link parents so
        // that every leaf is at the same depth. Fanout 3, 1-byte chunks: 27 chunks fill a tree of three levels of
        // parents; the 28th gives root → [full (27 bytes), P → P → P → leaf].
        var store = new MemoryBlockStore();
        var content = RandomBytes(28, 8);
        var root = new UnixFsImporter(store, new ImportOptions { ChunkSize = 1, MaxLinksPerNode = 3, CidVersion = 1 }).ImportBytes(content);
        var exporter = new UnixFsExporter(store);
        Assert.Equal(ContentError.None, exporter.TryLoad(root.Cid, out var node));
        Assert.Equal(new ulong[] { 27, 1 }, node!.Data!.BlockSizes);
        Assert.Equal(28UL, node.Data.FileSize);
        Assert.Equal(ContentError.None, exporter.TryLoad(node.Pb!.Links[0].Hash, out var full));
        Assert.Equal(new ulong[] { 9, 9, 9 }, full!.Data!.BlockSizes);
        var chain = node.Pb.Links[1].Hash;
        for (var depth = 0; depth < 3; depth++)
        {
            Assert.Equal(ContentError.None, exporter.TryLoad(chain, out var link));
            Assert.Single(link!.Pb!.Links);
            Assert.Equal(new ulong[] { 1 }, link.Data!.BlockSizes);
            chain = link.Pb.Links[0].Hash;
        }

        Assert.Equal(Cid.RawCodec, chain.Codec);
        Assert.Equal(Multihash.Sha256(content.AsSpan(27)), chain.Multihash);
    }

    [Fact]
    public void The_dag_does_not_depend_on_hash_parallelism()
    {
        var content = RandomBytes(100_000, 9);
        var serial = new UnixFsImporter(new MemoryBlockStore(), new ImportOptions { ChunkSize = 1000, HashParallelism = 1 }).ImportBytes(content);
        var parallel = new UnixFsImporter(new MemoryBlockStore(), new ImportOptions { ChunkSize = 1000, HashParallelism = 7 }).ImportBytes(content);
        Assert.Equal(serial, parallel);
    }

    [Fact]
    public void Exactly_a_full_node_is_a_single_parent()
    {
        var store = new MemoryBlockStore();
        var root = new UnixFsImporter(store, new ImportOptions { ChunkSize = 8 }).ImportBytes(RandomBytes(8 * 174, 3));
        Assert.Equal(ContentError.None, new UnixFsExporter(store).TryLoad(root.Cid, out var node));
        Assert.Equal(174, node!.Pb!.Links.Count);
    }

    [Property(MaxTest = 60)]
    public bool Import_then_export_round_trips(ushort length, byte chunk, byte fanout, bool v1, bool raw)
    {
        var store = new MemoryBlockStore();
        var options = new ImportOptions
        {
            ChunkSize = 1 + (chunk % 64),
            MaxLinksPerNode = 2 + (fanout % 6),
            CidVersion = v1 ? 1 : 0,
            RawLeaves = raw,
        };
        var content = RandomBytes(length % 5000, length);
        var root = new UnixFsImporter(store, options).ImportBytes(content);
#pragma warning disable VSTHRD002 // an FsCheck property is synchronous; the work runs on a memory store
        return ExportAsync(store, root.Cid).GetAwaiter().GetResult().AsSpan().SequenceEqual(content)
            && root.ContentSize == (ulong)content.Length;
#pragma warning restore VSTHRD002
    }

    [Fact]
    [Trait("Category", "Allocation")]
    public async Task Importing_256_MiB_allocates_a_bounded_amount()
    {
        // Streaming: memory is a few batches of chunks plus 174 pending links per level, whatever the size. 256 MiB through a
        // generated stream must allocate far less than the content (CIDs and link lists only).
        // Reads run on pool threads, so all threads' allocations are counted; this class runs alone (collection below).
        var options = new ImportOptions();
        var importer = new UnixFsImporter(new NullBlockStore(), options);
        // The read buffers: one batch of chunks per pipeline slot, allocated once.
        var buffers = (long)options.HashParallelism * UnixFsImporter.PipelineSlotsPerWorker * UnixFsImporter.BatchChunks * options.ChunkSize;
        using var stream = new GeneratedStream(256L * 1024 * 1024);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var root = await importer.ImportFileAsync(stream, CancellationToken.None);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.Equal(256UL * 1024 * 1024, root.ContentSize);
        Assert.True(allocated < buffers + (4L * 1024 * 1024), $"allocated {allocated} bytes for 256 MiB ({buffers} of them read buffers)");
    }

    [Fact]
    public async Task A_corrupted_block_is_detected_on_export()
    {
        var store = new MemoryBlockStore();
        var root = new UnixFsImporter(store, new ImportOptions { ChunkSize = 100, CidVersion = 1 }).ImportBytes(RandomBytes(1000, 4));
        Assert.Equal(ContentError.None, new UnixFsExporter(store).TryLoad(root.Cid, out var node));
        var leaf = node!.Pb!.Links[3].Hash;
        store.Corrupt(leaf, RandomBytes(100, 5));
        using var output = new MemoryStream();
        var result = await new UnixFsExporter(store).ExportFileAsync(root.Cid, output, CancellationToken.None);
        Assert.Equal(ContentError.HashMismatch, result.Error);
        Assert.Equal(leaf, result.At);
    }

    [Fact]
    public async Task Missing_blocks_and_inconsistent_sizes_are_typed_errors()
    {
        var store = new MemoryBlockStore();
        using var output = new MemoryStream();
        var missing = Cid.V1(Cid.RawCodec, Multihash.Sha256("absent"u8));
        Assert.Equal(ContentError.NotFound, (await new UnixFsExporter(store).ExportFileAsync(missing, output, CancellationToken.None)).Error);

        // A parent whose blocksizes disagree with its child's length.
        var leaf = Cid.V1(Cid.RawCodec, Multihash.Sha256("abc"u8));
        store.Put(leaf, "abc"u8);
        var lying = DagPbCodec.Encode(new PbNode(
            [new PbLink(leaf, string.Empty, 3)],
            new UnixFsData { Type = UnixFsType.File, FileSize = 4, BlockSizes = [4] }.Encode()));
        var parent = Cid.V1(Cid.DagPbCodec, Multihash.Sha256(lying));
        store.Put(parent, lying);
        Assert.Equal(ContentError.InvalidUnixFs, (await new UnixFsExporter(store).ExportFileAsync(parent, output, CancellationToken.None)).Error);
    }

    [Fact]
    public void Directories_sort_links_by_name_bytes_and_resolve_paths()
    {
        var store = new MemoryBlockStore();
        var importer = new UnixFsImporter(store, new ImportOptions());
        var a = importer.ImportBytes("a"u8);
        var b = importer.ImportBytes("b"u8);
        var dir = importer.ImportDirectory([new DirectoryEntry("zeta", a), new DirectoryEntry("Zeta", b), new DirectoryEntry("ze", a)]);
        var exporter = new UnixFsExporter(store);
        Assert.Equal(ContentError.None, exporter.TryLoad(dir.Cid, out var node));
        Assert.Equal(["Zeta", "ze", "zeta"], node!.Pb!.Links.Select(l => l.Name!));
        Assert.Equal(ContentError.None, exporter.TryResolvePath(dir.Cid, ["Zeta"], out var found));
        Assert.Equal(b.Cid, found);
        Assert.Equal(ContentError.NotFound, exporter.TryResolvePath(dir.Cid, ["nope"], out _));
        Assert.Throws<ArgumentException>(() => importer.ImportDirectory([new DirectoryEntry("x", a), new DirectoryEntry("x", b)]));
        Assert.Throws<ArgumentException>(() => importer.ImportDirectory([new DirectoryEntry("a/b", a)]));
    }

    [Fact]
    public void Hamt_directories_resolve_every_name()
    {
        var store = new MemoryBlockStore();
        var importer = new UnixFsImporter(store, new ImportOptions { ShardSplitThresholdBytes = 1000 });
        var entries = Enumerable.Range(0, 3000)
            .Select(i => new DirectoryEntry($"file-{i}", importer.ImportBytes(BitConverter.GetBytes(i))))
            .ToList();
        var dir = importer.ImportDirectory(entries);
        var exporter = new UnixFsExporter(store);
        Assert.Equal(ContentError.None, exporter.TryLoad(dir.Cid, out var root));
        Assert.Equal(UnixFsType.HamtShard, root!.Data!.Type);
        foreach (var entry in entries)
        {
            Assert.Equal(ContentError.None, exporter.TryResolvePath(dir.Cid, [entry.Name], out var cid));
            Assert.Equal(entry.Child.Cid, cid);
        }

        Assert.Equal(ContentError.NotFound, exporter.TryResolvePath(dir.Cid, ["file-3000"], out _));

        // Listing walks every shard: each entry once, under its own name (not the shard's "XXname" label).
        Assert.Equal(ContentError.None, exporter.TryListDirectory(root, out var listed));
        Assert.Equal(
            entries.Select(e => (e.Name, e.Child.Cid)).OrderBy(e => e.Name, StringComparer.Ordinal),
            listed!.Select(e => (e.Name, e.Cid)).OrderBy(e => e.Name, StringComparer.Ordinal));
    }

    [Theory]
    [InlineData(27, UnixFsType.Directory)] // 27 × (3 + 34) = 999 link bytes: at the threshold stays flat ("> not >=")
    [InlineData(28, UnixFsType.HamtShard)] // 1,036 > 999
    public void Every_link_counts_towards_the_shard_threshold_sub_directories_included(int count, UnixFsType expected)
    {
        // kubo (boxo BasicDirectory, SizeEstimationLinks): len(name) + len(CID) per link, whatever the child is.
        var store = new MemoryBlockStore();
        var importer = new UnixFsImporter(store, new ImportOptions { ShardSplitThresholdBytes = 999 });
        var file = importer.ImportBytes("x"u8);
        var entries = Enumerable.Range(0, count)
            .Select(i => new DirectoryEntry($"d{i:D2}", importer.ImportDirectory([new DirectoryEntry("f", file)])))
            .ToList();
        var dir = importer.ImportDirectory(entries);
        Assert.Equal(ContentError.None, new UnixFsExporter(store).TryLoad(dir.Cid, out var node));
        Assert.Equal(expected, node!.Data!.Type);
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImportOptions { CidVersion = 2 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImportOptions { ChunkSize = 0 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImportOptions { ChunkSize = ImportOptions.MaxChunkSize + 1 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImportOptions { MaxLinksPerNode = 1 }.Validate());
        Assert.True(new ImportOptions { CidVersion = 1 }.UseRawLeaves);
        Assert.False(new ImportOptions().UseRawLeaves);
    }

    /// <summary>A read-only stream of deterministic bytes that stores nothing.</summary>
    private sealed class GeneratedStream(long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, length - _position);
            for (var i = 0; i < n; i++)
            {
                buffer[i] = (byte)((_position + i) * 2654435761L >> 13);
            }

            _position += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>Tests measuring process-wide allocations run without other test classes in parallel.</summary>
[CollectionDefinition(nameof(AllocationSensitive), DisableParallelization = true)]
public sealed class AllocationSensitive;
