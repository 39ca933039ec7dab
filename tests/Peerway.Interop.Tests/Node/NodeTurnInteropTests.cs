using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Interop.Tests.Nat;
using Peerway.Interop.Tests.Torrent;
using Peerway.Nat.Turn;
using Peerway.Net;
using Peerway.TestSupport;

namespace Peerway.Interop.Tests.Node;

/// <summary>
/// Issue 18 items 1 and 6: <c>peerway node --turn IP:PORT</c> hosts Peerway's TURN server. coturn's
/// <c>turnutils_uclient</c> allocates and echoes through it to <c>turnutils_peer</c> (UDP and TCP), the node's
/// <c>/metrics</c> counts what it relayed, and an allocation held open (by Peerway's TURN client) shows on
/// <c>/metrics</c> (<c>peerway_turn_allocations</c>) and in the dashboard's event stream.
/// </summary>
public sealed class NodeTurnInteropTests
{
    [RequiresToolFact("turnutils_uclient", "turnutils_peer")]
    public async Task Uclient_relays_through_the_node_and_its_allocations_show_on_metrics_and_the_dashboard()
    {
        await using var env = new TorrentInterop("node-turn");
        var config = Path.Combine(env.Root, "node.json");
        await File.WriteAllTextAsync(config, """
            {"turn-users": {"alice": "wonderland"}, "turn-realm": "peerway.test", "turn-allowed-peers": ["127.0.0.0/8"]}
            """);
        var turnPort = FreePort.TcpAndUdp();
        var node = await RunningNode.StartAsync(env, Path.Combine(env.Root, "node"), "--config", config, "--turn", $"127.0.0.1:{S(turnPort)}");
        Assert.Contains($" turn udp+tcp 127.0.0.1:{S(turnPort)}", node.Process.Stdout, StringComparison.Ordinal);

        var (peer, peerPort) = await TurnInteropTests.StartPeerAsync();
        await using (peer)
        {
            var tool = RequiredTool.Require("turnutils_uclient", "apt-get install coturn");
            foreach (var transport in new[] { Array.Empty<string>(), ["-t"] })
            {
                string[] args = [.. transport, "-u", "alice", "-w", "wonderland", "-e", "127.0.0.1", "-r", S(peerPort), "-p", S(turnPort), "-n", "30", "-l", "120", "-c", "127.0.0.1"];
                await using var client = ExternalProcess.Start(tool, args, TimeSpan.FromSeconds(90));
                await client.WaitForExitAsync(TimeSpan.FromSeconds(90));
                var output = client.Stdout + "\n" + client.Stderr;
                Assert.True(output.Contains("tot_send_msgs=30, tot_recv_msgs=30", StringComparison.Ordinal), $"{string.Join(' ', args)}:\n{output}\n--- node ---\n{node.Process.Stderr}");
            }
        }

        // An allocation held open while the node is scraped: the gauge counts it.
        using var turn = new TurnClient(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), new IPEndPoint(IPAddress.Loopback, turnPort),
            new TurnCredentials("alice", "wonderland"), TimeProvider.System, null);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await turn.AllocateAsync(cancellationToken: cts.Token);

        var root = node.RpcUrl[..^"transmission/rpc".Length];
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var metrics = await PrometheusScrape.GetAsync(http, root + "metrics");
        var allocations = PrometheusScrape.Sum(metrics, "peerway_turn_allocations", "");
        Assert.True(allocations >= 1, metrics);
        Assert.True(PrometheusScrape.Sum(metrics, "peerway_turn_relayed_total", "direction=\"to_peer\"") >= 60, metrics);
        Assert.True(PrometheusScrape.Sum(metrics, "peerway_turn_relayed_total", "direction=\"to_client\"") >= 60, metrics);

        // The dashboard's first server-sent event carries the same count.
        using var events = await http.GetAsync(root + "dashboard/events", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var reader = new StreamReader(await events.Content.ReadAsStreamAsync(cts.Token));
        string? line;
        while ((line = await reader.ReadLineAsync(cts.Token)) is not null && !line.StartsWith("data:", StringComparison.Ordinal))
        {
        }

        Assert.NotNull(line);
        var snapshot = JsonNode.Parse(line["data:".Length..])!;
        Assert.True((int?)snapshot["turnAllocations"] >= 1, line);

        Assert.Equal(TimeSpan.Zero, await turn.RefreshAsync(TimeSpan.Zero, cts.Token));
        Assert.Equal(0, await node.TerminateAsync());
    }

    private static string S(int n) => n.ToString(CultureInfo.InvariantCulture);
}
