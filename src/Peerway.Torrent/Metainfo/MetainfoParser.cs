using System.Text;
using Peerway.Core;
using Peerway.Core.Bencoding;

namespace Peerway.Torrent.Metainfo;

/// <summary>Strict parser for v1 .torrent files and BEP 9 info dictionaries. Never throws on malformed input.</summary>
public static class MetainfoParser
{
    private static readonly BencodeLimits Limits = new()
    {
        MaxInputLength = TorrentLimits.MaxTorrentFileLength,
        MaxDepth = 16,
        MaxItems = 4 * TorrentLimits.MaxFiles * (TorrentLimits.MaxPathDepth / 8),
        MaxStringLength = TorrentLimits.MaxTorrentFileLength,
    };

    /// <summary>Parses and validates a whole .torrent file (BEP 3, BEP 12, BEP 47, BEP 52 hybrids); false with <paramref name="error"/> set when it is not valid. Bounded by <see cref="TorrentLimits"/>.</summary>
    public static bool TryParse(ReadOnlySpan<byte> torrent, out TorrentMetainfo? metainfo, out MetainfoError error)
    {
        metainfo = null;
        // Locate the exact bytes of "info": BEP 3 defines the info-hash over them, not over a re-encoding.
        var reader = new BencodeReader(torrent, Limits);
        if (reader.Peek() != BencodeToken.Dictionary)
        {
            error = reader.Error == BencodeError.None && torrent.Length > 0 && torrent[0] is (byte)'i' or (byte)'l' or (>= (byte)'0' and <= (byte)'9')
                ? MetainfoError.MissingInfo
                : MetainfoError.MalformedBencode;
            return false;
        }

        ReadOnlySpan<byte> rawInfo = default;
        var foundInfo = false;
        reader.TryEnterDictionary();
        while (!reader.TryReadEnd())
        {
            if (reader.Error != BencodeError.None || !reader.TryReadKey(out var key))
            {
                error = MetainfoError.MalformedBencode;
                return false;
            }

            if (key.SequenceEqual("info"u8))
            {
                if (!reader.TryReadRawValue(out rawInfo))
                {
                    error = MetainfoError.MalformedBencode;
                    return false;
                }

                foundInfo = true;
            }
            else if (!reader.TrySkipValue())
            {
                error = MetainfoError.MalformedBencode;
                return false;
            }
        }

        if (!reader.TryReadEndOfInput())
        {
            error = MetainfoError.MalformedBencode;
            return false;
        }

        if (!foundInfo)
        {
            error = MetainfoError.MissingInfo;
            return false;
        }

        if (!TryParseInfo(rawInfo, out var info, out error)) return false;
        if (!Bencode.TryDecode(torrent, out var tree, out _, Limits) || tree is not BDictionary top)
        {
            error = MetainfoError.MalformedBencode;
            return false;
        }

        var tiers = new List<IReadOnlyList<string>>();
        // BEP 12: when announce-list is present, it supersedes announce.
        if (top["announce-list"] is BList list)
        {
            foreach (var tierValue in list.Items)
            {
                if (tierValue is not BList tierList)
                {
                    error = MetainfoError.InvalidAnnounce;
                    return false;
                }

                var tier = new List<string>();
                foreach (var url in tierList.Items)
                {
                    if (url is not BString s || !IsTrackerUrl(s.Utf8))
                    {
                        error = MetainfoError.InvalidAnnounce;
                        return false;
                    }

                    tier.Add(s.Utf8);
                }

                if (tier.Count > 0) tiers.Add(tier);
            }
        }

        if (tiers.Count == 0 && top["announce"] is { } announce)
        {
            if (announce is not BString a || !IsTrackerUrl(a.Utf8))
            {
                error = MetainfoError.InvalidAnnounce;
                return false;
            }

            tiers.Add([a.Utf8]);
        }

        metainfo = new TorrentMetainfo(info!, tiers, (top["comment"] as BString)?.Utf8, (top["created by"] as BString)?.Utf8,
            (top["creation date"] as BInteger)?.Value)
        {
            WebSeeds = UrlList(top["url-list"]),
            HttpSeeds = UrlList(top["httpseeds"]),
        };
        error = MetainfoError.None;
        return true;
    }

