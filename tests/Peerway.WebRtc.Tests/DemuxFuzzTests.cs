using System.Buffers.Binary;
using Peerway.Nat.Stun;
using Peerway.WebRtc.Dtls;

namespace Peerway.WebRtc.Tests;

/// <summary>
/// RFC 7983 §7 demultiplexing on the one ICE socket by first byte: 0..3 STUN (taken by the ICE agent), 20..63 DTLS
/// (the record layer), anything else dropped. 10^6 random datagrams — half of them carrying STUN's magic cookie in
/// bytes 4-7, as a DTLS record's epoch and sequence number can — are each claimed by at most one side, by the rule.
/// About 1 s.
/// </summary>
public sealed class DemuxFuzzTests
{
    [Fact]
    public void A_million_random_datagrams_are_demultiplexed_by_first_byte_alone()
    {
        var random = new Random(7983);
        var buffer = new byte[1500];
        for (var i = 0; i < 1_000_000; i++)
        {
            var length = random.Next(4) == 0 ? random.Next(0, 24) : random.Next(24, buffer.Length + 1);
            var d = buffer.AsSpan(0, length);
            random.NextBytes(d[..Math.Min(length, 16)]); // only the header decides; the rest stays as it was
            if (length >= 8 && random.Next(2) == 0) BinaryPrimitives.WriteUInt32BigEndian(d[4..], 0x2112A442);
            var first = length > 0 ? d[0] : -1;
            var stun = StunMessage.LooksLikeStun(d);
            var dtls = DtlsSession.IsDtls(d);
            if (stun && dtls) Assert.Fail($"datagram {i} (first byte {first}) claimed by both STUN and DTLS");
            Assert.Equal(first is >= 20 and <= 63, dtls);
            if (stun) Assert.InRange(first, 0, 3);
        }
    }

    [Fact]
    public void A_dtls_record_that_spells_the_stun_cookie_is_dtls()
    {
        // A handshake record of epoch 0x0021, sequence number 0x12A442…: bytes 4-7 are 21 12 A4 42.
        byte[] record = [22, 0xFE, 0xFD, 0x00, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        Assert.False(StunMessage.LooksLikeStun(record));
        Assert.True(DtlsSession.IsDtls(record));
    }
}
