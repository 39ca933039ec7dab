using Peerway.Torrent.Metainfo;

namespace Peerway.Torrent.Swarm;

/// <summary>
/// Streaming while downloading: readers (see <see cref="TorrentFileStream"/>) tell the engine where they read, the
/// pieces in a window ahead of each one get deadlines in the picker (libtorrent's <c>set_piece_deadline</c>), and a
/// read of a missing piece waits on a completion signalled when that piece verifies. Guarded by <c>_gate</c>.
/// </summary>
public sealed partial class TorrentSession
{
    private readonly Dictionary<object, ReaderWindow> _readers = [];
    private readonly Dictionary<int, TaskCompletionSource> _pieceWaiters = [];

    /// <summary>How many readers are registered (for tests and diagnostics).</summary>
    internal int ReaderCount
    {
        get
        {
            lock (_gate) return _readers.Count;
        }
    }

    /// <summary>
    /// Registers or moves a reader: <paramref name="piece"/> is the piece it reads now, <paramref name="lastPiece"/> the
    /// last piece of its file, <paramref name="window"/> how many pieces from <paramref name="piece"/> on get deadlines.
    /// </summary>
    internal void SetReader(object reader, int piece, int lastPiece, int window)
    {
        lock (_gate)
        {
            if (_readers.TryGetValue(reader, out var old) && old == new ReaderWindow(piece, lastPiece, window)) return;
            _readers[reader] = new ReaderWindow(piece, lastPiece, window);
            ApplyDeadlinesLocked();
        }
    }

    /// <summary>The reader is gone: its pieces lose their deadlines (unless another reader wants them).</summary>
    internal void RemoveReader(object reader)
    {
        lock (_gate)
        {
            if (_readers.Remove(reader)) ApplyDeadlinesLocked();
        }
    }

    /// <summary>Completes when <paramref name="piece"/> is verified (at once if it is); cancellable.</summary>
    internal Task WaitForPieceAsync(int piece, CancellationToken ct)
    {
        lock (_gate)
        {
            if (_have is null) throw new InvalidOperationException("the torrent's files are not known yet");
            if (_have[piece]) return Task.CompletedTask;
            if (_disposed != 0) return Task.FromException(new ObjectDisposedException(nameof(TorrentSession)));
            if (!_pieceWaiters.TryGetValue(piece, out var waiter))
            {
                waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _pieceWaiters.Add(piece, waiter);
            }

            return waiter.Task.WaitAsync(ct);
        }
    }

    /// <summary>
    /// Reads verified bytes of <paramref name="piece"/> (never unverified ones: the storage holds only verified pieces).
    /// False when the piece is not verified.
    /// </summary>
    internal bool TryReadVerified(int piece, int begin, Span<byte> destination)
    {
        Storage.ITorrentStorage storage;
        lock (_gate)
        {
            if (_storage is null || _have is null || !_have[piece]) return false;
            storage = _storage;
        }

        storage.Read(piece, begin, destination);
        return true;
    }

    /// <summary>A piece verified (under the lock): wake its readers and move the deadlines of readers waiting for it.</summary>
    private void OnStreamPieceVerifiedLocked(int piece)
    {
        if (_pieceWaiters.Remove(piece, out var waiter)) waiter.TrySetResult();
    }

    /// <summary>On disposal: readers waiting for a piece fail instead of waiting forever.</summary>
    private void FailStreamWaitersLocked()
    {
        foreach (var w in _pieceWaiters.Values) w.TrySetException(new ObjectDisposedException(nameof(TorrentSession), "the torrent was paused or removed"));
        _pieceWaiters.Clear();
    }

    private void ApplyDeadlinesLocked()
    {
        if (_picker is null || _have is null) return;
        _picker.ClearPieceDeadlines();
        // The deadline of a piece is its distance (in pieces) ahead of the nearest reader: each reader's next piece first,
        // then the one after that, and so on, readers interleaved (several files or positions are served at once).
        foreach (var r in _readers.Values)
        {
            var end = Math.Min(r.LastPiece, r.Piece + r.Window - 1);
            for (var p = r.Piece; p <= end; p++)
            {
                if (_have[p]) continue;
                var deadline = p - r.Piece;
                if (!_picker.DeadlinePieces.Contains(p) || _picker.Deadline(p) > deadline) _picker.SetPieceDeadline(p, deadline);
            }
        }

        foreach (var c in _connections)
        {
            UpdateInterest(c);
            RequestMore(c);
        }
    }

    /// <summary>The first and last piece of a file (an empty file: the piece at its offset, first > last).</summary>
    internal static (int First, int Last) PieceRange(TorrentInfo info, TorrentFileEntry file) =>
        ((int)(file.Offset / info.PieceLength), (int)((file.Offset + file.Length - 1) / info.PieceLength));

    private readonly record struct ReaderWindow(int Piece, int LastPiece, int Window);
}
