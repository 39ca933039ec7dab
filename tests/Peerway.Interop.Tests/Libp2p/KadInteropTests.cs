using System.Security.Cryptography;
using System.Text.Json;
using Peerway.Interop.Tests.Content;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Libp2p;

/// <summary>
/// Issue 19, the IPFS Kademlia DHT: three js-libp2p 3 nodes running @libp2p/kad-dht 16 (server mode, /ipfs/kad/1.0.0)
/// on loopback and Peerway find each other's provider records, both ways.
/// </summary>
public sealed class KadInteropTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);
    private readonly string _root = Directory.CreateTempSubdirectory("pw-kad-").FullName;

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Js_kad_dht_and_peerway_find_each_others_provider_records()
    {
        var dir = ContentPeers.Require();
        await using var js = ExternalProcess.Start("node", [Path.Combine(dir, "kad-peer.mjs"), "3"], Bound, dir, redirectStdin: true);
        using var swarm = JsonDocument.Parse(await js.WaitForStdoutAsync(l => l.StartsWith('{'), Bound));
        var addrs = swarm.RootElement.GetProperty("addrs").EnumerateArray().Select(a => a.GetString()!).ToList();
        var ids = swarm.RootElement.GetProperty("ids").EnumerateArray().Select(a => a.GetString()!).ToList();

        // Peerway provides: a file added to its repository is announced when `ipfs serve` joins the DHT.
        var repo = Path.Combine(_root, "repo");
        var file = Path.Combine(_root, "provided.bin");
        await File.WriteAllBytesAsync(file, RandomNumberGenerator.GetBytes(5000));
        var cid = await ContentPeers.PeerwayAsync("add", file, "--cid-version", "1", "--repo", repo);
        var peerwayId = await ContentPeers.PeerwayAsync("ipfs", "id", "--repo", repo);
        await using var serve = PeerwayCli.Start("ipfs", "serve", "--listen", "/ip4/127.0.0.1/tcp/0", "--repo", repo, "--bootstrap", addrs[0]);
        var provided = await serve.WaitForStdoutAsync(l => l.StartsWith("provided ", StringComparison.Ordinal), Bound);
        Assert.Matches($"^provided {cid} to [1-9][0-9]* peers$", provided);
        await js.WriteLineAsync($"find 2 {cid}");
        await js.WaitForStdoutAsync(l => l == "done" || l.StartsWith("error", StringComparison.Ordinal), Bound);
        Assert.Contains(js.StdoutLines, l => l.StartsWith($"provider {peerwayId} ", StringComparison.Ordinal));

        // js provides: Peerway (a fresh client-mode peer) finds the record through the first js node.
        var jsCid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
        await js.WriteLineAsync($"provide 1 {jsCid}");
        await js.WaitForStdoutAsync(l => l == $"provided {jsCid}" || l.StartsWith("error", StringComparison.Ordinal), Bound);
        Assert.Contains($"provided {jsCid}", js.StdoutLines);
        var find = await PeerwayCli.RunAsync("ipfs", "findprovs", jsCid, "--bootstrap", addrs[0], "--repo", Path.Combine(_root, "other"));
        Assert.True(find.ExitCode == 0, find.ToString());
        Assert.Contains(find.StdoutLines, l => l.StartsWith(ids[1] + " /ip4/127.0.0.1/tcp/", StringComparison.Ordinal));
        js.CloseStdin();
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
