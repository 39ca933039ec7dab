using System.CommandLine;
using System.Globalization;
using Peerway.Node;
using Spectre.Console;

namespace Peerway.Cli;

/// <summary>
/// <c>peerway demo</c>: the main job — one seeder and 8 downloaders share a generated 64 MiB file on loopback, the
/// downloaders starting from a magnet link with no tracker (the DHT is the only peer source); a table shows each
/// peer's time and how many bytes came from the seeder versus other peers. Exit 0 only when every copy verifies.
/// <c>peerway demo --dht-only</c>: the DHT part alone — nodes join, announce random info-hashes, look them up.
/// </summary>
internal static partial class DemoCommand
{
    public static Command Create()
    {
        var nodes = new Option<int>("--nodes") { Description = "DHT nodes to start on loopback.", DefaultValueFactory = _ => 50 };
        var infoHashes = new Option<int>("--infohashes") { Description = "Random info-hashes to announce and look up.", DefaultValueFactory = _ => 20 };
        var seed = new Option<int?>("--seed") { Description = "Seed for the random choices (repeatable runs)." };
        var timeout = new Option<int>("--timeout") { Description = "Give up after SECONDS (both demos).", DefaultValueFactory = _ => 300 };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log debug messages to stderr." };
        var dhtOnly = new Option<bool>("--dht-only") { Description = "Run only the DHT demo (join, announce, look up) without file sharing." };
        var peers = new Option<int>("--peers") { Description = "Downloaders in the file-sharing demo.", DefaultValueFactory = _ => 8 };
        var sizeMib = new Option<int>("--size-mib") { Description = "Size of the generated file in MiB.", DefaultValueFactory = _ => 64 };
        var seederLimit = new Option<int?>("--seeder-upload-limit") { Description = "Cap the seeder's upload at this many KiB/s (swarm-scaling runs)." };
        var browser = new Option<bool>("--browser") { Description = "A headless browser (Chromium + webtorrent) joins a local swarm of desktop peers over WebRTC (DemoCommand.Browser.cs)." };
        var keep = new Option<bool>("--keep") { Description = "Keep the demo's node (and its dashboard) running after the summary, until Ctrl-C." };
        var command = new Command("demo", "Run a local swarm on loopback (1 seeder, 8 peers, magnet via DHT only) and print a summary.")
        {
            nodes, infoHashes, seed, timeout, verbose, dhtOnly, peers, sizeMib, seederLimit, browser, keep,
        };
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(browser))
            {
                return await RunBrowserDemoAsync(parse.GetValue(sizeMib), parse.GetValue(timeout), parse.GetValue(verbose), parse.InvocationConfiguration.Output, ct);
            }

            if (!parse.GetValue(dhtOnly))
            {
                if (parse.GetValue(seederLimit) is <= 0) throw new UsageException("--seeder-upload-limit must be a positive number of KiB/s");
                return await RunTorrentDemoAsync(parse.GetValue(peers), parse.GetValue(sizeMib), parse.GetValue(seed), parse.GetValue(timeout),
                    parse.GetValue(verbose), parse.InvocationConfiguration.Output, parse.GetValue(seederLimit) * 1024L, parse.GetValue(keep), ct);
            }

            var options = new LocalSwarmOptions
            {
                Nodes = parse.GetValue(nodes),
                InfoHashes = parse.GetValue(infoHashes),
                Seed = parse.GetValue(seed),
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentOutOfRangeException ex)
            {
                throw new UsageException(ex.Message.Split('\n')[0]);
            }

            var seconds = parse.GetValue(timeout);
            if (seconds is < 1 or > 3600) throw new UsageException($"--timeout {seconds} is not in 1..3600 seconds");
            var output = parse.InvocationConfiguration.Output;
            var fancy = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
            using var loggers = NodeLogging.CreateStderrFactory(parse.GetValue(verbose));
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(TimeSpan.FromSeconds(seconds));

            LocalSwarmReport report;
            try
            {
                report = fancy
                    ? await RunWithProgressBarsAsync(options, loggers, deadline.Token)
                    : await RunWithProgressLinesAsync(options, loggers, output, deadline.Token);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                throw new RuntimeFailureException($"the demo did not finish within {seconds} s");
            }

