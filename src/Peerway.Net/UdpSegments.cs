using System.Buffers.Binary;

namespace Peerway.Net;

/// <summary>Why <see cref="UdpSegments.TryReadGroSize"/> found no segment size.</summary>
internal enum UdpControlError
{
    None,

    /// <summary>The control data is well formed but holds no UDP_GRO message (a datagram that was not coalesced).</summary>
    NoGroMessage,

    /// <summary>A cmsghdr is cut short, or its length runs past the control data or below the header.</summary>
    Malformed,

    /// <summary>A UDP_GRO message whose payload is not an int, or whose segment size is not positive.</summary>
    BadSegmentSize,
}

/// <summary>
/// The ancillary data (cmsg(3)) of Linux UDP segmentation offload, as pure functions over bytes: the UDP_SEGMENT
/// message a sender attaches to one large buffer so the kernel cuts it into equal datagrams (GSO, udp(7) since 4.18),
/// and the UDP_GRO message the kernel attaches to one receive of several coalesced datagrams (GRO, since 5.0), giving
/// the size they were cut at (all equal but the last, which may be shorter). Layouts are 64-bit Linux's:
/// <c>struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; data }</c>, each header and each message aligned
/// to 8 bytes (CMSG_ALIGN).
/// </summary>
internal static class UdpSegments
{
    /// <summary>SOL_UDP (= IPPROTO_UDP).</summary>
    public const int SolUdp = 17;

    /// <summary>linux/udp.h: UDP_SEGMENT, the GSO segment size (u16) of a send.</summary>
    public const int UdpSegment = 103;

    /// <summary>linux/udp.h: UDP_GRO, the socket option that allows coalesced receives, and the cmsg (int) that carries
    /// their segment size.</summary>
    public const int UdpGro = 104;

    /// <summary>sizeof(struct cmsghdr) on 64-bit Linux.</summary>
    public const int HeaderSize = 16;

    /// <summary>CMSG_SPACE(sizeof(uint16_t)): what <see cref="WriteGsoSize"/> writes.</summary>
    public const int GsoControlSize = 24;

    /// <summary>Control bytes a receive offers per datagram: room for UDP_GRO (CMSG_SPACE(sizeof(int)) = 24) and a
    /// few more messages the socket might add.</summary>
    public const int ReceiveControlSize = 64;

    /// <summary>Largest segment size the kernel can report (a UDP payload fits in 16 bits).</summary>
    public const int MaxSegmentSize = 65_535;

    /// <summary>Writes the UDP_SEGMENT message for a GSO send of <paramref name="segmentSize"/>-byte segments;
    /// returns the control length to put in msg_controllen (<see cref="GsoControlSize"/>).</summary>
    public static int WriteGsoSize(Span<byte> destination, ushort segmentSize)
    {
        destination[..GsoControlSize].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(destination, HeaderSize + sizeof(ushort)); // CMSG_LEN(2) = 18
        BinaryPrimitives.WriteInt32LittleEndian(destination[8..], SolUdp);
        BinaryPrimitives.WriteInt32LittleEndian(destination[12..], UdpSegment);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[HeaderSize..], segmentSize);
        return GsoControlSize;
    }

    /// <summary>
    /// Walks the control messages of one receive (<paramref name="control"/>: msg_control cut to the msg_controllen the
    /// kernel returned) for UDP_GRO. Bounded by the span; never throws. Little-endian hosts (x64, arm64), as the rest
    /// of <see cref="LinuxUdp"/>.
    /// </summary>
    public static UdpControlError TryReadGroSize(ReadOnlySpan<byte> control, out int segmentSize)
    {
        segmentSize = 0;
        var offset = 0;
        while (control.Length - offset >= HeaderSize)
        {
            var length = BinaryPrimitives.ReadUInt64LittleEndian(control[offset..]);
            if (length < HeaderSize || length > (ulong)(control.Length - offset)) return UdpControlError.Malformed;
            var level = BinaryPrimitives.ReadInt32LittleEndian(control[(offset + 8)..]);
            var type = BinaryPrimitives.ReadInt32LittleEndian(control[(offset + 12)..]);
            if (level == SolUdp && type == UdpGro)
            {
                // udp_cmsg_recv: put_cmsg(msg, SOL_UDP, UDP_GRO, sizeof(int), &gso_size).
                if (length != HeaderSize + sizeof(int)) return UdpControlError.BadSegmentSize;
                var size = BinaryPrimitives.ReadInt32LittleEndian(control[(offset + HeaderSize)..]);
                if (size is <= 0 or > MaxSegmentSize) return UdpControlError.BadSegmentSize;
                segmentSize = size;
                return UdpControlError.None;
            }

            // CMSG_NXTHDR: the next header starts at the aligned end of this one (the last one's padding may be absent).
            var next = (long)offset + (long)((length + 7) & ~7UL);
            if (next >= control.Length) return UdpControlError.NoGroMessage;
            offset = (int)next;
        }

        // Bytes left that cannot hold a header: cut short (none left: no messages at all).
        return offset == control.Length ? UdpControlError.NoGroMessage : UdpControlError.Malformed;
    }

    /// <summary>How many datagrams a coalesced receive of <paramref name="length"/> bytes holds at
    /// <paramref name="segmentSize"/> (the last may be shorter); 1 for an empty one.</summary>
    public static int Count(int length, int segmentSize) => length <= segmentSize ? 1 : (int)(((long)length + segmentSize - 1) / segmentSize);

    /// <summary>The <paramref name="index"/>-th datagram of a coalesced receive (see <see cref="Count"/>).</summary>
    public static ReadOnlySpan<byte> Segment(ReadOnlySpan<byte> coalesced, int segmentSize, int index)
    {
        var start = (long)index * segmentSize;
        return coalesced.Slice((int)start, (int)Math.Min(segmentSize, coalesced.Length - start));
    }
}
