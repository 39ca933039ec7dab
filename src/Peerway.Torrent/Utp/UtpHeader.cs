using System.Buffers.Binary;

namespace Peerway.Torrent.Utp;

/// <summary>BEP 29 packet types: "ST_DATA = 0, ST_FIN = 1, ST_STATE = 2, ST_RESET = 3, ST_SYN = 4".</summary>
internal enum UtpPacketType : byte
{
    Data = 0,
    Fin = 1,
    State = 2,
    Reset = 3,
    Syn = 4,
}

/// <summary>
/// The 20-byte uTP header (BEP 29, "Header format"): type (4 bits) and version (4 bits, 1), extension, connection_id,
/// timestamp_microseconds, timestamp_difference_microseconds, wnd_size, seq_nr, ack_nr; all big-endian. Extensions
/// that follow are not parsed here.
/// </summary>
internal readonly record struct UtpHeader(
    UtpPacketType Type,
    byte Extension,
    ushort ConnectionId,
    uint TimestampMicroseconds,
    uint TimestampDifferenceMicroseconds,
    uint WindowSize,
    ushort SequenceNumber,
    ushort AckNumber)
{
    public const int Length = 20;

    /// <summary>BEP 29: "The current version is 1".</summary>
    public const byte Version = 1;

    /// <summary>False for anything shorter than a header, of another version, or of an unknown type.</summary>
    public static bool TryRead(ReadOnlySpan<byte> datagram, out UtpHeader header)
    {
        header = default;
        if (datagram.Length < Length) return false;
        var type = datagram[0] >> 4;
        if ((datagram[0] & 0x0F) != Version || type > (int)UtpPacketType.Syn) return false;
        header = new UtpHeader(
            (UtpPacketType)type,
            datagram[1],
            BinaryPrimitives.ReadUInt16BigEndian(datagram[2..]),
            BinaryPrimitives.ReadUInt32BigEndian(datagram[4..]),
            BinaryPrimitives.ReadUInt32BigEndian(datagram[8..]),
            BinaryPrimitives.ReadUInt32BigEndian(datagram[12..]),
            BinaryPrimitives.ReadUInt16BigEndian(datagram[16..]),
            BinaryPrimitives.ReadUInt16BigEndian(datagram[18..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        destination[0] = (byte)(((byte)Type << 4) | Version);
        destination[1] = Extension;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], ConnectionId);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], TimestampMicroseconds);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], TimestampDifferenceMicroseconds);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], WindowSize);
        BinaryPrimitives.WriteUInt16BigEndian(destination[16..], SequenceNumber);
        BinaryPrimitives.WriteUInt16BigEndian(destination[18..], AckNumber);
    }
}
