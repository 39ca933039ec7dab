using System.Text.Json;
using System.Text.Json.Nodes;
using Peerway.Interop.Tests.Content;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Interop.Tests.Torrent;

namespace Peerway.Interop.Tests.Node;

/// <summary>
/// Issues 18/19: <c>peerway node</c> hosts the libp2p/IPFS peer over its content repository. kubo-rpc-client
/// (tests/interop-peers/kubo-swarm.mjs) asks the node's <c>/api/v0/id</c>; Helia 7 dials the swarm address it names
/// (with <c>/p2p/</c>: the Noise handshake must prove that id) and fetches by Bitswap a file added through
/// <c>/api/v0/add</c>;
/// <c>routing/findprovs</c> finds the node itself, and a js-libp2p @libp2p/kad-dht provider by a Kad lookup through the
/// node; <c>swarm/connect</c> and <c>swarm/peers</c> see the js nodes; the js nodes find the node's provider record for a
/// root pinned before it started.
/// </summary>
public sealed class NodeIpfsPeerInteropTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Helia_dials_the_node_as_the_peer_id_kubo_id_reports_and_fetches_an_api_added_file_by_bitswap()
    {
        await using var env = new TorrentInterop("node-ipfs");
        var file = Path.Combine(env.Root, "content.bin");
        const int size = 700_000 + 3;
        var sha256 = await TorrentInterop.RandomFileAsync(file, size);
        var node = await RunningNode.StartAsync(env, Path.Combine(env.Root, "node"));
        var dir = ContentPeers.Require();
        var script = env.Start(RequiredTool.Require("node", "apt-get install nodejs"), [Path.Combine(dir, "kubo-swarm.mjs"), node.ApiUrl, file], dir);
        Assert.True(await script.WaitForExitAsync(Bound), "kubo-swarm.mjs did not finish");
        Assert.True(script.ExitCode == 0, script.Stderr + "\n--- node ---\n" + node.Process.Stderr);
        var r = JsonNode.Parse(script.Stdout.Trim())!.AsObject();

        // id: the Ed25519 peer id of the banner's swarm address, its key as kubo encodes it, addresses with /p2p/.
        var id = (string)r["id"]!;
        Assert.StartsWith("12D3KooW", id, StringComparison.Ordinal);
        Assert.EndsWith($"/p2p/{id}", node.Swarm, StringComparison.Ordinal);
        Assert.Equal([node.Swarm], r["addresses"]!.AsArray().Select(a => (string?)a));
        var key = Convert.FromBase64String((string)r["publicKey"]!);
        Assert.Equal([0x08, 0x01, 0x12, 0x20], key[..4]); // libp2p PublicKey protobuf: Type = Ed25519, Data = 32 bytes
        Assert.Equal(36, key.Length);
        Assert.StartsWith("peerway/", (string?)r["agentVersion"], StringComparison.Ordinal);
        var protocols = r["protocols"]!.AsArray().Select(p => (string?)p).ToList();
        Assert.Contains("/ipfs/bitswap/1.2.0", protocols);
        Assert.Contains("/ipfs/kad/1.0.0", protocols);
        Assert.Contains("/ipfs/id/1.0.0", protocols);

        // routing/findprovs: the node provides what `add` added, at its swarm address.
        var self = Assert.Single(r["providers"]!.AsArray(), p => (string?)p!["id"] == id);
        Assert.Contains(node.Swarm[..node.Swarm.IndexOf("/p2p/", StringComparison.Ordinal)], self!["addrs"]!.AsArray().Select(a => (string?)a));

        // Helia dials the address `id` gave, /p2p/ included, so js-libp2p's Noise handshake accepts only a peer proving
        // that id with its key; then Bitswap is the only way the file's blocks can reach it.
        var added = (string)r["added"]!;
        await using var helia = ExternalProcess.Start("node", [Path.Combine(dir, "helia-bitswap-get.mjs"), (string)r["addresses"]![0]!, added], Bound, dir);
        Assert.True(await helia.WaitForExitAsync(Bound) == 0, $"Helia could not fetch {added}\n{helia.Stdout}\n{helia.Stderr}\n--- node ---\n{node.Process.Stderr}");
        using var got = JsonDocument.Parse(helia.StdoutLines.Last(l => l.StartsWith('{')));
        Assert.Equal(size, got.RootElement.GetProperty("bytes").GetInt64());
        Assert.Equal(Convert.ToHexStringLower(sha256), got.RootElement.GetProperty("sha256").GetString());
        Assert.Equal(0, await node.TerminateAsync());
    }

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Findprovs_through_the_node_finds_a_js_kad_dht_provider_and_js_finds_the_nodes_pinned_root()
    {
        await using var env = new TorrentInterop("node-ipfs-kad");
        var dir = ContentPeers.Require();
        await using var js = ExternalProcess.Start("node", [Path.Combine(dir, "kad-peer.mjs"), "3"], Bound, dir, redirectStdin: true);
        using var swarm = JsonDocument.Parse(await js.WaitForStdoutAsync(l => l.StartsWith('{'), Bound));
        var addrs = swarm.RootElement.GetProperty("addrs").EnumerateArray().Select(a => a.GetString()!).ToList();
        var ids = swarm.RootElement.GetProperty("ids").EnumerateArray().Select(a => a.GetString()!).ToList();

        // js node 2 provides before the node exists, so the node can learn of it only by a lookup.
        const string jsCid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
        await js.WriteLineAsync($"provide 2 {jsCid}");
        await js.WaitForStdoutAsync(l => l == $"provided {jsCid}" || l.StartsWith("error", StringComparison.Ordinal), Bound);
        Assert.Contains($"provided {jsCid}", js.StdoutLines);

        // A root pinned in the node's repository before it starts (`peerway add --repo` records it as a root).
        var data = Path.Combine(env.Root, "node");
        var file = Path.Combine(env.Root, "pinned.bin");
        await TorrentInterop.RandomFileAsync(file, 5000);
        var (code, pinned, error) = await env.RunPeerwayAsync(TimeSpan.FromMinutes(4), "add", file, "--cid-version", "1", "--repo", Path.Combine(data, "repo"));
        Assert.True(code == 0, error);
        pinned = pinned.Trim();
        var config = Path.Combine(env.Root, "node.json");
        await File.WriteAllTextAsync(config, new JsonObject { ["ipfs-bootstrap"] = new JsonArray(JsonValue.Create(addrs[0])), ["log-level"] = "Information" }.ToJsonString());
        var node = await RunningNode.StartAsync(env, data, "--config", config);

        var script = env.Start(RequiredTool.Require("node", "apt-get install nodejs"), [Path.Combine(dir, "kubo-swarm.mjs"), node.ApiUrl, "--findprovs", jsCid, addrs[1]], dir);
        Assert.True(await script.WaitForExitAsync(Bound), "kubo-swarm.mjs did not finish");
        Assert.True(script.ExitCode == 0, script.Stderr + "\n--- node ---\n" + node.Process.Stderr);
        var answer = JsonNode.Parse(script.Stdout.Trim())!;
        // swarm/connect dialled js node 1 (kubo's answer); the bootstrap peer is connected; the provider is found.
        Assert.Equal([$"connect {ids[1]} success"], answer["connect"]!.AsArray().Select(c => (string?)c));
        Assert.True(answer["swarmPeers"]!.AsArray().Any(p => (string?)p == ids[0]), $"{answer}\n--- node ---\n{node.Process.Stderr}");
        var found = answer["providers"]!.AsArray();
        Assert.True(found.Any(p => (string?)p!["id"] == ids[2]), $"{answer}\n--- node ---\n{node.Process.Stderr}");
        var provider = found.First(p => (string?)p!["id"] == ids[2]);
        Assert.Contains(provider!["addrs"]!.AsArray(), a => ((string?)a)!.StartsWith("/ip4/127.0.0.1/tcp/", StringComparison.Ordinal));

        // The other way: js node 1 looks the pinned root up and finds the node at its swarm address.
        var nodeId = node.Swarm[(node.Swarm.IndexOf("/p2p/", StringComparison.Ordinal) + 5)..];
        await js.WriteLineAsync($"find 1 {pinned}");
        await js.WaitForStdoutAsync(l => l == "done" || l.StartsWith("error", StringComparison.Ordinal), Bound);
        Assert.True(js.StdoutLines.Any(l => l.StartsWith($"provider {nodeId} ", StringComparison.Ordinal)), $"{js.Stdout}\n--- node ---\n{node.Process.Stderr}");
        js.CloseStdin();
        Assert.Equal(0, await node.TerminateAsync());
    }
}
