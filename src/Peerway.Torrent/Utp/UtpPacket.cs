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

    /// <summary>
    /// Peerway's own extension, between Peerway peers only: libtorrent (which handles types 1 and 3) and libutp (1 and
    /// 2) skip an extension type they do not know. Its body is <see cref="PeerwayOptionLength"/> bytes: a
    /// <see cref="UtpPeerwayOption"/> kind and a big-endian 16-bit value (a payload size).
    /// </summary>
    public const byte PeerwayExtension = 0x50;

    public const int PeerwayOptionLength = 3;

    /// <summary>
    /// libutp's "extension bits" (8 bytes, sent in SYNs by µTorrent; libtorrent skips it). libutp takes a packet whose
    /// first extension type is 3 or more for the old version-0 header (UTP_IsV1: <c>pf->ext &lt; 3</c>), so the Peerway
    /// extension is never first: a SACK or, without one, eight zero extension bits go before it.
    /// </summary>
    public const byte ExtensionBits = 2;

    private const int ExtensionBitsLength = 8;

    /// <summary>Bytes the Peerway extension adds to a packet without a SACK (extension bits, then the option).</summary>
    public const int PeerwayOverhead = 2 + ExtensionBitsLength + 2 + PeerwayOptionLength;

    public UtpPacket(UtpHeader header, ReadOnlySpan<byte> sack, ReadOnlySpan<byte> payload, UtpPeerwayOption option = UtpPeerwayOption.None,
        ushort optionValue = 0)
    {
        Header = header;
        Sack = sack;
        Payload = payload;
        Option = option;
        OptionValue = optionValue;
    }

    public UtpHeader Header { get; }

    /// <summary>The selective ACK bitmask; empty when the packet has none.</summary>
    public ReadOnlySpan<byte> Sack { get; }

    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>The Peerway extension's kind; <see cref="UtpPeerwayOption.None"/> when absent or malformed (ignored).</summary>
    public UtpPeerwayOption Option { get; }

    public ushort OptionValue { get; }

    /// <summary>Bytes of the whole datagram (a reply to an unauthenticated packet is never larger).</summary>
    public int DatagramLength { get; init; }

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
        var option = UtpPeerwayOption.None;
        ushort optionValue = 0;
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
            else if (type == PeerwayExtension && length == PeerwayOptionLength && datagram[offset] is >= 1 and <= (byte)UtpPeerwayOption.ProbeAck)
            {
                option = (UtpPeerwayOption)datagram[offset];
                optionValue = BinaryPrimitives.ReadUInt16BigEndian(datagram[(offset + 1)..]);
            }

            offset += length;
        }

        packet = new UtpPacket(header, sack, datagram[offset..], option, optionValue) { DatagramLength = datagram.Length };
        return UtpDecodeError.None;
    }

    /// <summary>Writes header, optional SACK extension and payload; returns the bytes written.</summary>
    public static int Encode(Span<byte> destination, UtpHeader header, ReadOnlySpan<byte> sack, ReadOnlySpan<byte> payload) =>
        Encode(destination, header, sack, UtpPeerwayOption.None, 0, payload);

    /// <summary>Writes header, optional SACK extension, optional Peerway extension (after the SACK in the chain) and
    /// payload; returns the bytes written.</summary>
    public static int Encode(Span<byte> destination, UtpHeader header, ReadOnlySpan<byte> sack, UtpPeerwayOption option, ushort optionValue,
        ReadOnlySpan<byte> payload)
    {
        var withOption = option != UtpPeerwayOption.None;
        header = header with { Extension = !sack.IsEmpty ? SackExtension : withOption ? ExtensionBits : (byte)0 };
        header.Write(destination);
        var offset = UtpHeader.Length;
        if (!sack.IsEmpty)
        {
            destination[offset++] = withOption ? PeerwayExtension : (byte)0;
            destination[offset++] = (byte)sack.Length;
            sack.CopyTo(destination[offset..]);
            offset += sack.Length;
        }
        else if (withOption)
        {
            destination[offset++] = PeerwayExtension;
            destination[offset++] = ExtensionBitsLength;
            destination.Slice(offset, ExtensionBitsLength).Clear();
            offset += ExtensionBitsLength;
        }

        if (withOption)
        {
            destination[offset++] = 0;
            destination[offset++] = PeerwayOptionLength;
            destination[offset] = (byte)option;
            BinaryPrimitives.WriteUInt16BigEndian(destination[(offset + 1)..], optionValue);
            offset += PeerwayOptionLength;
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

/// <summary>What the Peerway extension (<see cref="UtpPacket.PeerwayExtension"/>) says.</summary>
internal enum UtpPeerwayOption : byte
{
    None = 0,

    /// <summary>In ST_SYN and the ST_STATE answering it: the sender takes packets with payloads up to the value (beyond
    /// the 1,472-byte datagrams libtorrent reads); each side then probes the path up to the smaller of the two.</summary>
    LargePackets = 1,

    /// <summary>An ST_STATE padded to a probed size (RFC 8899 packetization-layer path MTU discovery: a probe carries no
    /// data, so its loss is no congestion signal and loses nothing); the value is the data payload it stands for.</summary>
    Probe = 2,

    /// <summary>The ST_STATE answering a <see cref="Probe"/>: the value is the probed payload, which the path carried.</summary>
    ProbeAck = 3,
}

/// <summary>Sequence-number arithmetic modulo 2^16 (BEP 29: seq_nr and ack_nr wrap).</summary>
internal static class UtpSeq
{
    /// <summary>True when <paramref name="a"/> comes before <paramref name="b"/> (less than half the space apart).</summary>
    public static bool Less(ushort a, ushort b) => a != b && (ushort)(b - a) < 0x8000;

    public static bool LessOrEqual(ushort a, ushort b) => a == b || Less(a, b);
}
