using System.Net;
using FsCheck;
using FsCheck.Fluent;
using Peerway.Core;

namespace Peerway.Simulation.Tests;

public sealed class GroundTruthTests
{
    [FsCheck.Xunit.Property(MaxTest = 200)]
    public Property Closest_matches_a_brute_force_sort(int seed, byte count, byte k)
    {
        var random = new Random(seed);
        var truth = new GroundTruth();
        var ids = new List<NodeId>();
        for (var i = 0; i < count; i++)
        {
            // Some ids share long prefixes so the trie descent is exercised deep down.
            var id = i % 3 == 0 && ids.Count > 0 ? ids[^1].WithBit(150 + random.Next(10), random.Next(2) == 0) : NodeId.Random(random);
            if (truth.Contains(id)) continue;
            truth.Add(id, i);
            ids.Add(id);
        }

        if (ids.Count > 2) truth.Remove(ids[1]);
        var live = ids.Where(truth.Contains).ToList();
        var target = random.Next(2) == 0 || live.Count == 0 ? NodeId.Random(random) : live[0].WithBit(159, !live[0].GetBit(159));
        var want = live.OrderBy(id => id ^ target).Take(k).ToList();
        return Prop.ToProperty(truth.Closest(target, k).SequenceEqual(want));
    }
}

public sealed class Bep42IdTests
{
    // BEP 42 "Test vectors": IP, rand (last byte), and the first 21 bits of the node id.
    [Theory]
    [InlineData("124.31.75.21", 1, "5fbfbf")]
    [InlineData("21.75.31.124", 86, "5a3ce9")]
    [InlineData("65.23.51.170", 22, "a5d432")]
    [InlineData("84.124.73.14", 65, "1b0321")]
    [InlineData("43.213.53.83", 90, "e56f6c")]
    public void Prefix_matches_the_BEP_42_vectors(string ip, int rand, string idPrefix)
    {
        var crc = Bep42Ids.Prefix(IPAddress.Parse(ip), (byte)(rand & 7));
        var want = Convert.FromHexString(idPrefix);
        Assert.Equal(want[0], (byte)(crc >> 24));
        Assert.Equal(want[1], (byte)(crc >> 16));
        Assert.Equal(want[2] & 0xf8, (int)((crc >> 8) & 0xf8));
    }

    [Fact]
    public void Generated_ids_are_compliant_for_their_address_only()
    {
        var random = new Random(1);
        for (var host = 0; host < 200; host++)
        {
            var address = SimulationNetwork.AddressOf(host * 7919);
            var id = Bep42Ids.For(address, random);
            Assert.True(Bep42Ids.IsCompliant(id, address));
            Assert.False(Bep42Ids.IsCompliant(id, SimulationNetwork.AddressOf(host * 7919 + 1)) && Bep42Ids.IsCompliant(id, SimulationNetwork.AddressOf(host * 7919 + 2)));
        }
    }
}
