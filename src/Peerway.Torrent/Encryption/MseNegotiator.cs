using System.Buffers;

namespace Peerway.Torrent.Encryption;

/// <summary>The outcome of negotiating a connection: plain BitTorrent, or MSE in plaintext or RC4 mode.</summary>
internal sealed class MseResult
{
    private MseResult(MseError error, CryptoMethods method, byte[] prefix, Rc4? decryptor, long decryptLength, Rc4? encryptor, ReadOnlyMemory<byte> skey = default)
    {
        Skey = skey;
        Error = error;
        Method = method;
        Prefix = prefix;
        Decryptor = decryptor;
        DecryptLength = decryptLength;
        Encryptor = encryptor;
    }

    public MseError Error { get; }

    /// <summary>None for a plain BitTorrent handshake; otherwise the MSE method in force.</summary>
    public CryptoMethods Method { get; }

    /// <summary>Bytes read past the handshake (still encrypted where the stream is).</summary>
    public byte[] Prefix { get; }

    public Rc4? Decryptor { get; }

    public long DecryptLength { get; }

    /// <summary>Encrypts what we send; null unless RC4 is in force.</summary>
    public Rc4? Encryptor { get; }

    public bool Succeeded => Error == MseError.None;

    /// <summary>The SKEY (info-hash) the MSE handshake used: as responder, the one the peer's req2 hash named.</summary>
    public ReadOnlyMemory<byte> Skey { get; }

    public static MseResult Failed(MseError error) => new(error, CryptoMethods.None, [], null, 0, null);

    public static MseResult Plain(byte[] prefix) => new(MseError.None, CryptoMethods.None, prefix, null, 0, null);

    public static MseResult From(MseHandshake handshake, byte[] prefix) =>
        new(MseError.None, handshake.Method, prefix, handshake.Decryptor, handshake.DecryptLength, handshake.Encryptor, handshake.Skey);

    /// <summary>The stream to read the BitTorrent protocol from: the prefix, then <paramref name="inner"/>, decrypted as negotiated.</summary>
    public Stream WrapInput(Stream inner) => new MseStream(inner, Prefix, Decryptor, DecryptLength, encryptor: null);

    /// <summary>A full duplex stream: reads as <see cref="WrapInput"/>, writes encrypted as negotiated.</summary>
    public Stream Wrap(Stream inner) => new MseStream(inner, Prefix, Decryptor, DecryptLength, Encryptor);
}

/// <summary>Runs <see cref="MseHandshake"/> over a connected stream (the dial and accept paths of the swarm engine).</summary>
internal static class MseNegotiator
{
    /// <summary>Receive buffer: more than the largest lookahead a handshake step needs, plus Y.</summary>
    private const int BufferSize = 2048;

    public static Task<MseResult> InitiateAsync(Stream stream, ReadOnlyMemory<byte> skey, EncryptionPolicy policy, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var handshake = MseHandshake.CreateInitiator(skey.Span, policy.Provide());
        return RunAsync(stream, handshake, new byte[BufferSize], 0, ct);
    }

    /// <summary>
    /// An incoming connection: a plain handshake (byte 19, "BitTorrent protocol") or MSE, accepted per
    /// <paramref name="policy"/>. I/O errors propagate; protocol failures are a <see cref="MseResult.Error"/>.
    /// </summary>
    public static async Task<MseResult> AcceptAsync(Stream stream, IReadOnlyList<byte[]> skeys, EncryptionPolicy policy, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var buffer = new byte[BufferSize];
        var filled = 0;
        while (filled < PlainHandshake.HeaderLength)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(filled), ct).ConfigureAwait(false);
            if (n == 0) return MseResult.Failed(MseError.Closed);
            filled += n;
        }

        if (PlainHandshake.IsHeader(buffer))
        {
            return policy == EncryptionPolicy.Require ? MseResult.Failed(MseError.PlaintextRefused) : MseResult.Plain(buffer[..filled]);
        }

        if (policy == EncryptionPolicy.Off) return MseResult.Failed(MseError.EncryptionRefused);
        var handshake = MseHandshake.CreateResponder(skeys, policy.Accept(), preferRc4: false);
        return await RunAsync(stream, handshake, buffer, filled, ct).ConfigureAwait(false);
    }

    private static async Task<MseResult> RunAsync(Stream stream, MseHandshake handshake, byte[] buffer, int filled, CancellationToken ct)
    {
        var output = new ArrayBufferWriter<byte>(1024);
        handshake.Start(output);
        while (true)
        {
            var status = handshake.Advance(buffer.AsSpan(0, filled), output, out var consumed);
            if (output.WrittenCount > 0)
            {
                await stream.WriteAsync(output.WrittenMemory, ct).ConfigureAwait(false);
                output.ResetWrittenCount();
            }

            buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
            filled -= consumed;
            if (status == MseStatus.Failed) return MseResult.Failed(handshake.Error);
            if (status == MseStatus.Done) return MseResult.From(handshake, buffer[..filled]);
            // A step never needs more than MaxLookahead bytes, far below the buffer: a full buffer is not reachable.
            var n = await stream.ReadAsync(buffer.AsMemory(filled), ct).ConfigureAwait(false);
            if (n == 0) return MseResult.Failed(MseError.Closed);
            filled += n;
        }
    }
}
