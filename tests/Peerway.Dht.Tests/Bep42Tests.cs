using System.Net;
using Peerway.Core;

namespace Peerway.Dht.Tests;

public sealed class Bep42Tests
{
    // BEP 42, "Example": IP, rand (the last byte), and a node id that is compliant for them.
    [Theory]
    [InlineData("124.31.75.21", 1, "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401")]
    [InlineData("21.75.31.124", 86, "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256")]
    [InlineData("65.23.51.170", 22, "a5d43220bc8f112a3d426c84764f8c2a1150e616")]
    [InlineData("84.124.73.14", 65, "1b0321dd1bb1fe518101ceef99462b947a01ff41")]
    [InlineData("43.213.53.83", 90, "e56f6cbf5b7c4be0237986d5243b87aa6d51305a")]
    public void Bep42_example_ids_are_compliant(string ip, int rand, string idHex)
    {
        var id = NodeId.ParseHex(idHex);
        var address = IPAddress.Parse(ip);
        Assert.True(Bep42.IsCompliant(id, address));
        Assert.Equal(rand, id.ToArray()[19]);
        // The same id is not compliant for a different address (the prefix depends on the IP).
        Assert.False(Bep42.IsCompliant(id, IPAddress.Parse("8.8.8.8")) && Bep42.IsCompliant(id, IPAddress.Parse("9.9.9.9")));
    }

    [Fact]
    public void Crc32c_prefix_matches_the_bep_worked_example()
    {
        // crc32c((124.31.75.21 & 0x030f3fff) | (1 << 29)) = crc32c(0x200f0b15) = 0x5fbfbdb2.
        Assert.Equal(0x5fbfbdb2u, Bep42.Prefix(IPAddress.Parse("124.31.75.21"), 1));
        // CRC-32C check value of "123456789" (RFC 3720 / iSCSI).
        Assert.Equal(0xe3069283u, Bep42.Crc32C("123456789"u8));
    }

    [Theory]
    [InlineData("203.0.113.7")]
    [InlineData("2001:db8::1")]
    public void Generated_ids_are_compliant_and_random_elsewhere(string ip)
    {
        var address = IPAddress.Parse(ip);
        var random = new Random(5);
        var a = Bep42.GenerateId(address, 3, random);
        var b = Bep42.GenerateId(address, 3, random);
        Assert.True(Bep42.IsCompliant(a, address));
        Assert.True(Bep42.IsCompliant(b, address));
        Assert.NotEqual(a, b);
        Assert.Equal(21, Math.Min(21, a.CommonPrefixLength(b)));
    }

    [Theory]
    [InlineData("10.1.2.3", true)]
    [InlineData("172.16.0.1", true)]
    [InlineData("172.31.255.255", true)]
    [InlineData("172.32.0.1", false)]
    [InlineData("192.168.1.1", true)]
    [InlineData("169.254.3.4", true)]
    [InlineData("127.0.0.1", true)]
    [InlineData("8.8.8.8", false)]
    [InlineData("::1", true)]
    [InlineData("2001:db8::1", false)]
    public void Local_and_private_ranges_are_exempt(string ip, bool exempt) => Assert.Equal(exempt, Bep42.IsExempt(IPAddress.Parse(ip)));

    [Fact]
    public void External_address_needs_a_majority_of_at_least_three_voters()
    {
        var voter = new ExternalAddressVoter();
        var ours = IPAddress.Parse("203.0.113.1");
        Assert.False(voter.Vote(IPAddress.Parse("1.0.0.1"), ours));
        Assert.False(voter.Vote(IPAddress.Parse("1.0.0.2"), IPAddress.Parse("198.51.100.66"))); // a liar
        Assert.False(voter.Vote(IPAddress.Parse("1.0.0.3"), ours));
        Assert.Null(voter.Current);
        Assert.True(voter.Vote(IPAddress.Parse("1.0.0.4"), ours));
        Assert.Equal(ours, voter.Current);
        // One voter repeating itself does not count twice.
        var other = IPAddress.Parse("198.51.100.99");
        for (var i = 0; i < 10; i++) voter.Vote(IPAddress.Parse("1.0.0.9"), other);
        Assert.Equal(ours, voter.Current);
    }

    [Fact]
    public void Oldest_voters_are_forgotten_and_a_changed_vote_moves_the_tally()
    {
        var voter = new ExternalAddressVoter();
        var first = IPAddress.Parse("203.0.113.1");
        var second = IPAddress.Parse("203.0.113.2");
        for (var i = 0; i < ExternalAddressVoter.MaxVoters; i++) voter.Vote(IPAddress.Parse($"1.0.{i >> 8}.{i & 255}"), first);
        Assert.Equal(first, voter.Current);
        // New voters push the oldest out one by one: the second address wins once it holds a strict majority of the ring.
        var changedAt = -1;
        for (var i = 0; i < ExternalAddressVoter.MaxVoters && changedAt < 0; i++)
        {
            if (voter.Vote(IPAddress.Parse($"2.0.{i >> 8}.{i & 255}"), second)) changedAt = i;
        }

        Assert.Equal(ExternalAddressVoter.MaxVoters / 2, changedAt); // 33 of 64 votes
        Assert.Equal(second, voter.Current);
        // A voter that changes its claim moves its vote (the ring now holds 31 votes for the first address and 33 for
        // the second): one switch ties 32 to 32 (no majority, the current address stays), a second one makes 33 to 31.
        Assert.False(voter.Vote(IPAddress.Parse("2.0.0.0"), first));
        Assert.Equal(second, voter.Current);
        Assert.True(voter.Vote(IPAddress.Parse("2.0.0.1"), first));
        Assert.Equal(first, voter.Current);
    }
}
