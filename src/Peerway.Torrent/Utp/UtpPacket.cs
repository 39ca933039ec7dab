using System.Buffers.Binary;

namespace Peerway.Torrent.Utp;

/// <summary>Why a datagram is not a uTP packet (a value, never an exception: the input comes from the network).</summary>
internal enum UtpDecodeError
{
    None,

    /// <summary>Shorter than the 20-byte header.</summary>
    TooShort,

    /// <summary>BEP 29: "The current version is 1"; anything else is not ours (a DHT message starts with 'd').</summary>
    BadVersion,

    /// <summary>A type above ST_SYN (4).</summary>
    BadType,

    /// <summary>An extension header or its body runs past the end of the datagram.</summary>
    TruncatedExtension,

    /// <summary>More than <see cref="UtpPacket.MaxExtensions"/> extensions chained.</summary>
    TooManyExtensions,

    /// <summary>A selective-ACK bitmask longer than <see cref="UtpPacket.MaxSackBytes"/>.</summary>
    SackTooLong,
}

/// <summary>
/// A decoded uTP packet: the header, the selective ACK bitmask if present, and the payload (a slice of the datagram).
/// BEP 29 "Extension": after the header, each extension is [next extension type][length][length bytes]; type 1 is the
/// selective ACK, whose bitmask (a multiple of 4 bytes) marks, bit i (least significant first in each byte), the
/// packet ack_nr + 2 + i as received. Unknown extensions are skipped.
/// </summary>
internal readonly ref struct UtpPacket
{
    /// <summary>Bound on the extension chain (BEP 29 defines one; libtorrent sends at most two).</summary>
    public const int MaxExtensions = 8;

    /// <summary>Bound on a SACK bitmask: 1,024 packets past ack_nr is beyond any reorder buffer we keep.</summary>
    public const int MaxSackBytes = 128;

    public const byte SackExtension = 1;

    public UtpPacket(UtpHeader header, ReadOnlySpan<byte> sack, ReadOnlySpan<byte> payload)
    {
        Header = header;
        Sack = sack;
        Payload = payload;
    }

    public UtpHeader Header { get; }

    /// <summary>The selective ACK bitmask; empty when the packet has none.</summary>
    public ReadOnlySpan<byte> Sack { get; }

    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>True when bit <paramref name="index"/> of the SACK bitmask (packet ack_nr + 2 + index) is set.</summary>
    public static bool SackBit(ReadOnlySpan<byte> sack, int index) => (sack[index >> 3] & (1 << (index & 7))) != 0;

    public static UtpDecodeError TryDecode(ReadOnlySpan<byte> datagram, out UtpPacket packet)
    {
        packet = default;
        if (datagram.Length < UtpHeader.Length) return UtpDecodeError.TooShort;
        if ((datagram[0] & 0x0F) != UtpHeader.Version) return UtpDecodeError.BadVersion;
        if (datagram[0] >> 4 > (int)UtpPacketType.Syn) return UtpDecodeError.BadType;
        UtpHeader.TryRead(datagram, out var header);
        var next = header.Extension;
        var offset = UtpHeader.Length;
        var sack = ReadOnlySpan<byte>.Empty;
        for (var count = 0; next != 0; count++)
        {
            if (count == MaxExtensions) return UtpDecodeError.TooManyExtensions;
            if (datagram.Length - offset < 2) return UtpDecodeError.TruncatedExtension;
            var type = next;
            next = datagram[offset];
            int length = datagram[offset + 1];
            offset += 2;
            if (datagram.Length - offset < length) return UtpDecodeError.TruncatedExtension;
            if (type == SackExtension)
            {
                if (length > MaxSackBytes) return UtpDecodeError.SackTooLong;
                sack = datagram.Slice(offset, length);
            }

            offset += length;
        }

        packet = new UtpPacket(header, sack, datagram[offset..]);
        return UtpDecodeError.None;
    }

    /// <summary>Writes header, optional SACK extension and payload; returns the bytes written.</summary>
    public static int Encode(Span<byte> destination, UtpHeader header, ReadOnlySpan<byte> sack, ReadOnlySpan<byte> payload)
    {
        header = header with { Extension = sack.IsEmpty ? (byte)0 : SackExtension };
        header.Write(destination);
        var offset = UtpHeader.Length;
        if (!sack.IsEmpty)
        {
            destination[offset++] = 0;
            destination[offset++] = (byte)sack.Length;
            sack.CopyTo(destination[offset..]);
            offset += sack.Length;
        }

        payload.CopyTo(destination[offset..]);
        return offset + payload.Length;
    }

    /// <summary>
    /// True when a datagram on a shared UDP port is uTP (version 1, a known type, a 20-byte header) and not a DHT or
    /// UDP-tracker message: as libtorrent tells them apart, a bencoded KRPC message starts with 'd' (0x64: version 4),
    /// so the low nibble 1 with a type ≤ 4 is uTP.
    /// </summary>
    public static bool LooksLikeUtp(ReadOnlySpan<byte> datagram) =>
        datagram.Length >= UtpHeader.Length && (datagram[0] & 0x0F) == UtpHeader.Version && datagram[0] >> 4 <= (int)UtpPacketType.Syn;

    public static ushort ReadConnectionId(ReadOnlySpan<byte> datagram) => BinaryPrimitives.ReadUInt16BigEndian(datagram[2..]);
}

/// <summary>Sequence-number arithmetic modulo 2^16 (BEP 29: seq_nr and ack_nr wrap).</summary>
internal static class UtpSeq
{
    /// <summary>True when <paramref name="a"/> comes before <paramref name="b"/> (less than half the space apart).</summary>
    public static bool Less(ushort a, ushort b) => a != b && (ushort)(b - a) < 0x8000;

    public static bool LessOrEqual(ushort a, ushort b) => a == b || Less(a, b);
}
