using Peerway.Content;
using Peerway.Core.Multiformats;
using Peerway.Node.Content;
using Peerway.TestSupport;

namespace Peerway.Node.Tests;

public sealed class PackFilesTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-packs");

    public void Dispose() => _temp.Dispose();

    private string PacksDirectory => Path.Combine(_temp.Path, "packs");

    private static (Cid Cid, byte[] Block) Block(int seed, int length = 1000)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return (Cid.V1(Cid.RawCodec, Multihash.Sha256(bytes)), bytes);
    }

    private static void Overwrite(string path, long offset, byte[] bytes)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        RandomAccess.Write(handle, bytes, offset);
    }

    [Fact]
    public void Blocks_are_appended_to_one_pack_and_read_back_verified_by_a_later_instance()
    {
        var store = new FileBlockStore(_temp.Path);
        var blocks = Enumerable.Range(0, 20).Select(i => Block(i, 100 + (i * 37))).ToList();
        foreach (var (cid, block) in blocks) store.Put(cid, block);
        store.Put(blocks[0].Cid, blocks[0].Block);

        Assert.Equal(["000001.pack"], Directory.GetFiles(PacksDirectory, "*.pack").Select(Path.GetFileName));
        Assert.Empty(Directory.GetFiles(Path.Combine(_temp.Path, "blocks"), "*", SearchOption.AllDirectories));
        var later = new FileBlockStore(_temp.Path);
        foreach (var (cid, block) in blocks)
        {
            Assert.True(later.Has(cid));
            Assert.Equal(ContentError.None, later.TryGet(cid, out var read));
            Assert.Equal(block, read);
        }

        // Stored once: the second Put of the same block appended nothing.
        var recordBytes = blocks.Sum(b => (long)PackRecord.HeaderLength(b.Cid.Multihash) + b.Block.Length);
        Assert.Equal(recordBytes, new FileInfo(Path.Combine(PacksDirectory, "000001.pack")).Length);
        Assert.Empty(later.Packs.Problems);
    }

    [Fact]
    public void Count_is_the_packed_blocks_including_those_another_instance_appended_since()
    {
        var store = new FileBlockStore(_temp.Path);
        Assert.Equal(0, store.Packs.Count);
        foreach (var i in Enumerable.Range(0, 5)) store.Put(Block(i).Cid, Block(i).Block);
        store.Put(Block(0).Cid, Block(0).Block); // stored once, counted once
        Assert.Equal(5, store.Packs.Count);

        var other = new FileBlockStore(_temp.Path);
        Assert.Equal(5, other.Packs.Count);
        foreach (var i in Enumerable.Range(5, 3)) other.Put(Block(i).Cid, Block(i).Block);
        Assert.Equal(8, store.Packs.Count);
    }

    [Fact]
    public void A_packed_block_changed_on_disk_is_a_hash_mismatch_for_an_instance_that_did_not_write_it()
    {
        var store = new FileBlockStore(_temp.Path);
        var (cid, block) = Block(1);
        store.Put(cid, block);
        var (pack, offset, length) = store.Packs.LocationOf(cid.Multihash)!.Value;
        Overwrite(pack, offset + (length / 2), [(byte)(block[length / 2] ^ 0xFF)]);

        Assert.Equal(ContentError.HashMismatch, new FileBlockStore(_temp.Path).TryGet(cid, out var bad));
        Assert.Null(bad);
    }

    [Fact]
    public void A_torn_tail_after_a_crash_loses_only_its_record_and_the_next_writer_cuts_it_off()
    {
        var blocks = Enumerable.Range(0, 3).Select(i => Block(10 + i)).ToList();
        var crashed = new FileBlockStore(_temp.Path);
        foreach (var (cid, block) in blocks) crashed.Put(cid, block);
        var pack = Path.Combine(PacksDirectory, "000001.pack");
        var whole = new FileInfo(pack).Length;
        // kill -9 in the middle of the last append: its header and part of its data reached the file.
        using (var handle = File.OpenHandle(pack, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            RandomAccess.SetLength(handle, whole - 400);
        }

        // The crashed process's lock went with it; a fresh instance stands for the next process.
        ReleaseLocks(crashed);
        var next = new FileBlockStore(_temp.Path);
        Assert.Equal(ContentError.None, next.TryGet(blocks[0].Cid, out _));
        Assert.Equal(ContentError.None, next.TryGet(blocks[1].Cid, out _));
        Assert.Equal(ContentError.NotFound, next.TryGet(blocks[2].Cid, out _));
        Assert.Empty(next.Packs.Problems);

        // It appends to the same pack, after the last whole record, and what is left of the torn one goes: a record
        // shorter than the torn tail must not be followed by its remains (a reader would find no record there).
        var (cid3, block3) = Block(13, 10);
        next.Put(cid3, block3);
        var between = new FileBlockStore(_temp.Path);
        Assert.Equal(ContentError.None, between.TryGet(cid3, out _));
        Assert.Empty(between.Packs.Problems);
        next.Put(blocks[2].Cid, blocks[2].Block);
        Assert.Equal(["000001.pack"], Directory.GetFiles(PacksDirectory, "*.pack").Select(Path.GetFileName));
        var reader = new FileBlockStore(_temp.Path);
        foreach (var (cid, block) in blocks.Append((cid3, block3)))
        {
            Assert.Equal(ContentError.None, reader.TryGet(cid, out var read));
            Assert.Equal(block, read);
        }

        Assert.Empty(reader.Packs.Problems);
        var records = blocks.Append((Cid: cid3, Block: block3)).Sum(b => (long)PackRecord.HeaderLength(b.Cid.Multihash) + b.Block.Length);
        Assert.Equal(records, new FileInfo(pack).Length);
    }

    [Fact]
    public void A_reader_sees_blocks_another_instance_appends_after_it_looked()
    {
        var writer = new FileBlockStore(_temp.Path);
        var (first, firstBlock) = Block(20);
        writer.Put(first, firstBlock);
        var reader = new FileBlockStore(_temp.Path);
        Assert.Equal(ContentError.None, reader.TryGet(first, out _));

        var (second, secondBlock) = Block(21);
        Assert.False(reader.Has(second));
        writer.Put(second, secondBlock);
        Assert.True(reader.Has(second));
        Assert.Equal(ContentError.None, reader.TryGet(second, out var read));
        Assert.Equal(secondBlock, read);

        // A second writer while the first holds its pack appends to a pack of its own; each sees the other's blocks.
        var (third, thirdBlock) = Block(22);
        reader.Put(third, thirdBlock);
        Assert.Equal(2, Directory.GetFiles(PacksDirectory, "*.pack").Length);
        Assert.Equal(ContentError.None, writer.TryGet(third, out var fromOther));
        Assert.Equal(thirdBlock, fromOther);
    }

    [Fact]
    public void A_corrupt_record_stops_its_pack_with_a_typed_error_and_is_never_appended_to()
    {
        var blocks = Enumerable.Range(0, 3).Select(i => Block(30 + i)).ToList();
        var store = new FileBlockStore(_temp.Path);
        foreach (var (cid, block) in blocks) store.Put(cid, block);
        ReleaseLocks(store);
        var pack = Path.Combine(PacksDirectory, "000001.pack");
        var second = PackRecord.HeaderLength(blocks[0].Cid.Multihash) + blocks[0].Block.Length;
        Overwrite(pack, second, "junk"u8.ToArray());

        var reader = new FileBlockStore(_temp.Path);
        Assert.Equal(ContentError.None, reader.TryGet(blocks[0].Cid, out _));
        Assert.Equal(ContentError.NotFound, reader.TryGet(blocks[1].Cid, out _));
        Assert.Equal(ContentError.NotFound, reader.TryGet(blocks[2].Cid, out _));
        Assert.Equal([new PackProblem(pack, second, PackRecordError.BadMagic)], reader.Packs.Problems);

        var length = new FileInfo(pack).Length;
        var (cid4, block4) = Block(34);
        reader.Put(cid4, block4);
        Assert.Equal(length, new FileInfo(pack).Length);
        Assert.Equal(ContentError.None, new FileBlockStore(_temp.Path).TryGet(cid4, out var read));
        Assert.Equal(block4, read);
    }

    [Fact]
    public void A_repository_of_files_per_block_stays_readable_and_takes_new_blocks_in_packs()
    {
        var (old, oldBlock) = Block(40);
        new FileBlockStore(_temp.Path, writePacks: false).Put(old, oldBlock);
        var store = new FileBlockStore(_temp.Path);
        Assert.True(store.Has(old));
        Assert.Equal(ContentError.None, store.TryGet(old, out var read));
        Assert.Equal(oldBlock, read);
        store.Put(old, oldBlock);
        Assert.False(Directory.Exists(PacksDirectory));

        var (young, youngBlock) = Block(41);
        store.Put(young, youngBlock);
        Assert.True(File.Exists(Path.Combine(PacksDirectory, "000001.pack")));
        Assert.False(File.Exists(store.PathOf(young)));
        Assert.Equal(ContentError.None, new FileBlockStore(_temp.Path).TryGet(young, out var readYoung));
        Assert.Equal(youngBlock, readYoung);
    }

    [Fact]
    public void A_block_larger_than_a_record_holds_gets_a_file_of_its_own()
    {
        var store = new FileBlockStore(_temp.Path);
        var (cid, block) = Block(50, PackRecord.MaxBlockBytes + 1);
        store.Put(cid, block);
        Assert.True(File.Exists(store.PathOf(cid)));
        Assert.Equal(ContentError.None, new FileBlockStore(_temp.Path).TryGet(cid, out var read));
        Assert.Equal(block, read);
    }

    /// <summary>What the kernel does when a process dies: its flocks go. Here the instance's lock file handle is closed.</summary>
    private static void ReleaseLocks(FileBlockStore store) => store.Packs.ReleaseWriterForTests();
}
