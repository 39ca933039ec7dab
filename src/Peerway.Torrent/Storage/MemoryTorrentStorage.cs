using System.Collections.Concurrent;
using Peerway.Core;
using Peerway.Torrent.Metainfo;

namespace Peerway.Torrent.Storage;

/// <summary>
/// One torrent's pieces in memory (tests, the simulator, short-lived transfers): nothing touches the disk. Only
/// verified pieces are kept, as on disk. Thread-safe.
/// </summary>
public sealed class MemoryTorrentStorage : ITorrentStorage
{
    private readonly TorrentInfo _info;
    private readonly byte[]?[] _pieces;
    private readonly Bitfield _verified;
    private readonly Lock _gate = new();

    /// <summary>An empty storage for <paramref name="info"/>; with <paramref name="content"/> (the torrent's whole byte
    /// stream, files concatenated) every piece that verifies is kept.</summary>
    public MemoryTorrentStorage(TorrentInfo info, ReadOnlySpan<byte> content = default)
    {
        ArgumentNullException.ThrowIfNull(info);
        _info = info;
        _pieces = new byte[]?[info.PieceCount];
        _verified = new Bitfield(info.PieceCount);
        if (content.IsEmpty) return;
        if (content.Length != info.TotalLength) throw new ArgumentException("the content is not the torrent's length", nameof(content));
        for (var p = 0; p < info.PieceCount; p++)
        {
            var slice = content.Slice((int)((long)p * info.PieceLength), info.PieceSize(p));
            if (TryWriteVerifiedPiece(p, slice)) PiecesKeptOnOpen++;
            PiecesRechecked++;
        }
    }

    /// <inheritdoc/>
    public Bitfield Verified
    {
        get
        {
            lock (_gate) return _verified.Clone();
        }
    }

    /// <inheritdoc/>
    public bool IsComplete => VerifiedCount == _info.PieceCount;

    /// <inheritdoc/>
    public int VerifiedCount
    {
        get
        {
            lock (_gate) return _verified.SetCount;
        }
    }

    /// <inheritdoc/>
    public int PiecesKeptOnOpen { get; }

    /// <inheritdoc/>
    public int PiecesRechecked { get; }

    /// <inheritdoc/>
    public bool HasPiece(int piece)
    {
        lock (_gate) return _verified[piece];
    }

    /// <inheritdoc/>
    public void Read(int piece, int begin, Span<byte> destination)
    {
        byte[]? data;
        lock (_gate) data = _pieces[piece];
        if (data is null) destination.Clear();
        else data.AsSpan(begin, destination.Length).CopyTo(destination);
    }

    /// <inheritdoc/>
    public bool TryWriteVerifiedPiece(int piece, ReadOnlySpan<byte> data)
    {
        if (!TorrentStorage.VerifyPiece(_info, piece, data)) return false;
        var copy = data.ToArray();
        lock (_gate)
        {
            _pieces[piece] ??= copy;
            _verified.Set(piece);
        }

        return true;
    }

    /// <inheritdoc/>
    public void SaveResume()
    {
        // Nothing outlives the process.
    }

    /// <summary>The torrent's whole byte stream as stored (unverified pieces read as zeros).</summary>
    public byte[] ToArray()
    {
        var all = new byte[_info.TotalLength];
        for (var p = 0; p < _info.PieceCount; p++) Read(p, 0, all.AsSpan((int)((long)p * _info.PieceLength), _info.PieceSize(p)));
        return all;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        // Nothing to release: the pieces stay readable for whoever still holds the storage.
    }
}

/// <summary>
/// Keeps every torrent in memory: one <see cref="MemoryTorrentStorage"/> per info-hash, shared by whoever opens it
/// again (a seeder is given its content with <see cref="Add"/>; a test reads a download back with <see cref="Get"/>).
/// </summary>
public sealed class MemoryStorageFactory : ITorrentStorageFactory
{
    private readonly ConcurrentDictionary<NodeId, MemoryTorrentStorage> _torrents = new();

    /// <summary>Stores <paramref name="content"/> (the torrent's whole byte stream) for <paramref name="info"/>.</summary>
    public MemoryTorrentStorage Add(TorrentInfo info, ReadOnlySpan<byte> content)
    {
        ArgumentNullException.ThrowIfNull(info);
        var storage = new MemoryTorrentStorage(info, content);
        _torrents[info.InfoHash] = storage;
        return storage;
    }

    /// <summary>The storage of <paramref name="infoHash"/>, once opened or added; null otherwise.</summary>
    public MemoryTorrentStorage? Get(NodeId infoHash) => _torrents.GetValueOrDefault(infoHash);

    /// <inheritdoc/>
    public ITorrentStorage Open(TorrentInfo info, string savePath, bool seedOnly, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(info);
        var storage = _torrents.GetOrAdd(info.InfoHash, _ => new MemoryTorrentStorage(info));
        if (seedOnly && !storage.IsComplete) throw new InvalidDataException($"{info.Name}: the content does not match the torrent ({storage.VerifiedCount}/{info.PieceCount} pieces verify)");
        return storage;
    }
}
