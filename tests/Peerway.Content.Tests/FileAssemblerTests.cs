using Peerway.Content.Blocks;
using Peerway.Content.DagPb;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;

namespace Peerway.Content.Tests;

/// <summary><see cref="UnixFsFileAssembler"/>: a file written as its blocks arrive (issue 19 item 8, `ipfs get`).</summary>
public sealed class FileAssemblerTests
{
    private static (Dictionary<Cid, byte[]> Blocks, Cid Root, byte[] Content) Sample(int version, int length = 50_000, bool zeros = false)
    {
        var store = new MemoryBlockStore();
        var content = new byte[length];
        if (!zeros) new Random(length + version).NextBytes(content);
        // 1,000-byte chunks, 4 links per node: 50 leaves under three levels of parents.
        var root = new UnixFsImporter(store, new ImportOptions { ChunkSize = 1000, MaxLinksPerNode = 4, CidVersion = version }).ImportBytes(content);
        var blocks = new Dictionary<Cid, byte[]>();
        var pending = new Stack<Cid>([root.Cid]);
        while (pending.TryPop(out var cid))
        {
            Assert.True(store.TryGet(cid, out var block) == ContentError.None);
            if (!blocks.TryAdd(cid, block!) || cid.Codec != Cid.DagPbCodec) continue;
            Assert.Equal(ContentError.None, DagPbCodec.TryDecode(block, out var node));
            foreach (var link in node!.Links) pending.Push(link.Hash);
        }

        return (blocks, root.Cid, content);
    }

    /// <summary>The output and how many times each byte of it was written.</summary>
    private sealed class Output(int length)
    {
        public byte[] Bytes { get; } = new byte[length];

        public int[] Writes { get; } = new int[length];

