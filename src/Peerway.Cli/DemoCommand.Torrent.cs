using System.Globalization;
using Peerway.Node;
using Spectre.Console;

namespace Peerway.Cli;

/// <summary>The file-sharing demo: output (live bars on a terminal, lines otherwise) and the summary table.</summary>
internal static partial class DemoCommand
{
    private static async Task<int> RunTorrentDemoAsync(int peers, int sizeMib, int? seed, int seconds, bool verbose, TextWriter output,
        long? seederUploadLimit, bool keep, CancellationToken ct)
    {
        var options = new LocalTorrentSwarmOptions { Peers = peers, FileSize = (long)sizeMib * 1024 * 1024, Seed = seed, SeederUploadLimit = seederUploadLimit };
        try
        {
            if (sizeMib < 1) throw new ArgumentOutOfRangeException(nameof(sizeMib), sizeMib, "--size-mib must be at least 1");
            options.Validate();
        }
        catch (ArgumentOutOfRangeException ex)
        {
            throw new UsageException(ex.Message.Split('\n')[0].Split(" (Parameter", 2)[0]);
        }

        if (seconds is < 1 or > 3600) throw new UsageException($"--timeout {seconds} is not in 1..3600 seconds");
        var fancy = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        using var loggers = NodeLogging.CreateStderrFactory(verbose);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
        // The demo's node: its dashboard is up before the swarm starts, so a new user can open it and watch.
        await using var node = await DemoNode.StartAsync(loggers, ct);
        options = options with { ExtraPeer = node.JoinAsync };
        await output.WriteLineAsync($"dashboard: {node.DashboardUrl} (peerway node; the demo torrent is added through its Transmission RPC)");
        await output.FlushAsync(ct);
        LocalTorrentSwarmReport report;
        try
        {
            if (fancy)
            {
                LocalTorrentSwarmReport? r = null;
                await AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                    .StartAsync(async ctx =>
                    {
                        var join = ctx.AddTask("DHT: join", maxValue: 1);
                        var bars = Enumerable.Range(1, peers).Select(i => ctx.AddTask(string.Create(CultureInfo.InvariantCulture, $"peer {i}"), maxValue: 1)).ToList();
                        var dhtProgress = new CallbackProgress<SwarmProgress>(p =>
                        {
                            if (p.Phase == "join") join.Value = Math.Max(join.Value, (double)p.Done / Math.Max(1, p.Total));
                        });
                        var progress = new CallbackProgress<TorrentSwarmProgress>(p => bars[p.Peer - 1].Value = p.Fraction);
                        r = await LocalTorrentSwarm.RunAsync(options, loggers, progress, dhtProgress, deadline.Token);
                        join.Value = 1;
                        foreach (var b in bars) b.Value = 1;
                    });
                report = r!;
            }
            else
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"demo: 1 seeder + {peers} peers, a {sizeMib} MiB file, magnet link only, peers found through the DHT (loopback, real sockets)"));
                var last = new int[peers + 1];
                var gate = new Lock();
                var progress = new CallbackProgress<TorrentSwarmProgress>(p =>
                {
                    var decile = (int)(p.Fraction * 10);
                    lock (gate)
                    {
                        if (decile <= last[p.Peer]) return;
                        last[p.Peer] = decile;
                        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"peer {p.Peer}: {decile * 10}%"));
                    }
                });
                report = await LocalTorrentSwarm.RunAsync(options, loggers, progress, null, deadline.Token);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new RuntimeFailureException($"the demo did not finish within {seconds} s");
        }

        WriteTorrentSummary(report, fancy, output);
        // Not "SHA-256 ok": that marks the 8 swarm peers' rows.
        await output.WriteLineAsync($"node: {node.Name} 100% through the Transmission RPC, SHA-256 {(node.Verified == true ? "matches the source" : "MISMATCH")}");
        if (!report.AllVerified)
        {
            throw new RuntimeFailureException($"{report.Peers.Count(p => !p.Verified)} of {report.Peers.Count} downloads did not verify");
        }

        if (node.Verified != true) throw new RuntimeFailureException("the node's download did not verify");
        if (keep)
        {
            await output.WriteLineAsync($"node: still running, dashboard {node.DashboardUrl} (Ctrl-C to stop)");
            await output.FlushAsync(ct);
            await ContentCommands.WaitForCancellationAsync(ct);
        }

        return CliRunner.Ok;
    }

    private static void WriteTorrentSummary(LocalTorrentSwarmReport r, bool fancy, TextWriter output)
    {
        var c = CultureInfo.InvariantCulture;
        static string Mib(long b) => string.Create(CultureInfo.InvariantCulture, $"{b / 1048576.0:0.0} MiB");
        var rows = r.Peers.Select(p => new[]
        {
            p.Index.ToString(c), p.Address.Address.ToString(), string.Create(c, $"{p.Elapsed.TotalSeconds:0.00} s"), Mib(p.FromSeeder), Mib(p.FromPeers),
            p.Verified ? "SHA-256 ok" : "MISMATCH",
        }).ToList();
        var copies = (double)r.SeederUploaded / Math.Max(1, r.FileSize);
        var footer = new[]
        {
            string.Create(c, $"magnet: {r.Magnet}"),
            string.Create(c, $"file: {Mib(r.FileSize)} in {r.PieceCount} pieces; DHT nodes: {r.DhtNodes}; total time {r.Elapsed.TotalSeconds:0.0} s"),
            string.Create(c, $"seeder uploaded {Mib(r.SeederUploaded)} ({copies:0.00} copies for {r.Peers.Count} peers); {r.FromPeersShare * 100:0.0}% of all bytes came from other peers"),
        };
        if (fancy)
        {
            var table = new Table().Title("Peerway file-sharing demo").AddColumns("peer", "address", "time", "from seeder", "from peers", "check");
            foreach (var row in rows) table.AddRow(row.Select(Markup.Escape).ToArray());
            AnsiConsole.Write(table);
            foreach (var f in footer) AnsiConsole.WriteLine(f);
            return;
        }

        output.WriteLine("summary");
        output.WriteLine(string.Create(c, $"  {"peer",-5} {"address",-14} {"time",9} {"from seeder",12} {"from peers",12}  check"));
        foreach (var row in rows) output.WriteLine(string.Create(c, $"  {row[0],-5} {row[1],-14} {row[2],9} {row[3],12} {row[4],12}  {row[5]}"));
        foreach (var f in footer) output.WriteLine("  " + f);
    }
}
