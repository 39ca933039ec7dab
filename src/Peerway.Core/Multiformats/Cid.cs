namespace Peerway.Core.Multiformats;

/// <summary>
/// A content identifier (CID spec). CIDv0 is a bare sha2-256 multihash (implicitly dag-pb, base58btc text "Qm...");
/// CIDv1 is varint version 1, varint multicodec, multihash (base32 lower text "b..." by default).
/// </summary>
public sealed class Cid : IEquatable<Cid>
{
    /// <summary>multicodec table: raw binary.</summary>
    public const ulong RawCodec = 0x55;

    /// <summary>multicodec table: MerkleDAG protobuf.</summary>
    public const ulong DagPbCodec = 0x70;

    /// <summary>multicodec table: MerkleDAG CBOR.</summary>
    public const ulong DagCborCodec = 0x71;

    /// <summary>CID spec: a CIDv0 is exactly 34 bytes (0x12 0x20 + 32-byte digest), 46 characters "Qm..." in text.</summary>
    public const int V0Length = 34;

    private const int V0TextLength = 46;

    private readonly byte[] _bytes;

    private Cid(int version, ulong codec, Multihash multihash, byte[] bytes)
    {
        Version = version;
        Codec = codec;
        Multihash = multihash;
        _bytes = bytes;
    }

    /// <summary>The CID version: 0 (bare sha2-256 multihash, implied dag-pb) or 1.</summary>
    public int Version { get; }

    /// <summary>The content multicodec (dag-pb for every CIDv0).</summary>
    public ulong Codec { get; }

    /// <summary>The multihash of the content.</summary>
    public Multihash Multihash { get; }

    /// <summary>The binary CID.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>Length of the binary CID.</summary>
    public int Length => _bytes.Length;

    /// <summary>A CIDv0 (dag-pb, sha2-256 only).</summary>
    public static Cid V0(Multihash multihash)
    {
        ArgumentNullException.ThrowIfNull(multihash);
        if (multihash.Code != Multihash.Sha256Code)
        {
            throw new ArgumentException("CIDv0 requires a sha2-256 multihash.", nameof(multihash));
        }

        return new Cid(0, DagPbCodec, multihash, multihash.Bytes.ToArray());
    }

    /// <summary>A CIDv1.</summary>
    public static Cid V1(ulong codec, Multihash multihash)
    {
        ArgumentNullException.ThrowIfNull(multihash);
        var bytes = new byte[1 + Varint.SizeOf(codec) + multihash.Length];
        bytes[0] = 1;
        var n = 1 + Varint.Write(codec, bytes.AsSpan(1));
        multihash.Bytes.CopyTo(bytes.AsSpan(n));
        return new Cid(1, codec, multihash, bytes);
    }

    /// <summary>Reads a binary CID at the start of <paramref name="source"/> (as in CAR sections).</summary>
    public static MultiformatError TryReadPrefix(ReadOnlySpan<byte> source, out Cid? cid, out int consumed)
    {
        cid = null;
        consumed = 0;
        if (source.IsEmpty)
        {
            return MultiformatError.Empty;
        }

        // CID spec, "Decoding Algorithm": 34 bytes starting 0x12 0x20 is a CIDv0.
        if (source.Length >= 2 && source[0] == Multihash.Sha256Code && source[1] == Multihash.Sha256Length)
        {
            var error0 = Multihash.TryReadPrefix(source, out var mh0, out consumed);
            if (error0 != MultiformatError.None)
            {
                return error0;
            }

            cid = new Cid(0, DagPbCodec, mh0!, source[..consumed].ToArray());
            return MultiformatError.None;
        }

        var error = Varint.TryRead(source, out var version, out var versionLength);
        if (error != MultiformatError.None)
        {
            return error;
        }

        if (version == 0)
        {
            return MultiformatError.InvalidCidV0;
        }

        if (version != 1)
        {
            return MultiformatError.UnsupportedCidVersion;
        }

        error = Varint.TryRead(source[versionLength..], out var codec, out var codecLength);
        if (error != MultiformatError.None)
        {
            return error;
        }

        var header = versionLength + codecLength;
        error = Multihash.TryReadPrefix(source[header..], out var mh, out var mhLength);
        if (error != MultiformatError.None)
        {
            return error;
        }

        consumed = header + mhLength;
        cid = new Cid(1, codec, mh!, source[..consumed].ToArray());
        return MultiformatError.None;
    }

