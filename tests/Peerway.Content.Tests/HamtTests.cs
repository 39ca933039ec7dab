using System.Text;
using Peerway.Content.UnixFs;

namespace Peerway.Content.Tests;

public sealed class HamtTests
{
    // Vectors: @multiformats/murmur3 murmur3128.encode (multihash 0x22 digest = h1 ‖ h2, big-endian).
    [Theory]
    [InlineData("", "00000000000000000000000000000000")]
    [InlineData("a", "85555565f6597889e6b53a48510e895a")]
    [InlineData("hello", "cbd8a7b341bd9b025b1e906a48ae1d19")]
    [InlineData("entry-000001.txt", "3dd1a12b0ae7127d28fa5100edcf65a5")]
    public void Murmur3_x64_128_matches_the_multiformats_vectors(string input, string digest)
    {
        var (h1, h2) = Murmur3.Hash128(Encoding.UTF8.GetBytes(input));
        Assert.Equal(digest, $"{h1:x16}{h2:x16}");
    }
}
