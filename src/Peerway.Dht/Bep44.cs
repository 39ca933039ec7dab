using System.Globalization;
using System.Security.Cryptography;
using NSec.Cryptography;
using Peerway.Core;

namespace Peerway.Dht;

/// <summary>
/// An item stored in the DHT (BEP 44). <see cref="Value"/> is the bencoded value (any bencoded type, at most
/// <see cref="Bep44.MaxValueLength"/> bytes). A mutable item also has the ed25519 <see cref="PublicKey"/>, an optional
/// <see cref="Salt"/>, a <see cref="Sequence"/> number and the <see cref="Signature"/> over
/// <see cref="Bep44.SignedBytes"/>; an immutable one has none of these and its target is the SHA-1 of the value.
/// </summary>
public sealed record DhtItem(NodeId Target, byte[] Value, byte[]? PublicKey, byte[] Salt, long Sequence, byte[]? Signature)
{
    /// <summary>True for a mutable (signed) item.</summary>
    public bool IsMutable => PublicKey is not null;

    /// <summary>An immutable item for a bencoded <paramref name="value"/>.</summary>
    public static DhtItem Immutable(ReadOnlySpan<byte> value) => new(Bep44.ImmutableTarget(value), value.ToArray(), null, [], 0, null);

    /// <summary>A mutable item signed with <paramref name="key"/>.</summary>
    public static DhtItem Mutable(DhtSigningKey key, ReadOnlySpan<byte> salt, long sequence, ReadOnlySpan<byte> value)
    {
        ArgumentNullException.ThrowIfNull(key);
        var signature = key.Sign(Bep44.SignedBytes(salt, sequence, value));
        return new DhtItem(Bep44.MutableTarget(key.PublicKey, salt), value.ToArray(), key.PublicKey, salt.ToArray(), sequence, signature);
    }
}

/// <summary>An ed25519 key pair for BEP 44 mutable items (NSec over libsodium). Its 32-byte seed is the private part.</summary>
public sealed class DhtSigningKey : IDisposable
{
    private static readonly SignatureAlgorithm Algorithm = SignatureAlgorithm.Ed25519;
    private readonly Key _key;

    private DhtSigningKey(Key key)
    {
        _key = key;
        PublicKey = key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
    }

    /// <summary>The 32-byte public key ("k").</summary>
    public byte[] PublicKey { get; }

    /// <summary>A new random key.</summary>
    public static DhtSigningKey Generate() =>
        new(Key.Create(Algorithm, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }));

    /// <summary>The key whose 32-byte private seed is <paramref name="seed"/> (RFC 8032 §5.1.5).</summary>
    public static DhtSigningKey FromSeed(ReadOnlySpan<byte> seed)
    {
        if (seed.Length != 32) throw new ArgumentException("An ed25519 seed is 32 bytes.", nameof(seed));
        return new DhtSigningKey(Key.Import(Algorithm, seed, KeyBlobFormat.RawPrivateKey,
            new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }));
    }

    /// <summary>The 32-byte private seed (keep it secret).</summary>
    public byte[] ExportSeed() => _key.Export(KeyBlobFormat.RawPrivateKey);

    /// <summary>The 64-byte ed25519 signature of <paramref name="data"/>.</summary>
    public byte[] Sign(ReadOnlySpan<byte> data) => Algorithm.Sign(_key, data);

    /// <summary>Frees the private key.</summary>
    public void Dispose() => _key.Dispose();
}

/// <summary>BEP 44's targets, signed bytes, limits and verification.</summary>
public static class Bep44
{
    /// <summary>BEP 44: "v" is at most 1,000 bytes bencoded.</summary>
    public const int MaxValueLength = 1000;

    /// <summary>BEP 44: "salt" is at most 64 bytes.</summary>
    public const int MaxSaltLength = 64;

    /// <summary>ed25519 public key length.</summary>
    public const int PublicKeyLength = 32;

    /// <summary>ed25519 signature length.</summary>
    public const int SignatureLength = 64;

