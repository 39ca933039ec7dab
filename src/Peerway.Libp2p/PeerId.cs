using NSec.Cryptography;
using Peerway.Core.Multiformats;

namespace Peerway.Libp2p;

/// <summary>
/// A libp2p peer id (libp2p specs, peer-ids/peer-ids.md): the multihash of the protobuf-encoded public key — identity
/// when that encoding is at most 42 bytes (Ed25519: 36), sha2-256 otherwise. Printed as base58btc ("12D3KooW…").
/// </summary>
public sealed class PeerId : IEquatable<PeerId>
{
    /// <summary>peer-ids.md: keys whose encoding is at most this long are inlined with the identity multihash.</summary>
    public const int MaxInlineKeyLength = 42;

    /// <summary>The multicodec of a peer id inside a CIDv1 (libp2p-key).</summary>
    public const ulong Libp2pKeyCodec = 0x72;

    private readonly byte[] _bytes;

    private PeerId(byte[] bytes) => _bytes = bytes;

    /// <summary>The multihash bytes.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>The peer id of a public key given in its protobuf encoding.</summary>
    public static PeerId FromPublicKey(ReadOnlySpan<byte> encodedPublicKey)
    {
        var mh = encodedPublicKey.Length <= MaxInlineKeyLength ? Multihash.Identity(encodedPublicKey) : Multihash.Sha256(encodedPublicKey);
        return new PeerId(mh.Bytes.ToArray());
    }

    /// <summary>Reads a peer id from its multihash bytes (bounded; identity or sha2-256 only).</summary>
    public static Libp2pError TryDecode(ReadOnlySpan<byte> bytes, out PeerId? id)
    {
        id = null;
        if (Multihash.TryDecode(bytes, out var mh) != MultiformatError.None || mh is null) return Libp2pError.BadPeerId;
        id = new PeerId(bytes.ToArray());
        return Libp2pError.None;
    }

    /// <summary>Parses "12D3KooW…"/"Qm…" (base58btc) or a CIDv1 with the libp2p-key codec ("bafz…", "k51…").</summary>
    public static Libp2pError TryParse(string text, out PeerId? id)
    {
        id = null;
        if (string.IsNullOrEmpty(text) || text.Length > 256) return Libp2pError.BadPeerId;
        if (text[0] is '1' or 'Q')
        {
            return Multibase.TryDecodeBase58Raw(text, out var raw) == MultiformatError.None ? TryDecode(raw, out id) : Libp2pError.BadPeerId;
        }

        if (Cid.TryParse(text, out var cid) != MultiformatError.None || cid is null || cid.Codec != Libp2pKeyCodec) return Libp2pError.BadPeerId;
        return TryDecode(cid.Multihash.Bytes, out id);
    }

    /// <summary>The public key inlined in an identity peer id (protobuf encoding), if it has one.</summary>
    public bool TryGetInlinePublicKey(out ReadOnlySpan<byte> encodedPublicKey)
    {
        encodedPublicKey = default;
        if (_bytes.Length < 2 || _bytes[0] != (byte)Multihash.IdentityCode) return false;
        encodedPublicKey = _bytes.AsSpan(2);
        return true;
    }

    /// <summary>True when this id names the given public key (protobuf encoding).</summary>
    public bool Matches(ReadOnlySpan<byte> encodedPublicKey) => Equals(FromPublicKey(encodedPublicKey));

    /// <inheritdoc/>
    public bool Equals(PeerId? other) => other is not null && _bytes.AsSpan().SequenceEqual(other._bytes);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is PeerId p && Equals(p);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.AddBytes(_bytes);
        return h.ToHashCode();
    }

    /// <summary>base58btc, as libp2p prints peer ids.</summary>
    public override string ToString() => Multibase.EncodeBase58Raw(_bytes);
}

/// <summary>
/// A peer's Ed25519 identity key (peer-ids.md: KeyType Ed25519 = 1). The public key's protobuf encoding is
/// <c>0x08 0x01 0x12 0x20 ‖ key</c>; the private key is kept as its 32-byte seed.
/// </summary>
public sealed class PeerKey : IDisposable
{
    /// <summary>peer-ids.md KeyType.</summary>
    internal const int Ed25519Type = 1;

    private static readonly SignatureAlgorithm Ed25519 = SignatureAlgorithm.Ed25519;
    private readonly Key _key;

    private PeerKey(Key key)
    {
        _key = key;
        RawPublicKey = key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        EncodedPublicKey = EncodePublicKey(RawPublicKey);
        Id = PeerId.FromPublicKey(EncodedPublicKey);
    }

    /// <summary>The peer id of this key.</summary>
    public PeerId Id { get; }

    /// <summary>The 32-byte Ed25519 public key.</summary>
    public byte[] RawPublicKey { get; }

    /// <summary>The protobuf encoding of the public key (what identify and Noise carry).</summary>
    public byte[] EncodedPublicKey { get; }

    /// <summary>A new random key.</summary>
    public static PeerKey Generate() =>
        new(Key.Create(Ed25519, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }));

    /// <summary>The key of a 32-byte seed.</summary>
    public static PeerKey FromSeed(ReadOnlySpan<byte> seed)
    {
        if (seed.Length != 32) throw new ArgumentException("an Ed25519 seed is 32 bytes.", nameof(seed));
        return new PeerKey(Key.Import(Ed25519, seed, KeyBlobFormat.RawPrivateKey,
            new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }));
    }

    /// <summary>The 32-byte seed (to persist the identity).</summary>
    public byte[] ExportSeed() => _key.Export(KeyBlobFormat.RawPrivateKey);

    /// <summary>An Ed25519 signature of <paramref name="data"/>.</summary>
    public byte[] Sign(ReadOnlySpan<byte> data) => Ed25519.Sign(_key, data);

    /// <summary>The protobuf encoding of a raw Ed25519 public key.</summary>
    public static byte[] EncodePublicKey(ReadOnlySpan<byte> rawEd25519) => new ProtoWriter().Varint(1, Ed25519Type).Bytes(2, rawEd25519).ToArray();

    /// <summary>
    /// Verifies <paramref name="signature"/> over <paramref name="data"/> with a public key in its protobuf encoding.
    /// Only Ed25519 keys are accepted (the default of js-libp2p, kubo and go-libp2p).
    /// </summary>
    public static Libp2pError Verify(ReadOnlySpan<byte> encodedPublicKey, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        var error = TryDecodePublicKey(encodedPublicKey, out var raw);
        if (error != Libp2pError.None) return error;
        if (!PublicKey.TryImport(Ed25519, raw, KeyBlobFormat.RawPublicKey, out var key) || key is null) return Libp2pError.UnsupportedKey;
        return Ed25519.Verify(key, data, signature) ? Libp2pError.None : Libp2pError.BadSignature;
    }

    /// <summary>The raw Ed25519 key inside a protobuf-encoded public key.</summary>
    public static Libp2pError TryDecodePublicKey(ReadOnlySpan<byte> encoded, out byte[] raw)
    {
        raw = [];
        ulong? type = null;
        var fields = new ProtoFields(encoded);
        while (fields.Next(out var f))
        {
            if (f.Number == 1 && f.WireType == 0) type = f.Varint;
            else if (f.Number == 2 && f.WireType == 2) raw = f.Bytes.ToArray();
        }

        if (fields.Error != Libp2pError.None) return fields.Error;
        return type == Ed25519Type && raw.Length == 32 ? Libp2pError.None : Libp2pError.UnsupportedKey;
    }

    /// <inheritdoc/>
    public void Dispose() => _key.Dispose();
}
