using Peerway.Content;
using Peerway.Content.DagPb;
using Peerway.Content.UnixFs;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Content;

/// <summary>
/// `peerway fetch DIR-CID -o PATH` recreates a directory tree that ipfs-unixfs-importer built (nested, empty, unicode
/// names, a HAMT-sharded directory), every block verified on the way from `peerway gateway`.
/// </summary>
public sealed class DirectoryFetchInteropTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-dirfetch");

    public void Dispose() => _temp.Dispose();

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task A_directory_tree_imported_by_ipfs_unixfs_importer_is_fetched_and_recreated()
    {
        ContentPeers.Require();
        var source = Path.Combine(_temp.Path, "tree");
        Directory.CreateDirectory(Path.Combine(source, "sub", "deeper"));
        Directory.CreateDirectory(Path.Combine(source, "empty"));
        ContentPeers.WriteRandomFile(source, "a.bin", 10, 1);
        ContentPeers.WriteRandomFile(source, "ünïcode näme 名前.txt", 33, 3);
        ContentPeers.WriteRandomFile(Path.Combine(source, "sub"), "big.bin", (3 * 262_144) + 5, 2);
        ContentPeers.WriteRandomFile(Path.Combine(source, "sub", "deeper"), "zero", 0, 4);
        // 5,300 entries exceed the 262,144-byte links-bytes estimate: a HAMT-sharded directory.
        var sharded = Directory.CreateDirectory(Path.Combine(source, "sharded")).FullName;
        for (var i = 0; i < 5_300; i++)
        {
            await File.WriteAllTextAsync(Path.Combine(sharded, $"entry-{i:D6}.txt"), $"entry {i}\n");
        }

        var car = Path.Combine(_temp.Path, "tree.car");
        var cid = await ContentPeers.RunAsync("car-write.mjs", source, car, "--cid-version", "1");
        var served = Path.Combine(_temp.Path, "served");
        Assert.Equal(cid, await ContentPeers.PeerwayAsync("car", "import", car, "--repo", served));

        var (gateway, url) = await GatewayInteropTests.StartGatewayAsync(served);
        await using (gateway)
        {
            var output = Path.Combine(_temp.Path, "fetched");
            await ContentPeers.PeerwayAsync("fetch", cid, "-o", output, "--gateway", url, "--repo", Path.Combine(_temp.Path, "client"));
            AssertSameTree(source, output);

            // The listing of the HAMT directory through the gateway names its entries, not its shard links.
            using var http = new HttpClient();
            var listing = await http.GetStringAsync(new Uri($"{url}/ipfs/{cid}/sharded"));
            Assert.Equal(5_300, listing.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
            Assert.Contains("entry-000042.txt\t", listing, StringComparison.Ordinal);
            var block = await http.GetByteArrayAsync(new Uri($"{url}/ipfs/{cid}/sharded?format=raw"));
            Assert.Equal(ContentError.None, DagPbCodec.TryDecode(block, out var node));
            Assert.Equal(ContentError.None, UnixFsData.TryDecode(node!.Data!.Value.Span, out var data));
            Assert.Equal(UnixFsType.HamtShard, data!.Type); // the JS importer did shard it
        }
    }

    private static void AssertSameTree(string expected, string actual)
    {
        static string[] Relative(string root, IEnumerable<string> paths) =>
            [.. paths.Select(p => Path.GetRelativePath(root, p)).Order(StringComparer.Ordinal)];

        Assert.Equal(
            Relative(expected, Directory.EnumerateDirectories(expected, "*", SearchOption.AllDirectories)),
            Relative(actual, Directory.EnumerateDirectories(actual, "*", SearchOption.AllDirectories)));
        var files = Relative(expected, Directory.EnumerateFiles(expected, "*", SearchOption.AllDirectories));
        Assert.Equal(files, Relative(actual, Directory.EnumerateFiles(actual, "*", SearchOption.AllDirectories)));
        foreach (var file in files)
        {
            Assert.True(
                File.ReadAllBytes(Path.Combine(expected, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actual, file))),
                $"{file} differs");
        }
    }
}
