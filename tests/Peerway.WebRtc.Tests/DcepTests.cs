using FsCheck.Xunit;
using Peerway.WebRtc.DataChannels;

namespace Peerway.WebRtc.Tests;

public sealed class DcepTests
{
    [Fact]
    public void An_open_message_is_laid_out_as_RFC_8832_section_5_1_says()
    {
        var open = new DcepOpen(DcepChannelType.PartialReliableRexmitUnordered, 256, 3, "chat", "p");
        byte[] expected = [0x03, 0x81, 0x01, 0x00, 0, 0, 0, 3, 0, 4, 0, 1, (byte)'c', (byte)'h', (byte)'a', (byte)'t', (byte)'p'];
        Assert.Equal(expected, open.Encode());
        Assert.True(DcepOpen.TryDecode(expected, out var back));
        Assert.Equal(open, back);
        Assert.True(back!.Unordered);
    }

    [Theory]
    [InlineData(new byte[] { 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, (byte)'a' })] // label longer than the message
    [InlineData(new byte[] { 0x03, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })] // unknown channel type
    [InlineData(new byte[] { 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xFF })] // label not UTF-8
    [InlineData(new byte[] { 0x02 })] // an ACK is not an OPEN
    public void Malformed_opens_are_refused(byte[] bytes) => Assert.False(DcepOpen.TryDecode(bytes, out _));

    [Property(MaxTest = 5000)]
    public void Random_bytes_never_throw(byte[] bytes) => DcepOpen.TryDecode(bytes, out _);

    [Fact]
    public void A_million_mutated_opens_never_throw()
    {
        var seed = new DcepOpen(DcepChannelType.PartialReliableTimed, 0, 500, "label-é", "proto").Encode();
        var random = new Random(5);
        for (var i = 0; i < 1_000_000; i++)
        {
            var b = (byte[])seed.Clone();
            b[random.Next(b.Length)] ^= (byte)(1 << random.Next(8));
            if (DcepOpen.TryDecode(b.AsSpan(0, b.Length - random.Next(2)), out var open)) Assert.NotNull(open!.Label);
        }
    }
}
