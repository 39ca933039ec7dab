using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Peerway.Simulation;

namespace Peerway.Cli;

/// <summary>`peerway simulate`: the production DHT engine on a simulated network of N nodes, in virtual time.</summary>
internal static class SimulateCommand
{
    public static Command Create()
    {
        var nodes = new Option<int>("--nodes") { Description = "Number of DHT nodes (honest plus adversaries).", DefaultValueFactory = _ => 1000 };
        var lookups = new Option<int>("--lookups") { Description = "Lookups measured (half find_node, half get_peers).", DefaultValueFactory = _ => 200 };
        var churn = new Option<string?>("--churn") { Description = "Session times, e.g. weibull:0.5,30m (SHAPE,MEDIAN; MEDIAN in s, m or h)." };
        var adversaries = new Option<double>("--adversaries") { Description = "Fraction f of malicious nodes (lie or drop), 0 to 0.9." };
        var behavior = new Option<string?>("--adversary-mode") { Description = "lie, drop or mixed (default: mixed)." };
        var bep42 = new Option<bool>("--bep42") { Description = "Honest nodes enforce BEP 42 (node ids bound to IPs)." };
        var disjoint = new Option<int>("--disjoint") { Description = "S/Kademlia disjoint lookup paths d.", DefaultValueFactory = _ => 1 };
        var seed = new Option<int>("--seed") { Description = "Random seed; the same seed gives the same results.", DefaultValueFactory = _ => 1 };
        var loss = new Option<double>("--loss") { Description = "Datagram loss rate, 0 to 0.99." };
        var outDir = new Option<string?>("--out") { Description = "Directory for plots (SVG) and summary.json; also runs the sweeps behind the plots." };
        var sweepNodes = new Option<int>("--sweep-nodes") { Description = "Network size of the churn and adversary sweeps (with --out).", DefaultValueFactory = _ => 1000 };
        var json = new Option<bool>("--json") { Description = "Print the results as JSON instead of a table." };
        var alpha = new Option<int?>("--alpha") { Description = "Engine tuning: lookup parallelism α (default: the engine's)." };
        var timeout = new Option<string?>("--timeout") { Description = "Engine tuning: query timeout, e.g. 1s or 0.5s (default: the engine's)." };
        var retries = new Option<int?>("--retries") { Description = "Engine tuning: retries after a query timeout (default: the engine's)." };
        var refresh = new Option<bool?>("--bootstrap-refresh") { Description = "Engine tuning: refresh every bucket right after the bootstrap, true or false (default: the engine's)." };
        var progress = new Option<bool>("--progress") { Description = "Print a line per phase (time, CPU, memory) on stderr, for long runs." };
        var maintenance = new Option<string?>("--maintenance") { Description = "Window (no lookups) for measuring maintenance traffic, e.g. 20m; 0 skips it (default 2m)." };
        var maxMemory = new Option<string?>("--max-memory") { Description = "Cap the managed heap, e.g. 14g or 512m (binary units): near it the GC compacts instead of growing; past it the run fails with exit 1." };

        var command = new Command("simulate", "Simulate the DHT at scale (production engine, virtual time): success, rounds, messages, latency.");
        foreach (var o in new Option[] { nodes, lookups, churn, adversaries, behavior, bep42, disjoint, seed, loss, outDir, sweepNodes, json, alpha, timeout, retries, refresh, maintenance, progress, maxMemory })
        {
            command.Options.Add(o);
        }

        command.Subcommands.Add(SimulateConsistencyCommand.Create());

        command.SetAction((parse, ct) =>
        {
            ChurnModel? churnModel = null;
            if (parse.GetValue(churn) is { } churnText && !ChurnModel.TryParse(churnText, out churnModel, out var error)) throw new UsageException(error);
            AdversaryBehavior? mode = parse.GetValue(behavior)?.ToUpperInvariant() switch
            {
                null or "MIXED" => null,
                "LIE" => AdversaryBehavior.Lie,
                "DROP" => AdversaryBehavior.Drop,
                _ => throw new UsageException("--adversary-mode must be lie, drop or mixed"),
            };
            var dht = new Peerway.Dht.DhtOptions();
            if (parse.GetValue(alpha) is { } a) dht = dht with { Alpha = a };
            if (parse.GetValue(retries) is { } r) dht = dht with { QueryRetries = r };
            if (parse.GetValue(refresh) is { } rb) dht = dht with { RefreshBucketsAfterBootstrap = rb };
            if (parse.GetValue(timeout) is { } t)
            {
                if (!ChurnModel.TryParseDuration(t, out var span)) throw new UsageException("--timeout must be a positive duration such as 2s or 0.5s");
                dht = dht with { QueryTimeout = span };
            }

            var window = TimeSpan.FromMinutes(2);
            if (parse.GetValue(maintenance) is { } m && m != "0" && !ChurnModel.TryParseDuration(m, out window)) throw new UsageException("--maintenance must be a duration such as 20m, or 0");
            if (parse.GetValue(maintenance) == "0") window = TimeSpan.Zero;

            var options = new SimulationOptions
            {
                Dht = dht,
                MaintenanceWindow = window,
                Nodes = parse.GetValue(nodes),
                Lookups = parse.GetValue(lookups),
                Churn = churnModel,
                AdversaryFraction = parse.GetValue(adversaries),
                AdversaryBehavior = mode,
                EnforceBep42 = parse.GetValue(bep42),
                DisjointPaths = parse.GetValue(disjoint),
                Seed = parse.GetValue(seed),
                LossRate = parse.GetValue(loss),
                Progress = parse.GetValue(progress) ? line => Console.Error.WriteLine(line) : null,
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentException ex)
            {
                throw new UsageException(FirstLine(ex.Message));
            }

            var sweep = parse.GetValue(sweepNodes);
            if (sweep is < 16 or > SimulationOptions.MaxNodes) throw new UsageException("--sweep-nodes must be between 16 and 10000000");
            var dir = parse.GetValue(outDir);
            if (dir is not null) CheckWritable(dir);
            var asJson = parse.GetValue(json);
            ct.ThrowIfCancellationRequested();

            var memoryCap = parse.GetValue(maxMemory);
            if (memoryCap is not null) CapHeap(memoryCap);

            // The simulation is one thread building a heap of millions of long-lived objects: background (concurrent)
            // gen2 collections only add work there (≈ 20 % of the CPU time at 20,000 nodes), so run it in batch mode.
            var latency = System.Runtime.GCSettings.LatencyMode;
            System.Runtime.GCSettings.LatencyMode = System.Runtime.GCLatencyMode.Batch;
            try
            {
                return Task.FromResult(Run(options, dir, sweep, asJson));
            }
            catch (OutOfMemoryException) when (memoryCap is not null)
            {
                throw new RuntimeFailureException($"out of memory: this simulation needs more than --max-memory {memoryCap} of managed heap");
            }
            finally
            {
                System.Runtime.GCSettings.LatencyMode = latency;
            }
        });
        return command;
    }

