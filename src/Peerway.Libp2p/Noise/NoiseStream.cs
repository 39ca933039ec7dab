using System.Buffers;
using System.Buffers.Binary;

namespace Peerway.Libp2p.Noise;

/// <summary>
/// The transport phase of a libp2p Noise session (noise/README.md "Wire Format"): every message is a 2-byte
/// big-endian length and a ChaChaPoly ciphertext of at most 65,535 bytes. Reads take what the connection has, up to
/// four frames per call, and decrypt whole frames into the caller's buffer when it is large enough; all frames of one
/// write leave in one call. One reader and one writer at a time (the muxer above serialises its writes); a frame that
/// fails authentication ends the stream with an error.
/// </summary>
internal sealed class NoiseStream : Stream
{
    /// <summary>noise spec §3: a Noise message is at most 65,535 bytes, tag included.</summary>
    public const int MaxPlaintext = ushort.MaxValue - CipherState.TagLength;

    /// <summary>Bytes read from the connection at most per call: several frames per syscall while data streams in.</summary>
    private const int ReadAhead = 4 * (NoiseFrame.HeaderSize + ushort.MaxValue);

    private readonly Stream _inner;
    private readonly CipherState _send;
    private readonly CipherState _receive;
    private readonly byte[] _input = new byte[ReadAhead];
    private readonly byte[] _plain = new byte[MaxPlaintext];
    private int _inputStart;
    private int _inputEnd;
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
        if (buffer.IsEmpty) return 0;
        while (_plainStart == _plainEnd)
        {
            // Whole frames already read are decrypted straight into the caller's buffer when it holds one (no copy).
            var input = _input.AsSpan(_inputStart, _inputEnd - _inputStart);
            var direct = input.Length >= NoiseFrame.HeaderSize && buffer.Length >= BinaryPrimitives.ReadUInt16BigEndian(input) - CipherState.TagLength;
            var error = NoiseFrame.TryDecrypt(_receive, input, direct ? buffer.Span : _plain, out var consumed, out var written);
            if (error == Libp2pError.None)
            {
                _inputStart += consumed;
                if (direct)
                {
                    if (written > 0) return written;
                    continue; // an empty frame: nothing for the caller yet
                }

                _plainStart = 0;
                _plainEnd = written;
                break;
            }

            if (error != Libp2pError.Truncated) throw new Libp2pProtocolException(error, $"noise: a frame was refused ({error})");

            // Not a whole frame yet: keep the partial one at the front and read what the connection has (one syscall
            // takes several frames when they are there).
            if (_inputStart > 0)
            {
                _input.AsSpan(_inputStart, _inputEnd - _inputStart).CopyTo(_input);
                _inputEnd -= _inputStart;
                _inputStart = 0;
            }

            var n = await _inner.ReadAsync(_input.AsMemory(_inputEnd), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                if (_inputEnd == 0) return 0;
                throw new EndOfStreamException("noise: the stream ended inside a frame");
            }

            _inputEnd += n;
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

/// <summary>
/// One transport message on the wire (libp2p noise/README.md "Wire Format"): a 2-byte big-endian length and that many
/// bytes of ChaChaPoly ciphertext, the 16-byte tag included. Sans-I/O, so it can be fuzzed without a socket.
/// </summary>
internal static class NoiseFrame
{
    public const int HeaderSize = 2;

    /// <summary>
    /// Decrypts the frame at the front of <paramref name="input"/> into <paramref name="plaintext"/>: <see cref="Libp2pError.Truncated"/>
    /// while it is incomplete (nothing consumed, the nonce untouched), <see cref="Libp2pError.BadHandshake"/> for a
    /// ciphertext shorter than a tag or one that fails authentication (the session must then end),
    /// <see cref="Libp2pError.TooLong"/> when <paramref name="plaintext"/> cannot hold it.
    /// </summary>
    public static Libp2pError TryDecrypt(CipherState receive, ReadOnlySpan<byte> input, Span<byte> plaintext, out int consumed, out int written)
    {
        ArgumentNullException.ThrowIfNull(receive);
        consumed = 0;
        written = 0;
        if (input.Length < HeaderSize) return Libp2pError.Truncated;
        var length = BinaryPrimitives.ReadUInt16BigEndian(input);
        if (input.Length - HeaderSize < length) return Libp2pError.Truncated;
        if (length < CipherState.TagLength) return Libp2pError.BadHandshake;
        if (plaintext.Length < (receive.HasKey ? length - CipherState.TagLength : length)) return Libp2pError.TooLong;
        if (!receive.TryDecryptWithAd([], input.Slice(HeaderSize, length), plaintext, out written)) return Libp2pError.BadHandshake;
        consumed = HeaderSize + length;
        return Libp2pError.None;
    }
}
