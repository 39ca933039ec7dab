using System.CommandLine;
using System.Text.Json;
using Peerway.Simulation;

namespace Peerway.Cli;

/// <summary>`peerway simulate consistency`: eventual consistency of a BEP 44 mutable item or a log's signed heads
/// followed by churning readers (issue 17 item 7), in virtual time on the production DHT engine.</summary>
internal static class SimulateConsistencyCommand
{
    public static Command Create()
    {
        var mode = new Option<string>("--mode") { Description = "item (a BEP 44 mutable item: the owner puts, readers get) or log (signed log heads: followers poll, fetch and put the head again, as 'log clone --follow').", DefaultValueFactory = _ => "item" };
        var readers = new Option<int>("--readers") { Description = "Readers (or followers) kept alive; the network also has the routers and the owner.", DefaultValueFactory = _ => 1000 };
        var updates = new Option<int>("--updates") { Description = "Updates the owner makes (seq 1, 2, 3, ...).", DefaultValueFactory = _ => 6 };
        var interval = new Option<string>("--interval") { Description = "Time between updates, e.g. 30m.", DefaultValueFactory = _ => "30m" };
        var poll = new Option<string?>("--poll") { Description = "How often a reader gets the item (default: 1m for item, 30s for log, as 'log clone --follow')." };
        var republish = new Option<string>("--republish") { Description = "How often the owner (and a log's followers) put the current item again, e.g. 15m, or off.", DefaultValueFactory = _ => "15m" };
        var k = new Option<int>("--k") { Description = "Replication factor k (the engine's bucket size: a put goes to the k closest nodes).", DefaultValueFactory = _ => 8 };
        var churn = new Option<string>("--churn") { Description = "Reader session times, weibull:SHAPE,MEDIAN, or none.", DefaultValueFactory = _ => "weibull:0.5,10m" };
        var seed = new Option<int>("--seed") { Description = "Random seed; the same seed gives the same results.", DefaultValueFactory = _ => 1 };
        var outDir = new Option<string?>("--out") { Description = "Directory for plots and consistency.csv/.json/.txt; runs both modes and the k and republish sweeps around the options given." };
        var parallel = new Option<int>("--parallel") { Description = "With --out: sweep runs at once (each on one thread; the results do not depend on it).", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "Print the results as JSON instead of a table." };
        var progress = new Option<bool>("--progress") { Description = "Print a line per phase and per finished run on stderr." };

        var command = new Command("consistency", "Simulate eventual consistency: an owner updates a BEP 44 item (or a log's head) and churning readers poll it; time until 99 % of live readers see each update, staleness, effect of k and of republishing.");
        foreach (var o in new Option[] { mode, readers, updates, interval, poll, republish, k, churn, seed, outDir, parallel, json, progress })
        {
            command.Options.Add(o);
        }

        command.SetAction((parse, ct) =>
        {
            var consistencyMode = parse.GetValue(mode)?.ToUpperInvariant() switch
            {
                "ITEM" => ConsistencyMode.Item,
                "LOG" => ConsistencyMode.Log,
                _ => throw new UsageException("--mode must be item or log"),
            };
            ChurnModel? churnModel = null;
            var churnText = parse.GetValue(churn) ?? "none";
            if (!churnText.Equals("none", StringComparison.OrdinalIgnoreCase) && !ChurnModel.TryParse(churnText, out churnModel, out var error)) throw new UsageException(error);
            var options = new ConsistencyOptions
            {
                Mode = consistencyMode,
                Readers = parse.GetValue(readers),
                Updates = parse.GetValue(updates),
                UpdateInterval = Duration(parse.GetValue(interval), "--interval"),
                PollInterval = parse.GetValue(poll) is { } p ? Duration(p, "--poll") : null,
                RepublishInterval = parse.GetValue(republish) is { } r && !r.Equals("off", StringComparison.OrdinalIgnoreCase) ? Duration(r, "--republish") : null,
                Churn = churnModel,
                Seed = parse.GetValue(seed),
                Dht = new Peerway.Dht.DhtOptions { K = parse.GetValue(k) },
                Progress = parse.GetValue(progress) ? line => Console.Error.WriteLine(line) : null,
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentException ex)
            {
                throw new UsageException(SimulateCommand.FirstLine(ex.Message));
            }

            var parallelism = parse.GetValue(parallel);
            if (parallelism is < 1 or > 64) throw new UsageException("--parallel must be between 1 and 64");
            var dir = parse.GetValue(outDir);
            if (dir is not null) SimulateCommand.CheckWritable(dir);
            ct.ThrowIfCancellationRequested();
            var latency = System.Runtime.GCSettings.LatencyMode;
            System.Runtime.GCSettings.LatencyMode = System.Runtime.GCLatencyMode.Batch;
            try
            {
                return Task.FromResult(Run(options, dir, parallelism, parse.GetValue(json), parse.GetValue(progress)));
            }
            finally
            {
                System.Runtime.GCSettings.LatencyMode = latency;
            }
        });
        return command;
    }

    private static TimeSpan Duration(string? text, string option) =>
        text is not null && ChurnModel.TryParseDuration(text, out var value) ? value : throw new UsageException($"{option} must be a positive duration such as 30m, 90s or 1h");

    private static int Run(ConsistencyOptions options, string? dir, int parallelism, bool asJson, bool progress)
    {
        if (dir is null)
        {
            var report = ConsistencySimulator.Run(options);
            Console.Out.Write(asJson ? JsonSerializer.Serialize(report, SimulateJson.Default.ConsistencyReport) + Environment.NewLine : ConsistencyReport.Table([report]));
            return CliRunner.Ok;
        }

        var results = ConsistencySweeps.Run(options, parallelism, r =>
        {
            if (progress) Console.Error.WriteLine($"simulate consistency: {r.Scenario}: 99 % after {r.Converge99P50:0.0} s (p50) ({r.WallSeconds:0.0} s)");
        });
        var plots = ConsistencySweeps.WritePlots(results, dir);
        File.WriteAllText(Path.Combine(dir, "consistency.json"), JsonSerializer.Serialize(results, SimulateJson.Default.ConsistencySweepResults));
        var table = ConsistencyReport.Table(results.AllReports());
        File.WriteAllText(Path.Combine(dir, "consistency.txt"), table);
        File.WriteAllText(Path.Combine(dir, "consistency.csv"), ConsistencySweeps.Csv(results.AllReports()));
        if (asJson)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(results, SimulateJson.Default.ConsistencySweepResults));
        }
        else
        {
            Console.Out.Write(table);
            foreach (var p in plots) Console.Out.WriteLine($"wrote {p}");
        }

        return CliRunner.Ok;
    }
}
