using Peerway.Libp2p.Protocols;

namespace Peerway.Libp2p.Tests;

public sealed class AddressingTests
{
    [Fact]
    public void An_ed25519_peer_id_inlines_its_key_and_prints_as_12D3KooW()
    {
        using var key = PeerKey.Generate();
        var text = key.Id.ToString();
        Assert.StartsWith("12D3KooW", text, StringComparison.Ordinal);
        Assert.Equal(Libp2pError.None, PeerId.TryParse(text, out var parsed));
        Assert.Equal(key.Id, parsed);
        Assert.True(parsed!.TryGetInlinePublicKey(out var inline));
        Assert.Equal(key.EncodedPublicKey, inline.ToArray());
    }

    [Fact]
    public void The_public_key_encoding_is_the_specs_protobuf()
    {
        // peer-ids.md test vector: an Ed25519 public key in its protobuf encoding.
        var encoded = Convert.FromHexString("080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e");
        Assert.Equal(Libp2pError.None, PeerKey.TryDecodePublicKey(encoded, out var raw));
        Assert.Equal(encoded, PeerKey.EncodePublicKey(raw));
    }

    [Fact]
    public void A_seed_gives_the_same_identity_and_signatures_verify()
    {
        using var a = PeerKey.Generate();
        using var b = PeerKey.FromSeed(a.ExportSeed());
        Assert.Equal(a.Id, b.Id);
        var sig = b.Sign("hello"u8);
        Assert.Equal(Libp2pError.None, PeerKey.Verify(a.EncodedPublicKey, "hello"u8, sig));
        Assert.Equal(Libp2pError.BadSignature, PeerKey.Verify(a.EncodedPublicKey, "hellO"u8, sig));
    }

    [Theory]
    [InlineData("/ip4/127.0.0.1/tcp/4001", "047f000001060fa1")]
    [InlineData("/ip6/::1/udp/4001/quic-v1", "29" + "000000000000000000000000000000" + "01" + "9102" + "0fa1" + "cd03")]
    [InlineData("/dns4/example.com/tcp/443/wss", "36" + "0b" + "6578616d706c652e636f6d" + "0601bb" + "de03")]
    public void Multiaddrs_round_trip_text_and_binary(string text, string hex)
    {
        Assert.Equal(Libp2pError.None, Multiaddr.TryParse(text, out var a));
        Assert.Equal(hex, Convert.ToHexStringLower(a!.Bytes));
        Assert.Equal(Libp2pError.None, Multiaddr.TryDecode(Convert.FromHexString(hex), out var b));
        Assert.Equal(text, b!.ToString());
    }

    [Fact]
    public void A_multiaddr_carries_a_peer_id_and_a_tcp_endpoint()
    {
        using var key = PeerKey.Generate();
        var text = $"/ip4/127.0.0.1/tcp/4001/p2p/{key.Id}";
        Assert.Equal(Libp2pError.None, Multiaddr.TryParse(text, out var a));
        Assert.Equal(key.Id, a!.PeerId);
        Assert.True(a.TryGetTcpEndPoint(out var ep));
        Assert.Equal("127.0.0.1:4001", ep!.ToString());
        Assert.Equal(text, a.ToString());
        Assert.Equal(Libp2pError.None, Multiaddr.TryParse($"/ip4/127.0.0.1/tcp/4001/ipfs/{key.Id}", out var old));
        Assert.Equal(a, old);
    }

    [Theory]
    [InlineData("", Libp2pError.BadAddress)]
    [InlineData("ip4/1.2.3.4", Libp2pError.BadAddress)]
    [InlineData("/ip4/1.2.3", Libp2pError.BadAddress)]
    [InlineData("/ip4/1.2.3.4/tcp/65536", Libp2pError.BadAddress)]
    [InlineData("/ip4/1.2.3.4/tcp", Libp2pError.BadAddress)]
    [InlineData("/foo/1", Libp2pError.UnknownProtocol)]
    [InlineData("/p2p/notapeer", Libp2pError.BadPeerId)]
    public void Bad_multiaddrs_are_refused_with_a_reason(string text, Libp2pError expected) =>
        Assert.Equal(expected, Multiaddr.TryParse(text, out _));

    [Fact]
    public void Multistream_messages_are_length_prefixed_lines()
    {
        // connections/README.md: "/multistream/1.0.0\n" is 19 bytes, so its prefix is 0x13.
        var bytes = Multistream.Encode([Multistream.ProtocolId]);
        Assert.Equal(0x13, bytes[0]);
        Assert.Equal("/multistream/1.0.0\n"u8.ToArray(), bytes[1..]);
        Assert.Equal(Libp2pError.BadLine, Multistream.Decode("/noise"u8, out _));
        Assert.Equal(Libp2pError.BadLine, Multistream.Decode([0xff, 0x0a], out _));
    }
}