    /// <summary>Reads a binary CID occupying all of <paramref name="source"/>.</summary>
    public static MultiformatError TryDecode(ReadOnlySpan<byte> source, out Cid? cid)
    {
        var error = TryReadPrefix(source, out cid, out var consumed);
        if (error == MultiformatError.None && consumed != source.Length)
        {
            cid = null;
            return MultiformatError.TrailingData;
        }

        return error;
    }

    /// <summary>Parses a text CID: "Qm..." (CIDv0, base58btc) or a multibase-prefixed CIDv1.</summary>
    public static MultiformatError TryParse(ReadOnlySpan<char> text, out Cid? cid)
    {
        cid = null;
        if (text.IsEmpty)
        {
            return MultiformatError.Empty;
        }

        if (text.Length > Multibase.MaxEncodedLength)
        {
            return MultiformatError.TooLong;
        }

        byte[] bytes;
        MultiformatError error;
        // CID spec: a 46-character string starting "Qm" is a base58btc CIDv0.
        if (text.Length == V0TextLength && text.StartsWith("Qm", StringComparison.Ordinal))
        {
            error = Multibase.TryDecodeBase58Raw(text, out bytes);
            if (error != MultiformatError.None)
            {
                return error;
            }

            if (bytes.Length != V0Length)
            {
                return MultiformatError.InvalidCidV0;
            }

            return TryDecode(bytes, out cid);
        }

        error = Multibase.TryDecode(text, out bytes);
        if (error != MultiformatError.None)
        {
            return error;
        }

        error = TryDecode(bytes, out var decoded);
        if (error != MultiformatError.None)
        {
            return error;
        }

        // CID spec: a CIDv0 has no multibase prefix.
        if (decoded!.Version == 0)
        {
            return MultiformatError.InvalidCidV0;
        }

        cid = decoded;
        return MultiformatError.None;
    }

    /// <summary>Parses a text CID or throws <see cref="FormatException"/> (for trusted input such as tests).</summary>
    public static Cid Parse(string text)
    {
        var error = TryParse(text, out var cid);
        return error == MultiformatError.None ? cid! : throw new FormatException($"invalid CID '{text}': {error}");
    }

    /// <summary>The same content as a CIDv1 (a CIDv0 becomes dag-pb CIDv1).</summary>
    public Cid ToV1() => Version == 1 ? this : V1(Codec, Multihash);

    /// <summary>The binary CID as a new array.</summary>
    public byte[] ToArray() => (byte[])_bytes.Clone();

    /// <summary>CIDv0 as base58btc ("Qm..."), CIDv1 as multibase base32 lower ("b...").</summary>
    public override string ToString() =>
        Version == 0 ? Multibase.EncodeBase58Raw(_bytes) : Multibase.EncodeBase32(_bytes);

    /// <summary>True when <paramref name="other"/> has the same binary form (a CIDv0 never equals its CIDv1).</summary>
    public bool Equals(Cid? other) => other is not null && _bytes.AsSpan().SequenceEqual(other._bytes);

    /// <summary>True when <paramref name="obj"/> is a <see cref="Cid"/> with the same binary form.</summary>
    public override bool Equals(object? obj) => Equals(obj as Cid);

    /// <summary>A hash of the binary form, consistent with <see cref="Equals(Cid?)"/>.</summary>
    public override int GetHashCode()
    {
        var hash = default(HashCode);
        hash.AddBytes(_bytes);
        return hash.ToHashCode();
    }
}
