using System.Buffers.Binary;
using FsCheck.Xunit;
using Peerway.WebRtc.Sctp;

namespace Peerway.WebRtc.Tests.Sctp;

public sealed class SctpCodecTests
{
    [Fact]
    public void Crc32c_matches_the_RFC_3720_check_values()
    {
        // RFC 3720 Appendix B.4: 32 bytes of zeros → 0x8A9136AA; of 0xFF → 0x62A8AB43; ascending 0..31 → 0x46DD794E.
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));
        Assert.Equal(0x62A8AB43u, Crc32C.Compute(Enumerable.Repeat((byte)0xFF, 32).ToArray()));
        Assert.Equal(0x46DD794Eu, Crc32C.Compute(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()));
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
    }

    /// <summary>The SSE4.2 path (8 bytes a step, then a byte tail) equals the table for every length and alignment.</summary>
    [Property(MaxTest = 500)]
    public bool Crc32c_in_hardware_equals_the_table(byte[] data, byte skip)
    {
        var span = data.AsSpan(Math.Min(skip % 8, data.Length));
        return Crc32C.Compute(span) == ~Crc32C.Software(0xFFFFFFFFu, span);
    }

    /// <summary>A COOKIE ACK packet byte for byte: ports 5000/5000, tag 0x01020304, chunk type 11 length 4, CRC32c.</summary>
    [Fact]
    public void A_cookie_ack_packet_encodes_as_the_spec_lays_it_out()
    {
        var bytes = new SctpPacket(5000, 5000, 0x01020304, [new ControlChunk(SctpChunkType.CookieAck)]).Encode();
        var expected = new byte[] { 0x13, 0x88, 0x13, 0x88, 1, 2, 3, 4, 0, 0, 0, 0, 11, 0, 0, 4 };
        BinaryPrimitives.WriteUInt32LittleEndian(expected.AsSpan(8), Crc32C.Compute(expected));
        Assert.Equal(expected, bytes);
    }

    private static readonly SctpChunk[] AllChunks =
    [
        new DataChunk(0xFFFFFFFF, 3, 65535, 53, true, true, false, new byte[] { 1, 2, 3 }, true),
        new InitChunk(false, 0xCAFEBABE, 1 << 20, 65535, 65535, 42, null, true, true),
        new InitChunk(true, 7, 1500, 10, 20, 1, new byte[] { 9, 8, 7, 6, 5 }, true, false),
        new SackChunk(100, 5000, [(2, 3), (7, 9)], [98u, 99u]),
        new HeartbeatChunk(false, new byte[] { 0, 1, 0, 8, 1, 2, 3, 4 }),
        new ControlChunk(SctpChunkType.Shutdown, 1234),
        new CookieEchoChunk([1, 2, 3, 4, 5, 6, 7]),
        new ForwardTsnChunk(77, [(1, 2), (3, 4)]),
        new ReconfigChunk([new OutgoingResetRequest(10, 20, 30, [1, 3, 5])]),
        new ReconfigChunk([new ReconfigResponse(10, ReconfigResponse.SuccessPerformed)]),
    ];

    public static TheoryData<int> ChunkIndexes() => [.. Enumerable.Range(0, AllChunks.Length)];

    [Theory]
    [MemberData(nameof(ChunkIndexes))]
    public void Every_chunk_round_trips(int index)
    {
        var chunk = AllChunks[index];
        var bytes = new SctpPacket(5000, 5000, 99, [chunk]).Encode();
        Assert.Equal(0, bytes.Length % 4);
        Assert.True(SctpPacket.TryDecode(bytes, out var packet, out var error), error.ToString());
        var back = Assert.Single(packet!.Chunks);
        Assert.Equal(new SctpPacket(5000, 5000, 99, [back]).Encode(), bytes);
    }

    [Fact]
    public void A_bad_checksum_is_refused()
    {
        var bytes = new SctpPacket(5000, 5000, 1, [new ControlChunk(SctpChunkType.CookieAck)]).Encode();
        bytes[^1] ^= 1;
        Assert.False(SctpPacket.TryDecode(bytes, out _, out var error));
        Assert.Equal(SctpError.BadChecksum, error);
    }

    [Fact]
    public void A_chunk_length_past_the_packet_is_refused()
    {
        var bytes = new SctpPacket(5000, 5000, 1, [new CookieEchoChunk(new byte[8])]).Encode();
        bytes[15] = 200;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), Crc32C.Compute(bytes));
        Assert.False(SctpPacket.TryDecode(bytes, out _, out var error));
        Assert.Equal(SctpError.BadChunkLength, error);
    }

    [Property(MaxTest = 5000)]
    public void Random_bytes_never_throw(byte[] bytes) => SctpPacket.TryDecode(bytes, out _, out _);

    /// <summary>
    /// 10^6 mutations of valid packets, checksum repaired after each so the chunk parsers (not the CRC) see them:
    /// decoding never throws, and what decodes re-encodes.
    /// </summary>
    [Fact]
    public void A_million_mutated_packets_with_repaired_checksums_never_throw()
    {
        var seeds = AllChunks.Select(c => new SctpPacket(5000, 5000, 1, [c]).Encode()).ToArray();
        var random = new Random(13);
        var decoded = 0;
        for (var i = 0; i < 1_000_000; i++)
        {
            var b = (byte[])seeds[i % seeds.Length].Clone();
            var flips = 1 + random.Next(4);
            for (var f = 0; f < flips; f++) b[12 + random.Next(b.Length - 12)] ^= (byte)(1 << random.Next(8));
            var length = Math.Max(12, b.Length - random.Next(3) * random.Next(8));
            var span = b.AsSpan(0, length);
            span[8..12].Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(span[8..], Crc32C.Compute(span));
            if (SctpPacket.TryDecode(span, out var p, out _))
            {
                decoded++;
                _ = p!.Encode();
            }
        }

        Assert.InRange(decoded, 1, 999_999);
    }
}
