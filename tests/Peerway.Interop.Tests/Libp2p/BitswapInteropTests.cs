using System.Security.Cryptography;
using System.Text.Json;
using Peerway.Interop.Tests.Content;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Libp2p;

/// <summary>
/// Issue 19, Bitswap: Helia 7 (js-libp2p TCP/Noise/Yamux, @helia/bitswap as its only block broker, no routers or
/// gateways) dials `peerway ipfs serve` and fetches, verifying every block, a raw block and a 10 MiB UnixFS file as
/// CIDv0 and CIDv1 that `peerway add` put in the repository; and `peerway ipfs get` fetches what two Helia nodes added
/// from both at once.
/// </summary>
public sealed class BitswapInteropTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);
    private readonly string _root = Directory.CreateTempSubdirectory("pw-bitswap-").FullName;

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Helia_fetches_a_raw_block_and_a_10_MiB_file_from_peerway_over_bitswap()
    {
        var dir = ContentPeers.Require();
        var repo = Path.Combine(_root, "repo");
        var small = Path.Combine(_root, "small.bin");
        var large = Path.Combine(_root, "large.bin");
        await File.WriteAllBytesAsync(small, RandomNumberGenerator.GetBytes(100_000));
        await File.WriteAllBytesAsync(large, RandomNumberGenerator.GetBytes(10 * 1024 * 1024));
        var raw = await ContentPeers.PeerwayAsync("add", small, "--cid-version", "1", "--repo", repo);
        Assert.StartsWith("bafkrei", raw, StringComparison.Ordinal); // one raw leaf
        var v0 = await ContentPeers.PeerwayAsync("add", large, "--repo", repo);
        var v1 = await ContentPeers.PeerwayAsync("add", large, "--cid-version", "1", "--repo", repo);

        await using var serve = PeerwayCli.Start("ipfs", "serve", "--listen", "/ip4/127.0.0.1/tcp/0", "--repo", repo);
        var address = (await serve.WaitForStdoutAsync(l => l.StartsWith("ipfs: peer ", StringComparison.Ordinal), Bound)).Split(' ')[4];

        foreach (var (cid, file) in new[] { (raw, small), (v0, large), (v1, large) })
        {
            await using var helia = ExternalProcess.Start("node", [Path.Combine(dir, "helia-bitswap-get.mjs"), address, cid], Bound, dir);
            Assert.True(await helia.WaitForExitAsync(Bound) == 0, $"Helia could not fetch {cid}\n{helia.Stdout}\n{helia.Stderr}\npeerway: {serve.Stderr}");
            using var result = JsonDocument.Parse(helia.StdoutLines.Last(l => l.StartsWith('{')));
            Assert.Equal(new FileInfo(file).Length, result.RootElement.GetProperty("bytes").GetInt64());
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(file))), result.RootElement.GetProperty("sha256").GetString());
        }
    }

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Peerway_fetches_a_file_as_cidv0_and_cidv1_and_a_directory_from_two_helia_peers_at_once()
    {
        var dir = ContentPeers.Require();
        var file = Path.Combine(_root, "large.bin");
        await File.WriteAllBytesAsync(file, RandomNumberGenerator.GetBytes(10 * 1024 * 1024));
        var tree = Path.Combine(_root, "tree");
        Directory.CreateDirectory(Path.Combine(tree, "sub"));
        await File.WriteAllBytesAsync(Path.Combine(tree, "a.bin"), RandomNumberGenerator.GetBytes(700_000));
        await File.WriteAllTextAsync(Path.Combine(tree, "sub", "b.txt"), "hello from helia\n");

        // Two Helia nodes add the same content (same CIDs); Peerway is given both and must use both.
        var helias = new List<(ExternalProcess Process, JsonDocument Info)>();
        try
        {
            for (var i = 0; i < 2; i++)
            {
                var helia = ExternalProcess.Start("node", [Path.Combine(dir, "helia-bitswap-serve.mjs"), file, tree], Bound, dir, redirectStdin: true);
                var line = await helia.WaitForStdoutAsync(l => l.StartsWith('{'), Bound);
                helias.Add((helia, JsonDocument.Parse(line)));
            }

            var info = helias[0].Info.RootElement;
            Assert.Equal(info.GetProperty("v1").GetString(), helias[1].Info.RootElement.GetProperty("v1").GetString());
            var peers = helias.SelectMany(h => new[] { "--peer", h.Info.RootElement.GetProperty("addrs")[0].GetString()! }).ToArray();
            foreach (var (key, expectFile) in new[] { ("v0", true), ("v1", true), ("dir", false) })
            {
                var cid = info.GetProperty(key).GetString()!;
                var output = Path.Combine(_root, "out-" + key);
                var repo = Path.Combine(_root, "repo-" + key); // a fresh repository: every block comes over Bitswap
                var line = await ContentPeers.PeerwayAsync(["ipfs", "get", cid, "-o", output, "--repo", repo, .. peers]);
                Assert.Matches($"^fetched {cid}: [0-9]+ blocks, [0-9]+ bytes from 2 peers$", line);
                if (expectFile)
                {
                    Assert.Equal(SHA256.HashData(await File.ReadAllBytesAsync(file)), SHA256.HashData(await File.ReadAllBytesAsync(output)));
                }
                else
                {
                    Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(tree, "a.bin")), await File.ReadAllBytesAsync(Path.Combine(output, "a.bin")));
                    Assert.Equal("hello from helia\n", await File.ReadAllTextAsync(Path.Combine(output, "sub", "b.txt")));
                }
            }
        }
        finally
        {
            foreach (var (process, doc) in helias)
            {
                process.CloseStdin();
                await process.DisposeAsync();
                doc.Dispose();
            }
        }
    }

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Helia_fetches_a_directory_from_peerway_over_bitswap()
    {
        var dir = ContentPeers.Require();
        var repo = Path.Combine(_root, "repo");
        var tree = Path.Combine(_root, "tree");
        Directory.CreateDirectory(Path.Combine(tree, "sub", "deeper"));
        await File.WriteAllBytesAsync(Path.Combine(tree, "a.bin"), RandomNumberGenerator.GetBytes(1_300_000));
        await File.WriteAllTextAsync(Path.Combine(tree, "sub", "b.txt"), "bitswap directory\n");
        await File.WriteAllBytesAsync(Path.Combine(tree, "sub", "deeper", "c.bin"), RandomNumberGenerator.GetBytes(70_000));
        foreach (var mode in new[] { Array.Empty<string>(), ["--cid-version", "1"] })
        {
            var cid = (await ContentPeers.PeerwayAsync(["add", tree, "--repo", repo, .. mode])).Split('\n')[^1].Trim();
            await using var serve = PeerwayCli.Start("ipfs", "serve", "--listen", "/ip4/127.0.0.1/tcp/0", "--repo", repo);
            var address = (await serve.WaitForStdoutAsync(l => l.StartsWith("ipfs: peer ", StringComparison.Ordinal), Bound)).Split(' ')[4];
            await using var helia = ExternalProcess.Start("node", [Path.Combine(dir, "helia-bitswap-get.mjs"), address, cid, "--dir"], Bound, dir);
            Assert.True(await helia.WaitForExitAsync(Bound) == 0, $"Helia could not fetch {cid}\n{helia.Stdout}\n{helia.Stderr}\npeerway: {serve.Stderr}");
            using var result = JsonDocument.Parse(helia.StdoutLines.Last(l => l.StartsWith('{')));
            var files = result.RootElement.GetProperty("files").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
            var expected = Directory.EnumerateFiles(tree, "*", SearchOption.AllDirectories).ToDictionary(
                f => Path.GetRelativePath(tree, f).Replace('\\', '/'), f => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(f))));
            Assert.Equal(expected.OrderBy(e => e.Key), files.OrderBy(e => e.Key));
        }
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
