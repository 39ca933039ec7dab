using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Peerway.Core;
using Peerway.Dht;
using Peerway.Node;

namespace Peerway.Cli;

/// <summary>
/// <c>peerway dht serve|ping|find-node|get-peers|announce</c> (and BEP 44's keygen|pubkey|put|get, <see cref="DhtItemCommands"/>). The output formats are a contract scripts rely on
/// (README "CLI reference"): results on stdout, one line each (or one JSON document with --json); errors as one line
/// on stderr with exit code 2 (usage) or 1 (runtime); logs on stderr only.
/// </summary>
internal static class DhtCommands
{
    /// <summary>BEP 5: the conventional DHT port.</summary>
    public const int DefaultServePort = 6881;

    /// <summary>Lines printed by find-node: BEP 5's k = 8 closest nodes.</summary>
    public const int FindNodeLines = 8;

    public const double DefaultTimeoutSeconds = 30;

    public static Command Create()
    {
        var dht = new Command("dht", "Mainline DHT (BEP 5) node and client commands.");
        dht.Subcommands.Add(DhtServeCommand.Create());
        dht.Subcommands.Add(CreatePing());
        dht.Subcommands.Add(CreateFindNode());
        dht.Subcommands.Add(CreateGetPeers());
        dht.Subcommands.Add(CreateAnnounce());
        dht.Subcommands.Add(CreateSample());
        foreach (var item in DhtItemCommands.Create()) dht.Subcommands.Add(item);
        return dht;
    }

