namespace Peerway.Torrent.Storage;

/// <summary>
/// Storage whose blocks lie in files on disk that a plaintext TCP connection can send from directly, with sendfile(2)
/// (the page cache to the socket, no copy through the process). Only <see cref="TorrentStorage"/> is one; a connection
/// reads blocks with <see cref="ITorrentStorage.Read(int, int, IReadOnlyList{Memory{byte}})"/> from any other storage.
/// </summary>
internal interface IFileBlockSource
{
    /// <summary>
    /// The open file holding bytes [<paramref name="begin"/>, <paramref name="begin"/> + <paramref name="length"/>) of
    /// <paramref name="piece"/>, and where they start in it, when they all lie in one file on disk; false otherwise (a
    /// file boundary, a padding file, a skipped file whose bytes are in the parts file, a range past a file's end).
    /// The stream belongs to the storage (never disposed by the caller) and ends with it.
    /// </summary>
    bool TryGetFileRange(int piece, int begin, int length, out FileStream? file, out long fileOffset);
}
