using Peerway.Content;
using Peerway.Content.Blocks;
using Peerway.Content.DagPb;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;
using Peerway.Node.Content;
using Peerway.TestSupport;

namespace Peerway.Node.Tests;

/// <summary>`peerway fetch` of a directory: the tree is recreated from verified blocks, and names from the network
/// can never write outside the destination.</summary>
public sealed class UnixFsTreeWriterTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-tree");

    public void Dispose() => _temp.Dispose();

    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Imports a directory tree described as relative path → content (null = empty directory).</summary>
    private static ImportResult ImportTree(UnixFsImporter importer, IReadOnlyDictionary<string, byte[]?> tree, string prefix = "")
    {
        var entries = new List<DirectoryEntry>();
        var children = tree.Keys
            .Where(k => k.StartsWith(prefix, StringComparison.Ordinal))
            .Select(k => k[prefix.Length..].Split('/')[0])
            .Distinct(StringComparer.Ordinal);
        foreach (var name in children)
        {
            var key = prefix + name;
            entries.Add(tree.TryGetValue(key, out var content) && content is not null
                ? new DirectoryEntry(name, importer.ImportBytes(content))
                : new DirectoryEntry(name, ImportTree(importer, tree, key + "/")));
        }

        return importer.ImportDirectory(entries);
    }

    private static Cid PutDirectory(MemoryBlockStore store, params PbLink[] links)
    {
        var block = DagPbCodec.Encode(new PbNode(links, new UnixFsData { Type = UnixFsType.Directory }.Encode()));
        var cid = Cid.V0(Multihash.Sha256(block));
        store.Put(cid, block);
        return cid;
    }

    [Fact]
    public async Task A_nested_tree_with_a_hamt_directory_is_recreated_byte_for_byte()
    {
        var store = new MemoryBlockStore();
        // A small shard threshold makes "many" a HAMT directory without thousands of entries.
        var importer = new UnixFsImporter(store, new ImportOptions { ChunkSize = 1000, ShardSplitThresholdBytes = 2000 });
        var tree = new Dictionary<string, byte[]?>(StringComparer.Ordinal)
        {
            ["a.txt"] = "hello\n"u8.ToArray(),
            ["ünïcödé 名前.bin"] = RandomBytes(5_500, 1),
            ["sub/deeper/zero"] = [],
            ["sub/big"] = RandomBytes(12_345, 2),
            ["empty"] = null,
        };
        for (var i = 0; i < 200; i++)
        {
            tree[$"many/entry-{i:D3}"] = RandomBytes(i, i);
        }

        var root = ImportTree(importer, tree);
        var destination = Path.Combine(_temp.Path, "out");
        var result = await UnixFsTreeWriter.WriteAsync(store, root.Cid, destination, CancellationToken.None);

        Assert.True(result.Ok, $"{result.Error} at {result.Path}");
        Assert.Equal(tree.Count(kv => kv.Value is not null), result.Files);
        Assert.Equal(1 + 4, result.Directories); // root, sub, sub/deeper, empty, many
        foreach (var (path, content) in tree)
        {
            var full = Path.Combine(destination, path);
            if (content is null)
            {
                Assert.True(Directory.Exists(full), path);
                Assert.Empty(Directory.EnumerateFileSystemEntries(full));
            }
            else
            {
                Assert.Equal(content, await File.ReadAllBytesAsync(full));
            }
        }

        Assert.Equal(["out"], Directory.GetFileSystemEntries(_temp.Path).Select(Path.GetFileName)); // no temporary left
    }

    [Theory]
    [InlineData("..")]
    [InlineData(".")]
    [InlineData("")]
    [InlineData("a/b")]
    [InlineData("/etc")]
    [InlineData("nul\0byte")]
    public async Task An_unsafe_name_from_the_network_is_refused_and_nothing_is_written(string name)
    {
        var store = new MemoryBlockStore();
        var file = new UnixFsImporter(store, new ImportOptions()).ImportBytes("payload"u8);
        var inner = PutDirectory(store, new PbLink(file.Cid, name, file.Tsize));
        var root = PutDirectory(store, new PbLink(file.Cid, "fine", file.Tsize), new PbLink(inner, "inner", 100));
        var destination = Path.Combine(_temp.Path, "out");

        var result = await UnixFsTreeWriter.WriteAsync(store, root, destination, CancellationToken.None);

        Assert.Equal(ContentError.UnsafeName, result.Error);
        Assert.Empty(Directory.GetFileSystemEntries(_temp.Path));
    }

    [Fact]
    public async Task A_name_repeated_in_a_directory_is_refused()
    {
        var store = new MemoryBlockStore();
        var importer = new UnixFsImporter(store, new ImportOptions());
        var a = importer.ImportBytes("a"u8);
        var b = importer.ImportBytes("b"u8);
        var root = PutDirectory(store, new PbLink(a.Cid, "same", a.Tsize), new PbLink(b.Cid, "same", b.Tsize));

        var result = await UnixFsTreeWriter.WriteAsync(store, root, Path.Combine(_temp.Path, "out"), CancellationToken.None);

        Assert.Equal(ContentError.UnsafeName, result.Error);
        Assert.Empty(Directory.GetFileSystemEntries(_temp.Path));
    }

    [Fact]
    public async Task An_unsafe_name_inside_a_hamt_shard_is_refused()
    {
        var store = new MemoryBlockStore();
        var file = new UnixFsImporter(store, new ImportOptions()).ImportBytes("x"u8);
        // A HAMT shard whose slot-label link carries the name "..": "3A" + "..".
        var data = new UnixFsData { Type = UnixFsType.HamtShard, Data = new byte[] { 1 }, HashType = 0x22, Fanout = 256 }.Encode();
        var block = DagPbCodec.Encode(new PbNode([new PbLink(file.Cid, "3A..", file.Tsize)], data));
        var root = Cid.V0(Multihash.Sha256(block));
        store.Put(root, block);

        var result = await UnixFsTreeWriter.WriteAsync(store, root, Path.Combine(_temp.Path, "out"), CancellationToken.None);

        Assert.Equal(ContentError.UnsafeName, result.Error);
        Assert.Empty(Directory.GetFileSystemEntries(_temp.Path));
    }

    [Fact]
    public async Task A_corrupt_block_fails_without_leaving_a_partial_tree()
    {
        var store = new FileBlockStore(Path.Combine(_temp.Path, "repo"));
        var importer = new UnixFsImporter(store, new ImportOptions { ChunkSize = 100 });
        var good = importer.ImportBytes(RandomBytes(1000, 5));
        var bad = importer.ImportBytes(RandomBytes(1000, 6));
        var root = importer.ImportDirectory([new DirectoryEntry("good", good), new DirectoryEntry("bad", bad)]);
        Assert.Equal(ContentError.None, new UnixFsExporter(store).TryLoad(bad.Cid, out var node));
        var victim = node!.Pb!.Links[4].Hash;
        // Overwrite the block's bytes where its pack holds them.
        var (pack, offset, length) = store.Packs.LocationOf(victim.Multihash)!.Value;
        using (var handle = File.OpenHandle(pack, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            await RandomAccess.WriteAsync(handle, RandomBytes(length, 7), offset);
        }

        // A later run reads the repository (the instance that wrote a block trusts its own writes).
        store = new FileBlockStore(Path.Combine(_temp.Path, "repo"));

        var result = await UnixFsTreeWriter.WriteAsync(store, root.Cid, Path.Combine(_temp.Path, "out"), CancellationToken.None);

        Assert.Equal(ContentError.HashMismatch, result.Error);
        Assert.Equal(victim, result.At);
        Assert.Equal("/bad", result.Path![^4..]);
        Assert.Equal(["repo"], Directory.GetFileSystemEntries(_temp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_file_root_is_written_as_a_file_and_an_existing_directory_is_never_merged()
    {
        var store = new MemoryBlockStore();
        var importer = new UnixFsImporter(store, new ImportOptions());
        var content = RandomBytes(300_000, 9);
        var file = importer.ImportBytes(content);
        var target = Path.Combine(_temp.Path, "file.bin");
        var result = await UnixFsTreeWriter.WriteAsync(store, file.Cid, target, CancellationToken.None);
        Assert.True(result.Ok);
        Assert.Equal(content, await File.ReadAllBytesAsync(target));

        var dir = importer.ImportDirectory([new DirectoryEntry("f", file)]);
        var existing = Directory.CreateDirectory(Path.Combine(_temp.Path, "existing")).FullName;
        await Assert.ThrowsAsync<Peerway.Core.IO.OutputConflictException>(() => UnixFsTreeWriter.WriteAsync(store, dir.Cid, existing, CancellationToken.None));
        Assert.Empty(Directory.GetFileSystemEntries(existing));
    }

    [Fact]
    public async Task Symbolic_links_are_reported_not_created()
    {
        var store = new MemoryBlockStore();
        var link = DagPbCodec.Encode(new PbNode([], new UnixFsData { Type = UnixFsType.Symlink, Data = "/etc/passwd"u8.ToArray() }.Encode()));
        var linkCid = Cid.V0(Multihash.Sha256(link));
        store.Put(linkCid, link);
        var root = PutDirectory(store, new PbLink(linkCid, "passwd", (ulong)link.Length));

        var result = await UnixFsTreeWriter.WriteAsync(store, root, Path.Combine(_temp.Path, "out"), CancellationToken.None);

        Assert.True(result.Ok);
        Assert.Equal([Path.Combine(_temp.Path, "out") + "/passwd"], result.SkippedSymlinks);
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(_temp.Path, "out")));
    }
}