    private static Command CreatePing()
    {
        var endpoint = new Argument<string>("endpoint") { Description = "HOST:PORT of the node to ping." };
        var common = new DhtCommonOptions(withBootstrap: false);
        var command = new Command("ping", "Ping a DHT node and print its node id.") { endpoint };
        common.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var target = DhtCli.ParseEndPoint(parse.GetValue(endpoint), "endpoint");
            var settings = common.Read(parse);
            var remote = await DhtCli.ResolveAsync(target, ct);
            return await DhtCli.RunClientAsync(settings, [remote], async (host, deadline) =>
            {
                var id = await host.Node.PingAsync(remote, deadline);
                if (id is not { } nodeId)
                {
                    throw new RuntimeFailureException($"no reply from {remote} within {settings.TimeoutSeconds:0.###} s");
                }

                var output = parse.InvocationConfiguration.Output;
                if (settings.Json)
                {
                    await output.WriteLineAsync(JsonOut.Object(w =>
                    {
                        w.WriteString("id", nodeId.ToString());
                        w.WriteString("endpoint", remote.ToString());
                    }));
                }
                else
                {
                    await output.WriteLineAsync(nodeId.ToString());
                }

                return CliRunner.Ok;
            }, ct, $"a reply from {remote}");
        });
        return command;
    }

    private static Command CreateFindNode()
    {
        var targetArg = new Argument<string>("target") { Description = "Node id to look for (40 hex digits)." };
        var common = new DhtCommonOptions(withBootstrap: true);
        var command = new Command("find-node", "Find the nodes closest to an id; prints up to 8 lines '<id> <ip>:<port>', closest first.") { targetArg };
        common.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var target = DhtCli.ParseId(parse.GetValue(targetArg), "target");
            var settings = common.Read(parse);
            var routers = await DhtCli.ResolveBootstrapAsync(settings, ct);
            return await DhtCli.RunClientAsync(settings, routers, async (host, deadline) =>
            {
                await DhtCli.BootstrapOrFailAsync(host, routers, deadline);
                var result = await host.Node.FindNodeAsync(target, deadline);
                var closest = result.Closest
                    .Where(c => c.Id != host.Node.Id)
                    .DistinctBy(c => c.Id)
                    .OrderBy(c => c.Id ^ target)
                    .Take(FindNodeLines)
                    .ToList();
                if (closest.Count == 0) throw new RuntimeFailureException($"no nodes found near {target}");
                var output = parse.InvocationConfiguration.Output;
                if (settings.Json)
                {
                    await output.WriteLineAsync(JsonOut.Object(w =>
                    {
                        w.WriteString("target", target.ToString());
                        w.WriteStartArray("nodes");
                        foreach (var c in closest)
                        {
                            w.WriteStartObject();
                            w.WriteString("id", c.Id.ToString());
                            w.WriteString("endpoint", c.EndPoint.ToString());
                            w.WriteEndObject();
                        }

                        w.WriteEndArray();
                        JsonOut.WriteLookup(w, result);
                    }));
                }
                else
                {
                    foreach (var c in closest) await output.WriteLineAsync($"{c.Id} {c.EndPoint}");
                }

                return CliRunner.Ok;
            }, ct);
        });
        return command;
    }

    private static Command CreateSample()
    {
        var endpoint = new Argument<string>("endpoint") { Description = "HOST:PORT of the node to ask." };
        var targetOption = new Option<string>("--target") { Description = "The nodes closest to this id (40 hex digits) come back too (default: random)." };
        var common = new DhtCommonOptions(withBootstrap: false);
        var command = new Command("sample", "Ask a node for a sample of the info-hashes it stores (BEP 51); prints one info-hash per line.") { endpoint, targetOption };
        common.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var target = DhtCli.ParseEndPoint(parse.GetValue(endpoint), "endpoint");
            var id = parse.GetValue(targetOption) is { } text ? DhtCli.ParseId(text, "--target") : NodeId.Random();
            var settings = common.Read(parse);
            var remote = await DhtCli.ResolveAsync(target, ct);
            return await DhtCli.RunClientAsync(settings, [remote], async (host, deadline) =>
            {
                var result = await host.Node.SampleInfohashesAsync(remote, id, deadline)
                    ?? throw new RuntimeFailureException($"no sample_infohashes answer from {remote} within {settings.TimeoutSeconds:0.###} s");
                var output = parse.InvocationConfiguration.Output;
                if (settings.Json)
                {
                    await output.WriteLineAsync(JsonOut.Object(w =>
                    {
                        w.WriteString("node", result.Responder.ToString());
                        w.WriteNumber("num", result.Num);
                        w.WriteNumber("interval", (long)result.Interval.TotalSeconds);
                        w.WriteStartArray("samples");
                        foreach (var s in result.Samples) w.WriteStringValue(s.ToString());
                        w.WriteEndArray();
                        w.WriteStartArray("nodes");
                        foreach (var n in result.Nodes)
                        {
                            w.WriteStartObject();
                            w.WriteString("id", n.Id.ToString());
                            w.WriteString("endpoint", n.EndPoint.ToString());
                            w.WriteEndObject();
                        }

                        w.WriteEndArray();
                    }));
                }
                else
                {
                    foreach (var s in result.Samples) await output.WriteLineAsync(s.ToString());
                }

                return CliRunner.Ok;
            }, ct);
        });
        return command;
    }

    private static Command CreateGetPeers()
    {
        var hashArg = new Argument<string>("infohash") { Description = "Info-hash (40 hex digits)." };
        var common = new DhtCommonOptions(withBootstrap: true);
        var command = new Command("get-peers", "Find peers for an info-hash; prints one '<ip>:<port>' per line.") { hashArg };
        common.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var infoHash = DhtCli.ParseId(parse.GetValue(hashArg), "infohash");
            var settings = common.Read(parse);
            var routers = await DhtCli.ResolveBootstrapAsync(settings, ct);
            return await DhtCli.RunClientAsync(settings, routers, async (host, deadline) =>
            {
                await DhtCli.BootstrapOrFailAsync(host, routers, deadline);
                var result = await host.Node.GetPeersAsync(infoHash, deadline);
                var peers = result.Peers.Distinct().ToList();
                if (peers.Count == 0)
                {
                    throw new RuntimeFailureException(
                        $"no peers found for {infoHash} ({result.Lookup.Responses} of {result.Lookup.QueriesSent} queries answered)");
                }

                var output = parse.InvocationConfiguration.Output;
                if (settings.Json)
                {
                    await output.WriteLineAsync(JsonOut.Object(w =>
                    {
                        w.WriteString("infohash", infoHash.ToString());
                        w.WriteStartArray("peers");
                        foreach (var p in peers) w.WriteStringValue(p.ToString());
                        w.WriteEndArray();
                        JsonOut.WriteLookup(w, result.Lookup);
                    }));
                }
                else
                {
                    foreach (var p in peers) await output.WriteLineAsync(p.ToString());
                }

                return CliRunner.Ok;
            }, ct);
        });
        return command;
    }

    private static Command CreateAnnounce()
    {
        var hashArg = new Argument<string>("infohash") { Description = "Info-hash (40 hex digits)." };
        var port = new Option<string>("--port") { Description = "The port peers should connect to (1-65535).", Required = true };
        var impliedPort = new Option<bool>("--implied-port") { Description = "BEP 5 implied_port: use the UDP source port instead of --port." };
        var common = new DhtCommonOptions(withBootstrap: true);
        var command = new Command("announce", "Announce a peer for an info-hash to the closest nodes; prints 'announced to N nodes'.")
        {
            hashArg, port, impliedPort,
        };
        common.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var infoHash = DhtCli.ParseId(parse.GetValue(hashArg), "infohash");
            var portText = parse.GetValue(port);
            if (!EndPointParser.TryParsePort(portText, allowZero: false, out var p))
            {
                throw new UsageException(Listening.BadPort("--port", portText ?? "", allowZero: false));
            }

            var implied = parse.GetValue(impliedPort);
            var settings = common.Read(parse);
            var routers = await DhtCli.ResolveBootstrapAsync(settings, ct);
            return await DhtCli.RunClientAsync(settings, routers, async (host, deadline) =>
            {
                await DhtCli.BootstrapOrFailAsync(host, routers, deadline);
                var result = await host.Node.AnnounceAsync(infoHash, p, implied, deadline);
                if (result.AnnouncedTo == 0)
                {
                    throw new RuntimeFailureException(
                        $"no node accepted the announce for {infoHash} ({result.Lookup.Lookup.Responses} nodes answered the lookup)");
                }

                var output = parse.InvocationConfiguration.Output;
                if (settings.Json)
                {
                    await output.WriteLineAsync(JsonOut.Object(w =>
                    {
                        w.WriteString("infohash", infoHash.ToString());
                        w.WriteNumber("port", p);
                        w.WriteNumber("announcedTo", result.AnnouncedTo);
                        w.WriteStartArray("peers");
                        foreach (var peer in result.Lookup.Peers.Distinct()) w.WriteStringValue(peer.ToString());
                        w.WriteEndArray();
                        JsonOut.WriteLookup(w, result.Lookup.Lookup);
                    }));
                }
                else
                {
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"announced to {result.AnnouncedTo} nodes"));
                }

                return CliRunner.Ok;
            }, ct);
        });
        return command;
    }
}

