using Peerway.Torrent.Metainfo;

namespace Peerway.Torrent.WebSeeds;

/// <summary>One HTTP range of a web seed: which URL, from which byte of that file, how many bytes, and where in the torrent's stream.</summary>
internal readonly record struct WebSeedRange(Uri Url, long FileOffset, int Length, long StreamOffset);

/// <summary>BEP 19 URL mapping (GetRight style), sans-I/O.</summary>
internal static class WebSeedUrl
{
    /// <summary>
    /// BEP 19: for a single-file torrent the URL is the file itself, unless it ends with '/', when the torrent's name is
    /// appended; for a multi-file torrent the URL is the root: "name/path/to/file" is appended (a '/' added first if
    /// missing). Each component is percent-encoded.
    /// </summary>
    public static Uri FileUrl(Uri seed, TorrentInfo info, TorrentFileEntry file)
    {
        ArgumentNullException.ThrowIfNull(seed);
        ArgumentNullException.ThrowIfNull(info);
        ArgumentNullException.ThrowIfNull(file);
        var text = seed.OriginalString;
        if (!info.IsMultiFile) return text.EndsWith('/') ? new Uri(text + Uri.EscapeDataString(info.Name)) : seed;
        if (!text.EndsWith('/')) text += "/";
        return new Uri(text + string.Join('/', new[] { info.Name }.Concat(file.Path).Select(Uri.EscapeDataString)));
    }

    /// <summary>
    /// The HTTP ranges covering <paramref name="length"/> bytes of the torrent's stream from <paramref name="offset"/>:
    /// one per file touched (BEP 3: files are concatenated in order); BEP 47 padding files are zeros no server has, so
    /// they are left out (the caller fills them).
    /// </summary>
    public static List<WebSeedRange> Ranges(Uri seed, TorrentInfo info, long offset, int length)
    {
        ArgumentNullException.ThrowIfNull(info);
        var result = new List<WebSeedRange>(2);
        foreach (var f in info.Files)
        {
            if (f.Length == 0) continue;
            var start = Math.Max(offset, f.Offset);
            var end = Math.Min(offset + length, f.Offset + f.Length);
            if (start >= end) continue;
            if (!f.IsPadding) result.Add(new WebSeedRange(FileUrl(seed, info, f), start - f.Offset, (int)(end - start), start));
        }

        return result;
    }
}
