using System.Security.Cryptography;
using Peerway.Libp2p.Kad;
using Peerway.Libp2p.Noise;
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
    public void Noise_frames_and_handshake_payloads_never_throw_and_only_authentic_frames_decrypt()
    {
        var rng = new Random(34);
        var key = RandomNumberGenerator.GetBytes(32);
        using var send = new CipherState();
        using var receive = new CipherState();
        using var identity = PeerKey.Generate();
        var payloadSeed = NoiseHandshake.EncodePayload(identity, RandomNumberGenerator.GetBytes(32));
        var buffer = new byte[160];
        var plain = new byte[buffer.Length];
        var authentic = 0;
        for (var i = 0; i < Inputs; i++)
        {
            // Re-keying both sides keeps their nonces together, so an untouched frame must decrypt.
            send.InitializeKey(key);
            receive.InitializeKey(key);
            var n = rng.Next(1, 64);
            rng.NextBytes(plain.AsSpan(0, n));
            var written = send.EncryptWithAd([], plain.AsSpan(0, n), buffer.AsSpan(NoiseFrame.HeaderSize));
            buffer[0] = (byte)(written >> 8);
            buffer[1] = (byte)written;
            var length = NoiseFrame.HeaderSize + written;
            var mutated = (i % 4) switch
            {
                0 => false,
                1 => Mutate(rng, buffer.AsSpan(0, length)),
                2 => Randomize(rng, buffer, out length),
                _ => Truncate(rng, ref length),
            };

            var error = NoiseFrame.TryDecrypt(receive, buffer.AsSpan(0, length), plain, out var consumed, out var got);
            if (!mutated)
            {
                Assert.Equal(Libp2pError.None, error);
                Assert.Equal(n, got);
                Assert.Equal(length, consumed);
                authentic++;
            }
            else if (error == Libp2pError.None)
            {
                // A changed frame can only pass when the change left the ciphertext and tag as they were.
                Assert.Equal(NoiseFrame.HeaderSize + got + CipherState.TagLength, consumed);
            }

            var payload = (i & 1) == 0 ? payloadSeed.AsSpan() : buffer.AsSpan(0, length);
            if ((i & 1) == 0)
            {
                var copy = buffer.AsSpan(0, payloadSeed.Length);
                payloadSeed.CopyTo(copy);
                Mutate(rng, copy);
                payload = copy[..rng.Next(copy.Length + 1)];
            }

            _ = NoiseHandshake.TryDecodePayload(payload, out _, out _);
        }

        Assert.Equal(Inputs / 4, authentic);
    }

    private static bool Mutate(Random rng, Span<byte> input)
    {
        for (var m = rng.Next(1, 4); m > 0; m--) input[rng.Next(input.Length)] ^= (byte)rng.Next(1, 256);
        return true;
    }

    private static bool Randomize(Random rng, byte[] buffer, out int length)
    {
        length = rng.Next(buffer.Length);
        rng.NextBytes(buffer.AsSpan(0, length));
        return true;
    }

    private static bool Truncate(Random rng, ref int length)
    {
        length = rng.Next(length);
        return true;
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
