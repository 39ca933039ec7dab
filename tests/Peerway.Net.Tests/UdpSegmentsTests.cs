using System.Buffers.Binary;
using FsCheck.Xunit;

namespace Peerway.Net.Tests;

/// <summary>The UDP_SEGMENT / UDP_GRO control messages (udp(7)) and the cutting of a coalesced receive, as bytes.</summary>
public sealed class UdpSegmentsTests
{
    /// <summary>A cmsghdr as 64-bit Linux lays it out: size_t len, int level, int type, then the data, 8-aligned.</summary>
    private static byte[] Cmsg(int level, int type, ReadOnlySpan<byte> data, bool pad = true)
    {
        var length = UdpSegments.HeaderSize + data.Length;
        var bytes = new byte[pad ? (length + 7) & ~7 : length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)length);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), level);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(12), type);
        data.CopyTo(bytes.AsSpan(UdpSegments.HeaderSize));
        return bytes;
    }

    private static byte[] Int(int value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, value);
        return b;
    }

    [Fact]
    public void The_gro_segment_size_is_read_alone_after_other_messages_and_unpadded_at_the_end()
    {
        Assert.Equal(UdpControlError.None, UdpSegments.TryReadGroSize(Cmsg(17, 104, Int(1_452)), out var size));
        Assert.Equal(1_452, size);

        // IP_TOS (level 0, type 1, one byte) first: the walk skips it at its aligned length.
        byte[] two = [.. Cmsg(0, 1, [0x10]), .. Cmsg(17, 104, Int(64_000), pad: false)];
        Assert.Equal(UdpControlError.None, UdpSegments.TryReadGroSize(two, out size));
        Assert.Equal(64_000, size);
    }

    [Fact]
    public void No_message_or_another_message_is_no_gro()
    {
        Assert.Equal(UdpControlError.NoGroMessage, UdpSegments.TryReadGroSize([], out var size));
        Assert.Equal(0, size);
        Assert.Equal(UdpControlError.NoGroMessage, UdpSegments.TryReadGroSize(Cmsg(0, 1, [0x10]), out _));
        Assert.Equal(UdpControlError.NoGroMessage, UdpSegments.TryReadGroSize(Cmsg(17, 103, [0xac, 0x05]), out _)); // UDP_SEGMENT is not UDP_GRO
    }

    [Fact]
    public void Malformed_control_data_is_a_typed_error()
    {
        // Shorter than a header.
        Assert.Equal(UdpControlError.Malformed, UdpSegments.TryReadGroSize(new byte[15], out _));

        // A length below the header, and one past the end.
        var low = Cmsg(17, 104, Int(1_000));
        BinaryPrimitives.WriteUInt64LittleEndian(low, 15);
        Assert.Equal(UdpControlError.Malformed, UdpSegments.TryReadGroSize(low, out _));
        var high = Cmsg(17, 104, Int(1_000));
        BinaryPrimitives.WriteUInt64LittleEndian(high, ulong.MaxValue);
        Assert.Equal(UdpControlError.Malformed, UdpSegments.TryReadGroSize(high, out _));

        // A first message then 8 stray bytes (not a header).
        Assert.Equal(UdpControlError.Malformed, UdpSegments.TryReadGroSize([.. Cmsg(0, 1, [0x10]), .. new byte[8]], out _));

        // UDP_GRO with a payload that is not an int, or a size that is not positive or too large.
        Assert.Equal(UdpControlError.BadSegmentSize, UdpSegments.TryReadGroSize(Cmsg(17, 104, [1, 2]), out _));
        Assert.Equal(UdpControlError.BadSegmentSize, UdpSegments.TryReadGroSize(Cmsg(17, 104, Int(0)), out _));
        Assert.Equal(UdpControlError.BadSegmentSize, UdpSegments.TryReadGroSize(Cmsg(17, 104, Int(-5)), out _));
        Assert.Equal(UdpControlError.BadSegmentSize, UdpSegments.TryReadGroSize(Cmsg(17, 104, Int(65_536)), out var size));
        Assert.Equal(0, size);
    }

    [Fact]
    public void The_gso_message_is_the_kernels_layout()
    {
        var control = new byte[UdpSegments.GsoControlSize];
        Assert.Equal(24, UdpSegments.WriteGsoSize(control, 1_452));
        Assert.Equal(18UL, BinaryPrimitives.ReadUInt64LittleEndian(control)); // CMSG_LEN(sizeof(u16))
        Assert.Equal(17, BinaryPrimitives.ReadInt32LittleEndian(control.AsSpan(8)));
        Assert.Equal(103, BinaryPrimitives.ReadInt32LittleEndian(control.AsSpan(12)));
        Assert.Equal(1_452, BinaryPrimitives.ReadUInt16LittleEndian(control.AsSpan(16)));
    }

    [Theory]
    [InlineData(1_452 * 44, 1_452, 44)]
    [InlineData((1_452 * 43) + 20, 1_452, 44)] // the last one shorter (an ACK-sized tail)
    [InlineData(1_452, 1_452, 1)]
    [InlineData(100, 1_452, 1)]
    [InlineData(0, 1_452, 1)]
    public void A_coalesced_receive_is_cut_into_its_datagrams(int length, int segmentSize, int count)
    {
        var coalesced = Enumerable.Range(0, length).Select(i => (byte)(i * 7)).ToArray();
        Assert.Equal(count, UdpSegments.Count(length, segmentSize));
        var parts = Enumerable.Range(0, count).Select(k => UdpSegments.Segment(coalesced, segmentSize, k).ToArray()).ToList();
        Assert.All(parts.SkipLast(1), p => Assert.Equal(segmentSize, p.Length));
        Assert.InRange(parts[^1].Length, 0, segmentSize);
        Assert.Equal(coalesced, parts.SelectMany(p => p));
    }

    [Property(MaxTest = 5_000)]
    public void Reading_random_control_bytes_never_throws_and_a_size_read_is_in_range(byte[] control)
    {
        var error = UdpSegments.TryReadGroSize(control ?? [], out var size);
        Assert.True(error == UdpControlError.None ? size is > 0 and <= UdpSegments.MaxSegmentSize : size == 0);
    }

    [Property(MaxTest = 2_000)]
    public bool Cutting_any_buffer_gives_it_back_whole(byte[] coalesced, ushort segmentSize)
    {
        coalesced ??= [];
        var size = Math.Max(1, (int)segmentSize % 3_000);
        var count = UdpSegments.Count(coalesced.Length, size);
        var parts = Enumerable.Range(0, count).Select(k => UdpSegments.Segment(coalesced, size, k).ToArray()).ToList();
        return parts.SelectMany(p => p).SequenceEqual(coalesced) && parts.SkipLast(1).All(p => p.Length == size);
    }
}
