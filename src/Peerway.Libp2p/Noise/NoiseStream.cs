using System.Buffers;
using System.Buffers.Binary;

namespace Peerway.Libp2p.Noise;

/// <summary>
/// The transport phase of a libp2p Noise session (noise/README.md "Wire Format"): every message is a 2-byte
/// big-endian length and a ChaChaPoly ciphertext of at most 65,535 bytes. One reader and one writer at a time (the
/// muxer above serialises its writes); a frame that fails authentication ends the stream with an error.
/// </summary>
internal sealed class NoiseStream : Stream
{
    /// <summary>noise spec §3: a Noise message is at most 65,535 bytes, tag included.</summary>
    public const int MaxPlaintext = ushort.MaxValue - CipherState.TagLength;

    private readonly Stream _inner;
    private readonly CipherState _send;
    private readonly CipherState _receive;
    private readonly byte[] _frame = new byte[ushort.MaxValue];
    private readonly byte[] _plain = new byte[MaxPlaintext];
    private int _plainStart;
    private int _plainEnd;

    public NoiseStream(Stream inner, CipherState send, CipherState receive)
    {
        _inner = inner;
        _send = send;
        _receive = receive;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_plainStart == _plainEnd)
        {
            var header = new byte[2];
            var n = await _inner.ReadAtLeastAsync(header, 2, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            if (n == 0) return 0;
            if (n < 2) throw new EndOfStreamException("noise: the stream ended inside a frame length");
            var length = BinaryPrimitives.ReadUInt16BigEndian(header);
            await _inner.ReadExactlyAsync(_frame.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
            if (!_receive.TryDecryptWithAd([], _frame.AsSpan(0, length), _plain, out var written))
            {
                throw new Libp2pProtocolException(Libp2pError.BadHandshake, "noise: a frame failed authentication");
            }

            _plainStart = 0;
            _plainEnd = written;
        }

        var count = Math.Min(buffer.Length, _plainEnd - _plainStart);
        _plain.AsSpan(_plainStart, count).CopyTo(buffer.Span);
        _plainStart += count;
        return count;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty) return;
        // All frames of one write go out in one buffer (one syscall for a Yamux header and its data).
        var frames = (buffer.Length + MaxPlaintext - 1) / MaxPlaintext;
        var total = buffer.Length + (frames * (2 + CipherState.TagLength));
        var output = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            var at = 0;
            for (var offset = 0; offset < buffer.Length; offset += MaxPlaintext)
            {
                var chunk = buffer.Span.Slice(offset, Math.Min(MaxPlaintext, buffer.Length - offset));
                var n = _send.EncryptWithAd([], chunk, output.AsSpan(at + 2));
                BinaryPrimitives.WriteUInt16BigEndian(output.AsSpan(at), (ushort)n);
                at += 2 + n;
            }

            await _inner.WriteAsync(output.AsMemory(0, at), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(output);
        }
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    /// <summary>Synchronous reads would block a thread on the network: use <see cref="ReadAsync(Memory{byte}, CancellationToken)"/>.</summary>
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("use ReadAsync");

    /// <summary>Synchronous writes would block a thread on the network: use <see cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/>.</summary>
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("use WriteAsync");

    public override void Flush() => _inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _send.Dispose();
            _receive.Dispose();
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
