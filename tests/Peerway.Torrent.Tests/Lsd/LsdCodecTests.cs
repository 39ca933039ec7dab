using System.Text;
using Peerway.Core;
using Peerway.Torrent.Lsd;

namespace Peerway.Torrent.Tests.Lsd;

/// <summary>BEP 14 messages: libtorrent's exact datagram, several info-hashes, bad input as typed errors, a million random datagrams.</summary>
public sealed class LsdCodecTests
{
    private static readonly NodeId A = NodeId.ParseHex("c12fe1c06bba254a9dc9f519b335aa7c1367a88a");
    private static readonly NodeId B = NodeId.ParseHex("0123456789abcdef0123456789abcdef01234567");

    private static LsdDecodeError Decode(string text, out LsdAnnounce? announce) => LsdCodec.TryDecode(Encoding.ASCII.GetBytes(text), out announce);

    [Fact]
    public void Libtorrents_announce_decodes()
    {
        // As libtorrent's render_lsd_packet writes it (lsd.cpp): upper-case hex is accepted too.
        var error = Decode("BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: C12FE1C06BBA254A9DC9F519B335AA7C1367A88A\r\ncookie: 1a2b3c\r\n\r\n\r\n", out var a);
        Assert.Equal(LsdDecodeError.None, error);
        Assert.Equal(6881, a!.Port);
        Assert.Equal([A], a.InfoHashes);
        Assert.Equal("1a2b3c", a.Cookie);
    }

    [Fact]
    public void An_encoded_announce_with_several_hashes_round_trips()
    {
        var buffer = new byte[LsdCodec.MaxMessageSize];
        var n = LsdCodec.Encode(LsdCodec.HostFor(LsdCodec.GroupV6), 51413, [A, B], "deadbeef", buffer);
        var text = Encoding.ASCII.GetString(buffer, 0, n);
        Assert.StartsWith("BT-SEARCH * HTTP/1.1\r\nHost: [ff15::efc0:988f]:6771\r\nPort: 51413\r\nInfohash: c12fe1c06bba254a9dc9f519b335aa7c1367a88a\r\nInfohash: 0123", text);
        Assert.EndsWith("cookie: deadbeef\r\n\r\n\r\n", text);
        Assert.Equal(LsdDecodeError.None, LsdCodec.TryDecode(buffer.AsSpan(0, n), out var a));
        Assert.Equal(new LsdAnnounce(51413, [A, B], "deadbeef").Port, a!.Port);
        Assert.Equal([A, B], a.InfoHashes);
        Assert.Equal("239.192.152.143:6771", LsdCodec.HostFor(LsdCodec.GroupV4));
    }

