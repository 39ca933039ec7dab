using Peerway.Core;

namespace Peerway.Torrent.Metainfo;

/// <summary>One file of a torrent: its path components (validated safe), length and offset in the piece stream.</summary>
/// <param name="Path">The path components under the torrent's root (for a single-file torrent, the name alone).</param>
/// <param name="Length">The file's length in bytes.</param>
/// <param name="Offset">Where the file starts in the torrent's byte stream (the concatenation of all files), in bytes.</param>
/// <param name="IsPadding">
/// BEP 47: "attr" contains 'p'. A padding file's bytes are zeros that align the next file to a piece boundary (BEP 52
/// hybrid torrents have one before every file that does not start on a boundary); it is hashed but never stored.
/// </param>
public sealed record TorrentFileEntry(IReadOnlyList<string> Path, long Length, long Offset, bool IsPadding = false)
{
    /// <summary>The path joined with '/', relative to the torrent's root.</summary>
    public string RelativePath => string.Join('/', Path);
}

/// <summary>The parsed, validated "info" dictionary of a v1 torrent (BEP 3) and its info-hash.</summary>
public sealed class TorrentInfo
{
    internal TorrentInfo(string name, int pieceLength, ReadOnlyMemory<byte> pieceHashes, IReadOnlyList<TorrentFileEntry> files,
        bool isMultiFile, bool isPrivate, ReadOnlyMemory<byte> rawInfo)
    {
        Name = name;
        PieceLength = pieceLength;
        PieceHashes = pieceHashes;
        Files = files;
        IsMultiFile = isMultiFile;
        IsPrivate = isPrivate;
        RawInfo = rawInfo;
        TotalLength = files.Count == 0 ? 0 : files[^1].Offset + files[^1].Length;
        // BEP 3: the info-hash is the SHA-1 of the bencoded info dictionary exactly as it appears in the file.
        InfoHash = NodeId.Sha1(rawInfo.Span);
    }

    /// <summary>The suggested name: the file's (single file) or the root directory's (multi-file).</summary>
    public string Name { get; }

    /// <summary>Bytes per piece (the last piece may be shorter, see <see cref="PieceSize"/>).</summary>
    public int PieceLength { get; }

    /// <summary>Concatenated 20-byte SHA-1 hashes, one per piece.</summary>
    public ReadOnlyMemory<byte> PieceHashes { get; }

    /// <summary>Number of pieces.</summary>
    public int PieceCount => PieceHashes.Length / TorrentLimits.Sha1Length;

    /// <summary>Every file of the piece stream, padding files (BEP 47) included.</summary>
    public IReadOnlyList<TorrentFileEntry> Files { get; }

    /// <summary>The files a user sees and storage writes: <see cref="Files"/> without padding files.</summary>
    public IEnumerable<TorrentFileEntry> ContentFiles => Files.Where(f => !f.IsPadding);

    /// <summary>BEP 52: "meta version" 2 in the info dictionary: a hybrid v1+v2 torrent (Peerway uses its v1 part).</summary>
    public bool IsHybrid { get; init; }

    /// <summary>BEP 52: the v2 info-hash (SHA-256 of the info dictionary) of a hybrid torrent; null for v1.</summary>
    public string? InfoHashV2 => IsHybrid ? Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(RawInfo.Span)) : null;

    /// <summary>True when the info dictionary has a "files" list (the content is a directory).</summary>
    public bool IsMultiFile { get; }

    /// <summary>BEP 27: private torrents use only their trackers (no DHT, no PEX).</summary>
    public bool IsPrivate { get; }

    /// <summary>Bytes of all files, padding files included.</summary>
    public long TotalLength { get; }

    /// <summary>The exact bencoded info dictionary (served to peers through BEP 9).</summary>
    public ReadOnlyMemory<byte> RawInfo { get; }

    /// <summary>BEP 3: the SHA-1 of the bencoded info dictionary.</summary>
    public NodeId InfoHash { get; }

    /// <summary>The 20-byte SHA-1 of piece <paramref name="piece"/>. Throws <see cref="ArgumentOutOfRangeException"/> when out of range.</summary>
    public ReadOnlySpan<byte> PieceHash(int piece) => PieceHashes.Span.Slice(piece * TorrentLimits.Sha1Length, TorrentLimits.Sha1Length);

    /// <summary>Length of piece <paramref name="piece"/>: the last one may be shorter.</summary>
    public int PieceSize(int piece) =>
        piece == PieceCount - 1 ? (int)(TotalLength - ((long)piece * PieceLength)) : PieceLength;
}

/// <summary>A whole .torrent: the info dictionary plus trackers (BEP 3, BEP 12 announce-list).</summary>
public sealed class TorrentMetainfo
{
    internal TorrentMetainfo(TorrentInfo info, IReadOnlyList<IReadOnlyList<string>> trackerTiers, string? comment, string? createdBy, long? creationDate)
    {
        Info = info;
        TrackerTiers = trackerTiers;
        Comment = comment;
        CreatedBy = createdBy;
        CreationDate = creationDate;
    }

    /// <summary>The info dictionary.</summary>
    public TorrentInfo Info { get; }

    /// <summary>BEP 12 tiers; a plain "announce" becomes a single tier.</summary>
    public IReadOnlyList<IReadOnlyList<string>> TrackerTiers { get; }

    /// <summary>Every tracker URL of <see cref="TrackerTiers"/>, once each, in tier order.</summary>
    public IEnumerable<string> Trackers => TrackerTiers.SelectMany(t => t).Distinct(StringComparer.Ordinal);

    /// <summary>The "comment"; null when absent.</summary>
    public string? Comment { get; }

    /// <summary>The "created by"; null when absent.</summary>
    public string? CreatedBy { get; }

    /// <summary>The "creation date" in Unix seconds; null when absent.</summary>
    public long? CreationDate { get; }

    /// <summary>The info-hash of <see cref="Info"/>.</summary>
    public NodeId InfoHash => Info.InfoHash;

    /// <summary>BEP 19 web seeds ("url-list", GetRight style): http(s) URLs of the content.</summary>
    public IReadOnlyList<string> WebSeeds { get; init; } = [];

    /// <summary>BEP 17 "httpseeds" (Hoffman style): read and listed, not used.</summary>
    public IReadOnlyList<string> HttpSeeds { get; init; } = [];
}

/// <summary>Bounds for untrusted torrents and metadata (named after what they bound).</summary>
public static class TorrentLimits
{
    /// <summary>BEP 3: each piece hash is a 20-byte SHA-1.</summary>
    public const int Sha1Length = 20;

    /// <summary>Largest .torrent accepted (implementation limit; real torrents are well below).</summary>
    public const int MaxTorrentFileLength = 32 * 1024 * 1024;

    /// <summary>Largest piece accepted (implementation limit; libtorrent also refuses beyond 128 MiB).</summary>
    public const int MaxPieceLength = 128 * 1024 * 1024;

    /// <summary>Smallest piece created and the block size used on the wire (BEP 3: requests are 16 KiB by convention).</summary>
    public const int BlockLength = 16 * 1024;

    /// <summary>Most files in one torrent (implementation limit).</summary>
    public const int MaxFiles = 100_000;

    /// <summary>Deepest path in a torrent (implementation limit).</summary>
    public const int MaxPathDepth = 64;

    /// <summary>Longest path component in bytes (Linux NAME_MAX).</summary>
    public const int MaxPathComponentBytes = 255;
}