        public void Write(long offset, ReadOnlySpan<byte> data)
        {
            data.CopyTo(Bytes.AsSpan((int)offset));
            for (var i = 0; i < data.Length; i++) Writes[offset + i]++;
        }
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 2)]
    [InlineData(1, 3)]
    public void Writes_exactly_the_file_from_blocks_in_any_order_after_their_parents(int version, int seed)
    {
        var (blocks, root, content) = Sample(version);
        Assert.True(blocks.Count > 60); // leaves and three levels of parents
        var output = new Output(content.Length);
        var assembler = new UnixFsFileAssembler(root, output.Write);
        // Any block whose parent has arrived may come next (as Bitswap answers in any order).
        var ready = new List<Cid> { root };
        var random = new Random(seed);
        while (ready.Count > 0)
        {
            var i = random.Next(ready.Count);
            var cid = ready[i];
            ready.RemoveAt(i);
            Assert.False(assembler.IsComplete);
            assembler.Accept(cid, blocks[cid]);
            Assert.Equal(ContentError.None, assembler.Error);
            if (cid.Codec == Cid.DagPbCodec && DagPbCodec.TryDecode(blocks[cid], out var node) == ContentError.None)
            {
                ready.AddRange(node!.Links.Select(l => l.Hash));
            }
        }

        Assert.True(assembler.IsComplete);
        Assert.Equal((ulong)content.Length, assembler.Length);
        Assert.Equal(content, output.Bytes);
        Assert.All(output.Writes, n => Assert.Equal(1, n));
    }

    [Fact]
    public async Task Through_the_fetcher_the_file_is_complete_and_a_block_that_fails_its_cid_never_reaches_it()
    {
        var (blocks, root, content) = Sample(version: 1);
        var output = new Output(content.Length);
        var assembler = new UnixFsFileAssembler(root, output.Write);
        var fetched = await DagFetcher.FetchDagAsync(new Source(blocks), new MemoryBlockStore(), root, 8, assembler.Accept, CancellationToken.None);
        Assert.True(fetched.Ok, fetched.ToString());
        Assert.True(assembler.IsComplete);
        Assert.Equal(content, output.Bytes);

        // One leaf's bytes are wrong: the fetch stops there and the assembler never sees them (nor is it complete).
        var leaf = blocks.Keys.Last(c => c.Codec == Cid.RawCodec);
        var lying = blocks.ToDictionary(kv => kv.Key, kv => kv.Key.Equals(leaf) ? [.. kv.Value.Select(b => (byte)~b)] : kv.Value);
        var handed = new List<Cid>();
        var poisoned = new Output(content.Length);
        var second = new UnixFsFileAssembler(root, poisoned.Write);
        var refused = await DagFetcher.FetchDagAsync(new Source(lying), new MemoryBlockStore(), root, 8, (cid, block) =>
        {
            handed.Add(cid);
            second.Accept(cid, block);
        }, CancellationToken.None);
        Assert.Equal(ContentError.HashMismatch, refused.Error);
        Assert.Equal(leaf, refused.At);
        Assert.DoesNotContain(leaf, handed);
        Assert.False(second.IsComplete);
        var flipped = lying[leaf];
        Assert.False(poisoned.Bytes.AsSpan().IndexOf(flipped) >= 0);
    }

    [Fact]
    public async Task A_leaf_under_two_parents_leaves_it_incomplete_never_wrong()
    {
        // All-zero content: every leaf has one CID, under several parents; the fetcher hands it out once.
        var (blocks, root, content) = Sample(version: 1, zeros: true);
        var output = new Output(content.Length);
        var assembler = new UnixFsFileAssembler(root, output.Write);
        Assert.True((await DagFetcher.FetchDagAsync(new Source(blocks), new MemoryBlockStore(), root, 1, assembler.Accept, CancellationToken.None)).Ok);
        Assert.Equal(ContentError.None, assembler.Error);
        Assert.False(assembler.IsComplete); // the caller exports from the store instead
        Assert.All(output.Writes, n => Assert.True(n <= 1));
    }

    [Fact]
    public void A_directory_or_sizes_that_do_not_add_up_are_refused_and_nothing_is_written()
    {
        var store = new MemoryBlockStore();
        var importer = new UnixFsImporter(store, new ImportOptions { CidVersion = 1 });
        var file = importer.ImportBytes("hello"u8);
        var dir = importer.ImportDirectory([new DirectoryEntry("hello.txt", file)]);
        Assert.True(store.TryGet(dir.Cid, out var dirBlock) == ContentError.None);
        var writes = 0;
        var assembler = new UnixFsFileAssembler(dir.Cid, (_, _) => writes++);
        assembler.Accept(dir.Cid, dirBlock!);
        Assert.Equal(ContentError.InvalidUnixFs, assembler.Error);
        Assert.False(assembler.IsComplete);

        // A file node whose blocksizes say 6 bytes for a 5-byte leaf.
        var leaf = Cid.V1(Cid.RawCodec, Multihash.Sha256("hello"u8));
        var data = new UnixFsData { Type = UnixFsType.File, FileSize = 6, BlockSizes = [6] }.Encode();
        var parentBlock = DagPbCodec.Encode(new PbNode([new PbLink(leaf, "", 5)], data));
        var parent = Cid.V1(Cid.DagPbCodec, Multihash.Sha256(parentBlock));
        var sizes = new UnixFsFileAssembler(parent, (_, _) => writes++);
        sizes.Accept(parent, parentBlock);
        Assert.Equal(ContentError.None, sizes.Error);
        sizes.Accept(leaf, "hello"u8.ToArray());
        Assert.Equal(ContentError.InvalidUnixFs, sizes.Error);
        Assert.False(sizes.IsComplete);
        Assert.Equal(0, writes);
    }

    /// <summary>Answers after a yield or two, so that fetches in flight complete out of order.</summary>
    private sealed class Source(IReadOnlyDictionary<Cid, byte[]> blocks) : IBlockSource
    {
        public async Task<byte[]?> FetchAsync(Cid cid, CancellationToken cancellationToken)
        {
            for (var i = cid.GetHashCode() & 3; i > 0; i--) await Task.Yield();
            return blocks.TryGetValue(cid, out var b) ? b : null;
        }
    }
}
