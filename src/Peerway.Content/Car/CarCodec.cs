using System.Text;
using Peerway.Core.Multiformats;

namespace Peerway.Content.Car;

/// <summary>A CARv1 header: <c>{ roots: [&amp;Any], version: 1 }</c> in dag-cbor.</summary>
public sealed record CarHeader(IReadOnlyList<Cid> Roots, ulong Version);

/// <summary>
/// CARv1 (IPLD CAR spec): a varint-prefixed dag-cbor header, then sections of varint(length) | CID | block. Pure
/// functions over spans; every length is bounded.
/// </summary>
public static class CarCodec
{
    /// <summary>Bound on the header's dag-cbor bytes.</summary>
    public const int MaxHeaderLength = 64 * 1024;

    /// <summary>Bound on roots in a header.</summary>
    public const int MaxRoots = 1024;

    /// <summary>Bound on one section (CID + block): twice the 2 MiB bitswap block limit.</summary>
    public const int MaxSectionLength = 4 * 1024 * 1024;

    // dag-cbor spec: CIDs are CBOR tag 42 around a byte string holding 0x00 (the identity multibase) + binary CID.
    private const ulong CidTag = 42;

    /// <summary>Encodes varint(length) + dag-cbor header. dag-cbor sorts map keys length-first: "roots" before "version".</summary>
    public static byte[] EncodeHeader(IReadOnlyList<Cid> roots)
    {
        ArgumentNullException.ThrowIfNull(roots);
        var cbor = new List<byte>();
        cbor.Add(0xA2); // map(2)
        WriteText(cbor, "roots");
        WriteHead(cbor, 4, (ulong)roots.Count);
        foreach (var root in roots)
        {
            WriteHead(cbor, 6, CidTag);
            WriteHead(cbor, 2, (ulong)root.Length + 1);
            cbor.Add(0x00);
            cbor.AddRange(root.Bytes.ToArray());
        }

        WriteText(cbor, "version");
        cbor.Add(0x01);
        var result = new byte[Varint.SizeOf((ulong)cbor.Count) + cbor.Count];
        var n = Varint.Write((ulong)cbor.Count, result);
        cbor.CopyTo(result, n);
        return result;
    }

    /// <summary>Decodes the header at the start of a CAR; <see cref="ContentError.Truncated"/> when more bytes are needed.</summary>
    public static ContentError TryDecodeHeader(ReadOnlySpan<byte> source, out CarHeader? header, out int consumed)
    {
        header = null;
        consumed = 0;
        var varintError = Varint.TryRead(source, out var length, out var prefix);
        if (varintError == MultiformatError.Truncated)
        {
            return ContentError.Truncated;
        }

        if (varintError != MultiformatError.None)
        {
            return ContentError.InvalidCarHeader;
        }

        if (length is 0 or > MaxHeaderLength)
        {
            return length == 0 ? ContentError.InvalidCarHeader : ContentError.TooLarge;
        }

        if ((ulong)(source.Length - prefix) < length)
        {
            return ContentError.Truncated;
        }

        var error = TryDecodeHeaderCbor(source.Slice(prefix, (int)length), out header);
        if (error == ContentError.None)
        {
            consumed = prefix + (int)length;
        }

        return error;
    }

    /// <summary>Decodes the header's dag-cbor body (after the length varint).</summary>
    public static ContentError TryDecodeHeaderCbor(ReadOnlySpan<byte> cbor, out CarHeader? header)
    {
        header = null;
        var pos = 0;
        if (!TryReadHead(cbor, ref pos, out var major, out var count) || major != 5 || count > 16)
        {
            return ContentError.InvalidCarHeader;
        }

        List<Cid>? roots = null;
        ulong? version = null;
        for (var i = 0UL; i < count; i++)
        {
            if (!TryReadText(cbor, ref pos, out var key))
            {
                return ContentError.InvalidCarHeader;
            }

            if (key == "version")
            {
                if (version is not null || !TryReadHead(cbor, ref pos, out var m, out var v) || m != 0)
                {
                    return ContentError.InvalidCarHeader;
                }

                version = v;
            }
            else if (key == "roots")
            {
                if (roots is not null || !TryReadHead(cbor, ref pos, out var m, out var n) || m != 4)
                {
                    return ContentError.InvalidCarHeader;
                }

                if (n > MaxRoots)
                {
                    return ContentError.TooLarge;
                }

                roots = new List<Cid>((int)n);
                for (var r = 0UL; r < n; r++)
                {
                    if (!TryReadHead(cbor, ref pos, out var tm, out var tag) || tm != 6 || tag != CidTag
                        || !TryReadHead(cbor, ref pos, out var bm, out var blen) || bm != 2
                        || blen < 2 || (ulong)(cbor.Length - pos) < blen || cbor[pos] != 0x00)
                    {
                        return ContentError.InvalidCarHeader;
                    }

                    if (Cid.TryDecode(cbor.Slice(pos + 1, (int)blen - 1), out var cid) != MultiformatError.None)
                    {
                        return ContentError.InvalidCid;
                    }

                    pos += (int)blen;
                    roots.Add(cid!);
                }
            }
            else
            {
                // CAR spec: the v1 header has exactly these two keys.
                return ContentError.InvalidCarHeader;
            }
        }

        if (pos != cbor.Length || version is null)
        {
            return ContentError.InvalidCarHeader;
        }

        if (version != 1)
        {
            return ContentError.UnsupportedCarVersion;
        }

        if (roots is null)
        {
            return ContentError.InvalidCarHeader;
        }

        header = new CarHeader(roots, version.Value);
        return ContentError.None;
    }

