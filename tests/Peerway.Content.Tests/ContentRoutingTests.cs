using System.Security.Cryptography;
using Peerway.Core.Multiformats;

namespace Peerway.Content.Tests;

public sealed class ContentRoutingTests
{
    [Fact]
    public void The_dht_key_is_sha1_of_the_multihash_and_shared_by_v0_and_v1()
    {
        var v0 = Cid.Parse("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n");
        var key = ContentRouting.DhtKey(v0);
        Assert.Equal(Convert.ToHexStringLower(SHA1.HashData(v0.Multihash.Bytes)), key.ToString());
        Assert.Equal(key, ContentRouting.DhtKey(v0.ToV1()));
        Assert.NotEqual(key, ContentRouting.DhtKey(Cid.V1(Cid.RawCodec, Multihash.Sha256("other"u8))));
    }
}
