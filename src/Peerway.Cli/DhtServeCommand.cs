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
/// <c>peerway dht serve</c>: a long-running DHT node. First stdout line: <c>node &lt;40 hex&gt; listening &lt;ip&gt;:&lt;port&gt;</c>;
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
        var bind = new Option<string>("--bind") { Description = "Local IP address to bind, or IP:PORT / [IPv6]:PORT (default 0.0.0.0; an IPv6 address serves the IPv6 DHT, BEP 32)." };
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
            var (bindAddress, bindPort) = DhtCli.ParseBindEndPoint(parse.GetValue(bind));
            var address = bindAddress ?? IPAddress.Any;
            var portText = parse.GetValue(port);
            var portNumber = bindPort ?? DhtCommands.DefaultServePort;
            if (bindPort is not null && portText is not null) throw new UsageException("give the port in --bind or in --port, not both");
            if (portText is not null && !EndPointParser.TryParsePort(portText, allowZero: true, out portNumber))
            {
                throw new UsageException(Listening.BadPort("--port", portText, allowZero: true));
            }

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

            DhtHost host;
            try
            {
                host = Listening.Bind(address, portNumber,
                    () => DhtHost.Start(new DhtHostOptions { Bind = new IPEndPoint(address, portNumber), StatePath = statePath, Dht = dhtOptions }, loggers));
            }
            catch (InvalidDataException ex)
            {
                throw new RuntimeFailureException(ex.Message);
            }

            await using (host)
            {
                var line = parse.GetValue(json)
                    ? JsonOut.Object(w =>
                    {
                        w.WriteString("node", host.Node.Id.ToString());
                        w.WriteString("listening", host.LocalEndPoint.ToString());
                    })
                    : $"node {host.Node.Id} listening {host.LocalEndPoint}";
                await output.WriteLineAsync(line);
                await output.FlushAsync(ct);

                using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var watch = isVerbose ? WatchRoutingTableAsync(host.Node, error, stop.Token) : Task.CompletedTask;
                var join = JoinAsync(host, resolved, joinTimeout, log, stop.Token);
                var periodicSave = statePath is null ? Task.CompletedTask : SavePeriodicallyAsync(host, log, stop.Token);
                try
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, ct);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    // SIGINT/SIGTERM: the normal way to stop a server.
                }

                await stop.CancelAsync();
                await join;
                await watch;
                await periodicSave;
                try
                {
                    host.SaveState();
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

            return CliRunner.Ok;
        });
        return command;
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
