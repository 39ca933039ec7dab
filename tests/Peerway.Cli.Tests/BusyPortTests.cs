using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Peerway.TestSupport;

namespace Peerway.Cli.Tests;

/// <summary>
/// Issue 20, item 1: every command that binds says <c>cannot bind IP:PORT: Address already in use</c> on one line and
/// exits 1 when its port is taken (share and get used to end with an unhandled SocketException and exit 134).
/// </summary>
public sealed class BusyPortTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-busy-port");

    public void Dispose() => _temp.Dispose();

    /// <summary>A loopback port held for TCP (listening) and UDP, so a server of either kind cannot bind it.</summary>
    private sealed class TakenPort : IDisposable
    {
        private readonly Socket _tcp;
        private readonly Socket _udp;

        public TakenPort()
        {
            for (var attempt = 0; ; attempt++)
            {
                _tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                _tcp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                _tcp.Listen();
                Port = ((IPEndPoint)_tcp.LocalEndPoint!).Port;
                _udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                try
                {
                    _udp.Bind(new IPEndPoint(IPAddress.Loopback, Port));
                    return;
                }
                catch (SocketException) when (attempt < 50)
                {
                    // Taken for UDP by someone else: try another number.
                    _udp.Dispose();
                    _tcp.Dispose();
                }
            }
        }

        public int Port { get; }

        public string Text => Port.ToString(CultureInfo.InvariantCulture);

        public void Dispose()
        {
            _tcp.Dispose();
            _udp.Dispose();
        }
    }

    private static void AssertCannotBind(CliRun run, string where, string reason = "Address already in use")
    {
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Equal($"peerway: cannot bind {where}: {reason}", Assert.Single(run.StderrLines));
    }

    public static TheoryData<string> Servers() =>
    [
        "dht serve --bind 127.0.0.1 --port {port}",
        "stun-server --bind 127.0.0.1 --port {port} --threads 1",
        "turn-server --realm r --user a:b --bind 127.0.0.1 --port {port}",
        "signal --bind 127.0.0.1 --port {port}",
        "tracker --bind 127.0.0.1 --port {port}",
        "gateway --host 127.0.0.1 --port {port} --repo {dir}",
    ];

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task A_server_on_a_port_in_use_says_so_in_one_line_and_exits_1(string command)
    {
        using var taken = new TakenPort();
        var args = command.Replace("{port}", taken.Text, StringComparison.Ordinal).Replace("{dir}", _temp.Path, StringComparison.Ordinal).Split(' ');

        var run = await InProcessCli.RunAsync(args);

        AssertCannotBind(run, $"127.0.0.1:{taken.Port}");
    }

    [Fact]
    public async Task Share_on_a_port_in_use_says_so_in_one_line_and_exits_1()
    {
        var file = Path.Combine(_temp.Path, "data.bin");
        await File.WriteAllBytesAsync(file, new byte[40_000]);
        using var taken = new TakenPort();

        var run = await InProcessCli.RunAsync("share", file, "--bind", "127.0.0.1", "--port", taken.Text);

        AssertCannotBind(run, $"127.0.0.1:{taken.Port}");
        Assert.Equal(string.Empty, run.Stdout);
    }

    [Fact]
    public async Task Get_on_a_port_in_use_says_so_in_one_line_and_exits_1()
    {
        using var taken = new TakenPort();

        var run = await InProcessCli.RunAsync("get", "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a",
            "-o", Path.Combine(_temp.Path, "out"), "--bind", "127.0.0.1", "--port", taken.Text);

        AssertCannotBind(run, $"127.0.0.1:{taken.Port}");
    }

    [Fact]
    public async Task Share_and_get_on_the_wildcard_address_see_a_loopback_port_in_use()
    {
        // The default --bind 0.0.0.0 conflicts with 127.0.0.1:P too (what the user hit).
        var file = Path.Combine(_temp.Path, "data.bin");
        await File.WriteAllBytesAsync(file, new byte[40_000]);
        using var taken = new TakenPort();

        var share = await InProcessCli.RunAsync("share", file, "--port", taken.Text);
        var get = await InProcessCli.RunAsync("get", "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a", "-o", Path.Combine(_temp.Path, "out"), "-p", taken.Text);

        AssertCannotBind(share, $"0.0.0.0:{taken.Port}");
        AssertCannotBind(get, $"0.0.0.0:{taken.Port}");
    }

    [Fact]
    public async Task Tracker_with_only_its_udp_port_in_use_says_so()
    {
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        int port;
        while (true)
        {
            // A port free for TCP whose UDP twin we hold.
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = ((IPEndPoint)probe.LocalEndPoint!).Port;
            try
            {
                udp.Bind(new IPEndPoint(IPAddress.Loopback, port));
                break;
            }
            catch (SocketException)
            {
                // Try another.
            }
        }

        var run = await InProcessCli.RunAsync("tracker", "--bind", "127.0.0.1", "--port", port.ToString(CultureInfo.InvariantCulture));

        AssertCannotBind(run, $"127.0.0.1:{port}");
    }

    [Fact]
    public async Task Gateway_with_its_dht_port_in_use_says_so()
    {
        using var dhtPort = new TakenPort();

        var run = await InProcessCli.RunAsync("gateway", "--host", "127.0.0.1", "--port", FreePort.Tcp().ToString(CultureInfo.InvariantCulture),
            "--dht-port", dhtPort.Text, "--dht-bootstrap", "127.0.0.1:9", "--repo", _temp.Path);

        AssertCannotBind(run, $"127.0.0.1:{dhtPort.Port}");
    }

    [Theory]
    [InlineData("connect --signal http://127.0.0.1:9/ --id a --peer b --bind 192.0.2.1")]
    [InlineData("dht ping 127.0.0.1:9 --bind 192.0.2.1")]
    [InlineData("get magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a -o /tmp/pw-bind-x --bind 192.0.2.1 --dht-bootstrap 127.0.0.1:9")]
    [InlineData("share {file} --bind 192.0.2.1")]
    public async Task A_client_bound_to_an_address_not_on_this_host_says_so_in_one_line(string command)
    {
        // 192.0.2.1 (TEST-NET-1, RFC 5737) is on no interface: the bind fails like a taken port does.
        var file = Path.Combine(_temp.Path, "data.bin");
        await File.WriteAllBytesAsync(file, new byte[40_000]);

        var run = await InProcessCli.RunAsync(command.Replace("{file}", file, StringComparison.Ordinal).Split(' '));

        AssertCannotBind(run, "192.0.2.1:0", "Cannot assign requested address");
    }
}
