using System.CommandLine;
using System.Globalization;
using Peerway.Torrent.Metainfo;

namespace Peerway.Cli;

/// <summary>BitTorrent commands: create, info, share, get, stream, tracker.</summary>
internal static partial class TorrentCommands
{
    public static IEnumerable<Command> All()
    {
        yield return CreateCommand();
        yield return InfoCommand();
        yield return ShareCommand();
        yield return GetCommand();
        yield return StreamCommand();
        yield return TrackerCommand();
    }

    private static Command CreateCommand()
    {
        var path = new Argument<string>("path") { Description = "File or directory to share." };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the .torrent.", Required = true };
        var trackers = new Option<string[]>("--tracker") { Description = "Tracker announce URL (repeatable).", AllowMultipleArgumentsPerToken = false };
        var pieceSize = new Option<int?>("--piece-size") { Description = "Piece size in bytes (power of two ≥ 16384); default chosen from the size." };
        var isPrivate = new Option<bool>("--private") { Description = "Set the BEP 27 private flag." };
        var webSeeds = new Option<string[]>("--web-seed") { Description = "BEP 19 web seed, an http(s) URL serving the content (repeatable; for a directory, the URL of its parent).", AllowMultipleArgumentsPerToken = false };
        var command = new Command("create", "Create a .torrent (BitTorrent v1) from a file or directory.") { path, output, trackers, pieceSize, isPrivate, webSeeds };
        command.SetAction(async (parse, ct) =>
        {
            var source = parse.GetValue(path)!;
            if (!File.Exists(source) && !Directory.Exists(source)) throw new UsageException($"no such file or directory: {source}");
            var options = new TorrentCreateOptions
            {
                Trackers = parse.GetValue(trackers) ?? [],
                PieceLength = parse.GetValue(pieceSize),
                Private = parse.GetValue(isPrivate),
                WebSeeds = parse.GetValue(webSeeds) ?? [],
                CreationDate = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentException ex)
            {
                throw new UsageException(ex.Message.Split(" (Parameter", 2)[0]);
            }

            var bytes = await TorrentCreator.CreateAsync(source, options, null, ct);
            await File.WriteAllBytesAsync(parse.GetValue(output)!, bytes, ct);
            if (!MetainfoParser.TryParse(bytes, out var meta, out var created)) throw new InvalidOperationException($"the torrent just created does not parse: {created.Describe()}");
            await parse.InvocationConfiguration.Output.WriteLineAsync(new MagnetLink(meta!.InfoHash, meta.Info.Name, [.. meta.Trackers], []).ToString());
            return CliRunner.Ok;
        });
        return command;
    }

    private static Command InfoCommand()
    {
        var file = new Argument<string>("torrent") { Description = "A .torrent file." };
        var command = new Command("info", "Print a .torrent's name, size, pieces, info-hash and files.") { file };
        command.SetAction(async (parse, ct) =>
        {
            var meta = await LoadTorrentAsync(parse.GetValue(file)!, ct);
            var info = meta.Info;
            var c = CultureInfo.InvariantCulture;
            await parse.InvocationConfiguration.Output.WriteLineAsync($"name:       {info.Name}");
            await parse.InvocationConfiguration.Output.WriteLineAsync(string.Create(c, $"size:       {info.TotalLength} bytes ({FormatSize(info.TotalLength)})"));
            await parse.InvocationConfiguration.Output.WriteLineAsync(string.Create(c, $"pieces:     {info.PieceCount} x {info.PieceLength} bytes"));
            await parse.InvocationConfiguration.Output.WriteLineAsync($"info-hash:  {meta.InfoHash}");
            if (info.InfoHashV2 is { } v2)
            {
                // BEP 52 hybrid: Peerway downloads its v1 part (SHA-1 pieces; padding files are not stored).
                await parse.InvocationConfiguration.Output.WriteLineAsync("version:    hybrid v1+v2 (BEP 52; Peerway uses v1)");
                await parse.InvocationConfiguration.Output.WriteLineAsync($"info-hash v2: {v2}");
            }

            await parse.InvocationConfiguration.Output.WriteLineAsync($"private:    {(info.IsPrivate ? "yes" : "no")}");
            foreach (var t in meta.Trackers) await parse.InvocationConfiguration.Output.WriteLineAsync($"tracker:    {t}");
            foreach (var w in meta.WebSeeds) await parse.InvocationConfiguration.Output.WriteLineAsync($"web seed:   {w}");
            foreach (var h in meta.HttpSeeds) await parse.InvocationConfiguration.Output.WriteLineAsync($"httpseed:   {h} (BEP 17, not used)");
            var padding = info.Files.Count(f => f.IsPadding);
            await parse.InvocationConfiguration.Output.WriteLineAsync(string.Create(c, $"files:      {info.Files.Count - padding}{(padding > 0 ? $" (and {padding} padding files, BEP 47)" : "")}"));
            // Numbered from 0 (the numbers `peerway stream --file N` takes; `get --only/--skip` match the paths).
            var n = 0;
            foreach (var f in info.ContentFiles) await parse.InvocationConfiguration.Output.WriteLineAsync(string.Create(c, $"  {n++,4}  {f.Length,14}  {(info.IsMultiFile ? info.Name + "/" : "")}{f.RelativePath}"));
            await parse.InvocationConfiguration.Output.WriteLineAsync($"magnet:     {new MagnetLink(meta.InfoHash, info.Name, [.. meta.Trackers], [])}");
            return CliRunner.Ok;
        });
        return command;
    }

    internal static async Task<TorrentMetainfo> LoadTorrentAsync(string path, CancellationToken ct)
    {
        if (!File.Exists(path)) throw new UsageException($"no such file: {path}");
        if (new FileInfo(path).Length > TorrentLimits.MaxTorrentFileLength) throw new UsageException($"{path}: too large to be a .torrent");
        var bytes = await File.ReadAllBytesAsync(path, ct);
        if (!MetainfoParser.TryParse(bytes, out var meta, out var error)) throw new UsageException($"{path}: {error.Describe()}");
        return meta!;
    }

    internal static string FormatSize(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = bytes;
        var u = 0;
        while (v >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }

        return string.Create(CultureInfo.InvariantCulture, $"{v:0.##} {units[u]}");
    }
}
