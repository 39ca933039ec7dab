using System.Text.RegularExpressions;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Dht;

/// <summary>
/// Issue 17, item 6 with real processes on loopback: `peerway log serve` publishes an owner's log through a DHT of
/// `peerway dht serve`, `peerway log clone` copies it (every entry verified), and `clone --follow` takes an entry the
/// owner appends while both run.
/// </summary>
public sealed partial class LogReplicationProcessTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);
    private readonly TempDirectory _temp = new("peerway-log-repl");

    public void Dispose() => _temp.Dispose();

    [GeneratedRegex(@"^(?:cloned|ok) (\d+) entries root ([0-9a-f]{64})$")]
    private static partial Regex Summary();

    [Fact]
    public async Task Serve_publishes_clone_copies_and_a_follower_takes_a_new_entry()
    {
        await using var router = await ServedNode.StartAsync();
        var owner = Path.Combine(_temp.Path, "owner");
        var created = await PeerwayCli.RunAsync("log", "create", "journal", "-o", owner);
        Assert.True(created.ExitCode == 0, created.ToString());
        var logId = Assert.Single(created.StdoutLines);
        for (var i = 0; i < 3; i++) await AppendAsync(owner, i);
        var ownerRoot = Summary().Match(Assert.Single((await PeerwayCli.RunAsync("log", "verify", owner)).StdoutLines)).Groups[2].Value;

        string[] common = ["--bind", "127.0.0.1", "--bootstrap", router.EndPoint, "--interval", "1", "--timeout", "60"];
        await using var serve = PeerwayCli.Start(["log", "serve", owner, .. common]);
        var first = await serve.WaitForStdoutAsync(_ => true, PeerwayCli.DefaultLifetime);
        Assert.Matches($"^serving {Regex.Escape(logId)} length 3 listening 127\\.0\\.0\\.1:\\d+$", first);
        await serve.WaitForStdoutAsync(l => l.StartsWith("published length 3 on ", StringComparison.Ordinal), Wait);

        // A one-shot clone: every entry verified, the same root as the owner's.
        var copy = Path.Combine(_temp.Path, "copy");
        var cloned = await PeerwayCli.RunAsync(["log", "clone", logId, "-o", copy, .. common]);
        Assert.True(cloned.ExitCode == 0, cloned.ToString());
        var summary = Summary().Match(Assert.Single(cloned.StdoutLines));
        Assert.Equal(("3", ownerRoot), (summary.Groups[1].Value, summary.Groups[2].Value));
        var verified = await PeerwayCli.RunAsync("log", "verify", copy);
        Assert.True(verified.ExitCode == 0, verified.ToString());

        // A follower resumes that copy and takes the entry the owner appends while serving.
        await using var follower = PeerwayCli.Start(["log", "clone", logId, "-o", copy, "--follow", .. common]);
        await follower.WaitForStdoutAsync(l => l.StartsWith("serving ", StringComparison.Ordinal), Wait);
        await AppendAsync(owner, 3);
        await serve.WaitForStdoutAsync(l => l.StartsWith("published length 4 on ", StringComparison.Ordinal), Wait);
        var line = await follower.WaitForStdoutAsync(l => l.StartsWith("length 4 ", StringComparison.Ordinal), Wait);
        var newRoot = Summary().Match(Assert.Single((await PeerwayCli.RunAsync("log", "verify", owner)).StdoutLines)).Groups[2].Value;
        Assert.Equal($"length 4 root {newRoot}", line);

        await follower.SignalAsync("TERM");
        Assert.Equal(0, await follower.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        await serve.SignalAsync("TERM");
        Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        verified = await PeerwayCli.RunAsync("log", "verify", copy);
        Assert.True(verified.ExitCode == 0, verified.ToString());
        Assert.Equal($"ok 4 entries root {newRoot}", Assert.Single(verified.StdoutLines));
    }

    private async Task AppendAsync(string dir, int i)
    {
        var file = Path.Combine(_temp.Path, $"entry{i}.txt");
        await File.WriteAllTextAsync(file, $"entry {i}");
        var appended = await PeerwayCli.RunAsync("log", "append", dir, file);
        Assert.True(appended.ExitCode == 0, appended.ToString());
    }
}
