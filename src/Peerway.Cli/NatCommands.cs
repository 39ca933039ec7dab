using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Peerway.Nat.Stun;
using Peerway.Net;
using Peerway.Node.Nat;

namespace Peerway.Cli;

/// <summary>`peerway stun-server`, `peerway nat probe` (and the TURN/ICE commands): NAT traversal from the CLI.</summary>
internal static class NatCommands
{
    public static IEnumerable<Command> All()
    {
        yield return StunServer();
        yield return Nat();
    }

    private static Command StunServer()
    {
        var bind = new Option<string>("--bind") { Description = "Address to listen on (UDP and TCP).", DefaultValueFactory = _ => "0.0.0.0" };
        var port = new Option<int>("--port") { Description = "Port (RFC 8489 default 3478).", DefaultValueFactory = _ => 3478 };
        var alt = new Option<string?>("--alt") { Description = "Second IP of this host: enables RFC 5780 behaviour discovery (ports PORT and PORT+1 on both IPs)." };
        var command = new Command("stun-server", "Run a STUN server (RFC 8489) over UDP and TCP, with RFC 5780 behaviour discovery when --alt is given.")
        {
            bind, port, alt,
        };
        command.SetAction(async (parse, ct) =>
        {
            var bindIp = ParseIp(parse.GetValue(bind)!, "--bind");
            var altText = parse.GetValue(alt);
            var altIp = altText is null ? null : ParseIp(altText, "--alt");
            if (altIp is not null && altIp.AddressFamily != bindIp.AddressFamily) throw new UsageException("--alt must be of the same address family as --bind");
            var p = ParsePort(parse.GetValue(port), "--port", allowZero: true);
            using var loggers = CliLogging.Create();
            StunServerHost host;
            try
            {
                host = StunServerHost.Start(bindIp, p, altIp, new StunServerOptions(), loggers);
            }
            catch (SocketException ex)
            {
                throw new RuntimeFailureException($"cannot listen on {bindIp}:{p}: {ex.Message}", ex);
            }

            await using (host)
            {
                Console.WriteLine($"stun-server: udp {string.Join(", ", host.UdpEndPoints)}; tcp {host.TcpEndPoint}");
                await WaitForCancellationAsync(ct);
                Console.WriteLine($"stun-server: answered {host.Server.Answered} requests, dropped {host.Server.Dropped}");
            }

            return CliRunner.Ok;
        });
        return command;
    }

    private static Command Nat()
    {
        var server = new Argument<string>("server") { Description = "STUN server as HOST:PORT (RFC 5780 support needed for behaviour)." };
        var timeout = new Option<double>("--rto") { Description = "Initial retransmission timeout in milliseconds.", DefaultValueFactory = _ => 500 };
        var probe = new Command("probe", "Report the mapped address and the NAT's mapping and filtering behaviour (RFC 5780 terms).") { server, timeout };
        probe.SetAction(async (parse, ct) =>
        {
            var target = await ResolveAsync(parse.GetValue(server)!, "server", ct);
            var rto = parse.GetValue(timeout);
            if (rto is <= 0 or > 10_000) throw new UsageException("--rto must be in (0, 10000] ms");
            // Filtering tests wait for an answer that may never come: 4 requests, then 4 RTO (7.5 s at 500 ms).
            var options = new StunClientOptions { Rto = TimeSpan.FromMilliseconds(rto), Rc = 4, Rm = 4 };
            var local = LocalAddressFor(target);
            NatBehaviorReport report;
            try
            {
                report = await NatBehaviorProbe.RunAsync(() => new UdpDatagramSocket(new IPEndPoint(local, 0)), target, TimeProvider.System, options, ct);
            }
            catch (TimeoutException ex)
            {
                throw new RuntimeFailureException($"no STUN response from {target}: {ex.Message}", ex);
            }
            catch (InvalidOperationException ex)
            {
                throw new RuntimeFailureException(ex.Message, ex);
            }

            Console.WriteLine($"local address:   {report.LocalEndPoint}");
            Console.WriteLine($"mapped address:  {report.MappedEndPoint}");
            Console.WriteLine($"other address:   {(report.OtherAddress?.ToString() ?? "none (server has no RFC 5780 support)")}");
            Console.WriteLine($"mapping:         {NatBehaviorReport.Describe(report.Mapping)}");
            Console.WriteLine($"filtering:       {NatBehaviorReport.Describe(report.Filtering)}");
            return CliRunner.Ok;
        });
        return new Command("nat", "NAT traversal tools.") { probe };
    }

    internal static async Task WaitForCancellationAsync(CancellationToken ct)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (ct.Register(() => tcs.TrySetResult()))
        {
            await tcs.Task;
        }
    }

    /// <summary>The local address the OS would use to reach <paramref name="remote"/> (no packet is sent).</summary>
    internal static IPAddress LocalAddressFor(IPEndPoint remote)
    {
        using var s = new Socket(remote.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            s.Connect(remote);
        }
        catch (SocketException ex)
        {
            throw new RuntimeFailureException($"no route to {remote}: {ex.Message}", ex);
        }

        return ((IPEndPoint)s.LocalEndPoint!).Address;
    }

    internal static IPAddress ParseIp(string text, string option) =>
        IPAddress.TryParse(text, out var ip) ? ip : throw new UsageException($"{option}: '{text}' is not an IP address");

    internal static int ParsePort(int port, string option, bool allowZero = false) =>
        port is >= 0 and <= 65535 && (allowZero || port != 0) ? port : throw new UsageException($"{option}: {port} is not a port number");

    internal static async Task<IPEndPoint> ResolveAsync(string text, string what, CancellationToken ct)
    {
        if (IPEndPoint.TryParse(text, out var ep) && ep.Port != 0) return ep;
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out var port) || port is <= 0 or > 65535)
        {
            throw new UsageException($"{what}: '{text}' is not HOST:PORT");
        }

        var host = text[..colon];
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(host, ct);
            var address = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
                ?? throw new RuntimeFailureException($"{what}: {host} has no address");
            return new IPEndPoint(address, port);
        }
        catch (SocketException ex)
        {
            throw new RuntimeFailureException($"{what}: cannot resolve {host}: {ex.Message}", ex);
        }
    }
}

/// <summary>Console logging to stderr (stdout stays for results).</summary>
internal static class CliLogging
{
    public static ILoggerFactory Create(LogLevel level = LogLevel.Warning) =>
        LoggerFactory.Create(b => b.SetMinimumLevel(level).AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
}