    /// <summary>Parses an info dictionary received through BEP 9 and checks it hashes to <paramref name="expected"/>.</summary>
    public static bool TryParseInfo(ReadOnlySpan<byte> rawInfo, NodeId expected, out TorrentInfo? info, out MetainfoError error)
    {
        info = null;
        // BEP 9: "the peer must verify the info-hash of the metadata before using it".
        if (NodeId.Sha1(rawInfo) != expected)
        {
            error = MetainfoError.InfoHashMismatch;
            return false;
        }

        return TryParseInfo(rawInfo, out info, out error);
    }

    /// <summary>Parses and validates a bencoded info dictionary alone; false with <paramref name="error"/> set when it is not valid.</summary>
    public static bool TryParseInfo(ReadOnlySpan<byte> rawInfo, out TorrentInfo? info, out MetainfoError error)
    {
        info = null;
        if (!Bencode.TryDecode(rawInfo, out var value, out _, Limits))
        {
            error = MetainfoError.MalformedBencode;
            return false;
        }

        if (value is not BDictionary dict)
        {
            error = MetainfoError.MissingInfo;
            return false;
        }

        if (dict["name"] is not BString nameValue)
        {
            error = MetainfoError.InvalidName;
            return false;
        }

        if (!TryReadComponent(nameValue, out var name, out error)) return false;

        if (dict["piece length"] is not BInteger { Value: > 0 and <= TorrentLimits.MaxPieceLength } pieceLength)
        {
            error = MetainfoError.InvalidPieceLength;
            return false;
        }

        // BEP 52: "meta version" 2 marks a v2 torrent; with the v1 keys ("pieces", "length"/"files") too it is a hybrid.
        var isV2 = dict["meta version"] is BInteger { Value: 2 };
        if (dict["pieces"] is not BString pieces || pieces.Value.Length % TorrentLimits.Sha1Length != 0)
        {
            error = isV2 && dict["pieces"] is null && dict["file tree"] is BDictionary ? MetainfoError.V2Only : MetainfoError.InvalidPieces;
            return false;
        }

        var files = new List<TorrentFileEntry>();
        var single = dict["length"];
        var multi = dict["files"];
        bool isMulti;
        if (single is not null && multi is null)
        {
            if (single is not BInteger { Value: >= 0 } length)
            {
                error = MetainfoError.InvalidLength;
                return false;
            }

            files.Add(new TorrentFileEntry([name], length.Value, 0));
            isMulti = false;
        }
        else if (single is null && multi is BList { Items.Count: > 0 and <= TorrentLimits.MaxFiles } fileList)
        {
            isMulti = true;
            long offset = 0;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var directories = new HashSet<string>(StringComparer.Ordinal);
            foreach (var fileValue in fileList.Items)
            {
                if (fileValue is not BDictionary file || file["path"] is not BList pathList)
                {
                    error = MetainfoError.InvalidFiles;
                    return false;
                }

                if (file["length"] is not BInteger { Value: >= 0 } fileLength)
                {
                    error = MetainfoError.InvalidLength;
                    return false;
                }

                if (pathList.Items.Count == 0)
                {
                    error = MetainfoError.EmptyPathComponent;
                    return false;
                }

                if (pathList.Items.Count > TorrentLimits.MaxPathDepth)
                {
                    error = MetainfoError.InvalidFiles;
                    return false;
                }

                var path = new List<string>(pathList.Items.Count);
                foreach (var componentValue in pathList.Items)
                {
                    if (componentValue is not BString component)
                    {
                        error = MetainfoError.InvalidFiles;
                        return false;
                    }

                    if (!TryReadComponent(component, out var c, out error)) return false;
                    path.Add(c);
                }

                // BEP 47: "attr" is a string of flags; 'p' marks a padding file (zeros, never stored). libtorrent names
                // them ".pad/<size>", so two padding files of one size share a path: they take no part in the check below.
                var isPadding = file["attr"] is BString attr && attr.Value.Span.Contains((byte)'p');
                var joined = string.Join('/', path);
                // A file may not share a path with another file, nor with a directory implied by another file.
                if (!isPadding && (!seen.Add(joined) || directories.Contains(joined)))
                {
                    error = MetainfoError.DuplicatePath;
                    return false;
                }

                for (var i = 1; i < path.Count && !isPadding; i++)
                {
                    var dir = string.Join('/', path.Take(i));
                    if (seen.Contains(dir))
                    {
                        error = MetainfoError.DuplicatePath;
                        return false;
                    }

                    directories.Add(dir);
                }

                if (offset > long.MaxValue - fileLength.Value)
                {
                    error = MetainfoError.InvalidLength;
                    return false;
                }

                files.Add(new TorrentFileEntry(path, fileLength.Value, offset, isPadding));
                offset += fileLength.Value;
            }
        }
        else
        {
            error = MetainfoError.InvalidFiles;
            return false;
        }

        var total = files[^1].Offset + files[^1].Length;
        // BEP 3: pieces is the concatenation of one hash per piece; the last piece may be shorter.
        var expectedPieces = (total + pieceLength.Value - 1) / pieceLength.Value;
        if (pieces.Value.Length / TorrentLimits.Sha1Length != expectedPieces)
        {
            error = MetainfoError.PieceCountMismatch;
            return false;
        }

        var isPrivate = dict["private"] is BInteger { Value: 1 };
        info = new TorrentInfo(name, (int)pieceLength.Value, pieces.Value, files, isMulti, isPrivate, rawInfo.ToArray()) { IsHybrid = isV2 };
        error = MetainfoError.None;
        return true;
    }

