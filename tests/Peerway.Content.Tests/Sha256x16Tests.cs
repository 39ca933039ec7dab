using System.Security.Cryptography;
using FsCheck.Xunit;
using Peerway.Content.Hashing;

namespace Peerway.Content.Tests;

/// <summary>The 16-lane SHA-256 must give, lane by lane, exactly SHA-256 of prefix ‖ body ‖ suffix.</summary>
public sealed class Sha256x16Tests
{
    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Hashes 16 bodies <paramref name="stride"/> apart and checks each lane against SHA256.HashData.</summary>
    private static void AssertLanesMatch(byte[] prefix, int bodyLength, int stride, byte[] suffix, int seed)
    {
        var bodies = RandomBytes((15 * stride) + bodyLength, seed);
        var digests = new byte[Sha256x16.Lanes * Sha256x16.DigestSize];
        if (!Sha256x16.IsSupported)
        {
            // The importer checks IsSupported first and hashes one by one; calling it anyway is an error, not wrong digests.
            Assert.Throws<PlatformNotSupportedException>(() => Sha256x16.Hash(prefix, bodies, stride, bodyLength, suffix, digests));
            return;
        }

        Sha256x16.Hash(prefix, bodies, stride, bodyLength, suffix, digests);
        for (var lane = 0; lane < Sha256x16.Lanes; lane++)
        {
            var message = prefix.Concat(bodies.AsSpan(lane * stride, bodyLength).ToArray()).Concat(suffix).ToArray();
            Assert.Equal(Convert.ToHexString(SHA256.HashData(message)), Convert.ToHexString(digests, lane * 32, 32));
        }
    }

    [Fact]
    public void The_FIPS_180_2_abc_vector_comes_out_of_every_lane()
    {
        // FIPS 180-2 appendix B.1: SHA-256("abc").
        var digests = new byte[Sha256x16.Lanes * Sha256x16.DigestSize];
        if (!Sha256x16.IsSupported)
        {
            Assert.Throws<PlatformNotSupportedException>(() => Sha256x16.Hash([], "abc"u8, 0, 3, [], digests));
            return;
        }

        // Stride 0: all 16 lanes read the same body.
        Sha256x16.Hash("a"u8, "b"u8, 0, 1, "c"u8, digests);
        for (var lane = 0; lane < Sha256x16.Lanes; lane++)
        {
            Assert.Equal(
                "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                Convert.ToHexString(digests, lane * 32, 32));
        }
    }

    [Theory]
    [InlineData(0, 0, 0)]
    [InlineData(0, 1, 0)]
    [InlineData(0, 55, 0)] // the longest message whose padding fits its one block
    [InlineData(0, 56, 0)] // the shortest that needs a second block for the length
    [InlineData(0, 64, 0)]
    [InlineData(0, 119, 0)]
    [InlineData(0, 120, 0)]
    [InlineData(0, 262_144, 0)] // a full chunk, raw leaf
    [InlineData(11, 262_144, 4)] // a full chunk in a dag-pb leaf: 11-byte header, 4-byte filesize trailer
    [InlineData(11, 1, 2)]
    [InlineData(11, 52, 1)] // prefix + body + suffix fill exactly one block: the padding needs another
    [InlineData(11, 53, 0)]
    [InlineData(64, 0, 64)]
    [InlineData(63, 65, 63)]
    [InlineData(1, 127, 1)]
    public void Every_lane_hashes_prefix_body_and_suffix(int prefixLength, int bodyLength, int suffixLength)
    {
        AssertLanesMatch(RandomBytes(prefixLength, 1), bodyLength, bodyLength + 7, RandomBytes(suffixLength, 2), bodyLength);
    }

    [Property(MaxTest = 40)]
    public void Random_lengths_and_strides_match_SHA256(byte prefixLength, ushort bodyLength, byte gap, byte suffixLength, int seed)
    {
        AssertLanesMatch(
            RandomBytes(prefixLength % 65, seed), bodyLength % 3000, (bodyLength % 3000) + gap, RandomBytes(suffixLength % 65, ~seed), seed);
    }

    [Fact]
    public void Affixes_longer_than_a_block_are_refused()
    {
        var digests = new byte[Sha256x16.Lanes * Sha256x16.DigestSize];
        Assert.ThrowsAny<ArgumentException>(() => Sha256x16.Hash(new byte[65], new byte[16], 1, 1, [], digests));
        Assert.ThrowsAny<ArgumentException>(() => Sha256x16.Hash([], new byte[16], 1, 1, new byte[65], digests));
        Assert.ThrowsAny<ArgumentException>(() => Sha256x16.Hash([], new byte[15], 1, 1, [], digests)); // 16 bodies do not fit
    }
}
