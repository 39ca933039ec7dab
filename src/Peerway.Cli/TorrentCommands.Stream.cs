using System.CommandLine;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Node;
using Peerway.Node.Streaming;
using Peerway.Torrent;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;

namespace Peerway.Cli;

/// <summary>stream: download a torrent and serve its files over HTTP while it downloads.</summary>
internal static partial class TorrentCommands
{
    private static Command StreamCommand()
    {
        var what = new Argument<string>("torrent") { Description = "A magnet link or a .torrent file." };
        var file = new Option<int?>("--file") { Description = "Serve (and download) only content file N, as numbered by `peerway info` (default: every file)." };
        var http = new Option<string>("--http") { Description = "Where to serve HTTP, IP:PORT (port 0: any free port).", DefaultValueFactory = _ => "127.0.0.1:0" };
        var output = new Option<string?>("--output", "-o") { Description = "Download directory (default: a new directory under the system's temporary directory)." };
        var peers = new Option<string[]>("--peer") { Description = "A peer to connect to, HOST:PORT (repeatable)." };
        var readAhead = new Option<int>("--read-ahead") { Description = "MiB ahead of each reader fetched first (piece deadlines).", DefaultValueFactory = _ => 8 };
        var swarm = new SwarmOptions();
        var command = new Command("stream", "Download a magnet link or .torrent and serve each file over HTTP (Range requests) while it downloads; prints `stream N URL` per file, runs until Ctrl-C.")
        {
            what, file, http, output, peers, readAhead,
        };
        swarm.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var target = parse.GetValue(what)!;
            var settings = swarm.Check(parse);
            var httpText = parse.GetValue(http) ?? "";
            var colon = httpText.LastIndexOf(':');
            if (colon <= 0 || !IPAddress.TryParse(httpText[..colon].Trim('[', ']'), out var httpAddress) || !EndPointParser.TryParsePort(httpText[(colon + 1)..], allowZero: true, out var httpPort))
            {
                throw new UsageException($"--http must be IP:PORT (port 0: any free port), not '{httpText}'");
            }

            if (parse.GetValue(readAhead) is < 1 or > 1024) throw new UsageException("--read-ahead must be between 1 and 1024 MiB");
            var fileIndex = parse.GetValue(file);
            if (fileIndex is < 0) throw new UsageException("--file must be a file number ≥ 0 (see `peerway info`)");
            var trackerList = new List<string>(settings.Trackers);
            var peerList = new List<IPEndPoint>();
            TorrentInfo? info = null;
            IReadOnlyList<string> webSeeds = [];
            Peerway.Core.NodeId hash;
            (hash, _, info, webSeeds) = await ResolveTargetAsync(target, trackerList, peerList, parse.InvocationConfiguration.Error, ct);
            if (info is not null && fileIndex >= info.ContentFiles.Count()) throw new UsageException($"--file {fileIndex}: the torrent has {info.ContentFiles.Count()} files (numbered from 0)");
            peerList.AddRange(await ResolveAllAsync(parse.GetValue(peers), "peer", ct));
            var dir = parse.GetValue(output) ?? Directory.CreateTempSubdirectory("peerway-stream-").FullName;
            if (File.Exists(dir)) throw new UsageException($"-o {dir} is an existing file: give a directory to download into");
            Directory.CreateDirectory(dir);
            var rtc = settings.WebRtcFor(trackerList);
            using var joined = await JoinSwarmAsync(settings, ct);
            // With --file N only that file is wanted (the others are skipped, so not created); a file number beyond a
            // magnet's files is found out once the metadata arrives.
            Func<TorrentInfo, IReadOnlyList<FilePriority>?>? selection = fileIndex is { } only
                ? i => only < i.ContentFiles.Count() ? [.. i.ContentFiles.Select((_, n) => n == only ? FilePriority.Normal : FilePriority.Skip)] : null
                : null;
            var host = joined.Host(joined.HostOptions(hash, info, dir, trackerList, rtc, null) with
            {
                Peers = peerList,
                FileSelection = selection,
                WebSeeds = [.. webSeeds.Select(w => new Uri(w))],
            }, null);
            await using (host)
            {
                await Listening.BindAsync(settings.Address, settings.Port, () => host.StartAsync(ct));
                await parse.InvocationConfiguration.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"fetching {hash} into {dir} (port {host.Client.Port})"));
                try
                {
                    info = await host.Handle.MetadataReady.WaitAsync(ct);
                }
                catch (OperationCanceledException)
                {
                    return CliRunner.Ok;
                }

