using System.Text.RegularExpressions;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Dht;

/// <summary>BEP 32 with real processes on ::1: two `peerway dht serve --bind [::1]:0` nodes, the second joining through
/// the first, and the client commands (ping, announce, get-peers) on IPv6 loopback; the same commands against a
/// libtorrent 2.0 DHT node on ::1 (tests/interop-peers/lt-dht-sample.py serve6). bittorrent-dht 11 has no IPv6 DHT.</summary>
public sealed partial class Ipv6ServeProcessTests
{
    [GeneratedRegex(@"^node ([0-9a-f]{40}) listening \[::1\]:(\d+)$")]
    private static partial Regex FirstLine();

    [Fact]
    public async Task Two_nodes_on_ipv6_loopback_join_and_answer_the_client_commands()
    {
        await using var first = PeerwayCli.Start("dht", "serve", "--bind", "[::1]:0");
        var m1 = FirstLine().Match(await first.WaitForStdoutAsync(_ => true, PeerwayCli.DefaultLifetime));
        Assert.True(m1.Success, first.Stdout);
        var firstEndPoint = $"[::1]:{m1.Groups[2].Value}";
        await using var second = PeerwayCli.Start("dht", "serve", "--bind", "[::1]:0", "--bootstrap", firstEndPoint);
        var m2 = FirstLine().Match(await second.WaitForStdoutAsync(_ => true, PeerwayCli.DefaultLifetime));
        Assert.True(m2.Success, second.Stdout);
        var secondEndPoint = $"[::1]:{m2.Groups[2].Value}";

        var ping = await PeerwayCli.RunAsync("dht", "ping", secondEndPoint);
        Assert.True(ping.ExitCode == 0, ping.ToString());
        Assert.Equal([m2.Groups[1].Value], ping.StdoutLines);

        const string infoHash = "32323232323232323232323232323232dead0032";
        var announce = await PeerwayCli.RunAsync("dht", "announce", infoHash, "--port", "45032", "--bootstrap", firstEndPoint);
        Assert.True(announce.ExitCode == 0, announce.ToString());
        var peers = await PeerwayCli.RunAsync("dht", "get-peers", infoHash, "--bootstrap", secondEndPoint);
        Assert.True(peers.ExitCode == 0, peers.ToString());
        Assert.Contains("[::1]:45032", peers.StdoutLines);

        // A port in --bind and --port at once is a usage error.
        var both = await PeerwayCli.RunAsync("dht", "serve", "--bind", "[::1]:0", "--port", "0");
        Assert.Equal(2, both.ExitCode);
    }

    [RequiresLibtorrentFact]
    public async Task The_client_commands_work_against_a_libtorrent_node_on_ipv6_loopback()
    {
        LibtorrentTool.Require();
        var driver = Path.Combine(RepoRoot.Find(), "tests", "interop-peers", "lt-dht-sample.py");
        await using var lt = ExternalProcess.Start(LibtorrentTool.Python, [driver, "serve6"], TimeSpan.FromSeconds(180), RepoRoot.Find());
        var first = await lt.WaitForStdoutAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), TimeSpan.FromSeconds(90));
        var endPoint = "[::1]:" + first["listening ".Length..];

        var ping = await PeerwayCli.RunAsync("dht", "ping", endPoint, "--timeout", "30");
        Assert.True(ping.ExitCode == 0, ping.ToString());
        Assert.Matches("^[0-9a-f]{40}$", Assert.Single(ping.StdoutLines));
        // announce_peer and get_peers over IPv6: libtorrent stores our peer and hands it back as an 18-byte value.
        const string infoHash = "32323232323232323232323232323232dead0033";
        var announce = await PeerwayCli.RunAsync("dht", "announce", infoHash, "--port", "45033", "--bootstrap", endPoint, "--timeout", "30");
        Assert.True(announce.ExitCode == 0, announce.ToString());
        var peers = await PeerwayCli.RunAsync("dht", "get-peers", infoHash, "--bootstrap", endPoint, "--timeout", "30");
        Assert.True(peers.ExitCode == 0, peers.ToString());
        Assert.Equal(["[::1]:45033"], peers.StdoutLines);
    }
}
