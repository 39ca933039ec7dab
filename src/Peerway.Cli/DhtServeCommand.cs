using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Peerway.Core;
using Peerway.Dht;
using Peerway.Node;

namespace Peerway.Cli;

/// <summary>
/// <c>peerway dht serve</c>: a long-running DHT node (or, with --bind twice, a BEP 32 dual-stack pair). First stdout
/// line(s), one per node: <c>node &lt;40 hex&gt; listening &lt;ip&gt;:&lt;port&gt;</c>;
/// runs until SIGINT/SIGTERM, then saves the state file and exits 0. With -v, each contact entering the routing
/// table is reported on stderr as <c>node added &lt;40 hex&gt; &lt;ip&gt;:&lt;port&gt;</c>.
/// </summary>
internal static class DhtServeCommand
{
    /// <summary>How often the routing table is compared for "node added" lines (only with -v).</summary>
    private static readonly TimeSpan WatchInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>How often the state file is also written while serving, so a crash loses little.</summary>
    private static readonly TimeSpan SaveInterval = TimeSpan.FromMinutes(5);

    public static Command Create()
    {
        var bind = new Option<string[]>("--bind")
        {
            Description = "Local IP address to bind, or IP:PORT / [IPv6]:PORT (default 0.0.0.0; an IPv6 address serves the IPv6 DHT, BEP 32). "
                + "Give it twice, one IPv4 and one IPv6 address, to run a dual-stack pair of nodes with one id.",
        };
        var port = new Option<string>("--port") { Description = $"UDP port (default {DhtCommands.DefaultServePort}; 0 picks a free one)." };
        var bootstrap = new Option<string[]>("--bootstrap")
        {
            Description = "HOST:PORT of a node to join through (repeatable).",
            AllowMultipleArgumentsPerToken = true,
        };
        var state = new Option<string>("--state") { Description = "State file: node id and routing table, saved on exit and reused on start." };
        var rateLimit = new Option<string>("--rate-limit")
        {
            Description = "Queries per second accepted from one IP address (default 50).",
        };
        var timeout = new Option<string>("--timeout") { Description = "Give up joining after SECONDS (default 30); the node keeps serving." };
        var json = new Option<bool>("--json") { Description = "Print the first line as a JSON document." };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log debug messages and routing table additions to stderr." };
        var readOnly = new Option<bool>("--read-only")
        {
            Description = "BEP 43 read-only node: its queries carry ro=1 (other nodes keep it out of their routing tables) and it answers no query.",
        };
        var command = new Command("serve", "Run a DHT node until interrupted.")
        {
            bind, port, bootstrap, state, rateLimit, timeout, json, verbose, readOnly,
        };
        command.SetAction(async (parse, ct) =>
        {
            var portText = parse.GetValue(port);
            var binds = ParseBinds(parse.GetValue(bind), portText);
            var routers = DhtCli.ParseEndPoints(parse.GetValue(bootstrap));
            var statePath = parse.GetValue(state);
            if (statePath is { Length: 0 }) throw new UsageException("--state needs a file name");
            var dhtOptions = new DhtOptions { ReadOnly = parse.GetValue(readOnly) };
            if (parse.GetValue(rateLimit) is { } rateText)
            {
                if (!double.TryParse(rateText, NumberStyles.Float, CultureInfo.InvariantCulture, out var rate) || !double.IsFinite(rate) || rate <= 0)
                {
                    throw new UsageException($"--rate-limit '{rateText}' is not a positive number");
                }

                dhtOptions = dhtOptions with { MaxQueriesPerIpPerSecond = rate, RateLimitBurst = (int)Math.Clamp(rate * 2, 1, int.MaxValue) };
            }

            var joinTimeout = TimeSpan.FromSeconds(DhtCli.ParseTimeoutSeconds(parse.GetValue(timeout)));
            var isVerbose = parse.GetValue(verbose);
            var resolved = new List<IPEndPoint>();
            foreach (var r in routers) resolved.Add(await DhtCli.ResolveAsync(r, ct));
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            using var loggers = NodeLogging.CreateStderrFactory(isVerbose);
            var log = loggers.CreateLogger("Peerway.Cli.DhtServe");

            var hosts = new List<DhtHost>(binds.Count);
            try
            {
                foreach (var endPoint in binds)
                {
                    // BEP 32: "the same node ID should be used for both". Both hosts read the same state file (each
                    // restores the contacts of its own family); the first one's id is the pair's.
                    var options = hosts.Count == 0 ? dhtOptions : dhtOptions with { NodeId = hosts[0].Node.Id };
                    hosts.Add(Listening.Bind(endPoint.Address, endPoint.Port,
                        () => DhtHost.Start(new DhtHostOptions { Bind = endPoint, StatePath = statePath, Dht = options }, loggers)));
                }

                if (hosts.Count == 2) hosts[0].Node.PairWith(hosts[1].Node);
                await ServeAsync(hosts, resolved, statePath, joinTimeout, parse.GetValue(json), isVerbose, output, error, log, ct);
            }
            catch (InvalidDataException ex)
            {
                throw new RuntimeFailureException(ex.Message);
            }
            finally
            {
                foreach (var h in hosts) await h.DisposeAsync();
            }

            return CliRunner.Ok;
        });
        return command;
    }

