using System.Text.Json.Nodes;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Interop.Tests.Torrent;

namespace Peerway.Interop.Tests.Node;

/// <summary>
/// Issue 18 item 3: the npm <c>kubo-rpc-client</c> (tests/interop-peers/kubo-client.mjs) against
/// <c>peerway node</c>'s <c>/api/v0/</c>: add (CIDv0, CIDv1 raw leaves, only-hash) gives the CIDs <c>peerway add</c>
/// gives, cat returns the bytes, block put/get, pin add/ls/rm, dag export → import, repo stat, and an unknown command
/// gets kubo's error.
/// </summary>
public sealed class KuboRpcClientInteropTests
{
    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Kubo_rpc_client_adds_cats_pins_and_moves_blocks_with_the_cids_of_peerway_add()
    {
        await using var env = new TorrentInterop("node-kubo");
        var file = Path.Combine(env.Root, "content.bin");
        await TorrentInterop.RandomFileAsync(file, 1_000_000 + 17);
        var (c0, v0, e0) = await env.RunPeerwayAsync(TimeSpan.FromMinutes(4), "add", "--only-hash", file);
        Assert.True(c0 == 0, e0);
        var (c1, v1, e1) = await env.RunPeerwayAsync(TimeSpan.FromMinutes(1), "add", "--only-hash", "--cid-version", "1", "--raw-leaves", file);
        Assert.True(c1 == 0, e1);

        var node = await RunningNode.StartAsync(env, Path.Combine(env.Root, "node"));
        var peers = RequiredTool.RequireNpmPeers();
        var script = env.Start(RequiredTool.Require("node", "apt-get install nodejs"), [Path.Combine(peers, "kubo-client.mjs"), node.ApiUrl, file], peers);
        Assert.True(await script.WaitForExitAsync(TimeSpan.FromMinutes(2)), "kubo-client.mjs did not finish");
        Assert.True(script.ExitCode == 0, script.Stderr + "\n--- node ---\n" + node.Process.Stderr);
        var r = JsonNode.Parse(script.Stdout.Trim())!.AsObject();

        Assert.Equal(v0.Trim(), (string?)r["addV0"]);
        Assert.Equal(v1.Trim(), (string?)r["addV1"]);
        Assert.True((bool)r["catEqual"]!);
        Assert.True((bool)r["catV0Equal"]!);
        Assert.StartsWith("bafkrei", (string?)r["onlyHash"], StringComparison.Ordinal);
        Assert.False((bool)r["onlyHashStored"]!, "only-hash stored the block");
        Assert.True((bool)r["blockGetEqual"]!);
        var block = (string?)r["blockPut"];
        Assert.Contains(block, r["pinsAfterAdd"]!.AsArray().Select(p => (string?)p));
        Assert.DoesNotContain(block, r["pinsAfterRm"]!.AsArray().Select(p => (string?)p));
        Assert.Contains(v1.Trim(), r["pinsAfterRm"]!.AsArray().Select(p => (string?)p));
        Assert.Equal([v1.Trim()], r["dagImportRoots"]!.AsArray().Select(p => (string?)p));
        Assert.True((long)r["carBytes"]! > 1_000_000);
        Assert.True((long)r["repoObjects"]! > 0);
        Assert.Equal("command not found: /api/v0/swarm/peers", (string?)r["unknownCommandError"]);
        Assert.StartsWith("Qm", (string?)r["id"], StringComparison.Ordinal);
    }
}
