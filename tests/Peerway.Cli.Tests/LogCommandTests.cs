namespace Peerway.Cli.Tests;

/// <summary><c>peerway log create|append|verify</c>: the contract in README's CLI reference.</summary>
public sealed class LogCommandTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "pw-logcli-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task A_log_is_created_appended_verified_and_tampering_is_named_by_entry()
    {
        var dir = Path.Combine(_root, "journal");
        var created = await InProcessCli.RunAsync("log", "create", "journal", "-o", dir);
        Assert.True(created.ExitCode == 0, created.ToString());
        Assert.Matches("^[0-9a-f]{64}/journal$", Assert.Single(created.StdoutLines));

        for (var i = 0; i < 3; i++)
        {
            var file = Path.Combine(_root, $"e{i}.txt");
            await File.WriteAllTextAsync(file, $"entry {i}");
            var appended = await InProcessCli.RunAsync("log", "append", dir, file);
            Assert.True(appended.ExitCode == 0, appended.ToString());
            Assert.Matches($"^length {i + 1} root [0-9a-f]{{64}}$", Assert.Single(appended.StdoutLines));
        }

        var verified = await InProcessCli.RunAsync("log", "verify", dir);
        Assert.True(verified.ExitCode == 0, verified.ToString());
        Assert.Matches("^ok 3 entries root [0-9a-f]{64}$", Assert.Single(verified.StdoutLines));

        await File.WriteAllTextAsync(Path.Combine(dir, "entries", "0000000001"), "entry one, changed");
        verified = await InProcessCli.RunAsync("log", "verify", dir);
        Assert.Equal(1, verified.ExitCode);
        Assert.Equal("peerway: entry 1 does not match its signed hash", Assert.Single(verified.StderrLines));
    }

    [Fact]
    public async Task Usage_errors_are_one_line_and_exit_2()
    {
        var existing = Directory.CreateDirectory(Path.Combine(_root, "full"));
        await File.WriteAllTextAsync(Path.Combine(existing.FullName, "x"), "x");
        var run = await InProcessCli.RunAsync("log", "create", "n", "-o", existing.FullName);
        Assert.Equal(2, run.ExitCode);
        Assert.Single(run.StderrLines);
        run = await InProcessCli.RunAsync("log", "verify", Path.Combine(_root, "nothing"));
        Assert.Equal(2, run.ExitCode);
        Assert.Single(run.StderrLines);
        run = await InProcessCli.RunAsync("log", "create", new string('n', 65), "-o", Path.Combine(_root, "long"));
        Assert.Equal(2, run.ExitCode);
        foreach (var id in new[] { "abc/journal", new string('a', 64), new string('a', 64) + "/", new string('g', 64) + "/journal" })
        {
            run = await InProcessCli.RunAsync("log", "clone", id, "-o", Path.Combine(_root, "copy"), "--bootstrap", "127.0.0.1:1");
            Assert.True(run.ExitCode == 2, run.ToString());
            Assert.Single(run.StderrLines);
        }

        run = await InProcessCli.RunAsync("log", "clone", new string('a', 64) + "/journal", "-o", existing.FullName, "--bootstrap", "127.0.0.1:1");
        Assert.Equal(2, run.ExitCode);
        var owned = Path.Combine(_root, "owned");
        Assert.Equal(0, (await InProcessCli.RunAsync("log", "create", "big", "-o", owned)).ExitCode);
        var big = Path.Combine(_root, "big.bin");
        await File.WriteAllBytesAsync(big, new byte[Peerway.Dht.Log.LogDirectory.MaxEntryLength + 1]);
        run = await InProcessCli.RunAsync("log", "append", owned, big);
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Single(run.StderrLines);
        run = await InProcessCli.RunAsync("log", "serve", Path.Combine(_root, "nothing"), "--bootstrap", "127.0.0.1:1", "--interval", "0");
        Assert.Equal(2, run.ExitCode);
    }
}
