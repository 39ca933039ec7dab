using System.Net;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Tests.Wire;

/// <summary>BEP 55 <c>ut_holepunch</c> payloads: the spec's layout byte by byte, round trips, bad input as values, fuzz.</summary>
public sealed class HolepunchCodecTests
{
    [Fact]
    public void A_rendezvous_for_an_ipv4_peer_is_the_twelve_bytes_bep_55_lays_out()
    {
        var bytes = HolepunchCodec.Encode(new HolepunchMessage(HolepunchMessageType.Rendezvous, new IPEndPoint(IPAddress.Parse("10.1.2.3"), 6881), HolepunchError.None));
        Assert.Equal(Convert.FromHexString("00" + "00" + "0A010203" + "1AE1" + "00000000"), bytes);
    }

    [Fact]
    public void An_error_for_an_ipv6_peer_is_twenty_four_bytes_with_the_code_last()
    {
        var bytes = HolepunchCodec.Encode(new HolepunchMessage(HolepunchMessageType.Error, new IPEndPoint(IPAddress.Parse("2001:db8::1"), 51413), HolepunchError.NotConnected));
        Assert.Equal(Convert.FromHexString("02" + "01" + "20010DB8000000000000000000000001" + "C8D5" + "00000002"), bytes);
    }

    [Theory]
    [InlineData(HolepunchMessageType.Rendezvous, "192.168.0.9", 1, HolepunchError.None)]
    [InlineData(HolepunchMessageType.Connect, "::ffff:127.0.0.1", 65535, HolepunchError.None)]
    [InlineData(HolepunchMessageType.Error, "fe80::2", 443, HolepunchError.NoSelf)]
    public void Messages_round_trip(object typeValue, string address, int port, object errorValue)
    {
        // object: the holepunch types are internal, and a public test method cannot take them.
        var type = (HolepunchMessageType)typeValue;
        var error = (HolepunchError)errorValue;
        var sent = new HolepunchMessage(type, new IPEndPoint(IPAddress.Parse(address), port), error);
        Assert.Equal(HolepunchDecodeError.None, HolepunchCodec.TryDecode(HolepunchCodec.Encode(sent), out var got));
        Assert.Equal(type, got.Type);
        Assert.Equal(error, got.Error);
        Assert.Equal(port, got.EndPoint.Port);
        var expected = IPAddress.Parse(address);
        Assert.Equal(expected.IsIPv4MappedToIPv6 ? expected.MapToIPv4() : expected, got.EndPoint.Address);
    }

    [Theory]
    [InlineData("", HolepunchDecodeError.BadLength)]
    [InlineData("00", HolepunchDecodeError.BadLength)]
    [InlineData("030000000000000000000000", HolepunchDecodeError.BadType)]
    [InlineData("000200000000000000000000", HolepunchDecodeError.BadAddressType)]
    [InlineData("0000000000000000000000", HolepunchDecodeError.BadLength)]
    [InlineData("00000000000000000000000000", HolepunchDecodeError.BadLength)]
    [InlineData("000100000000000000000000", HolepunchDecodeError.BadLength)]
    public void Bad_payloads_are_typed_errors(string hex, object expected) =>
        Assert.Equal((HolepunchDecodeError)expected, HolepunchCodec.TryDecode(Convert.FromHexString(hex), out _));

    [Fact]
    public void A_million_random_payloads_never_throw_and_what_decodes_re_encodes_to_itself()
    {
        var random = new Random(55);
        var buffer = new byte[30];
        var decoded = 0;
        for (var i = 0; i < 1_000_000; i++)
        {
            var length = random.Next(buffer.Length + 1);
            random.NextBytes(buffer);
            // Bias towards well-formed headers so the accepting path is fuzzed too.
            if (length > 1 && (i & 1) == 0)
            {
                buffer[0] %= 3;
                buffer[1] %= 2;
                length = buffer[1] == 0 ? HolepunchCodec.V4Length : HolepunchCodec.V6Length;
            }

            var payload = buffer.AsSpan(0, length);
            if (HolepunchCodec.TryDecode(payload, out var message) != HolepunchDecodeError.None) continue;
            decoded++;
            if (message.EndPoint.Address.IsIPv4MappedToIPv6) continue; // re-encoded as IPv4, by design
            Assert.True(payload.SequenceEqual(HolepunchCodec.Encode(message)));
        }

        Assert.True(decoded > 100_000, $"only {decoded} payloads decoded: the accepting path was barely fuzzed");
    }
}
