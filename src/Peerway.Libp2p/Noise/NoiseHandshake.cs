using System.Buffers.Binary;
using System.Text;
using NSec.Cryptography;

namespace Peerway.Libp2p.Noise;

/// <summary>
/// The libp2p Noise handshake (libp2p specs, noise/README.md): <c>Noise_XX_25519_ChaChaPoly_SHA256</c> with an empty
/// prologue, each message framed by a 2-byte big-endian length, and a payload that binds the Noise static key to the
/// libp2p identity: <c>NoiseHandshakePayload { identity_key = 1; identity_sig = 2; extensions = 4 }</c> where
/// identity_sig signs <c>"noise-libp2p-static-key:" ‖ static public key</c>. A bad signature aborts the handshake.
/// </summary>
internal static class NoiseHandshake
{
    public const string ProtocolId = "/noise";

    /// <summary>noise/README.md: the signed prefix.</summary>
    private static readonly byte[] SignaturePrefix = Encoding.ASCII.GetBytes("noise-libp2p-static-key:");

    private static readonly KeyAgreementAlgorithm X25519 = KeyAgreementAlgorithm.X25519;

    /// <summary>Bound on a handshake payload (an Ed25519 identity and signature take ~110 bytes; RSA keys far more).</summary>
    private const int MaxPayload = 8 * 1024;