    /// <summary>
    /// --bind, once or twice: one endpoint per node. Twice means a BEP 32 dual-stack pair, so one IPv4 and one IPv6
    /// address; --port applies to a --bind without a port (and may not be given with one that has a port).
    /// </summary>
    private static List<IPEndPoint> ParseBinds(string[]? values, string? portText)
    {
        values ??= [];
        if (values.Length > 2) throw new UsageException("--bind is given at most twice (one IPv4 and one IPv6 address)");
        var parsed = values.Select(DhtCli.ParseBindEndPoint).ToList();
        if (parsed.Count == 0) parsed.Add((null, null));
        if (parsed.Count == 2 && parsed[0].Address!.AddressFamily == parsed[1].Address!.AddressFamily)
        {
            throw new UsageException("a second --bind must be of the other address family (one IPv4 and one IPv6 address, BEP 32)");
        }

        if (portText is not null && parsed.Any(p => p.Port is not null)) throw new UsageException("give the port in --bind or in --port, not both");
        var portNumber = DhtCommands.DefaultServePort;
        if (portText is not null && !EndPointParser.TryParsePort(portText, allowZero: true, out portNumber))
        {
            throw new UsageException(Listening.BadPort("--port", portText, allowZero: true));
        }

        return parsed.Select(p => new IPEndPoint(p.Address ?? IPAddress.Any, p.Port ?? portNumber)).ToList();
    }

    /// <summary>Prints one line per node, joins, serves until <paramref name="ct"/> is cancelled, then saves the state
    /// (once: a paired node saves both routing tables).</summary>
    private static async Task ServeAsync(List<DhtHost> hosts, List<IPEndPoint> routers, string? statePath, TimeSpan joinTimeout, bool json, bool verbose,
        TextWriter output, TextWriter error, ILogger log, CancellationToken ct)
    {
        foreach (var host in hosts)
        {
            var line = json
                ? JsonOut.Object(w =>
                {
                    w.WriteString("node", host.Node.Id.ToString());
                    w.WriteString("listening", host.LocalEndPoint.ToString());
                })
                : $"node {host.Node.Id} listening {host.LocalEndPoint}";
            await output.WriteLineAsync(line);
        }

        await output.FlushAsync(ct);

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var background = new List<Task>();
        foreach (var host in hosts)
        {
            if (verbose) background.Add(WatchRoutingTableAsync(host.Node, error, stop.Token));
            // Each node bootstraps from the routers of its own family; its pair hands it the nodes of the other (BEP 32).
            var family = host.LocalEndPoint.AddressFamily;
            background.Add(JoinAsync(host, routers.Where(r => r.AddressFamily == family).ToList(), joinTimeout, log, stop.Token));
        }

        var saver = hosts[0];
        if (statePath is not null) background.Add(SavePeriodicallyAsync(saver, log, stop.Token));
        try
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // SIGINT/SIGTERM: the normal way to stop a server.
        }

        await stop.CancelAsync();
        await Task.WhenAll(background);
        try
        {
            saver.SaveState();
        }
        catch (IOException ex)
        {
            throw new RuntimeFailureException($"cannot save state to {statePath}: {ex.Message}");
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new RuntimeFailureException($"cannot save state to {statePath}: {ex.Message}");
        }
    }

    private static async Task JoinAsync(DhtHost host, List<IPEndPoint> routers, TimeSpan timeout, ILogger log, CancellationToken ct)
    {
        if (host.RestoredState is null && routers.Count == 0) return;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            var size = await host.JoinAsync(routers, deadline.Token);
            if (size == 0) log.LogWarning("Could not join the DHT: no saved or bootstrap node answered");
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            if (!ct.IsCancellationRequested) log.LogWarning("Joining the DHT timed out after {Seconds} s", timeout.TotalSeconds);
        }
    }

    private static async Task SavePeriodicallyAsync(DhtHost host, ILogger log, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(SaveInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                try
                {
                    host.SaveState();
                }
                catch (IOException ex)
                {
                    log.LogWarning("Could not save the state file: {Message}", ex.Message);
                }
                catch (UnauthorizedAccessException ex)
                {
                    log.LogWarning("Could not save the state file: {Message}", ex.Message);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping: the final save follows.
        }
    }

    private static async Task WatchRoutingTableAsync(DhtNode node, TextWriter error, CancellationToken ct)
    {
        var known = new HashSet<(NodeId, IPEndPoint)>();
        using var timer = new PeriodicTimer(WatchInterval);
        try
        {
            do
            {
                foreach (var c in node.RoutingTableNodes())
                {
                    if (known.Add((c.Id, c.EndPoint))) await error.WriteLineAsync($"node added {c.Id} {c.EndPoint}");
                }

                await error.FlushAsync(ct);
            }
            while (await timer.WaitForNextTickAsync(ct));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping.
        }
    }
}