/// <summary>The options every dht command takes: --bind, --timeout, --json, -v, and --bootstrap for lookups.</summary>
internal sealed class DhtCommonOptions
{
    public DhtCommonOptions(bool withBootstrap)
    {
        Bootstrap = withBootstrap
            ? new Option<string[]>("--bootstrap")
            {
                Description = "HOST:PORT of a node to join through (repeatable).",
                Required = true,
                AllowMultipleArgumentsPerToken = true,
                Arity = ArgumentArity.OneOrMore,
            }
            : null;
    }

    public Option<string> Bind { get; } = new("--bind")
    {
        Description = "Local IP address to bind, or IP:PORT / [IPv6]:PORT (default: the wildcard address of the bootstrap nodes' family, ephemeral port).",
    };

    public Option<string> Timeout { get; } = new("--timeout")
    {
        Description = $"Give up after SECONDS (default {DhtCommands.DefaultTimeoutSeconds}).",
    };

    public Option<bool> Json { get; } = new("--json") { Description = "Print one JSON document instead of lines." };

    public Option<bool> Verbose { get; } = new("--verbose", "-v") { Description = "Log debug messages to stderr." };

    public Option<string[]>? Bootstrap { get; }

    public void AddTo(Command command)
    {
        command.Options.Add(Bind);
        command.Options.Add(Timeout);
        command.Options.Add(Json);
        command.Options.Add(Verbose);
        if (Bootstrap is not null) command.Options.Add(Bootstrap);
    }

    public DhtCommandSettings Read(ParseResult parse)
    {
        var (bind, bindPort) = DhtCli.ParseBindEndPoint(parse.GetValue(Bind));
        var timeout = DhtCli.ParseTimeoutSeconds(parse.GetValue(Timeout));
        var bootstrap = Bootstrap is null ? [] : DhtCli.ParseEndPoints(parse.GetValue(Bootstrap));
        if (Bootstrap is not null && bootstrap.Count == 0) throw new UsageException("--bootstrap HOST:PORT is required");

        return new DhtCommandSettings(bind, timeout, parse.GetValue(Json), parse.GetValue(Verbose), bootstrap) { BindPort = bindPort };
    }
}

internal sealed record DhtCommandSettings(IPAddress? Bind, double TimeoutSeconds, bool Json, bool Verbose, IReadOnlyList<HostPort> Bootstrap)
{
    /// <summary>The port of an IP:PORT / [IPv6]:PORT --bind, or null (an ephemeral port).</summary>
    public int? BindPort { get; init; }

    public TimeSpan Timeout => TimeSpan.FromSeconds(TimeoutSeconds);
}

/// <summary>Shared plumbing of the dht commands: argument checks, the ephemeral client node, the deadline.</summary>
internal static class DhtCli
{
    public static NodeId ParseId(string? text, string what)
    {
        if (text is null || !NodeId.TryParseHex(text, out var id))
        {
            throw new UsageException($"{what} '{text}' is not 40 hex digits");
        }

        return id;
    }

    /// <summary>--bind: an IP address literal, or null when not given.</summary>
    public static IPAddress? ParseBind(string? text)
    {
        if (text is null) return null;
        if (!EndPointParser.TryParseAddress(text, out var address)) throw new UsageException($"--bind '{text}' is not an IP address");
        return address;
    }

