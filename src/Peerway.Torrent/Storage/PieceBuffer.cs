using System.Runtime.InteropServices;

namespace Peerway.Torrent.Storage;

/// <summary>
/// A piece being assembled from blocks, in memory that starts on a page boundary and never moves (the pinned object
/// heap), so <see cref="TorrentStorage"/> can hand it to an O_DIRECT write as it is: no copy into an aligned staging
/// buffer (open(2): O_DIRECT needs the buffer address, the file offset and the length aligned to the logical block size).
/// </summary>
internal sealed class PieceBuffer
{
    private readonly byte[] _array;
    private readonly int _offset;

    public PieceBuffer(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Capacity = capacity;
        _array = GC.AllocateUninitializedArray<byte>(capacity + DirectIo.Alignment - 1, pinned: true);
        var address = (long)Marshal.UnsafeAddrOfPinnedArrayElement(_array, 0);
        _offset = (int)((DirectIo.Alignment - (address % DirectIo.Alignment)) % DirectIo.Alignment);
    }

    /// <summary>Usable bytes (a piece of up to this length fits).</summary>
    public int Capacity { get; }

    /// <summary>The first <paramref name="length"/> bytes (page-aligned).</summary>
    public Span<byte> Span(int length) => _array.AsSpan(_offset, length);
}

/// <summary>
/// Reuses <see cref="PieceBuffer"/>s across pieces (and torrents) so that pinned, aligned memory is allocated once: the
/// swarm rents one when a piece's first block arrives and the disk queue returns it once the piece is stored. At most
/// <see cref="MaxRetainedBytes"/> are kept; what is returned beyond that is left to the GC. Thread-safe.
/// </summary>
internal sealed class PieceBufferPool
{
    /// <summary>Bytes of free buffers kept: the disk queue's 16 pieces and a few being assembled, at 1–4 MiB pieces.</summary>
    public const int MaxRetainedBytes = 64 * 1024 * 1024;

    private readonly List<PieceBuffer> _free = [];
    private long _retained;

    /// <summary>A buffer of at least <paramref name="length"/> bytes (contents undefined).</summary>
    public PieceBuffer Rent(int length)
    {
        lock (_free)
        {
            // Most recently returned first (warm in cache); a buffer more than twice the size is left for larger pieces.
            for (var i = _free.Count - 1; i >= 0; i--)
            {
                var buffer = _free[i];
                if (buffer.Capacity < length || buffer.Capacity / 2 > length) continue;
                _free.RemoveAt(i);
                _retained -= buffer.Capacity;
                return buffer;
            }
        }

        // Whole pages, so the buffer serves any piece of the same page count.
        return new PieceBuffer(checked((length + DirectIo.Alignment - 1) / DirectIo.Alignment * DirectIo.Alignment));
    }

    public void Return(PieceBuffer buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        lock (_free)
        {
            if (_retained + buffer.Capacity > MaxRetainedBytes) return;
            _free.Add(buffer);
            _retained += buffer.Capacity;
        }
    }

    /// <summary>Free buffers kept (tests).</summary>
    internal int FreeCount
    {
        get
        {
            lock (_free) return _free.Count;
        }
    }
}
