namespace Peerway.Cli.Tests;

/// <summary>Issue 18 item 7: the file-sharing demo runs a <c>peerway node</c>, prints its dashboard early and adds the demo torrent through its RPC.</summary>
public sealed class DemoNodeTests
{
    [Fact]
    public async Task The_demo_prints_the_dashboard_before_the_swarm_and_its_node_downloads_through_the_rpc()
    {
        var run = await InProcessCli.RunAsync("demo", "--peers", "2", "--size-mib", "2", "--seed", "9", "--timeout", "120");
        Assert.True(run.ExitCode == 0, run.ToString());
        var lines = run.StdoutLines.ToList();
        var dashboard = lines.FindIndex(l => l.StartsWith("dashboard: http://127.0.0.1:", StringComparison.Ordinal));
        Assert.True(dashboard == 0, run.ToString());
        Assert.True(lines.FindIndex(l => l.StartsWith("peer ", StringComparison.Ordinal)) > dashboard, run.ToString());
        Assert.Contains("node: peerway-demo.bin 100% through the Transmission RPC, SHA-256 matches the source", lines);
        // The swarm's own summary is unchanged: one "SHA-256 ok" row per downloader.
        Assert.Equal(2, lines.Count(l => l.Contains("SHA-256 ok", StringComparison.Ordinal)));
    }
}
