using System.Buffers;
using System.Security.Cryptography;
using Peerway.Core.Bencoding;

namespace Peerway.Torrent.Metainfo;

/// <summary>Options for <see cref="TorrentCreator"/>.</summary>
public sealed record TorrentCreateOptions
{
    /// <summary>Tracker URLs; the first is "announce", all go in one BEP 12 tier each.</summary>
    public IReadOnlyList<string> Trackers { get; init; } = [];

    /// <summary>Piece length in bytes (a power of two ≥ 16 KiB), or null to choose from the total size (as WebTorrent
    /// does when a tracker is a WebSocket one, else as libtorrent does).</summary>
    public int? PieceLength { get; init; }

    /// <summary>BEP 27 private flag.</summary>
    public bool Private { get; init; }

    /// <summary>BEP 19 web seeds (GetRight style), written as "url-list": http(s) URLs serving the content.</summary>
    public IReadOnlyList<string> WebSeeds { get; init; } = [];

    /// <summary>The "comment" written into the .torrent; null: none.</summary>
    public string? Comment { get; init; }

    /// <summary>The "created by" written into the .torrent.</summary>
    public string CreatedBy { get; init; } = "Peerway";

    /// <summary>Creation date in Unix seconds; null omits it (reproducible output).</summary>
    public long? CreationDate { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> when a setting is out of range.</summary>
    public void Validate()
    {
        if (PieceLength is { } p && (p < TorrentLimits.BlockLength || p > TorrentLimits.MaxPieceLength || (p & (p - 1)) != 0))
        {
            throw new ArgumentOutOfRangeException(nameof(PieceLength), p, "piece length must be a power of two between 16 KiB and 128 MiB");
        }

        foreach (var t in Trackers)
        {
            if (!MetainfoParser.IsTrackerUrl(t)) throw new ArgumentException($"not an http, https, udp, ws or wss tracker URL: {t}", nameof(Trackers));
        }

        foreach (var w in WebSeeds)
        {
            if (!MetainfoParser.IsWebSeedUrl(w)) throw new ArgumentException($"not an http or https web seed URL: {w}", nameof(WebSeeds));
        }
    }
}

/// <summary>Creates v1 .torrent files from a file or a directory.</summary>
public static class TorrentCreator
{
    /// <summary>libtorrent's target: a .torrent of about 40 KiB of hashes, i.e. ~2048 pieces.</summary>
    private const int TargetPieceCount = 40 * 1024 / TorrentLimits.Sha1Length;

    /// <summary>libtorrent's automatic piece size ceiling.</summary>
    private const int MaxAutoPieceLength = 16 * 1024 * 1024;

    /// <summary>
    /// Chooses the piece length as libtorrent's create_torrent does: the smallest power of two, at least 16 KiB, that
    /// keeps the torrent at about 2048 pieces (40 KiB of SHA-1 hashes); capped at 16 MiB.
    /// </summary>
    public static int ChoosePieceLength(long totalLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(totalLength);
        var wanted = totalLength / TargetPieceCount;
        var size = TorrentLimits.BlockLength;
        while (size < wanted && size < MaxAutoPieceLength) size *= 2;
        return size;
    }

    /// <summary>
    /// Chooses the piece length as WebTorrent does (create-torrent's <c>piece-length</c>: the power of two nearest to
    /// 1/1024 of the total, at least 16 KiB; capped at 16 MiB here): about 1,024 pieces, half libtorrent's count. Used
    /// for torrents announced to WebSocket trackers, i.e. made for browsers: webtorrent checks every piece of its store
    /// before it asks a peer for data (its <c>_verifyPieces</c>, a store read per piece), so a torrent cut into twice
    /// the pieces keeps a browser waiting longer before its first request (docs/BENCHMARKS.md, WebTorrent).
    /// </summary>
    public static int ChooseWebTorrentPieceLength(long totalLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(totalLength);
        var kib = Math.Max(1.0, totalLength / 1024.0);
        var shift = (int)Math.Floor(Math.Log2(kib) + 0.5);
        var size = shift >= 24 ? MaxAutoPieceLength : 1 << shift;
        return Math.Clamp(size, TorrentLimits.BlockLength, MaxAutoPieceLength);
    }

