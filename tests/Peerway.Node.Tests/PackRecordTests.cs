using Peerway.Core.Multiformats;
using Peerway.Node.Content;

namespace Peerway.Node.Tests;

/// <summary>The pack record's header codec: round trip, each typed error, and 10^6 random and mutated inputs.</summary>
public sealed class PackRecordTests
{
    private const int Inputs = 1_000_000;

    [Fact]
    public void A_header_round_trips_for_sha256_and_identity_multihashes()
    {
        foreach (var multihash in new[] { Multihash.Sha256("block"u8), Multihash.Identity(new byte[Multihash.MaxIdentityLength]) })
        {
            var buffer = new byte[PackRecord.MaxHeaderLength + 10];
            var length = PackRecord.WriteHeader(multihash, 262_144, buffer);
            Assert.Equal(PackRecord.HeaderLength(multihash), length);
            Assert.Equal(PackRecordError.None, PackRecord.TryReadHeader(buffer, out var header));
            Assert.Equal(new PackRecordHeader(multihash, length, 262_144), header);
            for (var cut = 0; cut < length; cut++)
            {
                Assert.Equal(PackRecordError.Truncated, PackRecord.TryReadHeader(buffer.AsSpan(0, cut), out _));
            }
        }
    }

    [Fact]
    public void Each_kind_of_damage_is_its_own_error()
    {
        var multihash = Multihash.Sha256("block"u8);
        var good = new byte[PackRecord.MaxHeaderLength];
        var length = PackRecord.WriteHeader(multihash, 1000, good);

        Assert.Equal(PackRecordError.BadMagic, Read(good, 0, (byte)'x'));
        Assert.Equal(PackRecordError.BadChecksum, Read(good, 8, 0xE9));
        Assert.Equal(PackRecordError.BadChecksum, Read(good, length - 1, (byte)(good[length - 1] ^ 1)));
        Assert.Equal(PackRecordError.BadMultihash, Read(good, 12, 0));
        Assert.Equal(PackRecordError.BadMultihash, Read(good, 12, PackRecord.MaxMultihashBytes + 1));

        // A length over the bound with a checksum that matches it (a writer's bug, not a torn write): refused, not read.
        var tooLarge = (byte[])good.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(tooLarge.AsSpan(8), PackRecord.MaxBlockBytes + 1);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(tooLarge.AsSpan(4), PackRecord.Checksum(tooLarge.AsSpan(8, length - 8)));
        Assert.Equal(PackRecordError.TooLarge, PackRecord.TryReadHeader(tooLarge, out _));
        // A multihash length that matches its checksum but bytes that are not one multihash.
        var notMultihash = (byte[])good.Clone();
        notMultihash[13] = 0x13;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(notMultihash.AsSpan(4), PackRecord.Checksum(notMultihash.AsSpan(8, length - 8)));
        Assert.Equal(PackRecordError.BadMultihash, PackRecord.TryReadHeader(notMultihash, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => PackRecord.WriteHeader(multihash, PackRecord.MaxBlockBytes + 1, tooLarge));
    }

    [Fact]
    public void The_decoder_never_throws_on_random_or_mutated_input()
    {
        var rng = new Random(8);
        var seeds = new[] { Multihash.Sha256("a"u8), Multihash.Identity("id"u8), Multihash.Identity(new byte[Multihash.MaxIdentityLength]) }
            .Select(m =>
            {
                var bytes = new byte[PackRecord.MaxHeaderLength];
                return bytes.AsSpan(0, PackRecord.WriteHeader(m, rng.Next(PackRecord.MaxBlockBytes + 1), bytes)).ToArray();
            })
            .ToArray();
        var buffer = new byte[PackRecord.MaxHeaderLength + 16];
        var decoded = 0;
        for (var i = 0; i < Inputs; i++)
        {
            Span<byte> input;
            if ((i & 1) == 0)
            {
                input = buffer.AsSpan(0, rng.Next(buffer.Length + 1));
                rng.NextBytes(input);
                // Half of the random inputs start with the magic, so that the checks after it are reached.
                if ((i & 2) == 0 && input.Length >= 4) PackRecord.Magic.CopyTo(input);
            }
            else
            {
                var seed = seeds[rng.Next(seeds.Length)];
                input = buffer.AsSpan(0, seed.Length);
                seed.CopyTo(input);
                for (var m = rng.Next(1, 4); m > 0; m--) input[rng.Next(input.Length)] = (byte)rng.Next(256);
                input = input[..rng.Next(input.Length + 1)];
            }

            var error = PackRecord.TryReadHeader(input, out var header);
            if (error != PackRecordError.None) continue;
            decoded++;
            // What decodes is within bounds and re-encodes to the same bytes.
            Assert.InRange(header.DataLength, 0, PackRecord.MaxBlockBytes);
            var again = new byte[PackRecord.MaxHeaderLength];
            Assert.Equal(header.HeaderLength, PackRecord.WriteHeader(header.Multihash, header.DataLength, again));
            Assert.True(again.AsSpan(0, header.HeaderLength).SequenceEqual(input[..header.HeaderLength]));
        }

        Assert.True(decoded > 0);
    }

    private static PackRecordError Read(byte[] good, int at, int value)
    {
        var copy = (byte[])good.Clone();
        copy[at] = (byte)value;
        return PackRecord.TryReadHeader(copy, out _);
    }
}
