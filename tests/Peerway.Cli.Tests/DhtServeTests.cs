using System.Text.RegularExpressions;
using Peerway.TestSupport;

namespace Peerway.Cli.Tests;

/// <summary>`peerway dht serve`: the first line, shutdown on cancellation (SIGINT/SIGTERM), the state file.</summary>
public sealed partial class DhtServeTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-serve");

    [GeneratedRegex(@"^node ([0-9a-f]{40}) listening (127\.0\.0\.1):(\d+)$")]
    private static partial Regex FirstLine();

    public void Dispose() => _temp.Dispose();

    private sealed record Served(int ExitCode, string FirstLine, string Id, string EndPoint, string Stderr);

    /// <summary>Runs serve until its first line is out, runs <paramref name="whileUp"/>, then cancels it like SIGTERM.</summary>
    private static async Task<Served> ServeAsync(Func<string, Task> whileUp, params string[] args)
    {
        var output = new LineWriter();
        var error = new LineWriter();
        using var stop = new CancellationTokenSource();
        var run = CliRunner.RunAsync(InProcessCli.CreateRoot(), ["dht", "serve", "--bind", "127.0.0.1", "--port", "0", .. args], output, error, stop.Token);
        var first = await output.WaitForLineAsync(_ => true).WaitAsync(TimeSpan.FromSeconds(60));
        var m = FirstLine().Match(first);
        Assert.True(m.Success, $"first line: {first}");
        var endpoint = $"{m.Groups[2].Value}:{m.Groups[3].Value}";
        await whileUp(endpoint);
        await stop.CancelAsync();
        var code = await run.WaitAsync(TimeSpan.FromSeconds(60));
        return new Served(code, first, m.Groups[1].Value, endpoint, error.Text);
    }

    [Fact]
    public async Task Serve_prints_its_id_answers_pings_and_exits_0_when_stopped()
    {
        string? pinged = null;
        var served = await ServeAsync(async endpoint =>
        {
            var ping = await InProcessCli.RunAsync("dht", "ping", endpoint, "--bind", "127.0.0.1");
            Assert.True(ping.ExitCode == 0, ping.ToString());
            pinged = Assert.Single(ping.StdoutLines);
        });

        Assert.True(served.ExitCode == 0, served.Stderr);
        Assert.Equal(served.Id, pinged);
    }

    [Fact]
    public async Task A_read_only_node_answers_no_ping()
    {
        var served = await ServeAsync(async endpoint =>
        {
            // BEP 43: a read-only node sends queries but answers none.
            var ping = await InProcessCli.RunAsync("dht", "ping", endpoint, "--bind", "127.0.0.1", "--timeout", "1");
            Assert.True(ping.ExitCode == 1, ping.ToString());
        }, "--read-only");

        Assert.True(served.ExitCode == 0, served.Stderr);
    }

    [Fact]
    public async Task Serve_json_first_line_is_a_document()
    {
        var output = new LineWriter();
        using var stop = new CancellationTokenSource();
        var run = CliRunner.RunAsync(InProcessCli.CreateRoot(), ["dht", "serve", "--bind", "127.0.0.1", "--port", "0", "--json"], output, new LineWriter(), stop.Token);
        var first = await output.WaitForLineAsync(_ => true).WaitAsync(TimeSpan.FromSeconds(60));
        await stop.CancelAsync();

        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(60)));
        using var doc = System.Text.Json.JsonDocument.Parse(first);
        Assert.Matches("^[0-9a-f]{40}$", doc.RootElement.GetProperty("node").GetString());
        Assert.StartsWith("127.0.0.1:", doc.RootElement.GetProperty("listening").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_restarted_node_reuses_its_id_and_rejoins_from_the_state_file_without_bootstrap()
    {
        var stateA = Path.Combine(_temp.Path, "a.state");
        var stateB = Path.Combine(_temp.Path, "b.state");

        // A and B meet (B bootstraps from A), then both stop and save.
        Served? b1 = null;
        var a1 = await ServeAsync(
            async a =>
            {
                b1 = await ServeAsync(
                    async b =>
                    {
                        // B's bootstrap completes in the background; a ping from A's side proves B is up.
                        var ping = await InProcessCli.RunAsync("dht", "ping", b, "--bind", "127.0.0.1");
                        Assert.Equal(0, ping.ExitCode);
                        var find = await InProcessCli.RunAsync("dht", "find-node", ping.StdoutLines[0], "--bootstrap", a, "--bind", "127.0.0.1");
                        Assert.True(find.ExitCode == 0, find.ToString());
                    },
                    "--bootstrap", a, "--state", stateB);
            },
            "--state", stateA);
        Assert.Equal(0, a1.ExitCode);
        Assert.Equal(0, b1!.ExitCode);
        Assert.True(File.Exists(stateB));

        // B restarts alone with its state file: same id, and it knows A (saved contact) without any --bootstrap.
        var bytesBefore = await File.ReadAllBytesAsync(stateB);
        var b2 = await ServeAsync(_ => Task.CompletedTask, "--state", stateB);

        Assert.Equal(0, b2.ExitCode);
        Assert.Equal(b1.Id, b2.Id);
        Assert.NotEmpty(bytesBefore);
        Assert.True(Peerway.Dht.DhtNode.TryLoadState(bytesBefore, out var saved));
        Assert.Contains(saved!.Nodes, n => n.Id.ToString() == a1.Id);
        Assert.Empty(Directory.GetFiles(_temp.Path, "*.tmp"));
    }

    [Fact]
    public async Task A_corrupt_state_file_is_an_error_and_is_left_untouched()
    {
        var state = Path.Combine(_temp.Path, "bad.state");
        byte[] junk = [(byte)'d', (byte)'2', (byte)':', (byte)'i', (byte)'d'];
        await File.WriteAllBytesAsync(state, junk);

        var run = await InProcessCli.RunAsync("dht", "serve", "--bind", "127.0.0.1", "--port", "0", "--state", state);

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Equal(string.Empty, run.Stdout);
        Assert.Contains("not a valid DHT state file", Assert.Single(run.StderrLines), StringComparison.Ordinal);
        Assert.Equal(junk, await File.ReadAllBytesAsync(state));
    }
}
