using System.CommandLine;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Net;
using Peerway.Node;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Trackers;
using Spectre.Console;

namespace Peerway.Cli;

/// <summary>share, get and tracker: the long-running BitTorrent commands.</summary>
internal static partial class TorrentCommands
{
    private static ILoggerFactory Loggers(bool verbose) => LoggerFactory.Create(b => b
        .AddSimpleConsole(o => o.SingleLine = true)
        .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
        .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Warning));

    private static Option<int> PortOption() => new("--port", "-p") { Description = "TCP port for peers (0: any free port).", DefaultValueFactory = _ => 0 };

    private static Option<string[]> TrackerOption() => new("--tracker") { Description = "Tracker announce URL, http(s):// or udp:// (repeatable)." };

    private static Option<string[]> DhtBootstrapOption() => new("--dht-bootstrap") { Description = "A DHT node to join through, HOST:PORT (repeatable); enables the DHT as a peer source." };

    private static async Task<IReadOnlyList<IPEndPoint>> ResolveAllAsync(string[]? values, string what, CancellationToken ct)
    {
        var result = new List<IPEndPoint>();
        foreach (var v in values ?? [])
        {
            result.Add(await TorrentHost.ResolveAsync(v, ct) ?? throw new UsageException($"not a HOST:PORT {what}: {v}"));
        }

        return result;
    }

    private static Option<int?> UploadLimitOption() => new("--upload-limit") { Description = "Upload cap in KiB/s (default: unlimited)." };

    private static Option<string> EncryptionOption() => new("--encryption")
    {
        Description = "MSE/PE: off (plain only), prefer (accept both, dial encrypted first, fall back to plain), require (RC4 only).",
        DefaultValueFactory = _ => "prefer",
    };

    private static EncryptionPolicy CheckEncryption(string? value) => value switch
    {
        "off" => EncryptionPolicy.Off,
        "prefer" => EncryptionPolicy.Prefer,
        "require" => EncryptionPolicy.Require,
        _ => throw new UsageException($"--encryption must be off, prefer or require, not '{value}'"),
    };

    private static long? CheckLimit(int? kib) => kib switch
    {
        null => null,
        <= 0 => throw new UsageException("--upload-limit must be a positive number of KiB/s"),
        _ => kib.Value * 1024L,
    };

    /// <summary>Runs until SIGINT/SIGTERM (the token): a clean stop, not an error.</summary>
    private static async Task UntilInterruptedAsync(CancellationToken ct)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, ct);
        }
        catch (OperationCanceledException)
        {
            // Interrupted: the caller disposes what it started and exits 0.
        }
    }

    private static Option<bool> VerboseOption() => new("--verbose", "-v") { Description = "Log protocol events to stderr." };

    private static int CheckPort(int port) => port is < 0 or > 65535 ? throw new UsageException($"invalid port: {port}") : port;

    private static IReadOnlyList<string> CheckTrackers(string[]? trackers)
    {
        foreach (var t in trackers ?? [])
        {
            if (!MetainfoParser.IsTrackerUrl(t)) throw new UsageException($"not an http, https or udp tracker URL: {t}");
        }

        return trackers ?? [];
    }

    private static Command ShareCommand()
    {
        var path = new Argument<string>("source") { Description = "A file or directory to share, or a .torrent whose content is next to it." };
        var port = PortOption();
        var trackers = TrackerOption();
        var content = new Option<string?>("--content") { Description = "With a .torrent: where the content is (default: next to the .torrent)." };
        var verbose = VerboseOption();
        var dht = DhtBootstrapOption();
        var limit = UploadLimitOption();
        var encryption = EncryptionOption();
        var command = new Command("share", "Seed a file, directory or .torrent; prints the magnet link first, then seeds until Ctrl-C.") { path, port, trackers, dht, content, limit, encryption, verbose };
        command.SetAction(async (parse, ct) =>
        {
            var source = parse.GetValue(path)!;
            var trackerList = CheckTrackers(parse.GetValue(trackers));
            TorrentInfo info;
            string contentPath;
            var allTrackers = new List<string>(trackerList);
            if (File.Exists(source) && source.EndsWith(".torrent", StringComparison.OrdinalIgnoreCase))
            {
                var meta = await LoadTorrentAsync(source, ct);
                info = meta.Info;
                allTrackers.AddRange(meta.Trackers.Where(t => !allTrackers.Contains(t)));
                contentPath = parse.GetValue(content) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(source))!, info.Name);
            }
            else if (File.Exists(source) || Directory.Exists(source))
            {
                var bytes = await TorrentCreator.CreateAsync(source, new TorrentCreateOptions { Trackers = trackerList }, null, ct);
                MetainfoParser.TryParse(bytes, out var meta, out _);
                info = meta!.Info;
                contentPath = Path.GetFullPath(source);
            }
            else
            {
                throw new UsageException($"no such file or directory: {source}");
            }

            if (!File.Exists(contentPath) && !Directory.Exists(contentPath)) throw new UsageException($"content not found: {contentPath}");
            using var loggers = Loggers(parse.GetValue(verbose));
            var host = new TorrentHost(new TorrentHostOptions
            {
                InfoHash = info.InfoHash,
                Info = info,
                Path = contentPath,
                ContentIsSource = true,
                Trackers = allTrackers,
                DhtBootstrap = await ResolveAllAsync(parse.GetValue(dht), "DHT node", ct),
                Session = new TorrentSessionOptions
                {
                    ListenPort = CheckPort(parse.GetValue(port)), UploadRateLimit = CheckLimit(parse.GetValue(limit)), Encryption = CheckEncryption(parse.GetValue(encryption)),
                },
            }, loggers);
            await using (host)
            {
                try
                {
                    await host.StartAsync(ct);
                }
                catch (InvalidDataException ex)
                {
                    throw new UsageException(ex.Message);
                }

                parse.InvocationConfiguration.Output.WriteLine(new MagnetLink(info.InfoHash, info.Name, allTrackers, []).ToString());
                await parse.InvocationConfiguration.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"seeding {info.Name} ({FormatSize(info.TotalLength)}, {info.PieceCount} pieces) on port {host.Session.ListenPort}; Ctrl-C to stop"));
                await UntilInterruptedAsync(ct);
            }

            return CliRunner.Ok;
        });
        return command;
    }

    private static Command GetCommand()
    {
        var what = new Argument<string>("torrent") { Description = "A magnet link or a .torrent file." };
        var output = new Option<string>("--output", "-o") { Description = "Download directory.", Required = true };
        var port = PortOption();
        var peers = new Option<string[]>("--peer") { Description = "A peer to connect to, HOST:PORT (repeatable)." };
        var trackers = TrackerOption();
        var seed = new Option<bool>("--seed") { Description = "Keep seeding after the download completes, until Ctrl-C." };
        var timeout = new Option<int?>("--timeout") { Description = "Give up (exit 1) after this many seconds." };
        var verbose = VerboseOption();
        var dht = DhtBootstrapOption();
        var limit = UploadLimitOption();
        var encryption = EncryptionOption();
        var command = new Command("get", "Download a magnet link or .torrent; exits 0 when complete and verified.") { what, output, port, peers, dht, trackers, seed, timeout, limit, encryption, verbose };
        command.SetAction(async (parse, ct) =>
        {
            var target = parse.GetValue(what)!;
            var trackerList = new List<string>(CheckTrackers(parse.GetValue(trackers)));
            var peerList = new List<IPEndPoint>();
            TorrentInfo? info = null;
            Peerway.Core.NodeId hash;
            string name;
            if (target.StartsWith("magnet:", StringComparison.OrdinalIgnoreCase))
            {
                if (!MagnetLink.TryParse(target, out var magnet, out var error))
                {
                    throw new UsageException(error == MagnetError.V2Only
                        ? "a BitTorrent v2-only magnet link (urn:btmh, BEP 52); Peerway fetches v1 and hybrid torrents (urn:btih)"
                        : $"invalid magnet link: {error}");
                }

                hash = magnet!.InfoHash;
                name = magnet.DisplayName ?? hash.ToString();
                trackerList.AddRange(magnet.Trackers.Where(t => !trackerList.Contains(t)));
                foreach (var pe in magnet.Peers)
                {
                    if (MagnetLink.TryParsePeer(pe, out var ep)) peerList.Add(ep!);
                }
            }
            else
            {
                var meta = await LoadTorrentAsync(target, ct);
                info = meta.Info;
                hash = meta.InfoHash;
                name = info.Name;
                trackerList.AddRange(meta.Trackers.Where(t => !trackerList.Contains(t)));
            }

            peerList.AddRange(await ResolveAllAsync(parse.GetValue(peers), "peer", ct));

            if (parse.GetValue(timeout) is <= 0) throw new UsageException("--timeout must be positive");
            var dir = parse.GetValue(output)!;
            Directory.CreateDirectory(dir);
            using var loggers = Loggers(parse.GetValue(verbose));
            var host = new TorrentHost(new TorrentHostOptions
            {
                InfoHash = hash,
                Info = info,
                Path = dir,
                Trackers = trackerList,
                Peers = peerList,
                DhtBootstrap = await ResolveAllAsync(parse.GetValue(dht), "DHT node", ct),
                Session = new TorrentSessionOptions
                {
                    ListenPort = CheckPort(parse.GetValue(port)), UploadRateLimit = CheckLimit(parse.GetValue(limit)), Encryption = CheckEncryption(parse.GetValue(encryption)),
                },
            }, loggers);
            await using (host)
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
                if (parse.GetValue(timeout) is { } seconds) deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
                await host.StartAsync(ct);
                if (host.Session.Info is not null)
                {
                    var start = host.Session.GetStats();
                    await parse.InvocationConfiguration.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"resume: {start.PiecesKeptOnOpen} pieces kept, {start.PiecesRechecked} rechecked"));
                }

                await parse.InvocationConfiguration.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"fetching {name} into {dir} (port {host.Session.ListenPort})"));
                try
                {
                    await ShowProgressAsync(host.Session, name, parse.InvocationConfiguration.Error, deadline.Token);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    var s = host.Session.GetStats();
                    throw new RuntimeFailureException(string.Create(CultureInfo.InvariantCulture,
                        $"timed out with {s.VerifiedPieces}/{s.PieceCount} pieces verified ({s.Connections} peers connected)"));
                }

                var stats = host.Session.GetStats();
                parse.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"complete: {host.Session.Info!.Name} {stats.TotalLength} bytes, {stats.PieceCount} pieces verified, info-hash {hash}"));
                if (parse.GetValue(seed))
                {
                    await parse.InvocationConfiguration.Error.WriteLineAsync("seeding; Ctrl-C to stop");
                    await UntilInterruptedAsync(ct);
                }
            }

            return CliRunner.Ok;
        });
        return command;
    }

    /// <summary>A live Spectre.Console bar on a terminal; one plain line per second otherwise. Returns when complete.</summary>
    private static async Task ShowProgressAsync(TorrentSession session, string name, TextWriter error, CancellationToken ct)
    {
        var done = session.Completed.WaitAsync(ct);
        if (ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            await console.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
                .StartAsync(async ctx =>
                {
                    var task = ctx.AddTask(Markup.Escape(name), maxValue: 1);
                    while (!done.IsCompleted)
                    {
                        var s = session.GetStats();
                        if (s.HasMetadata) task.MaxValue = Math.Max(1, s.TotalLength);
                        task.Value = s.HasMetadata ? s.Progress * s.TotalLength : 0;
                        await Task.WhenAny(done, Task.Delay(250, CancellationToken.None));
                    }

                    task.Value = task.MaxValue;
                });
            await done;
            return;
        }

        long last = 0;
        while (!done.IsCompleted)
        {
            await Task.WhenAny(done, Task.Delay(1000, CancellationToken.None));
            var s = session.GetStats();
            var rate = s.Downloaded - last;
            last = s.Downloaded;
            await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"progress {s.Progress * 100:0.0}% {s.VerifiedPieces}/{s.PieceCount} pieces, {FormatSize(rate)}/s, {s.Connections} peers{(s.HasMetadata ? "" : ", fetching metadata")}"));
        }

        await done;
    }

    private static Command TrackerCommand()
    {
        var port = new Option<int>("--port", "-p") { Description = "Port for HTTP (TCP) and BEP 15 (UDP) announces.", DefaultValueFactory = _ => 6969 };
        var interval = new Option<int>("--interval") { Description = "Re-announce interval in seconds.", DefaultValueFactory = _ => 60 };
        var command = new Command("tracker", "Run a BitTorrent tracker: HTTP announce + scrape (compact, BEP 23) and UDP (BEP 15).") { port, interval };
        command.SetAction(async (parse, ct) =>
        {
            var p = CheckPort(parse.GetValue(port));
            if (parse.GetValue(interval) is <= 0 or > 86_400) throw new UsageException("--interval must be between 1 and 86400 seconds");
            var options = new TrackerServerOptions { Port = p, Interval = TimeSpan.FromSeconds(parse.GetValue(interval)) };
            await using var server = new TrackerServer(options, TimeProvider.System);
            UdpDatagramSocket? udp;
            try
            {
                server.Start();
                udp = new UdpDatagramSocket(new IPEndPoint(IPAddress.Any, server.Port));
                server.StartUdp(udp);
            }
            catch (System.Net.Sockets.SocketException ex)
            {
                throw new RuntimeFailureException($"cannot listen on port {p}: {ex.Message}");
            }

            parse.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{server.Port}/announce"));
            await parse.InvocationConfiguration.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"tracker on http://0.0.0.0:{server.Port}/announce and udp://0.0.0.0:{server.Port}; Ctrl-C to stop"));
            await UntilInterruptedAsync(ct);

            return CliRunner.Ok;
        });
        return command;
    }
}
