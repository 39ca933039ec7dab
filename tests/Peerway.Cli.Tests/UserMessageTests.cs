using Peerway.TestSupport;
namespace Peerway.Cli.Tests;

/// <summary>Issue 20, item 7: messages a user understands, each one line on stderr with the right exit code.</summary>
public sealed class UserMessageTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-messages");

    public void Dispose() => _temp.Dispose();

    private static async Task<string> UsageErrorAsync(params string[] args)
    {
        var run = await InProcessCli.RunAsync(args);
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Equal(string.Empty, run.Stdout);
        return Assert.Single(run.StderrLines);
    }

    [Theory]
    [InlineData("bogus", "peerway: unknown command 'bogus'; run 'peerway --help' to list the commands")]
    [InlineData("help", "peerway: unknown command 'help'; run 'peerway --help' to list the commands")]
    [InlineData("dht bogus", "peerway: unknown command 'bogus'; run 'peerway dht --help' to list the commands")]
    [InlineData("car", "peerway: missing command; run 'peerway car --help' to list them")]
    public async Task An_unknown_or_missing_command_is_named_and_points_to_help(string args, string expected)
    {
        Assert.Equal(expected, await UsageErrorAsync(args.Split(' ')));
    }

    [Fact]
    public async Task No_command_at_all_points_to_help()
    {
        Assert.Equal("peerway: missing command; run 'peerway --help' to list them", await UsageErrorAsync());
    }

    /// <summary>Every option that takes a port, on every command: one wording for a bad value.</summary>
    [Theory]
    [InlineData("tracker --port {0}", true)]
    [InlineData("share /nonexistent --port {0}", true)]
    [InlineData("get magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a -o /tmp/pw-x --port {0}", true)]
    [InlineData("stun-server --port {0}", true)]
    [InlineData("turn-server --realm r --user a:b --port {0}", true)]
    [InlineData("signal --port {0}", false)]
    [InlineData("gateway --port {0}", false)]
    [InlineData("gateway --dht-port {0}", true)]
    [InlineData("dht serve --port {0}", true)]
    [InlineData("dht announce 0123456789abcdef0123456789abcdef01234567 --bootstrap 127.0.0.1:9 --port {0}", false)]
    public async Task A_bad_port_is_worded_the_same_everywhere(string command, bool zeroAllowed)
    {
        var option = command.Contains("--dht-port", StringComparison.Ordinal) ? "--dht-port" : "--port";
        var range = zeroAllowed ? "0-65535" : "1-65535";
        foreach (var bad in new[] { "abc", "70000", "-1", zeroAllowed ? "1e3" : "0" })
        {
            var line = await UsageErrorAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, command, bad).Split(' '));
            Assert.Equal($"peerway: {option} '{bad}' is not a valid port ({range})", line);
        }
    }

    [Theory]
    [InlineData("demo --timeout soon", "peerway: --timeout 'soon' is not a whole number")]
    [InlineData("demo --peers many", "peerway: --peers 'many' is not a whole number")]
    [InlineData("nat probe 127.0.0.1:9 --rto fast", "peerway: --rto 'fast' is not a number")]
    public async Task A_value_that_is_not_a_number_says_so_without_naming_a_clr_type(string args, string expected)
    {
        var line = await UsageErrorAsync(args.Split(' '));
        Assert.Equal(expected, line);
        Assert.DoesNotContain("System.", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("magnet:?xt=urn:btih:zz", "the info-hash (xt=urn:btih:) is neither 40 hex digits nor 32 base32 characters")]
    [InlineData("magnet:?dn=x", "no info-hash (an xt=urn:btih: parameter)")]
    [InlineData("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&tr=ftp://x", "a tracker (tr=) is not an http, https, udp, ws or wss URL")]
    [InlineData("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&x.pe=nohostport", "a peer (x.pe=) is not HOST:PORT")]
    [InlineData("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=%zz", "bad percent-encoding")]
    public async Task A_bad_magnet_link_is_described_in_words(string magnet, string words)
    {
        var line = await UsageErrorAsync("get", magnet, "-o", "/tmp/pw-x");
        Assert.Equal($"peerway: invalid magnet link: {words}", line);
    }

    [Fact]
    public async Task Get_into_an_existing_file_is_a_usage_error()
    {
        var file = Path.Combine(_temp.Path, "notes.txt");
        await File.WriteAllTextAsync(file, "mine");

        var line = await UsageErrorAsync("get", "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a", "-o", file);

        Assert.Equal($"peerway: -o {file} is an existing file: give a directory to download into", line);
        Assert.Equal("mine", await File.ReadAllTextAsync(file));
    }

    [Fact]
    public async Task Fetch_says_when_no_gateway_could_be_reached()
    {
        var port = FreePort.Tcp(); // nothing listens there: connection refused

        var cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
        var run = await InProcessCli.RunAsync("fetch", cid, "-o", Path.Combine(_temp.Path, "out"), "--gateway", $"http://127.0.0.1:{port}/", "--repo", _temp.Path);

        Assert.True(run.ExitCode == 1, run.ToString());
        var line = Assert.Single(run.StderrLines);
        Assert.StartsWith($"peerway: cannot fetch {cid}: no gateway could be reached (http://127.0.0.1:{port}/: Connection refused", line);
        Assert.DoesNotContain("repository", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Fetch_from_a_gateway_without_the_block_says_the_gateway_does_not_have_it()
    {
        var gatewayOut = new LineWriter();
        using var stop = new CancellationTokenSource();
        var emptyRepo = Directory.CreateDirectory(Path.Combine(_temp.Path, "empty")).FullName;
        var port = FreePort.Tcp();

        var gateway = CliRunner.RunAsync(InProcessCli.CreateRoot(),
            ["gateway", "--host", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--repo", emptyRepo],
            gatewayOut, new LineWriter(), stop.Token);
        await gatewayOut.WaitForLineAsync(l => l.StartsWith("gateway listening", StringComparison.Ordinal)).WaitAsync(TimeSpan.FromSeconds(60));

        var cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
        var run = await InProcessCli.RunAsync("fetch", cid, "-o", Path.Combine(_temp.Path, "out"), "--gateway", $"http://127.0.0.1:{port}/", "--repo", _temp.Path);
        await stop.CancelAsync();
        await gateway.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Equal($"peerway: cannot fetch {cid}: no gateway has block {cid} (http://127.0.0.1:{port}/ answered HTTP 404)", Assert.Single(run.StderrLines));
    }
}
