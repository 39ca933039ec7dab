using System.CommandLine;

namespace Peerway.Cli.Tests;

public sealed class SimulateCommandTests
{
    private static Task<int> RunAsync(params string[] args)
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
    [InlineData("--max-memory", "lots")]
    [InlineData("--max-memory", "1m")] // below the 64 MiB floor
    [InlineData("--max-memory", "-5g")]
    [InlineData("--adversary-mode", "bribe")]
    [InlineData("--loss", "1")]
    [InlineData("--sweep-nodes", "3")]
    public async Task Bad_arguments_are_usage_errors(string option, string value)
    {
        Assert.Equal(CliRunner.UsageError, await RunAsync(option, value));
    }

    [Theory]
    [InlineData("14g", 14UL << 30)]
    [InlineData("14GiB", 14UL << 30)]
    [InlineData("512m", 512UL << 20)]
    [InlineData("1.5G", 3UL << 29)]
    [InlineData("2t", 2UL << 40)]
    [InlineData("65536k", 64UL << 20)]
    [InlineData("1000000", 1_000_000UL)]
    public void Sizes_parse_in_binary_units(string text, ulong expected)
    {
        Assert.True(SimulateCommand.TryParseSize(text, out var bytes));
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("")]
    [InlineData("g")]
    [InlineData("14x")]
    [InlineData("0")]
    [InlineData("1e9")]
    public void Bad_sizes_do_not_parse(string text) => Assert.False(SimulateCommand.TryParseSize(text, out _));

    /// <summary>
    /// --max-memory sets the GC heap hard limit of the process, so it runs out of process (the built peerway.dll next to
    /// the tests): a cap far below what 20,000 nodes need ends the run with exit 1 and one line naming the cap, and a
    /// generous cap changes nothing.
    /// </summary>
    [Theory]
    [InlineData("20000", "64m", 1)]
    [InlineData("300", "1g", 0)]
    public async Task Max_memory_caps_the_heap_of_the_run(string nodes, string cap, int expectedExit)
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "peerway.dll");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[] { cli, "simulate", "--nodes", nodes, "--lookups", "20", "--max-memory", cap, "--json" }) start.ArgumentList.Add(arg);
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }

        var err = await stderr;
        Assert.True(expectedExit == process.ExitCode, $"exit {process.ExitCode}\n{err}");
        if (expectedExit == 0)
        {
            using var json = System.Text.Json.JsonDocument.Parse(await stdout);
            Assert.Equal(300, json.RootElement.GetProperty("nodes").GetInt32());
        }
        else
        {
            Assert.Equal($"peerway: out of memory: this simulation needs more than --max-memory {cap} of managed heap", err.Trim());
        }
    }

    [Fact]
    public async Task An_out_path_that_is_a_file_is_a_usage_error_and_is_left_alone()
    {
        var file = Path.GetTempFileName();
        try
        {
            Assert.Equal(CliRunner.UsageError, await RunAsync("--nodes", "64", "--lookups", "20", "--out", file));
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
            Assert.Equal(CliRunner.Ok, await RunAsync("--nodes", "64", "--lookups", "20", "--sweep-nodes", "32", "--out", dir, "--json"));
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
