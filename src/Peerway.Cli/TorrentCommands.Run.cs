using System.CommandLine;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Dht;
using Peerway.Net;
using Peerway.Node;
using Peerway.Torrent;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Proxy;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Trackers;
using Peerway.WebTorrent;
using Spectre.Console;

namespace Peerway.Cli;

/// <summary>share, get and tracker: the long-running BitTorrent commands.</summary>
internal static partial class TorrentCommands
{
    private static ILoggerFactory Loggers(bool verbose) => LoggerFactory.Create(b => b
        .AddSimpleConsole(o => o.SingleLine = true)
        .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
        .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Warning));

    private static Option<int> PortOption() => Listening.PortOption("--port", "Port for peers, TCP and uTP/UDP (the DHT's too; 0: any free port).", 0, allowZero: true, "-p");

    private static Option<string> BindOption() => Listening.BindOption("IP address to listen on for peers (and for the DHT node).", "0.0.0.0");

    private static Option<string[]> TrackerOption() => new("--tracker") { Description = "Tracker announce URL, http(s)://, udp:// or ws(s):// (repeatable)." };

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

    private static Option<string> TransportOption() => new("--transport")
    {
        Description = "Peer transports: tcp, utp (BEP 29, on the same port number over UDP) or both (dial uTP first, fall back to TCP at once).",
        DefaultValueFactory = _ => "both",
    };

    private static PeerTransports CheckTransport(string? value) => value switch
    {
        "tcp" => PeerTransports.Tcp,
        "utp" => PeerTransports.Utp,
        "both" => PeerTransports.Both,
        _ => throw new UsageException($"--transport must be tcp, utp or both, not '{value}'"),
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

    private static Option<string?> WebRtcOption() => new("--webrtc")
    {
        Description = "WebRTC peers (WebTorrent, browsers) through ws:// and wss:// trackers: on or off (default: on when a WebSocket tracker is known).",
    };

    /// <summary>The WebRTC peer source settings for --webrtc (null: off), given the trackers the torrent will use.</summary>
    private static WebRtcPeerSourceOptions? CheckWebRtc(string? value, IEnumerable<string> trackers, IPAddress bind)
    {
        var on = value switch
        {
            null => trackers.Any(t => t.StartsWith("ws://", StringComparison.OrdinalIgnoreCase) || t.StartsWith("wss://", StringComparison.OrdinalIgnoreCase)),
            "on" => true,
            "off" => false,
            _ => throw new UsageException($"--webrtc must be on or off, not {value}"),
        };
        return on ? new WebRtcPeerSourceOptions { BindAddress = bind } : null;
    }

    private static string[] CheckTrackers(string[]? trackers)
    {
        foreach (var t in trackers ?? [])
        {
            if (!MetainfoParser.IsTrackerUrl(t)) throw new UsageException($"not an http, https, udp, ws or wss tracker URL: {t}");
        }

        return trackers ?? [];
    }

    private static Command ShareCommand()
    {
        var path = new Argument<string>("source") { Description = "A file or directory to share, or a .torrent whose content is next to it." };
        var content = new Option<string?>("--content") { Description = "With a .torrent: where the content is (default: next to the .torrent)." };
        var publish = PublishOption();
        var publishSalt = PublishSaltOption();
        var republish = RepublishOption();
        var swarm = new SwarmOptions();
        var command = new Command("share", "Seed a file, directory or .torrent; prints the magnet link first, then seeds until Ctrl-C.") { path, content, publish, publishSalt, republish };
        swarm.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var source = parse.GetValue(path)!;
            var settings = swarm.Check(parse);
            var trackerList = settings.Trackers;
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
                if (!MetainfoParser.TryParse(bytes, out var meta, out var created)) throw new InvalidOperationException($"the torrent just created does not parse: {created.Describe()}");
                info = meta!.Info;
                contentPath = Path.GetFullPath(source);
            }
            else
            {
                throw new UsageException($"no such file or directory: {source}");
            }

            if (!File.Exists(contentPath) && !Directory.Exists(contentPath)) throw new UsageException($"content not found: {contentPath}");
            var rtc = settings.WebRtcFor(allTrackers);
            // BEP 46: the key is read (and the options checked) before anything starts.
            var publishSaltBytes = DhtItemCommands.ParseSalt(parse.GetValue(publishSalt));
            if (parse.GetValue(publish) is null && (parse.GetValue(publishSalt) is not null || parse.GetResult(republish) is { Implicit: false })) throw new UsageException("--salt and --republish need --publish");
            if (parse.GetValue(publish) is not null && !settings.HasDhtBootstrap) throw new UsageException("--publish needs the DHT: give --dht-bootstrap HOST:PORT");
            if (parse.GetValue(publish) is not null && settings.Proxy is not null) throw new UsageException("--publish is not done through --proxy");
            var republishEvery = CheckSeconds(parse.GetValue(republish), "--republish");
            using var publishKey = parse.GetValue(publish) is { } keyPath ? await DhtItemCommands.ReadKeyAsync(keyPath, ct) : null;
            using var joined = await JoinSwarmAsync(settings, ct);
            // Publishing (BEP 46) needs the DHT node before the torrent starts: a node of the command's own, the torrent's too.
            await using var publishDht = publishKey is null ? null : await StartJoinedDhtAsync(settings.Address, joined.DhtPair, joined.DhtRouters, joined.Loggers, ct);
            var host = joined.Host(joined.HostOptions(info.InfoHash, info, contentPath, allTrackers, rtc, publishDht) with { ContentIsSource = true }, publishDht);
            await using (host)
            {
                try
                {
                    await Listening.BindAsync(settings.Address, settings.Port, () => host.StartAsync(ct));
                }
                catch (InvalidDataException ex)
                {
                    throw new UsageException(ex.Message);
                }

                await parse.InvocationConfiguration.Output.WriteLineAsync(new MagnetLink(info.InfoHash, info.Name, allTrackers, []).ToString());
                await parse.InvocationConfiguration.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"seeding {info.Name} ({FormatSize(info.TotalLength)}, {info.PieceCount} pieces) on port {host.Client.Port}; Ctrl-C to stop"));
                if (publishKey is not null)
                {
                    await PublishUntilInterruptedAsync(publishDht!.Node, publishKey, publishSaltBytes, info.InfoHash, republishEvery,
                        parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct);
                }
                else
                {
                    await UntilInterruptedAsync(ct);
                }
            }

            return CliRunner.Ok;
        });
        return command;
    }

    private static Command GetCommand()
    {
        var what = new Argument<string>("torrent") { Description = "A magnet link or a .torrent file." };
        var output = new Option<string>("--output", "-o") { Description = "Download directory.", Required = true };
        var peers = new Option<string[]>("--peer") { Description = "A peer to connect to, HOST:PORT (repeatable)." };
        var seed = new Option<bool>("--seed") { Description = "Keep seeding after the download completes, until Ctrl-C." };
        var timeout = new Option<int?>("--timeout") { Description = "Give up (exit 1) after this many seconds." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Write into existing files that do not fit the torrent (larger, or other content); without it they are left untouched (exit 2)." };
        var only = new Option<string[]>("--only") { Description = "Download only the files whose path in the torrent matches this glob (* and ?; repeatable)." };
        var skip = new Option<string[]>("--skip") { Description = "Do not download (or create) the files whose path in the torrent matches this glob (repeatable)." };
        var follow = FollowOption();
        var followInterval = FollowIntervalOption();
        var noFollow = NoFollowOption();
        var swarm = new SwarmOptions();
        var command = new Command("get", "Download a magnet link or .torrent; exits 0 when complete and verified.") { what, output, peers, seed, follow, noFollow, followInterval, timeout, overwrite, only, skip };
        swarm.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var target = parse.GetValue(what)!;
            var settings = swarm.Check(parse);
            var trackerList = new List<string>(settings.Trackers);
            var peerList = new List<IPEndPoint>();
            TorrentInfo? info = null;
            IReadOnlyList<string> webSeeds = [];
            Peerway.Core.NodeId hash;
            string name;
            var link = CheckMutableMagnet(target, settings.HasDhtBootstrap, settings.Proxy is not null);
            var following = CheckFollow(link is not null, parse.GetValue(follow), parse.GetValue(noFollow), parse.GetResult(followInterval) is { Implicit: false }, parse.GetValue(seed));
            var followEvery = CheckSeconds(parse.GetValue(followInterval), "--follow-interval");
            if (link is null)
            {
                (hash, name, info, webSeeds) = await ResolveTargetAsync(target, trackerList, peerList, parse.InvocationConfiguration.Error, ct);
            }
            else
            {
                hash = default;
                name = link.ToString();
            }

            peerList.AddRange(await ResolveAllAsync(parse.GetValue(peers), "peer", ct));
            var selection = FileSelection.FromGlobs(parse.GetValue(only), parse.GetValue(skip));
            if (info is not null && selection is not null && selection(info) is { } chosen && chosen.All(p => p == FilePriority.Skip))
            {
                throw new UsageException("--only/--skip select none of the torrent's files");
            }

            if (parse.GetValue(timeout) is <= 0) throw new UsageException("--timeout must be positive");
            var rtc = settings.WebRtcFor(trackerList);
            var dir = parse.GetValue(output)!;
            if (File.Exists(dir)) throw new UsageException($"-o {dir} is an existing file: give a directory to download into");
            // Before anything is stored: a proxy that refuses our password ends the command here (exit 1).
            using var joined = await JoinSwarmAsync(settings, ct);
            Directory.CreateDirectory(dir);
            // BEP 46: the magnet names a mutable item; its current torrent is looked up first, on a DHT node of our own
            // (the torrent's DHT peer source too).
            await using var mutableDht = link is null ? null : await StartJoinedDhtAsync(settings.Address, joined.DhtPair, joined.DhtRouters, joined.Loggers, ct);
            var current = link is null ? null : await ResolveOrFailAsync(mutableDht!.Node, link, ct);
            while (true)
            {
                MutableTorrentUpdate? next = null;
                if (current is not null)
                {
                    hash = current.InfoHash;
                    name = hash.ToString();
                    info = null;
                    await parse.InvocationConfiguration.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"resolved: seq {current.Sequence} info-hash {hash}"));
                }

                var host = joined.Host(joined.HostOptions(hash, info, dir, trackerList, rtc, mutableDht) with
                {
                    Peers = peerList,
                    Storage = new FileStorageOptions { OverwriteExistingFiles = parse.GetValue(overwrite) },
                    FileSelection = selection,
                    WebSeeds = [.. webSeeds.Select(w => new Uri(w))],
                }, mutableDht);
                await using (host)
                {
                    using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    if (parse.GetValue(timeout) is { } seconds) deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
                    await Listening.BindAsync(settings.Address, settings.Port, () => host.StartAsync(ct));
                    // Only when there was something to resume: on a fresh download "resume: 0 pieces kept, 0 rechecked" was the
                    // first line of every failure's output, read as its cause.
                    if (host.Handle.Info is not null && host.Handle.GetStats() is { } start && (start.PiecesKeptOnOpen > 0 || start.PiecesRechecked > 0))
                    {
                        await parse.InvocationConfiguration.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                            $"resume: {start.PiecesKeptOnOpen} pieces kept, {start.PiecesRechecked} rechecked"));
                    }

                    await parse.InvocationConfiguration.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"fetching {name} into {dir} (port {host.Client.Port})"));
                    try
                    {
                        await ShowProgressAsync(host.Handle, name, parse.InvocationConfiguration.Error, deadline.Token);
                    }
                    catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                    {
                        var s = host.Handle.GetStats();
                        throw new RuntimeFailureException(string.Create(CultureInfo.InvariantCulture,
                            $"timed out with {s.VerifiedPieces}/{s.PieceCount} pieces verified ({s.Connections} peers connected)"));
                    }

                    var stats = host.Handle.GetStats();
                    foreach (var (url, bytes) in host.Handle.Session?.WebSeedStats() ?? [])
                    {
                        await parse.InvocationConfiguration.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"web seed {url}: {bytes} bytes"));
                    }

                    await parse.InvocationConfiguration.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"from peers: {stats.ReceivedByPeerId.Values.Sum()} bytes"));
                    if (host.Handle.FilePriorities is { } chosenFiles)
                    {
                        var wanted = host.Handle.Info!.ContentFiles.Where((_, i) => chosenFiles[i] != FilePriority.Skip).ToList();
                        await parse.InvocationConfiguration.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                            $"complete: {host.Handle.Info!.Name} {wanted.Count} of {chosenFiles.Count} files, {wanted.Sum(f => f.Length)} bytes, {stats.VerifiedPieces} pieces verified, info-hash {hash}"));
                    }
                    else
                    {
                        await parse.InvocationConfiguration.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                            $"complete: {host.Handle.Info!.Name} {stats.TotalLength} bytes, {stats.PieceCount} pieces verified, info-hash {hash}"));
                    }
                    if (current is not null && following)
                    {
                        // BEP 46: seeding this torrent meanwhile; a higher seq names the next one, fetched into the same directory.
                        await parse.InvocationConfiguration.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"following {link} (seq {current.Sequence}); Ctrl-C to stop"));
                        next = await WaitForUpdateAsync(mutableDht!.Node, link!, current.Sequence, followEvery, ct);
                    }
                    else if (parse.GetValue(seed))
                    {
                        await parse.InvocationConfiguration.Error.WriteLineAsync("seeding; Ctrl-C to stop");
                        await UntilInterruptedAsync(ct);
                    }
                }

                if (next is null) break;
                current = next;
            }

            return CliRunner.Ok;
        });
        return command;
    }

    /// <summary>A live Spectre.Console bar on a terminal; one plain line per second otherwise. Returns when complete.</summary>
    private static async Task ShowProgressAsync(TorrentHandle session, string name, TextWriter error, CancellationToken ct)
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
        var port = Listening.PortOption("--port", "Port for HTTP (TCP) and BEP 15 (UDP) announces (0: any free port).", 6969, allowZero: true, "-p");
        var bind = Listening.BindOption("IP address to listen on (TCP and UDP).", "0.0.0.0");
        var interval = new Option<int>("--interval") { Description = "Re-announce interval in seconds.", DefaultValueFactory = _ => 60 };
        var command = new Command("tracker", "Run a BitTorrent tracker: HTTP announce + scrape (compact, BEP 23), UDP (BEP 15) and WebSocket (WebTorrent) on one port.") { port, bind, interval };
        command.SetAction(async (parse, ct) =>
        {
            var p = parse.GetValue(port);
            var address = Listening.ParseAddress(parse.GetValue(bind));
            if (parse.GetValue(interval) is <= 0 or > 86_400) throw new UsageException("--interval must be between 1 and 86400 seconds");
            var options = new TrackerServerOptions { ListenAddress = address, Port = p, Interval = TimeSpan.FromSeconds(parse.GetValue(interval)) };
            await using var server = new TrackerServer(options, TimeProvider.System);
            Listening.Bind(address, p, () => { server.Start(); return server; });
            // BEP 15 on the same port number over UDP (the socket is disposed with the server, which owns it once started).
            var udp = Listening.Bind(address, server.Port, () => new UdpDatagramSocket(new IPEndPoint(address, server.Port)));
            server.StartUdp(udp);

            // The announce URL a local client can use: the bound address, or loopback for a wildcard.
            var host = address.Equals(IPAddress.Any) ? IPAddress.Loopback : address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback : address;
            await parse.InvocationConfiguration.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"http://{EndPointParser.Format(new IPEndPoint(host, server.Port))}/announce"));
            await parse.InvocationConfiguration.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"tracker on http://{EndPointParser.Format(new IPEndPoint(address, server.Port))}/announce, udp://{EndPointParser.Format(new IPEndPoint(address, server.Port))} and ws://{EndPointParser.Format(new IPEndPoint(address, server.Port))}; Ctrl-C to stop"));
            await UntilInterruptedAsync(ct);

            return CliRunner.Ok;
        });
        return command;
    }
}
