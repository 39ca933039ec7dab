namespace Peerway.Torrent.Encryption;

/// <summary>
/// A peer connection's byte stream after the MSE handshake: first the bytes already read past the handshake
/// (<paramref name="prefix"/>), then the inner stream; the first <paramref name="decryptLength"/> bytes are decrypted
/// (all of them in RC4 mode, IA only in plaintext mode). Writes are encrypted when an encryptor is given, through one
/// reused buffer (no allocation per write). One reader and one writer at a time, as with a socket.
/// </summary>
internal sealed class MseStream(Stream inner, byte[] prefix, Rc4? decryptor, long decryptLength, Rc4? encryptor, bool leaveOpen = false) : Stream
{
    private const int WriteChunk = 64 * 1024;
    private int _prefixOffset;
    private long _decryptRemaining = decryptor is null ? 0 : decryptLength;
    private byte[]? _writeBuffer;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => inner.CanWrite;
    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty && _prefixOffset < prefix.Length) return 0; // a zero-byte read: data is there (the prefix)
        var n = TakePrefix(buffer);
        if (n == 0) n = inner.Read(buffer);
        Decrypt(buffer[..n]);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // A zero-byte read waits for data (System.IO.Pipelines' useZeroByteReads); the prefix is data already there.
        if (buffer.IsEmpty && _prefixOffset < prefix.Length) return 0;
        var n = TakePrefix(buffer.Span);
        if (n == 0) n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Decrypt(buffer.Span[..n]);
        return n;
    }

    private int TakePrefix(Span<byte> buffer)
    {
        var n = Math.Min(buffer.Length, prefix.Length - _prefixOffset);
        if (n <= 0) return 0;
        prefix.AsSpan(_prefixOffset, n).CopyTo(buffer);
        _prefixOffset += n;
        return n;
    }

    private void Decrypt(Span<byte> data)
    {
        if (_decryptRemaining == 0) return;
        var n = (int)Math.Min(data.Length, _decryptRemaining);
        decryptor!.Transform(data[..n]);
        if (_decryptRemaining != long.MaxValue) _decryptRemaining -= n;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (encryptor is null)
        {
            inner.Write(buffer);
            return;
        }

        var scratch = _writeBuffer ??= new byte[WriteChunk];
        while (!buffer.IsEmpty)
        {
            var n = Math.Min(buffer.Length, scratch.Length);
            encryptor.Transform(buffer[..n], scratch);
            inner.Write(scratch, 0, n);
            buffer = buffer[n..];
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (encryptor is null)
        {
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            return;
        }

        var scratch = _writeBuffer ??= new byte[WriteChunk];
        while (!buffer.IsEmpty)
        {
            var n = Math.Min(buffer.Length, scratch.Length);
            encryptor.Transform(buffer.Span[..n], scratch);
            await inner.WriteAsync(scratch.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            buffer = buffer[n..];
        }
    }

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !leaveOpen) inner.Dispose();
        base.Dispose(disposing);
    }
}
