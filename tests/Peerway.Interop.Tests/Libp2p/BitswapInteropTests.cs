using System.Security.Cryptography;
using System.Text.Json;
using Peerway.Interop.Tests.Content;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Libp2p;

/// <summary>
/// Issue 19, Bitswap: Helia 7 (js-libp2p TCP/Noise/Yamux, @helia/bitswap as its only block broker, no routers or
/// gateways) dials `peerway ipfs serve` and fetches, verifying every block, a raw block and a 10 MiB UnixFS file as
/// CIDv0 and CIDv1 that `peerway add` put in the repository.
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

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
