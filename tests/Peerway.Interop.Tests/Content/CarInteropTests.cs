using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Content;

/// <summary>Issue 3 §8: CAR files written by Peerway are read by @ipld/car (and exported by ipfs-unixfs-exporter), and
/// CAR files written by @ipld/car are imported by Peerway.</summary>
public sealed class CarInteropTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-car");

    public void Dispose() => _temp.Dispose();

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Ipld_car_reads_and_verifies_a_car_exported_by_peerway()
    {
        ContentPeers.Require();
        var file = ContentPeers.WriteRandomFile(_temp.Path, "data", (3L * 262_144) + 1234, seed: 7);
        var repo = Path.Combine(_temp.Path, "repo");
        foreach (var version in new[] { "0", "1" })
        {
            var cid = await ContentPeers.PeerwayAsync("add", file, "--cid-version", version, "--repo", repo);
            var car = Path.Combine(_temp.Path, $"out{version}.car");
            await ContentPeers.PeerwayAsync("car", "export", cid, "-o", car, "--repo", repo);

            var read = await ContentPeers.RunJsonAsync("car-read.mjs", car);

            Assert.Equal(cid, read.GetProperty("roots")[0].GetString());
            Assert.Equal(5, read.GetProperty("blocks").GetInt32()); // 4 leaves + 1 root
            Assert.Equal(ContentPeers.Sha256Hex(file), read.GetProperty("sha256").GetString());
        }
    }

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Peerway_imports_a_car_written_by_ipld_car()
    {
        ContentPeers.Require();
        var file = ContentPeers.WriteRandomFile(_temp.Path, "data", 600_000, seed: 8);
        foreach (var version in new[] { "0", "1" })
        {
            var car = Path.Combine(_temp.Path, $"js{version}.car");
            var root = await ContentPeers.RunAsync("car-write.mjs", file, car, "--cid-version", version);
            var repo = Path.Combine(_temp.Path, $"repo{version}");

            var imported = await ContentPeers.PeerwayAsync("car", "import", car, "--repo", repo);
            var output = Path.Combine(_temp.Path, $"cat{version}");
            await ContentPeers.CatToFileAsync(root, repo, output);

            Assert.Equal(ContentPeers.Sha256Hex(file), ContentPeers.Sha256Hex(output));
            Assert.Equal(root, imported);
            var exported = Path.Combine(_temp.Path, $"re{version}.car");
            await ContentPeers.PeerwayAsync("car", "export", root, "-o", exported, "--repo", repo);
            var reread = await ContentPeers.RunJsonAsync("car-read.mjs", exported);
            Assert.Equal(ContentPeers.Sha256Hex(file), reread.GetProperty("sha256").GetString());
        }
    }
}