    /// <summary>
    /// --bind of <c>dht serve</c>: an IP address (<c>127.0.0.1</c>, <c>::1</c>, <c>[::1]</c>) or an address with a port,
    /// <c>127.0.0.1:6881</c> or <c>[::1]:6881</c> (BEP 32: a node on IPv6 serves the IPv6 DHT); port 0 picks a free one.
    /// </summary>
    public static (IPAddress? Address, int? Port) ParseBindEndPoint(string? text)
    {
        if (text is null) return (null, null);
        var close = text.IndexOf("]:", StringComparison.Ordinal);
        var colon = text.LastIndexOf(':');
        string host;
        if (close > 0 && text.StartsWith('[')) host = text[..(close + 1)];
        else if (colon > 0 && text.IndexOf(':', StringComparison.Ordinal) == colon) host = text[..colon];
        else return (ParseBind(text), null);
        var portText = text[(host.Length + 1)..];
        if (!EndPointParser.TryParseAddress(host, out var address) || !EndPointParser.TryParsePort(portText, allowZero: true, out var port))
        {
            throw new UsageException($"--bind '{text}' is not an IP address or IP:PORT ([IPv6]:PORT)");
        }

        return (address, port);
    }

    /// <summary>--timeout: seconds in (0, 86400], the default when not given.</summary>
    public static double ParseTimeoutSeconds(string? text)
    {
        if (text is null) return DhtCommands.DefaultTimeoutSeconds;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds)
            || !double.IsFinite(seconds) || seconds <= 0 || seconds > 86_400)
        {
            throw new UsageException($"--timeout '{text}' is not a number of seconds in (0, 86400]");
        }

        return seconds;
    }

    /// <summary>--bootstrap values: repeated options, several per option, or comma-separated.</summary>
    public static List<HostPort> ParseEndPoints(string[]? values) =>
        (values ?? []).SelectMany(t => t.Split(',', StringSplitOptions.RemoveEmptyEntries))
            .Select(t => ParseEndPoint(t, "--bootstrap"))
            .ToList();

    public static HostPort ParseEndPoint(string? text, string what)
    {
        if (!EndPointParser.TryParse(text, out var ep, out var error)) throw new UsageException($"{what}: {error}");
        return ep!;
    }

    public static async Task<IPEndPoint> ResolveAsync(HostPort endPoint, CancellationToken ct)
    {
        try
        {
            return await EndPointParser.ResolveAsync(endPoint, null, ct);
        }
        catch (SocketException ex)
        {
            throw new UsageException($"cannot resolve '{endPoint.Host}': {ex.Message}");
        }
    }

    public static async Task<IReadOnlyList<IPEndPoint>> ResolveBootstrapAsync(DhtCommandSettings settings, CancellationToken ct)
    {
        var list = new List<IPEndPoint>();
        foreach (var b in settings.Bootstrap) list.Add(await ResolveAsync(b, ct));
        return list;
    }

    /// <summary>Bootstraps the client node; a node nobody answered cannot look anything up (exit 1).</summary>
    public static async Task BootstrapOrFailAsync(DhtHost host, IReadOnlyList<IPEndPoint> routers, CancellationToken ct)
    {
        var size = await host.Node.BootstrapAsync(routers, ct);
        if (size == 0)
        {
            throw new RuntimeFailureException(
                $"no bootstrap node answered ({string.Join(", ", routers.Select(r => r.ToString()))})");
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/> on a short-lived node bound to --bind (or the wildcard address of the targets'
    /// family) with the --timeout deadline; a deadline hit becomes a runtime failure (exit 1).
    /// </summary>
    public static async Task<int> RunClientAsync(
        DhtCommandSettings settings,
        IReadOnlyList<IPEndPoint> targets,
        Func<DhtHost, CancellationToken, Task<int>> body,
        CancellationToken ct,
        string? waitingFor = null)
    {
        var family = targets.Count > 0 ? targets[0].AddressFamily : AddressFamily.InterNetwork;
        var bind = settings.Bind ?? (family == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any);
        var dhtOptions = new DhtOptions
        {
            QueryTimeout = TimeSpan.FromSeconds(Math.Min(2, settings.TimeoutSeconds / 2)),
            // BEP 43: a short-lived client must not end up in other nodes' routing tables (it is gone in a moment).
            ReadOnly = true,
        };
        using var loggers = NodeLogging.CreateStderrFactory(settings.Verbose);
        var port = settings.BindPort ?? 0;
        var host = Listening.Bind(bind, port, () => DhtHost.Start(new DhtHostOptions { Bind = new IPEndPoint(bind, port), Dht = dhtOptions }, loggers));

        await using (host)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(settings.Timeout);
            try
            {
                return await body(host, deadline.Token);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                throw new RuntimeFailureException(waitingFor is null
                    ? $"timed out after {settings.TimeoutSeconds:0.###} s"
                    : $"timed out after {settings.TimeoutSeconds:0.###} s waiting for {waitingFor}");
            }
        }
    }
}
