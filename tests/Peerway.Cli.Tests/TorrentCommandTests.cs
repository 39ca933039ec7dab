using System.Security.Cryptography;

namespace Peerway.Cli.Tests;

/// <summary>The BitTorrent commands' CLI contract: outputs, exit codes, one-line user errors.</summary>
public sealed class TorrentCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("peerway-torrent-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Create_prints_the_magnet_and_info_describes_the_torrent()
    {
        var file = Path.Combine(_dir, "data.bin");
        await File.WriteAllBytesAsync(file, RandomNumberGenerator.GetBytes(100_000));
        var torrent = Path.Combine(_dir, "data.torrent");
        var create = await InProcessCli.RunAsync("create", file, "-o", torrent, "--tracker", "http://127.0.0.1:6969/announce", "--piece-size", "32768");
        Assert.True(create.ExitCode == 0, create.ToString());
        var magnet = Assert.Single(create.StdoutLines);
        Assert.StartsWith("magnet:?xt=urn:btih:", magnet);
        var info = await InProcessCli.RunAsync("info", torrent);
        Assert.Equal(0, info.ExitCode);
        Assert.Contains(info.StdoutLines, l => l.StartsWith("name:", StringComparison.Ordinal) && l.EndsWith("data.bin", StringComparison.Ordinal));
        Assert.Contains(info.StdoutLines, l => l.StartsWith("pieces:", StringComparison.Ordinal) && l.Contains("4 x 32768", StringComparison.Ordinal));
        Assert.Contains(info.StdoutLines, l => l.StartsWith("info-hash:", StringComparison.Ordinal) && magnet.Contains(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("info", "/nonexistent.torrent")]
    [InlineData("create", "/nonexistent", "-o", "/tmp/x.torrent")]
    [InlineData("get", "magnet:?xt=urn:btih:zz", "-o", "/tmp/pw-x")]
    [InlineData("get", "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a", "-o", "/tmp/pw-x", "--peer", "nohostport")]
    [InlineData("get", "magnet:?xt=urn:btmh:1220a626eef9bec9f88f21715f243520352b63b5a8415f77a14c3e6ba49e9e9a3a1d", "-o", "/tmp/pw-x")] // BEP 52 v2-only
    [InlineData("get", "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a", "-o", "/tmp/pw-x", "--encryption", "sometimes")]
    [InlineData("share", "/nonexistent")]
    [InlineData("tracker", "--port", "70000")]
    [InlineData("demo", "--peers", "0")]
    [InlineData("demo", "--size-mib", "0")]
    public async Task User_errors_exit_2_with_one_line(params string[] args)
    {
        var run = await InProcessCli.RunAsync(args);
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Single(run.StderrLines);
    }

    [Theory]
    [InlineData("--encryption", "sometimes", "--encryption")]
    [InlineData("--transport", "carrier-pigeon", "--transport")]
    [InlineData("--lsd", "sometimes", "--lsd")]
    [InlineData("--proxy", "ftp://127.0.0.1:1", "--proxy")]
    [InlineData("--upload-limit", "0", "--upload-limit")]
    [InlineData("--webrtc", "maybe", "--webrtc")]
    [InlineData("--dht-ipv6", "maybe", "--dht-ipv6")]
    [InlineData("--tracker", "gopher://127.0.0.1/announce", "tracker URL")]
    public async Task Share_get_and_stream_refuse_a_bad_swarm_option_alike(string option, string value, string message)
    {
        var file = Path.Combine(_dir, "data.bin");
        await File.WriteAllBytesAsync(file, RandomNumberGenerator.GetBytes(1_000));
        const string Magnet = "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
        string[][] commands =
        [
            ["share", file, "--bind", "127.0.0.1"],
            ["get", Magnet, "-o", Path.Combine(_dir, "get"), "--bind", "127.0.0.1"],
            ["stream", Magnet, "-o", Path.Combine(_dir, "stream"), "--bind", "127.0.0.1"],
        ];
        foreach (var command in commands)
        {
            var run = await InProcessCli.RunAsync([.. command, option, value]);
            Assert.True(run.ExitCode == 2, $"{command[0]}: {run}");
            Assert.Contains(message, Assert.Single(run.StderrLines), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_torrent_that_fails_validation_is_a_usage_error_naming_the_problem()
    {
        var bad = Path.Combine(_dir, "bad.torrent");
        await File.WriteAllTextAsync(bad, "d4:infod6:lengthi1e4:name2:..12:piece lengthi16384e6:pieces20:xxxxxxxxxxxxxxxxxxxxee");
        var run = await InProcessCli.RunAsync("info", bad);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("traversal", Assert.Single(run.StderrLines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_v2_only_torrent_is_a_usage_error_saying_so()
    {
        // BEP 52: "meta version" 2 and a "file tree", no v1 "pieces" (what libtorrent 2.0 writes with v2_only).
        var v2 = Path.Combine(_dir, "v2.torrent");
        await File.WriteAllTextAsync(v2, "d4:infod9:file treed1:ad0:d6:lengthi1eeee12:meta versioni2e4:name1:a12:piece lengthi16384eee");
        var run = await InProcessCli.RunAsync("info", v2);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("v2-only", Assert.Single(run.StderrLines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Small_file_sharing_demo_verifies_every_copy()
    {
        var run = await InProcessCli.RunAsync("demo", "--peers", "2", "--size-mib", "2", "--seed", "5", "--timeout", "120");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(2, run.StdoutLines.Count(l => l.Contains("SHA-256 ok", StringComparison.Ordinal)));
        Assert.Contains(run.StdoutLines, l => l.Contains("seeder uploaded", StringComparison.Ordinal));
    }
}
