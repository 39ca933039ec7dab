using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;
using Peerway.Node;

namespace Peerway.Cli.Tests;

/// <summary>A small swarm of real DHT nodes on loopback UDP, shared by the output-format tests.</summary>
public sealed class LoopbackSwarmFixture : IAsyncLifetime
{
    public LocalDhtSwarm Swarm { get; private set; } = null!;

    public string Router => Swarm.Hosts[0].LocalEndPoint.ToString();

    public async Task InitializeAsync()
    {
        Swarm = LocalDhtSwarm.Start(new LocalSwarmOptions { Nodes = 12, InfoHashes = 1, Seed = 42 }, NullLoggerFactory.Instance);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await Swarm.JoinAsync(null, cts.Token);
    }

    public async Task DisposeAsync() => await Swarm.DisposeAsync();
}

/// <summary>The CLI contract's output formats, against real nodes on loopback.</summary>
/// <remarks>
/// Each test gets a fresh swarm (xunit builds the class per test), and lookups get a generous deadline that keeps
/// "nothing found" distinct from "timed out".
/// </remarks>
public sealed partial class DhtCommandTests : IAsyncLifetime
{
    private const string Deadline = "120";

    private readonly LoopbackSwarmFixture _fixture = new();

    public Task InitializeAsync() => _fixture.InitializeAsync();

    public Task DisposeAsync() => _fixture.DisposeAsync();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex Hex40();

    [GeneratedRegex(@"^([0-9a-f]{40}) (\d+\.\d+\.\d+\.\d+):(\d+)$")]
    private static partial Regex NodeLine();

    [Fact]
    public async Task Ping_prints_the_remote_node_id()
    {
        var target = _fixture.Swarm.Hosts[3];

        var run = await InProcessCli.RunAsync("dht", "ping", target.LocalEndPoint.ToString(), "--bind", "127.0.0.1");

        Assert.True(run.ExitCode == 0, run.ToString());
        var line = Assert.Single(run.StdoutLines);
        Assert.Matches(Hex40(), line);
        Assert.Equal(target.Node.Id.ToString(), line);
    }

