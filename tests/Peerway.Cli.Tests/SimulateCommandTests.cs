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
    [InlineData("--adversary-mode", "bribe")]
    [InlineData("--loss", "1")]
    [InlineData("--sweep-nodes", "3")]
    public async Task Bad_arguments_are_usage_errors(string option, string value)
    {
        Assert.Equal(CliRunner.UsageError, await Run(option, value));
    }
}
