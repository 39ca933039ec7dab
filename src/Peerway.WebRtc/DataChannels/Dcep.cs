using System.Buffers.Binary;
using System.Text;

namespace Peerway.WebRtc.DataChannels;

/// <summary>RFC 8832 §8.2.2 channel types: reliable, partial reliability by count or by time; the high bit is unordered.</summary>
internal enum DcepChannelType : byte
{
    Reliable = 0x00,
    PartialReliableRexmit = 0x01,
    PartialReliableTimed = 0x02,
    ReliableUnordered = 0x80,
    PartialReliableRexmitUnordered = 0x81,
    PartialReliableTimedUnordered = 0x82,
}

/// <summary>RFC 8831 §8 / RFC 8832 §8.1 payload protocol identifiers.</summary>
internal static class Ppid
{
    public const uint Dcep = 50;
    public const uint String = 51;
    public const uint Binary = 53;
    public const uint StringEmpty = 56;
    public const uint BinaryEmpty = 57;
}

/// <summary>RFC 8832 §5.1 DATA_CHANNEL_OPEN.</summary>
internal sealed record DcepOpen(DcepChannelType ChannelType, ushort Priority, uint Reliability, string Label, string Protocol)
{
    public const byte MessageType = 0x03;
    public const byte AckType = 0x02;

    /// <summary>Bound on label and protocol (each is a 16-bit length; we hold them to 1 KiB).</summary>
    public const int MaxText = 1024;

    public bool Unordered => ((byte)ChannelType & 0x80) != 0;

    public byte[] Encode()
    {
        var label = Encoding.UTF8.GetBytes(Label);
        var protocol = Encoding.UTF8.GetBytes(Protocol);
        var b = new byte[12 + label.Length + protocol.Length];
        b[0] = MessageType;
        b[1] = (byte)ChannelType;
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), Priority);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), Reliability);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(8), (ushort)label.Length);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(10), (ushort)protocol.Length);
        label.CopyTo(b, 12);
        protocol.CopyTo(b, 12 + label.Length);
        return b;
    }

    public static byte[] EncodeAck() => [AckType];

    /// <summary>Decodes an OPEN; never throws. Unknown channel types and bad UTF-8 are refused.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> b, out DcepOpen? open)
    {
        open = null;
        if (b.Length < 12 || b[0] != MessageType) return false;
        var type = (DcepChannelType)b[1];
        if (!Enum.IsDefined(type)) return false;
        int labelLength = BinaryPrimitives.ReadUInt16BigEndian(b[8..]), protocolLength = BinaryPrimitives.ReadUInt16BigEndian(b[10..]);
        if (labelLength > MaxText || protocolLength > MaxText || b.Length != 12 + labelLength + protocolLength) return false;
        var strict = new UTF8Encoding(false, true);
        try
        {
            open = new DcepOpen(type, BinaryPrimitives.ReadUInt16BigEndian(b[2..]), BinaryPrimitives.ReadUInt32BigEndian(b[4..]), strict.GetString(b.Slice(12, labelLength)), strict.GetString(b.Slice(12 + labelLength, protocolLength)));
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }
}