    /// <summary>BEP 44: the target of an immutable item is the SHA-1 of its bencoded value.</summary>
    public static NodeId ImmutableTarget(ReadOnlySpan<byte> value)
    {
        Span<byte> hash = stackalloc byte[NodeId.Length];
        SHA1.HashData(value, hash);
        return new NodeId(hash);
    }

    /// <summary>BEP 44: the target of a mutable item is the SHA-1 of the public key followed by the salt.</summary>
    public static NodeId MutableTarget(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> salt)
    {
        Span<byte> buffer = stackalloc byte[PublicKeyLength + MaxSaltLength];
        if (publicKey.Length != PublicKeyLength) throw new ArgumentException("An ed25519 public key is 32 bytes.", nameof(publicKey));
        if (salt.Length > MaxSaltLength) throw new ArgumentException("A BEP 44 salt is at most 64 bytes.", nameof(salt));
        publicKey.CopyTo(buffer);
        salt.CopyTo(buffer[PublicKeyLength..]);
        Span<byte> hash = stackalloc byte[NodeId.Length];
        SHA1.HashData(buffer[..(PublicKeyLength + salt.Length)], hash);
        return new NodeId(hash);
    }

    /// <summary>
    /// BEP 44: the bytes a mutable item's signature covers — bencoded key/value pairs without the enclosing dictionary:
    /// <c>4:salt&lt;len&gt;:&lt;salt&gt;</c> (only with a salt), <c>3:seqi&lt;seq&gt;e</c>, <c>1:v</c> and the bencoded
    /// value, e.g. <c>4:salt6:foobar3:seqi1e1:v12:Hello World!</c>.
    /// </summary>
    public static byte[] SignedBytes(ReadOnlySpan<byte> salt, long sequence, ReadOnlySpan<byte> value)
    {
        var saltPrefix = salt.IsEmpty ? string.Empty : "4:salt" + salt.Length.ToString(CultureInfo.InvariantCulture) + ":";
        var seq = "3:seqi" + sequence.ToString(CultureInfo.InvariantCulture) + "e1:v";
        var bytes = new byte[saltPrefix.Length + salt.Length + seq.Length + value.Length];
        var n = System.Text.Encoding.ASCII.GetBytes(saltPrefix, bytes);
        salt.CopyTo(bytes.AsSpan(n));
        n += salt.Length;
        n += System.Text.Encoding.ASCII.GetBytes(seq, bytes.AsSpan(n));
        value.CopyTo(bytes.AsSpan(n));
        return bytes;
    }

    /// <summary>True when <paramref name="signature"/> is <paramref name="publicKey"/>'s ed25519 signature of the
    /// item's <see cref="SignedBytes"/>. Never throws on malformed keys or signatures (false).</summary>
    public static bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> signature, ReadOnlySpan<byte> salt, long sequence, ReadOnlySpan<byte> value)
    {
        if (publicKey.Length != PublicKeyLength || signature.Length != SignatureLength || salt.Length > MaxSaltLength) return false;
        if (!PublicKey.TryImport(SignatureAlgorithm.Ed25519, publicKey, KeyBlobFormat.RawPublicKey, out var key) || key is null) return false;
        return SignatureAlgorithm.Ed25519.Verify(key, SignedBytes(salt, sequence, value), signature);
    }

    /// <summary>True when <paramref name="item"/> is well formed: value within the limit, the target matching its content
    /// and, for a mutable item, a signature that verifies.</summary>
    public static bool IsValid(DhtItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        if (item.Value.Length is 0 or > MaxValueLength) return false;
        if (!item.IsMutable) return ImmutableTarget(item.Value) == item.Target;
        return item.Salt.Length <= MaxSaltLength && item.PublicKey!.Length == PublicKeyLength
            && MutableTarget(item.PublicKey, item.Salt) == item.Target
            && Verify(item.PublicKey, item.Signature, item.Salt, item.Sequence, item.Value);
    }
}