    /// <summary>
    /// Sets the GC's heap hard limit for this process (.NET reads GCHeapHardLimit from the AppContext on
    /// <see cref="GC.RefreshMemoryLimit"/>), so a 10^6-node run stays within a known budget without environment variables.
    /// </summary>
    private static void CapHeap(string text)
    {
        if (!TryParseSize(text, out var bytes) || bytes < MinHeapCap)
        {
            throw new UsageException("--max-memory must be a size such as 14g or 512m (k, m, g, t: powers of 1024), at least 64m");
        }

        AppContext.SetData("GCHeapHardLimit", bytes);
        try
        {
            GC.RefreshMemoryLimit();
        }
        catch (InvalidOperationException ex)
        {
            throw new UsageException($"--max-memory {text}: {ex.Message}");
        }
    }

    private const ulong MinHeapCap = 64UL << 20;

    /// <summary>A byte count with an optional binary suffix (k, m, g, t; a trailing "b" or "ib" is allowed).</summary>
    internal static bool TryParseSize(string text, out ulong bytes)
    {
        bytes = 0;
        var s = text.Trim().ToLowerInvariant();
        if (s.EndsWith("ib", StringComparison.Ordinal)) s = s[..^2];
        else if (s.EndsWith('b')) s = s[..^1];
        var shift = s.Length == 0 ? -1 : "kmgt".IndexOf(s[^1], StringComparison.Ordinal) is var i and >= 0 ? 10 * (i + 1) : 0;
        if (shift > 0) s = s[..^1];
        if (shift < 0 || !decimal.TryParse(s, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out var value)) return false;
        var scaled = value * (decimal)Math.Pow(2, shift);
        if (scaled is < 1 or > ulong.MaxValue / 2) return false;
        bytes = (ulong)scaled;
        return true;
    }

    /// <summary>Fails with a usage error before the sweeps (minutes of work) when <paramref name="dir"/> cannot take the plots.</summary>
    internal static void CheckWritable(string dir)
    {
        try
        {
            Directory.CreateDirectory(dir);
            var probe = Path.Combine(dir, $".peerway-write-test-{Environment.ProcessId}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException($"--out: cannot write to {dir}: {ex.Message}");
        }
    }

    private static int Run(SimulationOptions options, string? dir, int sweep, bool asJson)
    {
        if (dir is null)
        {
            var report = Simulator.Run(options);
            Console.Out.Write(asJson ? JsonSerializer.Serialize(report, SimulateJson.Default.SimulationReport) + Environment.NewLine : SimulationReport.Table([report]));
            return CliRunner.Ok;
        }

        var results = SimulationSweeps.Run(options, sweep, sweepLookups: 200, progress: r =>
        {
            if (!asJson) Console.Error.WriteLine($"simulate: {r.Scenario}: success {r.SuccessRate:P1} ({r.WallSeconds:0.0} s)");
        });
        var plots = SimulationSweeps.WritePlots(results, dir);
        File.WriteAllText(Path.Combine(dir, "summary.json"), JsonSerializer.Serialize(results, SimulateJson.Default.SweepResults));
        var table = SimulationReport.Table(results.AllReports());
        File.WriteAllText(Path.Combine(dir, "summary.txt"), table);
        if (asJson)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(results, SimulateJson.Default.SweepResults));
        }
        else
        {
            Console.Out.Write(table);
            foreach (var p in plots) Console.Out.WriteLine($"wrote {p}");
        }

        return CliRunner.Ok;
    }

    internal static string FirstLine(string message)
    {
        var line = message.Split('\n')[0].Trim();
        var p = line.IndexOf(" (Parameter", StringComparison.Ordinal);
        return p > 0 ? line[..p] : line;
    }
}
