namespace Peerway.Cli.Tests;

/// <summary>The CLI contract for user errors: one line on stderr, nothing on stdout, exit code 2.</summary>
public sealed class DhtUsageErrorTests
{
    private const string Hash = "0123456789abcdef0123456789abcdef01234567";

    public static TheoryData<string[]> UsageErrors => new()
    {
        // bad hex
        new[] { "dht", "find-node", "xyz", "--bootstrap", "127.0.0.1:6881" },
        new[] { "dht", "find-node", Hash[..39], "--bootstrap", "127.0.0.1:6881" },
        new[] { "dht", "get-peers", Hash + "0", "--bootstrap", "127.0.0.1:6881" },
        new[] { "dht", "get-peers", "g123456789abcdef0123456789abcdef01234567", "--bootstrap", "127.0.0.1:6881" },
        new[] { "dht", "announce", "nothex", "--port", "6881", "--bootstrap", "127.0.0.1:6881" },
        // bad endpoints
        new[] { "dht", "ping", "127.0.0.1" },
        new[] { "dht", "ping", "127.0.0.1:" },
        new[] { "dht", "ping", ":6881" },
        new[] { "dht", "ping", "127.0.0.1:65536" },
        new[] { "dht", "ping", "127.0.0.1:0" },
        new[] { "dht", "ping", "127.0.0.1:-1" },
        new[] { "dht", "ping", "::1:6881" },
        new[] { "dht", "ping", "[::1]" },
        new[] { "dht", "ping", "[127.0.0.1]:6881" },
        new[] { "dht", "ping", "bad_host!:6881" },
        new[] { "dht", "ping", "300.1.1.1:6881" },
        new[] { "dht", "find-node", Hash, "--bootstrap", "nope" },
        new[] { "dht", "get-peers", Hash, "--bootstrap", "127.0.0.1:6881", "--bootstrap", "127.0.0.1:x" },
        // bad ports
        new[] { "dht", "announce", Hash, "--port", "0", "--bootstrap", "127.0.0.1:6881" },
        new[] { "dht", "announce", Hash, "--port", "65536", "--bootstrap", "127.0.0.1:6881" },
        new[] { "dht", "announce", Hash, "--port", "http", "--bootstrap", "127.0.0.1:6881" },
        new[] { "dht", "serve", "--port", "70000" },
        new[] { "dht", "serve", "--port", "-5" },
        // bad bind / timeout / missing arguments / unknown options
        new[] { "dht", "serve", "--bind", "localhost" },
        new[] { "dht", "serve", "--bind", "10.1" },
        new[] { "dht", "ping", "127.0.0.1:6881", "--bind", "not-an-ip" },
        new[] { "dht", "ping", "127.0.0.1:6881", "--timeout", "0" },
        new[] { "dht", "ping", "127.0.0.1:6881", "--timeout", "-3" },
        new[] { "dht", "ping", "127.0.0.1:6881", "--timeout", "soon" },
        new[] { "dht", "find-node", Hash },
        new[] { "dht", "get-peers", Hash },
        new[] { "dht", "announce", Hash, "--bootstrap", "127.0.0.1:6881" },
        new[] { "dht", "ping" },
        new[] { "dht", "ping", "127.0.0.1:6881", "--frobnicate" },
        new[] { "dht", "serve", "--state", "" },
        new[] { "dht", "serve", "--rate-limit", "0" },
        new[] { "demo", "--dht-only", "--nodes", "1" },
    };

    [Theory]
    [MemberData(nameof(UsageErrors))]
    public async Task Usage_errors_print_one_line_and_exit_2(string[] args)
    {
        var run = await InProcessCli.RunAsync(args);

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Equal(string.Empty, run.Stdout);
        var line = Assert.Single(run.StderrLines);
        Assert.StartsWith("peerway: ", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_hex_error_names_the_value()
    {
        var run = await InProcessCli.RunAsync("dht", "get-peers", "abc", "--bootstrap", "127.0.0.1:1");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("'abc' is not 40 hex digits", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_endpoint_error_says_what_was_expected()
    {
        var run = await InProcessCli.RunAsync("dht", "ping", "example");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("HOST:PORT", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serving_on_a_port_in_use_is_a_runtime_error()
    {
        using var taken = new System.Net.Sockets.Socket(
            System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        taken.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        var port = ((System.Net.IPEndPoint)taken.LocalEndPoint!).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var run = await InProcessCli.RunAsync("dht", "serve", "--bind", "127.0.0.1", "--port", port);

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Equal(string.Empty, run.Stdout);
        Assert.Contains("cannot bind", Assert.Single(run.StderrLines), StringComparison.Ordinal);
    }
}
