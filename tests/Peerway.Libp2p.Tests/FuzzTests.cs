using Peerway.Libp2p.Kad;
using Peerway.Libp2p.Protocols;
using Peerway.Libp2p.Yamux;

namespace Peerway.Libp2p.Tests;

/// <summary>Every decoder on 10^6 random and mutated inputs: a typed error or a value, never an exception.</summary>
public sealed class FuzzTests
{
    private const int Inputs = 1_000_000;

    [Fact]
    public void Decoders_never_throw_on_random_or_mutated_input()
    {
        var rng = new Random(19);
        using var key = PeerKey.Generate();
        Assert.Equal(Libp2pError.None, Multiaddr.TryParse($"/ip4/127.0.0.1/tcp/4001/p2p/{key.Id}", out var addr));
        var seeds = new[]
        {
            addr!.Bytes.ToArray(),
            new IdentifyInfo { AgentVersion = "x", PublicKey = key.EncodedPublicKey, ListenAddresses = [addr], Protocols = ["/ipfs/id/1.0.0"] }.Encode(),
            key.EncodedPublicKey,
            key.Id.Bytes.ToArray(),
            Multistream.Encode([Multistream.ProtocolId])[1..],
            BitswapTests.SampleMessage().Encode(),
            KadTests.SampleMessage(key.Id, addr).Encode(),
        };
        var buffer = new byte[96];
        for (var i = 0; i < Inputs; i++)
        {
            ReadOnlySpan<byte> input;
            if ((i & 1) == 0)
            {
                var n = rng.Next(buffer.Length);
                rng.NextBytes(buffer.AsSpan(0, n));
                input = buffer.AsSpan(0, n);
            }
            else
            {
                var seed = seeds[rng.Next(seeds.Length)];
                var copy = buffer.AsSpan(0, Math.Min(seed.Length, buffer.Length));
                seed.AsSpan(0, copy.Length).CopyTo(copy);
                for (var m = rng.Next(1, 4); m > 0; m--) copy[rng.Next(copy.Length)] = (byte)rng.Next(256);
                input = copy[..rng.Next(copy.Length + 1)];
            }

            _ = Multiaddr.TryDecode(input, out _);
            _ = IdentifyInfo.TryDecode(input, out _);
            _ = PeerKey.TryDecodePublicKey(input, out _);
            _ = PeerId.TryDecode(input, out _);
            _ = YamuxHeader.TryRead(input, out _);
            _ = Multistream.Decode(input, out _);
            _ = BitswapMessage.TryDecode(input, out _);
            _ = KadMessage.TryDecode(input, out _);
        }
    }

    [Fact]
    public void Multiaddr_text_parsing_never_throws()
    {
        var rng = new Random(7);
        const string alphabet = "/ip46tcpudp2dnsquic-v1wsx0123456789.:abcdefQm12D3KooW";
        var chars = new char[64];
        for (var i = 0; i < Inputs / 10; i++)
        {
            var n = rng.Next(chars.Length);
            for (var j = 0; j < n; j++) chars[j] = alphabet[rng.Next(alphabet.Length)];
            _ = Multiaddr.TryParse(new string(chars, 0, n), out _);
        }
    }
}
