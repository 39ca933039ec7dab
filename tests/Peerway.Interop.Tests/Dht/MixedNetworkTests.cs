using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Node;

namespace Peerway.Interop.Tests.Dht;

/// <summary>
/// Issue 2 §11(b): one DHT of 5 Peerway nodes and 5 bittorrent-dht nodes on loopback (each on its own 127.x address).
/// An info-hash announced by a bittorrent-dht node is found by `peerway dht get-peers`; one announced by
/// `peerway dht announce` is found by a bittorrent-dht lookup.
/// </summary>
public sealed class MixedNetworkTests
{
    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Announces_cross_between_peerway_and_bittorrent_dht()
    {
        var nodeJs = RequiredTool.Require("node", "apt-get install nodejs");
        var peersDir = RequiredTool.RequireNpmPeers();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await using var ours = LocalDhtSwarm.Start(
            new LocalSwarmOptions { Nodes = 5, InfoHashes = 1, DistinctAddresses = true }, NullLoggerFactory.Instance);
        await ours.JoinAsync(null, cts.Token);
        var routers = string.Join(',', ours.Hosts.Take(2).Select(h => h.LocalEndPoint.ToString()));

        await using var theirs = ExternalProcess.Start(
            nodeJs, ["dht-swarm.mjs", "--count", "5", "--first-ip", "30", "--bootstrap", routers],
            TimeSpan.FromMinutes(3), peersDir, redirectStdin: true);
        var ready = JsonDocument.Parse(await theirs.WaitForStdoutAsync(l => l.Contains("\"ready\"", StringComparison.Ordinal), TimeSpan.FromSeconds(60)));
        var theirNodes = ready.RootElement.GetProperty("nodes").EnumerateArray().ToList();
        Assert.Equal(5, theirNodes.Count);

        // Their node 2 announces; `peerway dht get-peers` through one of ours (not a router) finds it.
        var fromThem = NodeId.Random().ToString();
        await theirs.WriteLineAsync($$"""{"cmd":"announce","node":2,"infohash":"{{fromThem}}","port":7001}""");
        var announced = JsonDocument.Parse(await theirs.WaitForStdoutAsync(l => l.Contains("\"cmd\":\"announce\"", StringComparison.Ordinal), TimeSpan.FromSeconds(60)));
        Assert.True(announced.RootElement.GetProperty("ok").GetBoolean(), announced.RootElement.ToString());
        var getPeers = await PeerwayCli.RunAsync(
            "dht", "get-peers", fromThem, "--bootstrap", ours.Hosts[3].LocalEndPoint.ToString(), "--bind", "127.0.0.1", "--timeout", "60");
        Assert.True(getPeers.ExitCode == 0, getPeers.ToString());
        Assert.Contains($"{theirNodes[2].GetProperty("host").GetString()}:7001", getPeers.StdoutLines);

        // `peerway dht announce` through one of ours; their node 4 finds it with its own lookup.
        var fromUs = NodeId.Random().ToString();
        var announce = await PeerwayCli.RunAsync(
            "dht", "announce", fromUs, "--port", "7002", "--bootstrap", ours.Hosts[4].LocalEndPoint.ToString(), "--bind", "127.0.0.1", "--timeout", "60");
        Assert.True(announce.ExitCode == 0, announce.ToString());
        Assert.Matches(@"^announced to [1-9]\d* nodes$", Assert.Single(announce.StdoutLines));
        await theirs.WriteLineAsync($$"""{"cmd":"lookup","node":4,"infohash":"{{fromUs}}"}""");
        var lookup = JsonDocument.Parse(await theirs.WaitForStdoutAsync(l => l.Contains("\"cmd\":\"lookup\"", StringComparison.Ordinal), TimeSpan.FromSeconds(60)));
        var found = lookup.RootElement.GetProperty("peers").EnumerateArray().Select(p => p.GetString()).ToList();
        Assert.Contains("127.0.0.1:7002", found);

        // Both implementations are in one network: their nodes are in our routing tables.
        var theirIds = theirNodes.Select(n => n.GetProperty("id").GetString()).ToHashSet();
        Assert.Contains(ours.Hosts.SelectMany(h => h.Node.RoutingTableNodes()), c => theirIds.Contains(c.Id.ToString()));
        theirs.CloseStdin();
    }
}