                var count = info.ContentFiles.Count();
                if (fileIndex >= count) throw new UsageException($"--file {fileIndex}: the torrent has {count} files (numbered from 0)");
                var served = fileIndex is { } f ? new HashSet<int> { f } : null;
                var options = new StreamServerOptions { Read = new TorrentReadOptions { ReadAhead = parse.GetValue(readAhead) * 1024L * 1024 } };
                var server = new StreamServer(host.Handle, new IPEndPoint(httpAddress, httpPort), served, options, joined.Loggers.CreateLogger<StreamServer>());
                await using (server)
                {
                    try
                    {
                        await server.StartAsync(ct);
                    }
                    catch (IOException ex)
                    {
                        throw Listening.CannotBind(EndPointParser.Format(new IPEndPoint(httpAddress, httpPort)), ex);
                    }

                    for (var i = 0; i < count; i++)
                    {
                        if (served is null || served.Contains(i)) await parse.InvocationConfiguration.Output.WriteLineAsync($"stream {i.ToString(CultureInfo.InvariantCulture)} {server.UrlOf(i)}");
                    }

                    await parse.InvocationConfiguration.Output.FlushAsync(ct);
                    await parse.InvocationConfiguration.Error.WriteLineAsync($"serving {info.Name} on http://{EndPointParser.Format(server.EndPoint)}/; Ctrl-C to stop");
                    await StreamProgressAsync(host, parse.InvocationConfiguration.Error, ct);
                }
            }

            return CliRunner.Ok;
        });
        return command;
    }

    /// <summary>
    /// A magnet link or .torrent given on the command line: its info-hash, a name, the info dictionary (a .torrent's; null
    /// for a magnet) and its web seeds; its trackers and (magnet x.pe) peers are added to the lists.
    /// </summary>
    private static async Task<(Peerway.Core.NodeId Hash, string Name, TorrentInfo? Info, IReadOnlyList<string> WebSeeds)> ResolveTargetAsync(
        string target, List<string> trackers, List<IPEndPoint> peers, TextWriter error, CancellationToken ct)
    {
        if (target.StartsWith("magnet:", StringComparison.OrdinalIgnoreCase))
        {
            if (!MagnetLink.TryParse(target, out var magnet, out var bad)) throw new UsageException($"invalid magnet link: {bad.Describe()}");
            trackers.AddRange(magnet!.Trackers.Where(t => !trackers.Contains(t)));
            foreach (var pe in magnet.Peers)
            {
                if (MagnetLink.TryParsePeer(pe, out var ep)) peers.Add(ep!);
            }

            return (magnet.InfoHash, magnet.DisplayName ?? magnet.InfoHash.ToString(), null, []);
        }

        var meta = await LoadTorrentAsync(target, ct);
        if (meta.HttpSeeds.Count > 0) await error.WriteLineAsync($"ignoring {meta.HttpSeeds.Count} BEP 17 httpseeds (not supported)");
        trackers.AddRange(meta.Trackers.Where(t => !trackers.Contains(t)));
        return (meta.InfoHash, meta.Info.Name, meta.Info, meta.WebSeeds);
    }

    /// <summary>One stderr line every few seconds while downloading, and one when complete; returns on Ctrl-C.</summary>
    private static async Task StreamProgressAsync(TorrentHost host, TextWriter error, CancellationToken ct)
    {
        try
        {
            while (!host.Handle.Completed.IsCompleted)
            {
                await Task.WhenAny(host.Handle.Completed, Task.Delay(TimeSpan.FromSeconds(5), ct));
                ct.ThrowIfCancellationRequested();
                var s = host.Handle.GetStats();
                await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"progress {s.Progress * 100:0.0}% {s.VerifiedPieces}/{s.PieceCount} pieces, {s.Connections} peers"));
            }

            await error.WriteLineAsync("download complete; still serving");
            await UntilInterruptedAsync(ct);
        }
        catch (OperationCanceledException)
        {
            // Interrupted: the caller stops the server and the torrent, exit 0.
        }
    }
}
