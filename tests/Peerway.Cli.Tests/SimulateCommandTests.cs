using System.CommandLine;

namespace Peerway.Cli.Tests;

public sealed class SimulateCommandTests
{
    private static Task<int> Run(params string[] args)
    {
        var root = new RootCommand("test");
        root.Subcommands.Add(SimulateCommand.Create());
        return CliRunner.RunAsync(root, ["simulate", .. args]);
    }

    [Theory]
    [InlineData("--nodes", "1")]
    [InlineData("--nodes", "abc")]
    [InlineData("--lookups", "-5")]
    [InlineData("--churn", "poisson:3")]
    [InlineData("--churn", "weibull:0.5")]
    [InlineData("--adversaries", "0.95")]
    [InlineData("--disjoint", "0")]
    [InlineData("--disjoint", "9")] // more paths than k = 8 closest nodes to deal out
    [InlineData("--out", "/proc/peerway-cannot-create-this")]
    [InlineData("--adversary-mode", "bribe")]
    [InlineData("--loss", "1")]
    [InlineData("--sweep-nodes", "3")]
    public async Task Bad_arguments_are_usage_errors(string option, string value)
    {
        Assert.Equal(CliRunner.UsageError, await Run(option, value));
    }

    [Fact]
    public async Task An_out_path_that_is_a_file_is_a_usage_error_and_is_left_alone()
    {
        var file = Path.GetTempFileName();
        try
        {
            Assert.Equal(CliRunner.UsageError, await Run("--nodes", "64", "--lookups", "20", "--out", file));
            Assert.Equal(0, new FileInfo(file).Length);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task A_small_simulation_with_out_writes_the_summary_and_plots()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"peerway-sim-{Guid.NewGuid():N}");
        try
        {
            Assert.Equal(CliRunner.Ok, await Run("--nodes", "64", "--lookups", "20", "--sweep-nodes", "32", "--out", dir, "--json"));
            foreach (var name in new[] { "summary.json", "summary.txt", "rounds-vs-nodes.svg", "rounds-vs-nodes.png", "success-vs-churn.svg", "success-vs-churn.png", "success-vs-adversaries.svg", "success-vs-adversaries.png" })
            {
                Assert.True(new FileInfo(Path.Combine(dir, name)).Length > 100, name);
            }

            using var json = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(dir, "summary.json")));
            Assert.Equal(64, json.RootElement.GetProperty("main").GetProperty("nodes").GetInt32());
            Assert.Equal(20, json.RootElement.GetProperty("byAdversaries").GetArrayLength());
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
