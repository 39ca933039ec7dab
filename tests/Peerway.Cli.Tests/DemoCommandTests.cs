namespace Peerway.Cli.Tests;

public sealed class DemoCommandTests
{
    [Fact]
    public async Task A_small_demo_finds_every_announce_and_prints_the_summary()
    {
        var run = await InProcessCli.RunAsync("demo", "--dht-only", "--nodes", "16", "--infohashes", "5", "--seed", "7");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains(run.StdoutLines, l => l.Trim().StartsWith("nodes", StringComparison.Ordinal) && l.TrimEnd().EndsWith(" 16", StringComparison.Ordinal));
        Assert.Contains(run.StdoutLines, l => l.Contains("success rate", StringComparison.Ordinal) && l.Contains("100.0% (10/10)", StringComparison.Ordinal));
        foreach (var metric in new[] { "lookups", "rounds (mean / p90)", "messages sent", "time" })
        {
            Assert.Contains(run.StdoutLines, l => l.TrimStart().StartsWith(metric, StringComparison.Ordinal));
        }
    }
}
