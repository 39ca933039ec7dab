using System.Text.Json.Nodes;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Interop.Tests.Torrent;

namespace Peerway.Interop.Tests.Node;

/// <summary>
/// Issue 18 item 3: the npm <c>kubo-rpc-client</c> (tests/interop-peers/kubo-client.mjs) against
/// <c>peerway node</c>'s <c>/api/v0/</c>: add (CIDv0, CIDv1 raw leaves, only-hash) gives the CIDs <c>peerway add</c>
/// gives, cat returns the bytes, get returns kubo's tar stream (a file, a directory made by <c>peerway add</c>, a path
/// into it), routing/findprovs names the node's IPFS peer (at its swarm address) for what it added and nobody for what
/// nobody provides, block put/get, pin add/ls/rm, dag export → import, repo stat, and an unknown command gets kubo's error.
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

        // A directory in the node's repository (`peerway add --repo`), for `get`: a file at the top, one in a sub-directory.
        var dir = Path.Combine(env.Root, "album");
        await TorrentInterop.RandomFileAsync(Path.Combine(dir, "a.bin"), 300_000);
        await TorrentInterop.RandomFileAsync(Path.Combine(dir, "sub", "b.bin"), 1234);
        var data = Path.Combine(env.Root, "node");
        var (c2, dirCid, e2) = await env.RunPeerwayAsync(TimeSpan.FromMinutes(1), "add", dir, "--repo", Path.Combine(data, "repo"));
        Assert.True(c2 == 0, e2);
        dirCid = dirCid.Trim();

        var node = await RunningNode.StartAsync(env, data);
        var peers = RequiredTool.RequireNpmPeers();
        var script = env.Start(RequiredTool.Require("node", "apt-get install nodejs"), [Path.Combine(peers, "kubo-client.mjs"), node.ApiUrl, file, dirCid], peers);
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
        // get: a bare CID is one entry named by the CID; a directory is its entries below its name, a path is named by its last segment.
        Assert.Equal([v1.Trim()], r["getNames"]!.AsArray().Select(p => (string?)p));
        Assert.True((bool)r["getEqual"]!);
        var entries = r["getDir"]!.AsArray().Select(e => $"{(string?)e!["name"]} {(string?)e["type"]} {(int)e["size"]!}").ToList();
        Assert.Equal([$"{dirCid} 5 0", $"{dirCid}/a.bin 0 300000", $"{dirCid}/sub 5 0", $"{dirCid}/sub/b.bin 0 1234"], entries);
        Assert.Equal(["sub 5 0", "sub/b.bin 0 1234"], r["getDirSub"]!.AsArray().Select(e => $"{(string?)e!["name"]} {(string?)e["type"]} {(int)e["size"]!}"));
        Assert.Contains("not found", (string?)r["getMissingError"], StringComparison.Ordinal);
        // findprovs: this node's IPFS peer, at its swarm address, for a CID it added; nobody for one nobody provides.
        var provider = Assert.Single(r["findProvs"]!.AsArray());
        Assert.Equal((string?)r["id"], (string?)provider!["id"]);
        Assert.Equal([node.Swarm[..node.Swarm.IndexOf("/p2p/", StringComparison.Ordinal)]], provider["addrs"]!.AsArray().Select(a => (string?)a));
        Assert.Equal(0, (int)r["findProvsUnknown"]!);
        var block = (string?)r["blockPut"];
        Assert.Contains(block, r["pinsAfterAdd"]!.AsArray().Select(p => (string?)p));
        Assert.DoesNotContain(block, r["pinsAfterRm"]!.AsArray().Select(p => (string?)p));
        Assert.Contains(v1.Trim(), r["pinsAfterRm"]!.AsArray().Select(p => (string?)p));
        Assert.Equal([v1.Trim()], r["dagImportRoots"]!.AsArray().Select(p => (string?)p));
        Assert.True((long)r["carBytes"]! > 1_000_000);
        Assert.True((long)r["repoObjects"]! > 0);
        Assert.Equal("command not found: /api/v0/key/list", (string?)r["unknownCommandError"]);
        Assert.Equal(node.Swarm[(node.Swarm.IndexOf("/p2p/", StringComparison.Ordinal) + 5)..], (string?)r["id"]);
    }
}
