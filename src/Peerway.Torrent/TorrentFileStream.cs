using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent;

/// <summary>How a <see cref="TorrentFileStream"/> reads ahead.</summary>
public sealed record TorrentReadOptions
{
    /// <summary>
    /// Bytes ahead of the read position whose pieces get deadlines (at least 2 pieces): the picker fetches them before
    /// any other piece, nearest first (libtorrent's <c>set_piece_deadline</c>, WebTorrent's critical pieces).
    /// </summary>
    public long ReadAhead { get; init; } = 8L * 1024 * 1024;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for a setting out of range.</summary>
    public void Validate() => ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ReadAhead);
}

/// <summary>
/// One file of a torrent as a seekable, read-only <see cref="Stream"/> while it downloads (streaming). A read of a
/// missing piece moves the reader's window (its pieces get deadlines in the picker) and waits — on a completion the
/// engine signals when that piece verifies, not by polling — until the piece is verified, then returns its bytes;
/// unverified bytes are never returned. Reads are cancellable; one read at a time (as any <see cref="Stream"/>).
/// A read fails with <see cref="IOException"/> if the torrent is paused or removed meanwhile.
/// </summary>
public sealed class TorrentFileStream : Stream
{
    private readonly TorrentHandle _handle;
    private readonly TorrentInfo _info;
    private readonly TorrentFileEntry _file;
    private readonly int _window;
    private readonly int _lastPiece;
    private TorrentSession? _registeredWith;
    private long _position;
    private bool _disposed;

    internal TorrentFileStream(TorrentHandle handle, TorrentInfo info, TorrentFileEntry file, TorrentReadOptions options)
    {
        _handle = handle;
        _info = info;
        _file = file;
        _window = (int)Math.Clamp((options.ReadAhead + info.PieceLength - 1) / info.PieceLength, 2, info.PieceCount);
        _lastPiece = file.Length == 0 ? 0 : (int)((file.Offset + file.Length - 1) / info.PieceLength);
    }

    /// <summary>The file read.</summary>
    public TorrentFileEntry File => _file;

    /// <inheritdoc/>
    public override bool CanRead => !_disposed;

    /// <inheritdoc/>
    public override bool CanSeek => !_disposed;

    /// <inheritdoc/>
    public override bool CanWrite => false;

    /// <inheritdoc/>
    public override long Length => _file.Length;

    /// <inheritdoc/>
    public override long Position
    {
        get => _position;
        set => Seek(value, SeekOrigin.Begin);
    }

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            SeekOrigin.End => _file.Length + offset,
            _ => throw new ArgumentOutOfRangeException(nameof(origin)),
        };
        if (target < 0) throw new IOException("cannot seek before the start of the file");
        _position = target;
        return target;
    }

    /// <summary>Reads from the current position, not cancellable; see <see cref="ReadAsync(Memory{byte}, CancellationToken)"/>.</summary>
    public ValueTask<int> ReadAsync(Memory<byte> buffer) => ReadAsync(buffer, CancellationToken.None);

    /// <summary>Reads from the current position, waiting until the pieces that hold the bytes are verified. Throws <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> fires.</summary>
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (buffer.IsEmpty || _position >= _file.Length) return 0;
        var absolute = _file.Offset + _position;
        var piece = (int)(absolute / _info.PieceLength);
        var begin = (int)(absolute % _info.PieceLength);
        var count = (int)Math.Min(Math.Min(buffer.Length, _info.PieceSize(piece) - begin), _file.Length - _position);
        while (true)
        {
            var session = Session();
            session.SetReader(this, piece, _lastPiece, _window);
            if (session.TryReadVerified(piece, begin, buffer.Span[..count])) break;
            try
            {
                await session.WaitForPieceAsync(piece, cancellationToken).ConfigureAwait(false);
            }
            catch (ObjectDisposedException ex)
            {
                throw new IOException("the torrent was paused or removed while a read waited", ex);
            }
        }

        _position += count;
        return count;
    }

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Blocks until the bytes are verified; prefer <see cref="ReadAsync(Memory{byte}, CancellationToken)"/>.</summary>
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <summary>Blocks until the bytes are verified; prefer <see cref="ReadAsync(Memory{byte}, CancellationToken)"/>.</summary>
    public override int Read(Span<byte> buffer)
    {
        var rented = new byte[buffer.Length];
#pragma warning disable VSTHRD002 // Stream's synchronous Read blocks by contract; the wait ends when the piece verifies (signalled on the disk queue's task, never this thread)
        var n = ReadAsync(rented.AsMemory(), CancellationToken.None).AsTask().GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
        rented.AsSpan(0, n).CopyTo(buffer);
        return n;
    }

    private TorrentSession Session()
    {
        var session = _handle.Current ?? throw new IOException("the torrent is paused or removed");
        if (!ReferenceEquals(session, _registeredWith))
        {
            _registeredWith?.RemoveReader(this);
            _registeredWith = session;
        }

        return session;
    }

    /// <summary>Does nothing (the stream is read-only).</summary>
    public override void Flush()
    {
    }

    /// <summary>Throws <see cref="NotSupportedException"/>: the stream is read-only.</summary>
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Throws <see cref="NotSupportedException"/>: the stream is read-only.</summary>
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _registeredWith?.RemoveReader(this);
            _registeredWith = null;
        }

        base.Dispose(disposing);
    }
}
