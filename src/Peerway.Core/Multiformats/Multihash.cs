using System.Security.Cryptography;

namespace Peerway.Core.Multiformats;

/// <summary>
/// A self-describing hash (multihash spec): varint function code, varint digest length, digest. Only sha2-256 (0x12,
/// 32-byte digest) and identity (0x00, digest = the data itself, bounded) are accepted.
/// </summary>
public sealed class Multihash : IEquatable<Multihash>
{
    /// <summary>multicodec table: identity.</summary>
    public const ulong IdentityCode = 0x00;

    /// <summary>multicodec table: sha2-256.</summary>
    public const ulong Sha256Code = 0x12;

    /// <summary>A sha2-256 digest is 32 bytes.</summary>
    public const int Sha256Length = 32;

    /// <summary>Bound on identity digests (go-verifcid and kubo refuse identity CIDs with digests over 128 bytes).</summary>
    public const int MaxIdentityLength = 128;

    private readonly byte[] _bytes;
    private readonly int _digestOffset;

    private Multihash(byte[] bytes, ulong code, int digestOffset)
    {
        _bytes = bytes;
        Code = code;
        _digestOffset = digestOffset;
    }

    /// <summary>The hash function code.</summary>
    public ulong Code { get; }

    /// <summary>The digest bytes.</summary>
    public ReadOnlySpan<byte> Digest => _bytes.AsSpan(_digestOffset);

    /// <summary>The encoded multihash (code, length, digest).</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>Length of the encoded multihash.</summary>
    public int Length => _bytes.Length;

    /// <summary>The sha2-256 multihash of <paramref name="data"/>.</summary>
    public static Multihash Sha256(ReadOnlySpan<byte> data)
    {
        var bytes = new byte[2 + Sha256Length];
        bytes[0] = (byte)Sha256Code;
        bytes[1] = Sha256Length;
        SHA256.HashData(data, bytes.AsSpan(2));
        return new Multihash(bytes, Sha256Code, 2);
    }

    /// <summary>The identity multihash of <paramref name="data"/> (at most <see cref="MaxIdentityLength"/> bytes).</summary>
    public static Multihash Identity(ReadOnlySpan<byte> data)
    {
        if (data.Length > MaxIdentityLength)
        {
            throw new ArgumentOutOfRangeException(nameof(data), $"identity digests are limited to {MaxIdentityLength} bytes.");
        }

        var lengthSize = Varint.SizeOf((ulong)data.Length);
        var bytes = new byte[1 + lengthSize + data.Length];
        bytes[0] = (byte)IdentityCode;
        Varint.Write((ulong)data.Length, bytes.AsSpan(1));
        data.CopyTo(bytes.AsSpan(1 + lengthSize));
        return new Multihash(bytes, IdentityCode, 1 + lengthSize);
    }

    /// <summary>Builds a sha2-256 multihash from an already computed 32-byte digest.</summary>
    public static Multihash FromSha256Digest(ReadOnlySpan<byte> digest)
    {
        if (digest.Length != Sha256Length)
        {
            throw new ArgumentException("a sha2-256 digest is 32 bytes.", nameof(digest));
        }

        var bytes = new byte[2 + Sha256Length];
        bytes[0] = (byte)Sha256Code;
        bytes[1] = Sha256Length;
        digest.CopyTo(bytes.AsSpan(2));
        return new Multihash(bytes, Sha256Code, 2);
    }

    /// <summary>Reads a multihash at the start of <paramref name="source"/>; <paramref name="consumed"/> is its length.</summary>
    public static MultiformatError TryReadPrefix(ReadOnlySpan<byte> source, out Multihash? multihash, out int consumed)
    {
        multihash = null;
        consumed = 0;
        if (source.IsEmpty)
        {
            return MultiformatError.Empty;
        }

        var error = Varint.TryRead(source, out var code, out var codeLength);
        if (error != MultiformatError.None)
        {
            return error;
        }

        error = Varint.TryRead(source[codeLength..], out var digestLength, out var lengthLength);
        if (error != MultiformatError.None)
        {
            return error;
        }

        switch (code)
        {
            case Sha256Code when digestLength != Sha256Length:
                return MultiformatError.DigestLengthMismatch;
            case Sha256Code:
                break;
            case IdentityCode when digestLength > MaxIdentityLength:
                return MultiformatError.TooLong;
            case IdentityCode:
                break;
            default:
                return MultiformatError.UnsupportedHashFunction;
        }

        var header = codeLength + lengthLength;
        if ((ulong)(source.Length - header) < digestLength)
        {
            return MultiformatError.Truncated;
        }

        consumed = header + (int)digestLength;
        multihash = new Multihash(source[..consumed].ToArray(), code, header);
        return MultiformatError.None;
    }

    /// <summary>Reads a multihash occupying all of <paramref name="source"/>.</summary>
    public static MultiformatError TryDecode(ReadOnlySpan<byte> source, out Multihash? multihash)
    {
        var error = TryReadPrefix(source, out multihash, out var consumed);
        if (error == MultiformatError.None && consumed != source.Length)
        {
            multihash = null;
            return MultiformatError.TrailingData;
        }

        return error;
    }

    /// <summary>True when <paramref name="data"/> hashes to this multihash.</summary>
    public bool Matches(ReadOnlySpan<byte> data)
    {
        if (Code == IdentityCode)
        {
            return data.SequenceEqual(Digest);
        }

        Span<byte> digest = stackalloc byte[Sha256Length];
        SHA256.HashData(data, digest);
        return digest.SequenceEqual(Digest);
    }

    /// <summary>True when <paramref name="other"/> has the same binary form (code, length and digest).</summary>
    public bool Equals(Multihash? other) => other is not null && _bytes.AsSpan().SequenceEqual(other._bytes);

    /// <summary>True when <paramref name="obj"/> is a <see cref="Multihash"/> with the same binary form.</summary>
    public override bool Equals(object? obj) => Equals(obj as Multihash);

    /// <summary>A hash of the binary form, consistent with <see cref="Equals(Multihash?)"/>.</summary>
    public override int GetHashCode()
    {
        var hash = default(HashCode);
        hash.AddBytes(_bytes);
        return hash.ToHashCode();
    }

    /// <summary>The binary form (code, length, digest) as lower-case hex.</summary>
    public override string ToString() => Convert.ToHexStringLower(_bytes);
}