    /// <summary>Runs the handshake on <paramref name="stream"/>; returns the secure stream and the remote peer's id.</summary>
    public static async Task<(NoiseStream Stream, PeerId Remote)> RunAsync(Stream stream, PeerKey identity, bool initiator, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(identity);
        var creation = new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport };
        using var s = Key.Create(X25519, creation);
        using var e = Key.Create(X25519, creation);
        var sPub = s.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        var ePub = e.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        var ourPayload = EncodePayload(identity, sPub);
        using var sym = new SymmetricState();
        sym.MixHash([]); // the empty prologue
        PeerId remote;
        if (initiator)
        {
            // -> e
            sym.MixHash(ePub);
            await WriteFrameAsync(stream, [.. ePub, .. sym.EncryptAndHash([])], ct).ConfigureAwait(false);
            // <- e, ee, s, es
            var m2 = await ReadFrameAsync(stream, ct).ConfigureAwait(false);
            if (m2.Length < 32 + 48) throw Bad("message 2 is too short");
            var re = m2[..32];
            sym.MixHash(re);
            var rePub = ImportPublic(re);
            MixDh(sym, e, rePub);
            var rs = sym.DecryptAndHash(m2.AsSpan(32, 48)) ?? throw Bad("message 2: the static key does not decrypt");
            MixDh(sym, e, ImportPublic(rs));
            var payload = sym.DecryptAndHash(m2.AsSpan(80)) ?? throw Bad("message 2: the payload does not decrypt");
            remote = VerifyPayload(payload, rs);
            // -> s, se
            var c1 = sym.EncryptAndHash(sPub);
            MixDh(sym, s, rePub);
            var c2 = sym.EncryptAndHash(ourPayload);
            await WriteFrameAsync(stream, [.. c1, .. c2], ct).ConfigureAwait(false);
            var (send, receive) = sym.Split();
            return (new NoiseStream(stream, send, receive), remote);
        }
        else
        {
            // <- e
            var m1 = await ReadFrameAsync(stream, ct).ConfigureAwait(false);
            if (m1.Length < 32) throw Bad("message 1 is too short");
            var re = m1[..32];
            sym.MixHash(re);
            _ = sym.DecryptAndHash(m1.AsSpan(32)) ?? throw Bad("message 1: bad payload");
            var rePub = ImportPublic(re);
            // -> e, ee, s, es
            sym.MixHash(ePub);
            MixDh(sym, e, rePub);
            var c1 = sym.EncryptAndHash(sPub);
            MixDh(sym, s, rePub);
            var c2 = sym.EncryptAndHash(ourPayload);
            await WriteFrameAsync(stream, [.. ePub, .. c1, .. c2], ct).ConfigureAwait(false);
            // <- s, se
            var m3 = await ReadFrameAsync(stream, ct).ConfigureAwait(false);
            if (m3.Length < 48) throw Bad("message 3 is too short");
            var rs = sym.DecryptAndHash(m3.AsSpan(0, 48)) ?? throw Bad("message 3: the static key does not decrypt");
            MixDh(sym, e, ImportPublic(rs));
            var payload = sym.DecryptAndHash(m3.AsSpan(48)) ?? throw Bad("message 3: the payload does not decrypt");
            remote = VerifyPayload(payload, rs);
            var (receive, send) = sym.Split();
            return (new NoiseStream(stream, send, receive), remote);
        }
    }

    /// <summary>The libp2p handshake payload for our identity and Noise static key.</summary>
    internal static byte[] EncodePayload(PeerKey identity, ReadOnlySpan<byte> staticPublicKey)
    {
        var signature = identity.Sign([.. SignaturePrefix, .. staticPublicKey]);
        return new ProtoWriter().Bytes(1, identity.EncodedPublicKey).Bytes(2, signature).ToArray();
    }

    /// <summary>Checks a remote payload: its identity key signed the Noise static key; returns the peer id.</summary>
    internal static PeerId VerifyPayload(ReadOnlySpan<byte> payload, ReadOnlySpan<byte> remoteStatic)
    {
        var error = TryDecodePayload(payload, out var key, out var signature);
        if (error != Libp2pError.None) throw Bad($"the handshake payload is malformed ({error})");
        var verified = PeerKey.Verify(key, [.. SignaturePrefix, .. remoteStatic], signature);
        if (verified != Libp2pError.None) throw new Libp2pProtocolException(verified, $"the remote identity does not sign its Noise key ({verified})");
        return PeerId.FromPublicKey(key);
    }

    /// <summary>
    /// Decodes <c>NoiseHandshakePayload</c> (noise/README.md): the identity key (field 1) and its signature (field 2);
    /// other fields (extensions) are skipped. Bounded; a typed error, never an exception.
    /// </summary>
    internal static Libp2pError TryDecodePayload(ReadOnlySpan<byte> payload, out ReadOnlySpan<byte> key, out ReadOnlySpan<byte> signature)
    {
        key = default;
        signature = default;
        if (payload.Length > MaxPayload) return Libp2pError.TooLong;
        var fields = new ProtoFields(payload);
        while (fields.Next(out var f))
        {
            if (f.WireType != 2) continue;
            if (f.Number == 1) key = f.Bytes;
            else if (f.Number == 2) signature = f.Bytes;
        }

        return fields.Error;
    }

    private static void MixDh(SymmetricState sym, Key ours, PublicKey theirs)
    {
        // NSec refuses an all-zero result (a low-order point): that is a bad handshake, not a key.
        using var dh = X25519.Agree(ours, theirs) ?? throw Bad("a low-order Diffie-Hellman key");
        sym.MixKey(dh);
    }

    private static PublicKey ImportPublic(ReadOnlySpan<byte> raw) =>
        PublicKey.TryImport(X25519, raw, KeyBlobFormat.RawPublicKey, out var key) && key is not null ? key : throw Bad("a malformed X25519 key");

    private static Libp2pProtocolException Bad(string message) => new(Libp2pError.BadHandshake, "noise: " + message);

    private static async Task WriteFrameAsync(Stream stream, byte[] message, CancellationToken ct)
    {
        var frame = new byte[2 + message.Length];
        BinaryPrimitives.WriteUInt16BigEndian(frame, checked((ushort)message.Length));
        message.CopyTo(frame, 2);
        await stream.WriteAsync(frame, ct).ConfigureAwait(false);
        await stream.FlushAsync(ct).ConfigureAwait(false);
    }

    private static async Task<byte[]> ReadFrameAsync(Stream stream, CancellationToken ct)
    {
        var header = new byte[2];
        await stream.ReadExactlyAsync(header, ct).ConfigureAwait(false);
        var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(header)];
        await stream.ReadExactlyAsync(message, ct).ConfigureAwait(false);
        return message;
    }
}