    /// <summary>True for a WebSocket tracker URL (<c>ws://</c>, <c>wss://</c>: WebTorrent's trackers).</summary>
    private static bool IsWebSocketTracker(string url) =>
        url.StartsWith("ws://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("wss://", StringComparison.OrdinalIgnoreCase);

    /// <summary>The files under <paramref name="path"/> in torrent order (ordinal path order), with their relative paths.</summary>
    public static IReadOnlyList<(string FullPath, IReadOnlyList<string> Components, long Length)> ListFiles(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (File.Exists(path))
        {
            return [(Path.GetFullPath(path), [Path.GetFileName(Path.GetFullPath(path))], new FileInfo(path).Length)];
        }

        if (!Directory.Exists(path)) throw new FileNotFoundException($"no such file or directory: {path}", path);
        var root = Path.GetFullPath(path);
        return Directory.EnumerateFiles(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Select(f => (FullPath: f, Rel: Path.GetRelativePath(root, f).Replace('\\', '/')))
            .OrderBy(f => f.Rel, StringComparer.Ordinal)
            .Select(f => (f.FullPath, (IReadOnlyList<string>)f.Rel.Split('/'), new FileInfo(f.FullPath).Length))
            .ToList();
    }

    /// <summary>Hashes the content and returns the .torrent bytes.</summary>
    public static async Task<byte[]> CreateAsync(string path, TorrentCreateOptions options, IProgress<long>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var isDirectory = Directory.Exists(path);
        var files = ListFiles(path);
        if (isDirectory && files.Count == 0) throw new ArgumentException($"directory has no files: {path}", nameof(path));
        var total = files.Sum(f => f.Length);
        var pieceLength = options.PieceLength
            ?? (options.Trackers.Any(IsWebSocketTracker) ? ChooseWebTorrentPieceLength(total) : ChoosePieceLength(total));
        var pieces = await HashPiecesAsync(files.Select(f => f.FullPath).ToList(), pieceLength, progress, ct).ConfigureAwait(false);

        var info = new BDictionary();
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)));
        if (isDirectory)
        {
            info.Add("files", new BList(files.Select(f => (BValue)new BDictionary
            {
                ["length"] = new BInteger(f.Length),
                ["path"] = new BList(f.Components.Select(c => (BValue)new BString(c)).ToList()),
            }).ToList()));
        }
        else
        {
            info.Add("length", new BInteger(total));
        }

        info.Add("name", new BString(name));
        info.Add("piece length", new BInteger(pieceLength));
        info.Add("pieces", new BString(pieces));
        if (options.Private) info.Add("private", new BInteger(1));

        var top = new BDictionary();
        if (options.Trackers.Count > 0)
        {
            top.Add("announce", new BString(options.Trackers[0]));
            if (options.Trackers.Count > 1)
            {
                top.Add("announce-list", new BList(options.Trackers.Select(t => (BValue)new BList([new BString(t)])).ToList()));
            }
        }

        // BEP 19: "url-list" is a string or a list of strings; a list always here.
        if (options.WebSeeds.Count > 0) top.Add("url-list", new BList(options.WebSeeds.Select(w => (BValue)new BString(w)).ToList()));
        if (options.Comment is not null) top.Add("comment", new BString(options.Comment));
        top.Add("created by", new BString(options.CreatedBy));
        if (options.CreationDate is { } date) top.Add("creation date", new BInteger(date));
        top.Add("info", info);
        return Bencode.Encode(top);
    }

    /// <summary>SHA-1 of each piece of the concatenation of <paramref name="files"/> (BEP 3: files are one byte stream).</summary>
    internal static async Task<byte[]> HashPiecesAsync(IReadOnlyList<string> files, int pieceLength, IProgress<long>? progress, CancellationToken ct)
    {
        var hashes = new List<byte>();
        var buffer = ArrayPool<byte>.Shared.Rent(pieceLength);
        try
        {
            var filled = 0;
            long done = 0;
            var hash = new byte[TorrentLimits.Sha1Length];
            foreach (var file in files)
            {
                await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
                while (true)
                {
                    var n = await stream.ReadAsync(buffer.AsMemory(filled, pieceLength - filled), ct).ConfigureAwait(false);
                    if (n == 0) break;
                    filled += n;
                    done += n;
                    if (filled == pieceLength)
                    {
                        SHA1.HashData(buffer.AsSpan(0, filled), hash);
                        hashes.AddRange(hash);
                        filled = 0;
                        progress?.Report(done);
                    }
                }
            }

            if (filled > 0)
            {
                SHA1.HashData(buffer.AsSpan(0, filled), hash);
                hashes.AddRange(hash);
                progress?.Report(done);
            }

            return hashes.ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
