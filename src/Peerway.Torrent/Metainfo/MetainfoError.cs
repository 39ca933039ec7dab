namespace Peerway.Torrent.Metainfo;

/// <summary>Why a .torrent (or an info dictionary fetched with BEP 9) was rejected. <see cref="None"/> means success.</summary>
public enum MetainfoError
{
    /// <summary>Not an error.</summary>
    None = 0,
    /// <summary>Not valid bencode (BEP 3), or bencode beyond the size/depth limits.</summary>
    MalformedBencode,
    /// <summary>The top level is not a dictionary, or has no "info" dictionary.</summary>
    MissingInfo,
    /// <summary>"name" is missing, empty, not a string, or not a single safe path component.</summary>
    InvalidName,
    /// <summary>"piece length" is missing, not positive, or above the limit.</summary>
    InvalidPieceLength,
    /// <summary>"pieces" is missing or its length is not a multiple of 20.</summary>
    InvalidPieces,
    /// <summary>A file length is missing or negative, or the total overflows.</summary>
    InvalidLength,
    /// <summary>Both or neither of "length" and "files"; or "files" is empty or malformed.</summary>
    InvalidFiles,
    /// <summary>A path component is ".." or "." (path traversal).</summary>
    PathTraversal,
    /// <summary>A path component contains a separator or a drive/root (an absolute path).</summary>
    AbsolutePath,
    /// <summary>A path with no components, or an empty component.</summary>
    EmptyPathComponent,
    /// <summary>Two files resolve to the same path (or one is a directory prefix of another).</summary>
    DuplicatePath,
    /// <summary>The number of piece hashes does not equal ceil(total length / piece length).</summary>
    PieceCountMismatch,
    /// <summary>The info dictionary's SHA-1 is not the expected info-hash (BEP 9 metadata).</summary>
    InfoHashMismatch,
    /// <summary>A tracker URL is not a string or not an absolute http/https/udp URL.</summary>
    InvalidAnnounce,
    /// <summary>BEP 52: a v2-only torrent ("meta version" 2, "file tree", no v1 "pieces"), which Peerway cannot download.</summary>
    V2Only,
}

/// <summary>Text for <see cref="MetainfoError"/> values.</summary>
public static class MetainfoErrors
{
    /// <summary>One clear sentence for a user.</summary>
    public static string Describe(this MetainfoError error) => error switch
    {
        MetainfoError.None => "valid",
        MetainfoError.MalformedBencode => "not a valid bencoded torrent",
        MetainfoError.MissingInfo => "no info dictionary",
        MetainfoError.InvalidName => "missing or unsafe name",
        MetainfoError.InvalidPieceLength => "invalid piece length",
        MetainfoError.InvalidPieces => "pieces is not a list of 20-byte SHA-1 hashes",
        MetainfoError.InvalidLength => "invalid file length",
        MetainfoError.InvalidFiles => "invalid file list",
        MetainfoError.PathTraversal => "a file path contains '..' or '.' (path traversal)",
        MetainfoError.AbsolutePath => "a file path is absolute or contains a separator",
        MetainfoError.EmptyPathComponent => "a file path has an empty component",
        MetainfoError.DuplicatePath => "two files have the same path",
        MetainfoError.PieceCountMismatch => "the number of piece hashes does not match the total size",
        MetainfoError.InfoHashMismatch => "the info dictionary does not match the info-hash",
        MetainfoError.InvalidAnnounce => "invalid tracker URL",
        MetainfoError.V2Only => "a BitTorrent v2-only torrent (BEP 52); Peerway reads v1 and hybrid v1+v2 torrents",
        _ => error.ToString(),
    };
}
