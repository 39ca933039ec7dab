using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Nat.Turn;
using Peerway.Net;
using Peerway.Node.Nat;

namespace Peerway.Interop.Tests.Nat;

/// <summary>
/// Our TURN server with coturn's turnutils_uclient allocating, binding channels and echoing through turnutils_peer,
/// and our TURN client against coturn's turnserver, all on loopback.
/// </summary>
public sealed class TurnInteropTests
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(90);

    private static string S(int n) => n.ToString(CultureInfo.InvariantCulture);

    private static TurnServerHost StartOurs(Func<TurnServerOptions, TurnServerOptions>? change = null, bool shareRelayThread = false)
    {
        var options = new TurnServerOptions
        {
            Realm = "peerway.test",
            Users = new Dictionary<string, string> { ["alice"] = "wonderland" },
            SharedSecret = "rest-secret",
            AllowedPeers = [IPNetwork.Parse("127.0.0.0/8")],
        };
        options = change is null ? options : change(options);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return TurnServerHost.Start(new IPEndPoint(IPAddress.Loopback, FreePort.TcpAndUdp()), new UdpRelaySocketFactory(IPAddress.Loopback), options, TimeProvider.System, NullLoggerFactory.Instance, shareRelayThread);
            }
            catch (System.Net.Sockets.SocketException) when (attempt < 20)
            {
                // Raced for the port: try another.
            }
        }
    }

    internal static async Task<(ExternalProcess Peer, int Port)> StartPeerAsync()
    {
        var tool = RequiredTool.Require("turnutils_peer", "apt-get install coturn");
        var port = FreePort.Udp();
        var peer = ExternalProcess.Start(tool, ["-p", S(port), "-L", "127.0.0.1"], TimeSpan.FromMinutes(3));
        // turnutils_peer prints nothing when ready: wait until its UDP port is bound (observable state, bounded).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!(await File.ReadAllTextAsync("/proc/net/udp")).Contains($":{port:X4} ", StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline || peer.HasExited) throw new TimeoutException("turnutils_peer did not bind its port");
            await Task.Delay(50);
        }

        return (peer, port);
    }

    private static async Task<string> RunUclientAsync(int serverPort, int peerPort, params string[] extra)
    {
        var tool = RequiredTool.Require("turnutils_uclient", "apt-get install coturn");
        string[] args = [.. extra, "-e", "127.0.0.1", "-r", S(peerPort), "-p", S(serverPort), "-n", "30", "-l", "120", "-c", "127.0.0.1"];
        await using var client = ExternalProcess.Start(tool, args, ToolTimeout);
        await client.WaitForExitAsync(ToolTimeout);
        return client.Stdout + "\n" + client.Stderr;
    }

    [RequiresToolFact("turnutils_uclient", "turnutils_peer")]
    public async Task Uclient_echoes_through_our_server_with_long_term_and_rest_credentials_over_udp_and_tcp()
    {
        await using var host = StartOurs();
        var (peer, peerPort) = await StartPeerAsync();
        await using (peer)
        {
            var port = host.UdpEndPoint.Port;
            foreach (var args in new[]
            {
                new[] { "-u", "alice", "-w", "wonderland" },              // UDP, channels (ChannelData)
                new[] { "-u", "alice", "-w", "wonderland", "-s" },        // UDP, Send/Data indications
                new[] { "-t", "-u", "alice", "-w", "wonderland" },        // TCP, padded ChannelData
                new[] { "-u", "alice", "-W", "rest-secret" },             // REST API credentials
                new[] { "-t", "-s", "-u", "alice", "-W", "rest-secret" },
            })
            {
                var output = await RunUclientAsync(port, peerPort, args);
                Assert.True(output.Contains("tot_send_msgs=30, tot_recv_msgs=30", StringComparison.Ordinal), $"{string.Join(' ', args)}:\n{output}");
                Assert.Contains("Total lost packets 0 ", output, StringComparison.Ordinal);
            }

            Assert.True(host.Server.Stats.RelayedToPeer >= 150);
            Assert.True(host.Server.Stats.RelayedToClient >= 150);
        }
    }

    [RequiresToolFact("turnutils_uclient", "turnutils_peer")]
    public async Task Uclient_echoes_through_our_server_when_the_listener_shares_the_relay_thread()
    {
        // The one-CPU set-up: listener and relay sockets on one thread, sends batched across both.
        await using var host = StartOurs(shareRelayThread: true);
        if (OperatingSystem.IsLinux() && Environment.Is64BitProcess) Assert.True(host.SharesRelayThread);
        var (peer, peerPort) = await StartPeerAsync();
        await using (peer)
        {
            foreach (var args in new[]
            {
                new[] { "-u", "alice", "-w", "wonderland" },
                new[] { "-u", "alice", "-w", "wonderland", "-s" },
                new[] { "-t", "-u", "alice", "-w", "wonderland" },
            })
            {
                var output = await RunUclientAsync(host.UdpEndPoint.Port, peerPort, args);
                Assert.True(output.Contains("tot_send_msgs=30, tot_recv_msgs=30", StringComparison.Ordinal), $"{string.Join(' ', args)}:\n{output}");
                Assert.Contains("Total lost packets 0 ", output, StringComparison.Ordinal);
            }

            Assert.True(host.Server.Stats.RelayedToPeer >= 90);
        }
    }

    [RequiresToolFact("turnutils_uclient", "turnutils_peer")]
    public async Task Uclient_with_wrong_credentials_or_a_forbidden_peer_gets_nothing_through()
    {
        await using var host = StartOurs(o => o with { AllowedPeers = [] });
        var (peer, peerPort) = await StartPeerAsync();
        await using (peer)
        {
            var tool = RequiredTool.Require("turnutils_uclient", "apt-get install coturn");
            string[] Args(string password) => ["-u", "alice", "-w", password, "-e", "127.0.0.1", "-r", S(peerPort), "-p", S(host.UdpEndPoint.Port), "-n", "30", "-c", "127.0.0.1"];
            await using (var wrong = ExternalProcess.Start(tool, Args("queen-of-hearts"), ToolTimeout))
            {
                await wrong.WaitForStdoutAsync(l => l.Contains("Cannot complete Allocation", StringComparison.Ordinal), ToolTimeout);
            }

            await using (var forbidden = ExternalProcess.Start(tool, Args("wonderland"), ToolTimeout))
            {
                await forbidden.WaitForStdoutAsync(l => l.Contains("error 403", StringComparison.Ordinal), ToolTimeout);
            }

            Assert.Equal(0, host.Server.Stats.RelayedToPeer);
            Assert.True(host.Server.Stats.Errors >= 2);
        }
    }

    [RequiresToolFact("turnserver")]
    public async Task Our_turn_client_allocates_binds_and_relays_through_coturn()
    {
        var tool = RequiredTool.Require("turnserver", "apt-get install coturn");
        var port = FreePort.TcpAndUdp();
        var dir = Directory.CreateTempSubdirectory("peerway-coturn-");
        try
        {
            string[] args =
            [
                "-n", "--no-cli", "--no-tls", "--no-dtls", "--listening-ip=127.0.0.1", $"--listening-port={S(port)}",
                "--relay-ip=127.0.0.1", "--min-port=49152", "--max-port=65535", "--lt-cred-mech", "--user=alice:wonderland",
                "--realm=coturn.test", "--allow-loopback-peers", $"--pidfile={Path.Combine(dir.FullName, "turn.pid")}",
                $"--db={Path.Combine(dir.FullName, "turndb")}", "--log-file=stdout", "--simple-log", "--no-stdout-log",
            ];
            await using var coturn = ExternalProcess.Start(tool, args, TimeSpan.FromMinutes(3));
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (!(await File.ReadAllTextAsync("/proc/net/udp")).Contains($"0100007F:{port:X4} ", StringComparison.Ordinal))
            {
                if (DateTime.UtcNow > deadline || coturn.HasExited) throw new TimeoutException($"turnserver did not start\n{coturn.Stdout}\n{coturn.Stderr}");
                await Task.Delay(50);
            }

            using var peerSocket = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0));
            var peerGot = new TaskCompletionSource<(string, IPEndPoint)>(TaskCreationOptions.RunContinuationsAsynchronously);
            peerSocket.Start((d, from) =>
            {
                var text = Encoding.UTF8.GetString(d);
                peerGot.TrySetResult((text, from));
                peerSocket.Send(Encoding.UTF8.GetBytes("echo:" + text), from);
            });

            var clientGot = new TaskCompletionSource<(string, IPEndPoint)>(TaskCreationOptions.RunContinuationsAsynchronously);
            using var client = new TurnClient(
                new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)),
                new IPEndPoint(IPAddress.Loopback, port),
                new TurnCredentials("alice", "wonderland"),
                TimeProvider.System,
                (d, p) => clientGot.TrySetResult((Encoding.UTF8.GetString(d), p)));
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var relayed = await client.AllocateAsync(cancellationToken: cts.Token);
            Assert.Equal(IPAddress.Loopback, relayed.Address);
            Assert.Equal(client.LocalEndPoint, client.MappedAddress);
            await client.CreatePermissionAsync([peerSocket.LocalEndPoint], cts.Token);
            await client.BindChannelAsync(peerSocket.LocalEndPoint, cts.Token);
            client.Send("through coturn"u8, peerSocket.LocalEndPoint);
            var (text, from) = await peerGot.Task.WaitAsync(cts.Token);
            Assert.Equal("through coturn", text);
            Assert.Equal(relayed, from);
            var (echo, via) = await clientGot.Task.WaitAsync(cts.Token);
            Assert.Equal("echo:through coturn", echo);
            Assert.Equal(peerSocket.LocalEndPoint, via);
            Assert.Equal(TimeSpan.FromSeconds(600), await client.RefreshAsync(TimeSpan.FromSeconds(600), cts.Token));
            Assert.Equal(TimeSpan.Zero, await client.RefreshAsync(TimeSpan.Zero, cts.Token));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