    /// <summary>Validates one path component: non-empty, not "." or "..", no separators, NUL or drive letters.</summary>
    private static bool TryReadComponent(BString value, out string component, out MetainfoError error)
    {
        component = string.Empty;
        var bytes = value.Value.Span;
        if (bytes.Length == 0)
        {
            error = MetainfoError.EmptyPathComponent;
            return false;
        }

        if (bytes.Length > TorrentLimits.MaxPathComponentBytes)
        {
            error = MetainfoError.InvalidFiles;
            return false;
        }

        if (bytes.SequenceEqual(".."u8) || bytes.SequenceEqual("."u8))
        {
            error = MetainfoError.PathTraversal;
            return false;
        }

        if (bytes.IndexOfAny("/\\\0"u8) >= 0 || (bytes.Length >= 2 && bytes[1] == (byte)':'))
        {
            error = MetainfoError.AbsolutePath;
            return false;
        }

        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            error = MetainfoError.InvalidFiles;
            return false;
        }

        component = Encoding.UTF8.GetString(bytes);

        error = MetainfoError.None;
        return true;
    }

    /// <summary>Most web seeds kept from one torrent (implementation limit; the rest are ignored).</summary>
    public const int MaxWebSeeds = 32;

    /// <summary>
    /// BEP 19 "url-list" (or BEP 17 "httpseeds"): a string or a list of strings. Entries that are not http(s) URLs are
    /// ignored, as libtorrent does (an empty string is common in the wild), and at most <see cref="MaxWebSeeds"/> kept.
    /// </summary>
    private static List<string> UrlList(BValue? value)
    {
        IEnumerable<BValue> items = value switch
        {
            BString s => [s],
            BList l => l.Items,
            _ => [],
        };
        return items.OfType<BString>().Select(s => s.Utf8).Where(IsWebSeedUrl).Distinct(StringComparer.Ordinal).Take(MaxWebSeeds).ToList();
    }

    /// <summary>An absolute http or https URL with a host (a BEP 19 web seed).</summary>
    public static bool IsWebSeedUrl(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && !string.IsNullOrEmpty(uri.Host);

    /// <summary>An absolute http, https, udp, ws or wss (WebTorrent) URL with a host.</summary>
    public static bool IsTrackerUrl(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" or "udp" or "ws" or "wss" && !string.IsNullOrEmpty(uri.Host);
}
