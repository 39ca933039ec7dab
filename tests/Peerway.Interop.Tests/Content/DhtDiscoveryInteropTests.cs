using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Peerway.Content;
using Peerway.Core.Multiformats;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Content;

/// <summary>
/// Issue 3 §6: a provider (`peerway gateway --dht-bootstrap`) announces its roots under SHA-1(multihash) in a DHT made
/// of real bittorrent-dht (npm) nodes; bittorrent-dht's own lookup finds the gateway's port, and
/// `peerway fetch --dht-bootstrap` finds the provider through those nodes and downloads the content verified.
/// </summary>
public sealed class DhtDiscoveryInteropTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-discovery");

    public void Dispose() => _temp.Dispose();

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Content_announced_by_a_gateway_is_found_through_bittorrent_dht_and_fetched_verified()
    {
        var peers = RequiredTool.RequireNpmPeers();
        var file = ContentPeers.WriteRandomFile(_temp.Path, "data", 700_000, seed: 21);
        var providerRepo = Path.Combine(_temp.Path, "provider");
        var cid = await ContentPeers.PeerwayAsync("add", file, "--cid-version", "1", "--repo", providerRepo);

        await using var swarm = ExternalProcess.Start(
            "node", ["dht-swarm.mjs", "--count", "3", "--first-ip", "60"], TimeSpan.FromMinutes(4), peers, redirectStdin: true);
        var ready = JsonDocument.Parse(await swarm.WaitForStdoutAsync(l => l.Contains("\"ready\"", StringComparison.Ordinal), TimeSpan.FromSeconds(60)));
        var nodes = ready.RootElement.GetProperty("nodes").EnumerateArray()
            .Select(n => $"{n.GetProperty("host").GetString()}:{n.GetProperty("port").GetInt32()}")
            .ToList();

        var port = FreePort.Tcp();
        await using var gateway = PeerwayCli.Start(
            "gateway", "--port", port.ToString(CultureInfo.InvariantCulture), "--repo", providerRepo, "--dht-bootstrap", nodes[0]);
        await gateway.WaitForStdoutAsync(l => l.StartsWith("announced 1 of 1 roots", StringComparison.Ordinal), TimeSpan.FromMinutes(3));

        // bittorrent-dht's own lookup of the documented key finds the gateway's TCP port.
        var key = ContentRouting.DhtKey(Cid.Parse(cid)).ToString();
        await swarm.WriteLineAsync($$"""{"cmd":"lookup","node":2,"infohash":"{{key}}"}""");
        var lookup = JsonDocument.Parse(await swarm.WaitForStdoutAsync(l => l.Contains("\"cmd\":\"lookup\"", StringComparison.Ordinal), TimeSpan.FromSeconds(60)));
        var found = lookup.RootElement.GetProperty("peers").EnumerateArray().Select(p => p.GetString()).ToList();
        Assert.Contains($"127.0.0.1:{port}", found);

        var output = Path.Combine(_temp.Path, "fetched");
        await ContentPeers.PeerwayAsync("fetch", cid, "-o", output, "--repo", Path.Combine(_temp.Path, "fetcher"), "--dht-bootstrap", nodes[2]);
        Assert.Equal(ContentPeers.Sha256Hex(file), ContentPeers.Sha256Hex(output));

        swarm.CloseStdin();
    }
}
