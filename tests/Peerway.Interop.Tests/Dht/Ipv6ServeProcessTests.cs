using System.Text.RegularExpressions;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Dht;

/// <summary>BEP 32 with real processes on ::1: two `peerway dht serve --bind [::1]:0` nodes, the second joining through
/// the first, and the client commands (ping, announce, get-peers) on IPv6 loopback.</summary>
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
}