    /// <summary>Writes varint(|CID| + |block|) | CID into <paramref name="destination"/>; the block follows.</summary>
    public static int WriteSectionHeader(Cid cid, int blockLength, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(cid);
        var n = Varint.Write((ulong)(cid.Length + blockLength), destination);
        cid.Bytes.CopyTo(destination[n..]);
        return n + cid.Length;
    }

    /// <summary>
    /// Decodes a section's length prefix at the start of <paramref name="source"/>: <paramref name="length"/> is the
    /// CID + block length that follows the <paramref name="prefix"/> bytes.
    /// </summary>
    public static ContentError TryReadSectionLength(ReadOnlySpan<byte> source, out int length, out int prefix)
    {
        length = 0;
        var error = Varint.TryRead(source, out var value, out prefix);
        if (error == MultiformatError.Truncated)
        {
            return ContentError.Truncated;
        }

        if (error != MultiformatError.None)
        {
            return ContentError.VarintOverflow;
        }

        if (value == 0 || value > MaxSectionLength)
        {
            return value == 0 ? ContentError.InvalidCid : ContentError.TooLarge;
        }

        length = (int)value;
        return ContentError.None;
    }

    /// <summary>Splits a section body (after the length prefix) into CID and block, verifying the block's hash.</summary>
    public static ContentError TryDecodeSectionBody(ReadOnlySpan<byte> body, out Cid? cid, out int blockOffset)
    {
        blockOffset = 0;
        if (Cid.TryReadPrefix(body, out cid, out var cidLength) != MultiformatError.None)
        {
            cid = null;
            return ContentError.InvalidCid;
        }

        if (!cid!.Multihash.Matches(body[cidLength..]))
        {
            return ContentError.HashMismatch;
        }

        blockOffset = cidLength;
        return ContentError.None;
    }

    private static void WriteText(List<byte> cbor, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        WriteHead(cbor, 3, (ulong)bytes.Length);
        cbor.AddRange(bytes);
    }

    // RFC 8949 §3: initial byte = major type << 5 | additional info; minimal length encoding (dag-cbor requires it).
    private static void WriteHead(List<byte> cbor, int major, ulong value)
    {
        var m = (byte)(major << 5);
        if (value < 24)
        {
            cbor.Add((byte)(m | (byte)value));
        }
        else if (value <= byte.MaxValue)
        {
            cbor.Add((byte)(m | 24));
            cbor.Add((byte)value);
        }
        else if (value <= ushort.MaxValue)
        {
            cbor.Add((byte)(m | 25));
            cbor.Add((byte)(value >> 8));
            cbor.Add((byte)value);
        }
        else
        {
            cbor.Add((byte)(m | 26));
            cbor.Add((byte)(value >> 24));
            cbor.Add((byte)(value >> 16));
            cbor.Add((byte)(value >> 8));
            cbor.Add((byte)value);
        }
    }

    private static bool TryReadHead(ReadOnlySpan<byte> cbor, ref int pos, out int major, out ulong value)
    {
        major = 0;
        value = 0;
        if (pos >= cbor.Length)
        {
            return false;
        }

        var initial = cbor[pos++];
        major = initial >> 5;
        var info = initial & 0x1F;
        if (info < 24)
        {
            value = (ulong)info;
            return true;
        }

        var size = info switch { 24 => 1, 25 => 2, 26 => 4, 27 => 8, _ => 0 };
        // RFC 8949: 28-30 are reserved and 31 (indefinite length) is not allowed in dag-cbor.
        if (size == 0 || cbor.Length - pos < size)
        {
            return false;
        }

        for (var i = 0; i < size; i++)
        {
            value = (value << 8) | cbor[pos++];
        }

        return true;
    }

    private static bool TryReadText(ReadOnlySpan<byte> cbor, ref int pos, out string text)
    {
        text = string.Empty;
        if (!TryReadHead(cbor, ref pos, out var major, out var length) || major != 3 || length > 64
            || (ulong)(cbor.Length - pos) < length)
        {
            return false;
        }

        text = Encoding.UTF8.GetString(cbor.Slice(pos, (int)length));
        pos += (int)length;
        return true;
    }
}