            if (fancy) WriteTable(report);
            else await WritePlainAsync(report, output);

            if (!report.AllFound)
            {
                throw new RuntimeFailureException(
                    $"{report.Lookups.Count - report.Successes} of {report.Lookups.Count} lookups did not find their announcer");
            }

            return CliRunner.Ok;
        });
        return command;
    }

    private static async Task<LocalSwarmReport> RunWithProgressLinesAsync(
        LocalSwarmOptions options, Microsoft.Extensions.Logging.ILoggerFactory loggers, TextWriter output, CancellationToken ct)
    {
        var gate = new Lock();
        var progress = new CallbackProgress<SwarmProgress>(p =>
        {
            if (p.Done != p.Total) return;
            lock (gate) output.WriteLine(Describe(p));
        });
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"starting {options.Nodes} DHT nodes on loopback (real UDP sockets)"));
        await using var swarm = LocalDhtSwarm.Start(options, loggers, progress);
        return await swarm.RunAsync(progress, ct);
    }

    private static async Task<LocalSwarmReport> RunWithProgressBarsAsync(
        LocalSwarmOptions options, Microsoft.Extensions.Logging.ILoggerFactory loggers, CancellationToken ct)
    {
        LocalSwarmReport? report = null;
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>
                {
                    ["bind"] = ctx.AddTask("start nodes", maxValue: options.Nodes),
                    ["join"] = ctx.AddTask("join (bootstrap)", maxValue: options.Nodes - 1),
                    ["announce"] = ctx.AddTask("announce", maxValue: options.InfoHashes),
                    ["lookup"] = ctx.AddTask("look up", maxValue: options.InfoHashes * options.LookupsPerInfoHash),
                };
                var progress = new CallbackProgress<SwarmProgress>(p =>
                {
                    if (tasks.TryGetValue(p.Phase, out var t)) t.Value = Math.Max(t.Value, p.Done);
                });
                await using var swarm = LocalDhtSwarm.Start(options, loggers, progress);
                report = await swarm.RunAsync(progress, ct);
                foreach (var t in tasks.Values) t.Value = t.MaxValue;
            });
        return report!;
    }

    private static string Describe(SwarmProgress p) => p.Phase switch
    {
        "bind" => $"started {p.Total} nodes",
        "join" => $"joined {p.Done}/{p.Total} nodes",
        "announce" => $"announced {p.Done}/{p.Total} info-hashes",
        "lookup" => $"looked up {p.Done}/{p.Total}",
        _ => $"{p.Phase} {p.Done}/{p.Total}",
    };

    private static IEnumerable<(string Metric, string Value)> Rows(LocalSwarmReport r)
    {
        var c = CultureInfo.InvariantCulture;
        yield return ("nodes", r.Nodes.ToString(c));
        yield return ("mean routing table", string.Create(c, $"{r.MeanRoutingTableSize} contacts"));
        yield return ("announces", string.Create(c, $"{r.Announces} ({r.AnnouncesAccepted} accepted)"));
        yield return ("lookups", r.Lookups.Count.ToString(c));
        yield return ("success rate", string.Create(c, $"{r.SuccessRate * 100:0.0}% ({r.Successes}/{r.Lookups.Count})"));
        yield return ("rounds (mean / p90)", string.Create(c, $"{r.MeanRounds:0.00} / {r.P90Rounds}"));
        yield return ("messages sent", string.Create(c, $"{r.DatagramsSent} datagrams ({r.BytesSent / 1024.0:0.0} KiB)"));
        yield return ("time", string.Create(c, $"{r.Elapsed.TotalSeconds:0.00} s"));
    }

    private static async Task WritePlainAsync(LocalSwarmReport report, TextWriter output)
    {
        await output.WriteLineAsync("summary");
        foreach (var (metric, value) in Rows(report)) await output.WriteLineAsync($"  {metric,-20} {value}");
    }

    private static void WriteTable(LocalSwarmReport report)
    {
        var table = new Table().Title("Peerway DHT demo").AddColumn("metric").AddColumn(new TableColumn("value").RightAligned());
        foreach (var (metric, value) in Rows(report)) table.AddRow(Markup.Escape(metric), Markup.Escape(value));
        AnsiConsole.Write(table);
    }

    private sealed class CallbackProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