    [Fact]
    public void The_most_hashes_a_message_holds_fit_one_datagram()
    {
        var hashes = Enumerable.Range(0, LsdCodec.MaxInfoHashes).Select(_ => NodeId.Random()).ToList();
        var buffer = new byte[LsdCodec.MaxMessageSize];
        var n = LsdCodec.Encode(LsdCodec.HostFor(LsdCodec.GroupV6), 65535, hashes, "ffffffff", buffer);
        Assert.Equal(LsdDecodeError.None, LsdCodec.TryDecode(buffer.AsSpan(0, n), out var a));
        Assert.Equal(hashes, a!.InfoHashes);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nPort: 1\r\nInfohash: c12fe1c06bba254a9dc9f519b335aa7c1367a88a\r\n\r\n", LsdDecodeError.NotBtSearch)]
    [InlineData("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: c12fe1c06bba254a9dc9f519b335aa7c1367a88a\r\n", LsdDecodeError.MalformedHeaders)]
    [InlineData("BT-SEARCH * HTTP/1.1\r\nPort 1\r\n\r\n", LsdDecodeError.MalformedHeaders)]
    [InlineData("BT-SEARCH * HTTP/1.1\r\nInfohash: c12fe1c06bba254a9dc9f519b335aa7c1367a88a\r\n\r\n", LsdDecodeError.BadPort)]
    [InlineData("BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: c12fe1c06bba254a9dc9f519b335aa7c1367a88a\r\n\r\n", LsdDecodeError.BadPort)]
    [InlineData("BT-SEARCH * HTTP/1.1\r\nPort: 65536\r\nInfohash: c12fe1c06bba254a9dc9f519b335aa7c1367a88a\r\n\r\n", LsdDecodeError.BadPort)]
    [InlineData("BT-SEARCH * HTTP/1.1\r\nPort: -1\r\nInfohash: c12fe1c06bba254a9dc9f519b335aa7c1367a88a\r\n\r\n", LsdDecodeError.BadPort)]
    [InlineData("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nPort: 2\r\nInfohash: c12fe1c06bba254a9dc9f519b335aa7c1367a88a\r\n\r\n", LsdDecodeError.BadPort)]
    [InlineData("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: c12fe1\r\n\r\n", LsdDecodeError.NoInfoHash)]
    [InlineData("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: 0000000000000000000000000000000000000000\r\n\r\n", LsdDecodeError.NoInfoHash)]
    [InlineData("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: zz2fe1c06bba254a9dc9f519b335aa7c1367a88a\r\n\r\n", LsdDecodeError.NoInfoHash)]
    public void Bad_announces_are_typed_errors(string text, LsdDecodeError expected) => Assert.Equal(expected, Decode(text, out _));

    [Fact]
    public void An_invalid_hash_is_skipped_and_the_others_are_read()
    {
        Assert.Equal(LsdDecodeError.None, Decode("bt-search * HTTP/1.1\nPort: 7\nInfohash: nope\nInfohash: c12fe1c06bba254a9dc9f519b335aa7c1367a88a\n\n", out var a));
        Assert.Equal([A], a!.InfoHashes);
        Assert.Null(a.Cookie);
    }

    [Fact]
    public void Oversized_and_header_flood_messages_are_rejected_unread()
    {
        Assert.Equal(LsdDecodeError.TooLarge, LsdCodec.TryDecode(new byte[LsdCodec.MaxMessageSize + 1], out _));
        var many = "BT-SEARCH * HTTP/1.1\r\n" + string.Concat(Enumerable.Repeat("X: y\r\n", LsdCodec.MaxHeaders + 1)) + "\r\n";
        Assert.Equal(LsdDecodeError.TooManyHeaders, Decode(many, out _));
        var hashes = "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n" + string.Concat(Enumerable.Range(0, 25).Select(_ => $"Infohash: {NodeId.Random()}\r\n")) + "\r\n";
        Assert.Equal(LsdDecodeError.None, Decode(hashes, out var a));
        Assert.Equal(LsdCodec.MaxInfoHashes, a!.InfoHashes.Count);
    }

    [Fact]
    public void A_million_random_datagrams_never_throw_and_what_decodes_re_encodes_to_the_same_announce()
    {
        var random = new Random(14);
        var valid = Encoding.ASCII.GetBytes("BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: c12fe1c06bba254a9dc9f519b335aa7c1367a88a\r\nInfohash: 0123456789abcdef0123456789abcdef01234567\r\ncookie: 1a2b3c\r\n\r\n\r\n");
        var buffer = new byte[LsdCodec.MaxMessageSize + 8];
        var encoded = new byte[LsdCodec.MaxMessageSize];
        var decoded = 0;
        for (var i = 0; i < 1_000_000; i++)
        {
            int length;
            if ((i & 1) == 0)
            {
                // A valid announce with a few bytes changed: the accepting path and its edges are fuzzed too.
                valid.CopyTo(buffer, 0);
                length = valid.Length;
                for (var k = random.Next(1, 4); k > 0; k--) buffer[random.Next(length)] = (byte)random.Next(256);
                if (random.Next(8) == 0) length = random.Next(length);
            }
            else
            {
                length = random.Next(buffer.Length + 1);
                random.NextBytes(buffer.AsSpan(0, length));
            }

            if (LsdCodec.TryDecode(buffer.AsSpan(0, length), out var a) != LsdDecodeError.None) continue;
            decoded++;
            var n = LsdCodec.Encode("239.192.152.143:6771", a!.Port, a.InfoHashes, a.Cookie is { } c && c.All(ch => ch is >= '!' and <= '~') ? c : "", encoded);
            Assert.Equal(LsdDecodeError.None, LsdCodec.TryDecode(encoded.AsSpan(0, n), out var again));
            Assert.Equal(a.Port, again!.Port);
            Assert.Equal(a.InfoHashes, again.InfoHashes);
        }

        Assert.True(decoded > 50_000, $"only {decoded} datagrams decoded: the accepting path was barely fuzzed");
    }
}
