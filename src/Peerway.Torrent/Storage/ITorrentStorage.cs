using Peerway.Torrent.Metainfo;

namespace Peerway.Torrent.Storage;

/// <summary>
/// The storage seam: where one torrent's pieces are read from, and where verified pieces go (the shape of
/// anacrolix/torrent's <c>storage.TorrentImpl</c>/<c>PieceImpl</c>, except that a piece is handed over whole and
/// checked before it is stored, so no unverified byte is ever kept). Implementations: <see cref="TorrentStorage"/>
/// (files on disk) and <see cref="MemoryTorrentStorage"/>.
/// </summary>
/// <remarks>Thread-safe: the swarm engine reads blocks on its connections' tasks while its disk queue writes pieces.</remarks>
public interface ITorrentStorage : IDisposable
{
    /// <summary>A copy of the set of verified pieces.</summary>
    Bitfield Verified { get; }

    /// <summary>How many pieces are verified.</summary>
    int VerifiedCount { get; }

    /// <summary>Every piece is verified.</summary>
    bool IsComplete { get; }

    /// <summary>Whether <paramref name="piece"/> is verified.</summary>
    bool HasPiece(int piece);

    /// <summary>Pieces found verified when the storage was opened (what a restart kept).</summary>
    int PiecesKeptOnOpen { get; }

    /// <summary>Pieces hashed when the storage was opened because no trusted record of them existed.</summary>
    int PiecesRechecked { get; }

    /// <summary>Reads <paramref name="destination"/>.Length bytes of <paramref name="piece"/> from <paramref name="begin"/>.</summary>
    void Read(int piece, int begin, Span<byte> destination);

    /// <summary>
    /// Reads consecutive bytes of <paramref name="piece"/> from <paramref name="begin"/> into each of
    /// <paramref name="destinations"/> in turn (a scattered read: a seeder's run of requested blocks, each behind its
    /// message header). Storage on files does it in one system call (preadv) where the range lies in one file.
    /// </summary>
    void Read(int piece, int begin, IReadOnlyList<Memory<byte>> destinations)
    {
        ArgumentNullException.ThrowIfNull(destinations);
        foreach (var destination in destinations)
        {
            Read(piece, begin, destination.Span);
            begin += destination.Length;
        }
    }

    /// <summary>Checks a whole piece against its SHA-1 (BEP 3) and stores it only if it matches; false: nothing stored.</summary>
    bool TryWriteVerifiedPiece(int piece, ReadOnlySpan<byte> data);

    /// <summary>Makes what is verified so far durable (a resume record); a no-op where nothing outlives the process.</summary>
    void SaveResume();

    /// <summary>
    /// File priorities changed: per entry of <see cref="TorrentInfo.Files"/>, whether the file is skipped (not kept as a
    /// file; its bytes of pieces shared with wanted files are kept apart). A no-op where nothing is stored as files.
    /// </summary>
    void SetSkippedFiles(IReadOnlyList<bool> skipped)
    {
    }
}

/// <summary>
/// Opens the storage of each torrent a client runs (anacrolix/torrent's <c>storage.ClientImpl.OpenTorrent</c>).
/// </summary>
public interface ITorrentStorageFactory
{
    /// <summary>
    /// Opens <paramref name="info"/>'s storage under <paramref name="savePath"/> (the directory its content is, or goes,
    /// under). With <paramref name="seedOnly"/> the content must already be there and complete (else
    /// <see cref="InvalidDataException"/>); otherwise what is there is kept where it verifies and the rest is created.
    /// Called once per torrent, off the network tasks (it may hash every piece).
    /// </summary>
    ITorrentStorage Open(TorrentInfo info, string savePath, bool seedOnly, CancellationToken ct);

    /// <summary>
    /// As <see cref="Open(TorrentInfo, string, bool, CancellationToken)"/>, with the files that are skipped from the start
    /// (per entry of <see cref="TorrentInfo.Files"/>; see <see cref="ITorrentStorage.SetSkippedFiles"/>): they are not created.
    /// </summary>
    ITorrentStorage Open(TorrentInfo info, string savePath, bool seedOnly, IReadOnlyList<bool>? skippedFiles, CancellationToken ct)
    {
        var storage = Open(info, savePath, seedOnly, ct);
        if (skippedFiles is not null) storage.SetSkippedFiles(skippedFiles);
        return storage;
    }
}
