using System.Text.Json;
using Peerway.Core;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Dht;

/// <summary>
/// Issue 2 §11(a): bittorrent-dht (npm, webtorrent's DHT) queries our `peerway dht serve` node with its own KRPC stack:
/// ping, find_node, get_peers and announce_peer must come back as valid answers its parser accepts.
/// </summary>
public sealed class BittorrentDhtQueryTests
{
    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Bittorrent_dht_pings_finds_nodes_and_gets_peers_from_peerway()
    {
        var nodeJs = RequiredTool.Require("node", "apt-get install nodejs");
        var peers = RequiredTool.RequireNpmPeers();
        await using var a = await ServedNode.StartAsync();
        await using var b = await ServedNode.StartAsync("--bootstrap", a.EndPoint);
        // B joins A in the background; wait until A knows B (a find_node from the CLI returns B's id).
        await WaitUntilKnownAsync(a, b.Id);
        var infoHash = NodeId.Random().ToString();

        await using var query = ExternalProcess.Start(nodeJs, ["dht-query.mjs", a.EndPoint, infoHash], TimeSpan.FromSeconds(60), peers);
        Assert.Equal(0, await query.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        using var doc = JsonDocument.Parse(query.StdoutLines.Single(l => l.StartsWith('{')));
        var r = doc.RootElement;

        var ping = r.GetProperty("ping");
        Assert.Equal("r", ping.GetProperty("y").GetString());
        Assert.Equal(a.Id, ping.GetProperty("id").GetString());

        var findNode = r.GetProperty("find_node");
        Assert.Equal(a.Id, findNode.GetProperty("id").GetString());
        Assert.Equal(0, findNode.GetProperty("nodes").GetProperty("trailingBytes").GetInt32());
        var nodes = findNode.GetProperty("nodes").GetProperty("nodes").EnumerateArray().ToList();
        Assert.Contains(nodes, n => n.GetProperty("id").GetString() == b.Id
            && $"{n.GetProperty("host").GetString()}:{n.GetProperty("port").GetInt32()}" == b.EndPoint);

        var getPeers = r.GetProperty("get_peers");
        Assert.Equal(a.Id, getPeers.GetProperty("id").GetString());
        Assert.False(string.IsNullOrEmpty(getPeers.GetProperty("token").GetString()), "get_peers must carry a token (BEP 5)");
        Assert.Equal(JsonValueKind.Object, getPeers.GetProperty("nodes").ValueKind); // no values yet: closest nodes

        // announce_peer with that token is accepted, and the peer is then returned in values.
        Assert.Equal("r", r.GetProperty("announce_peer").GetProperty("y").GetString());
        var values = r.GetProperty("get_peers_after").GetProperty("values").EnumerateArray().Select(v => v.GetString()).ToList();
        Assert.Contains("127.0.0.1:6999", values);
    }

    internal static async Task WaitUntilKnownAsync(ServedNode node, string id)
    {
        // Polling an external process's observable state with a deadline (allowed for external processes).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var find = await PeerwayCli.RunAsync("dht", "find-node", id, "--bootstrap", node.EndPoint, "--bind", "127.0.0.1", "--timeout", "5");
            if (find.ExitCode == 0 && find.StdoutLines.Any(l => l.StartsWith(id, StringComparison.Ordinal))) return;
            if (DateTime.UtcNow > deadline) Assert.Fail($"{node.EndPoint} never learned {id}: {find}");
        }
    }
}
