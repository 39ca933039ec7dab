using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Peerway.Nat.Stun;
using Peerway.Nat.Turn;
using Peerway.Net;
using Peerway.Node.Nat;

namespace Peerway.Cli;

/// <summary>`peerway stun-server`, `peerway nat probe` (and the TURN/ICE commands): NAT traversal from the CLI.</summary>
internal static class NatCommands
{
    public static IEnumerable<Command> All()
    {
        yield return StunServer();
        yield return TurnServer();
        yield return Nat();
        foreach (var c in IceCommands.All()) yield return c;
    }

    private static Command StunServer()
    {
        var bind = new Option<string>("--bind") { Description = "Address to listen on (UDP and TCP).", DefaultValueFactory = _ => "0.0.0.0" };
        var port = new Option<int>("--port") { Description = "Port (RFC 8489 default 3478).", DefaultValueFactory = _ => 3478 };
        var alt = new Option<string?>("--alt") { Description = "Second IP of this host: enables RFC 5780 behaviour discovery (ports PORT and PORT+1 on both IPs)." };
        var threads = new Option<int>("--threads") { Description = "Receive loops sharing the port (SO_REUSEPORT).", DefaultValueFactory = _ => Math.Max(1, Environment.ProcessorCount) };
        var rateLimit = RateLimitOption("UDP requests answered per second per source IP, burst twice that (default 20; 0: no limit, for benchmarks).");
        var command = new Command("stun-server", "Run a STUN server (RFC 8489) over UDP and TCP, with RFC 5780 behaviour discovery when --alt is given.")
        {
            bind, port, alt, threads, rateLimit,
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
                var n = parse.GetValue(threads);
                if (n is < 1 or > 64) throw new UsageException("--threads must be in 1..64");
                var (rate, burst) = ParseRateLimit(parse.GetValue(rateLimit));
                host = StunServerHost.Start(bindIp, p, altIp, new StunServerOptions { MaxRequestsPerIpPerSecond = rate, RateLimitBurst = burst }, loggers, n);
            }
            catch (SocketException ex)
            {
                throw new RuntimeFailureException($"cannot listen on {bindIp}:{p}: {ex.Message}", ex);
            }

            await using (host)
            {
                Console.WriteLine($"stun-server: udp {string.Join(", ", host.UdpEndPoints)}; tcp {host.TcpEndPoint}");
                await WaitForCancellationAsync(ct);
                Console.WriteLine($"stun-server: answered {host.Answered} requests, dropped {host.Dropped}, rate-limited {host.RateLimited}");
            }

            return CliRunner.Ok;
        });
        return command;
    }

    private static Command TurnServer()
    {
        var realm = new Option<string>("--realm") { Description = "REALM of the long-term credentials.", Required = true };
        var user = new Option<string[]>("--user") { Description = "NAME:PASS (repeatable).", AllowMultipleArgumentsPerToken = false };
        var secret = new Option<string?>("--secret") { Description = "TURN REST API shared secret (user names are EXPIRY:NAME)." };
        var bind = new Option<string>("--bind") { Description = "Address to listen on (UDP and TCP).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port.", DefaultValueFactory = _ => 3478 };
        var relayIp = new Option<string?>("--relay-ip") { Description = "Address of the relay sockets (default: --bind)." };
        var relayPorts = new Option<string?>("--relay-ports") { Description = "Relay port range A-B (default: any free port)." };
        var allowPeer = new Option<string[]>("--allow-peer") { Description = "CIDR of peers allowed although loopback/private/reserved (repeatable)." };
        var denyPeer = new Option<string[]>("--deny-peer") { Description = "CIDR of peers always refused (repeatable)." };
        var userQuota = new Option<int>("--user-quota") { Description = "Allocations per user.", DefaultValueFactory = _ => 10 };
        var totalQuota = new Option<int>("--total-quota") { Description = "Allocations in total.", DefaultValueFactory = _ => 10_000 };
        var maxBps = new Option<long>("--max-bps") { Description = "Relayed bytes per second per allocation (0: no cap).", DefaultValueFactory = _ => 0 };
        var rateLimit = RateLimitOption("Unauthenticated answers over UDP (Binding, 401/438 challenges) per second per source IP, burst twice that (default 20; 0: no limit, for benchmarks).");
        var command = new Command("turn-server", "Run a TURN server (RFC 8656) over UDP and TCP with long-term or REST credentials.")
        {
            realm, user, secret, bind, port, relayIp, relayPorts, allowPeer, denyPeer, userQuota, totalQuota, maxBps, rateLimit,
        };
        command.SetAction(async (parse, ct) =>
        {
            var users = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var u in parse.GetValue(user) ?? [])
            {
                var colon = u.IndexOf(':', StringComparison.Ordinal);
                if (colon <= 0 || colon == u.Length - 1) throw new UsageException($"--user: '{u}' is not NAME:PASS");
                users[u[..colon]] = u[(colon + 1)..];
            }

            var sharedSecret = parse.GetValue(secret);
            if (users.Count == 0 && string.IsNullOrEmpty(sharedSecret)) throw new UsageException("give --user NAME:PASS or --secret S (no open relay)");
            var bindIp = ParseIp(parse.GetValue(bind)!, "--bind");
            var relayText = parse.GetValue(relayIp);
            var relay = relayText is null ? bindIp : ParseIp(relayText, "--relay-ip");
            if (relay.Equals(IPAddress.Any) || relay.Equals(IPAddress.IPv6Any)) throw new UsageException("--relay-ip must be a concrete address when --bind is a wildcard");
            var (first, last) = (0, 0);
            if (parse.GetValue(relayPorts) is { } range)
            {
                var parts = range.Split('-');
                if (parts.Length != 2 || !int.TryParse(parts[0], out first) || !int.TryParse(parts[1], out last) || first is < 1 or > 65535 || last < first || last > 65535)
                {
                    throw new UsageException($"--relay-ports: '{range}' is not A-B");
                }
            }

            TurnServerOptions options;
            var (strangerRate, strangerBurst) = ParseRateLimit(parse.GetValue(rateLimit));
            try
            {
                options = new TurnServerOptions
                {
                    Realm = parse.GetValue(realm)!,
                    Users = users,
                    SharedSecret = sharedSecret,
                    AllowedPeers = [.. (parse.GetValue(allowPeer) ?? []).Select(c => ParseCidr(c, "--allow-peer"))],
                    DeniedPeers = [.. (parse.GetValue(denyPeer) ?? []).Select(c => ParseCidr(c, "--deny-peer"))],
                    UserQuota = parse.GetValue(userQuota),
                    TotalQuota = parse.GetValue(totalQuota),
                    MaxBytesPerSecond = parse.GetValue(maxBps),
                    MaxUnauthenticatedPerIpPerSecond = strangerRate,
                    UnauthenticatedBurst = strangerBurst,
                };
                options.Validate();
            }
            catch (ArgumentException ex)
            {
                throw new UsageException(ex.Message, ex);
            }

            var p = ParsePort(parse.GetValue(port), "--port", allowZero: true);
            using var loggers = CliLogging.Create();
            TurnServerHost host;
            try
            {
                host = TurnServerHost.Start(new IPEndPoint(bindIp, p), new UdpRelaySocketFactory(relay, first, last), options, TimeProvider.System, loggers);
            }
            catch (SocketException ex)
            {
                throw new RuntimeFailureException($"cannot listen on {bindIp}:{p}: {ex.Message}", ex);
            }

            await using (host)
            {
                Console.WriteLine($"turn-server: udp {host.UdpEndPoint}; tcp {host.TcpEndPoint}; relay {relay}; realm {options.Realm}");
                await WaitForCancellationAsync(ct);
                var s = host.Server.Stats;
                Console.WriteLine($"turn-server: {s.Requests} requests, {s.Errors} errors, relayed {s.RelayedToPeer} to peers and {s.RelayedToClient} to clients");
            }

            return CliRunner.Ok;
        });
        return command;
    }

    private static Option<double> RateLimitOption(string description) =>
        new("--rate-limit") { Description = description, DefaultValueFactory = _ => 20 };

    /// <summary>A per-source token bucket from --rate-limit Q: Q per second, a burst of 2Q (as `dht serve`); 0 turns it off.</summary>
    private static (double Rate, int Burst) ParseRateLimit(double perSecond) =>
        double.IsFinite(perSecond) && perSecond >= 0
            ? (perSecond, (int)Math.Clamp(perSecond * 2, 1, int.MaxValue))
            : throw new UsageException($"--rate-limit: {perSecond.ToString(System.Globalization.CultureInfo.InvariantCulture)} is not a number ≥ 0");

    internal static IPNetwork ParseCidr(string text, string option) =>
        IPNetwork.TryParse(text, out var n) ? n : throw new UsageException($"{option}: '{text}' is not a CIDR block");

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