    [Fact]
    public async Task Ping_json_is_one_document_with_id_and_endpoint()
    {
        var target = _fixture.Swarm.Hosts[4];

        var run = await InProcessCli.RunAsync("dht", "ping", target.LocalEndPoint.ToString(), "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        using var doc = JsonDocument.Parse(Assert.Single(run.StdoutLines));
        Assert.Equal(target.Node.Id.ToString(), doc.RootElement.GetProperty("id").GetString());
        Assert.Equal(target.LocalEndPoint.ToString(), doc.RootElement.GetProperty("endpoint").GetString());
    }

    [Fact]
    public async Task Ping_of_a_silent_endpoint_times_out_with_exit_1()
    {
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        var run = await InProcessCli.RunAsync("dht", "ping", silent.LocalEndPoint!.ToString()!, "--timeout", "1");

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Equal(string.Empty, run.Stdout);
        var line = Assert.Single(run.StderrLines);
        Assert.StartsWith("peerway: ", line, StringComparison.Ordinal);
        Assert.Contains(silent.LocalEndPoint!.ToString()!, run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_commands_are_read_only_and_never_enter_the_swarms_routing_tables()
    {
        var target = _fixture.Swarm.Hosts[5].Node.Id;

        var ping = await InProcessCli.RunAsync("dht", "ping", _fixture.Router, "--bind", "127.0.0.1");
        var find = await InProcessCli.RunAsync("dht", "find-node", target.ToString(), "--bootstrap", _fixture.Router, "--bind", "127.0.0.1", "--timeout", Deadline);

        Assert.True(ping.ExitCode == 0, ping.ToString());
        Assert.True(find.ExitCode == 0, find.ToString());
        // BEP 43: the clients' queries carried "ro": 1, so every table still holds swarm nodes only.
        var swarm = _fixture.Swarm.Hosts.Select(h => h.LocalEndPoint).ToHashSet();
        foreach (var host in _fixture.Swarm.Hosts)
        {
            Assert.All(host.Node.RoutingTableNodes(), n => Assert.Contains(n.EndPoint, swarm));
        }
    }

    [Fact]
    public async Task Find_node_prints_up_to_8_swarm_nodes_closest_first()
    {
        var target = _fixture.Swarm.Hosts[7].Node.Id;

        var run = await InProcessCli.RunAsync("dht", "find-node", target.ToString(), "--bootstrap", _fixture.Router, "--bind", "127.0.0.1", "--timeout", Deadline);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.InRange(run.StdoutLines.Count, 1, 8);
        var known = _fixture.Swarm.Hosts.ToDictionary(h => h.Node.Id, h => h.LocalEndPoint);
        var ids = new List<NodeId>();
        foreach (var line in run.StdoutLines)
        {
            var m = NodeLine().Match(line);
            Assert.True(m.Success, $"not '<hex> <ip>:<port>': {line}");
            var id = NodeId.ParseHex(m.Groups[1].Value);
            Assert.True(known.TryGetValue(id, out var ep), $"{id} is not a swarm node");
            Assert.Equal(ep.ToString(), $"{m.Groups[2].Value}:{m.Groups[3].Value}");
            ids.Add(id);
        }

        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.Equal(ids.OrderBy(i => i ^ target).ToList(), ids);
        Assert.Equal(target, ids[0]); // the node with exactly this id exists and answers
    }

    [Fact]
    public async Task Announce_then_get_peers_finds_the_announced_port()
    {
        var hash = NodeId.Random().ToString();
        var port = Random.Shared.Next(20_000, 60_000).ToString(CultureInfo.InvariantCulture);

        var announce = await InProcessCli.RunAsync(
            "dht", "announce", hash, "--port", port, "--bootstrap", _fixture.Router, "--bind", "127.0.0.1", "--timeout", Deadline);
        var peers = await InProcessCli.RunAsync(
            "dht", "get-peers", hash, "--bootstrap", _fixture.Swarm.Hosts[5].LocalEndPoint.ToString(), "--bind", "127.0.0.1", "--timeout", Deadline);

        Assert.True(announce.ExitCode == 0, announce.ToString());
        var n = Assert.Single(announce.StdoutLines);
        var m = Regex.Match(n, @"^announced to (\d+) nodes$");
        Assert.True(m.Success, n);
        Assert.InRange(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), 1, 8);
        Assert.True(peers.ExitCode == 0, peers.ToString());
        Assert.Contains($"127.0.0.1:{port}", peers.StdoutLines);
        Assert.Equal(peers.StdoutLines.Count, peers.StdoutLines.Distinct().Count());
        Assert.All(peers.StdoutLines, l => Assert.True(IPEndPoint.TryParse(l, out _), l));
    }

    [Fact]
    public async Task Get_peers_json_lists_the_peers()
    {
        var hash = NodeId.Random().ToString();
        var announce = await InProcessCli.RunAsync(
            "dht", "announce", hash, "--port", "4321", "--bootstrap", _fixture.Router, "--bind", "127.0.0.1", "--json", "--timeout", Deadline);
        var peers = await InProcessCli.RunAsync(
            "dht", "get-peers", hash, "--bootstrap", _fixture.Router, "--bind", "127.0.0.1", "--json", "--timeout", Deadline);

        Assert.True(announce.ExitCode == 0, announce.ToString());
        using var a = JsonDocument.Parse(Assert.Single(announce.StdoutLines));
        Assert.True(a.RootElement.GetProperty("announcedTo").GetInt32() >= 1);
        Assert.True(peers.ExitCode == 0, peers.ToString());
        using var p = JsonDocument.Parse(Assert.Single(peers.StdoutLines));
        Assert.Equal(hash, p.RootElement.GetProperty("infohash").GetString());
        Assert.Contains("127.0.0.1:4321", p.RootElement.GetProperty("peers").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Bootstrap_takes_several_endpoints_per_option_comma_lists_and_repeats()
    {
        var h = _fixture.Swarm.Hosts;
        var target = h[2].Node.Id.ToString();

        var spaced = await InProcessCli.RunAsync("dht", "find-node", target, "--bootstrap", h[0].LocalEndPoint.ToString(), h[1].LocalEndPoint.ToString(), "--timeout", Deadline);
        var comma = await InProcessCli.RunAsync("dht", "find-node", target, "--bootstrap", $"{h[0].LocalEndPoint},{h[1].LocalEndPoint}", "--timeout", Deadline);
        var repeated = await InProcessCli.RunAsync("dht", "find-node", target, "--bootstrap", h[0].LocalEndPoint.ToString(), "--bootstrap", h[1].LocalEndPoint.ToString(), "--timeout", Deadline);

        foreach (var run in new[] { spaced, comma, repeated })
        {
            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.StartsWith(target, run.StdoutLines[0], StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Get_peers_for_an_unknown_infohash_exits_1()
    {
        var run = await InProcessCli.RunAsync(
            "dht", "get-peers", NodeId.Random().ToString(), "--bootstrap", _fixture.Router, "--bind", "127.0.0.1", "--timeout", Deadline);

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Equal(string.Empty, run.Stdout);
        Assert.Contains("no peers found", Assert.Single(run.StderrLines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_lookup_through_a_dead_router_exits_1()
    {
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        var run = await InProcessCli.RunAsync(
            "dht", "find-node", NodeId.Random().ToString(), "--bootstrap", silent.LocalEndPoint!.ToString()!, "--timeout", "2");

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Equal(string.Empty, run.Stdout);
        Assert.Single(run.StderrLines);
    }
}
