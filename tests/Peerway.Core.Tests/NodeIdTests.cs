using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Peerway.Core;

namespace Peerway.Core.Tests;

public sealed class NodeIdTests
{
    private static NodeId Id(byte[] twenty) => new(twenty);

    private static Arbitrary<NodeId> Ids => Gen.ArrayOf(ArbMap.Default.GeneratorFor<byte>(), NodeId.Length).Select(b => new NodeId(b)).ToArbitrary();

    [Fact]
    public void Hex_round_trip_and_case()
    {
        var id = NodeId.ParseHex("0123456789ABCDEFfedcba9876543210deadBEEF");
        Assert.Equal("0123456789abcdeffedcba9876543210deadbeef", id.ToString());
        Assert.False(NodeId.TryParseHex("0123", out _));
        Assert.False(NodeId.TryParseHex("zz23456789abcdeffedcba9876543210deadbeef", out _));
        Assert.Throws<FormatException>(() => NodeId.ParseHex("nope"));
    }

    [Fact]
    public void Xor_distance_examples()
    {
        var a = NodeId.ParseHex("ff00000000000000000000000000000000000001");
        var b = NodeId.ParseHex("0f00000000000000000000000000000000000003");
        Assert.Equal(NodeId.ParseHex("f000000000000000000000000000000000000002"), a ^ b);
        Assert.Equal(0, (a ^ b).LeadingZeroCount());
        Assert.Equal(160, NodeId.Zero.LeadingZeroCount());
        Assert.Equal(159, NodeId.ParseHex("0000000000000000000000000000000000000001").LeadingZeroCount());
        Assert.Equal(63, NodeId.ParseHex("0000000000000001000000000000000000000000").LeadingZeroCount());
        Assert.Equal(128, NodeId.ParseHex("0000000000000000000000000000000080000000").LeadingZeroCount());
    }

    [Fact]
    public void Ordering_is_big_endian_unsigned()
    {
        var small = NodeId.ParseHex("00ffffffffffffffffffffffffffffffffffffff");
        var big = NodeId.ParseHex("0100000000000000000000000000000000000000");
        Assert.True(small < big);
        Assert.True(NodeId.Max > big);
        Assert.True(NodeId.ParseHex("0000000000000000000000000000000000000002") > NodeId.ParseHex("0000000000000000000000000000000000000001"));
        Assert.True(NodeId.ParseHex("8000000000000000000000000000000000000000") > NodeId.ParseHex("7fffffffffffffffffffffffffffffffffffffff"));
    }

    [Fact]
    public void Bits_and_closeness()
    {
        var id = NodeId.Zero.WithBit(0, true).WithBit(159, true).WithBit(100, true);
        Assert.True(id.GetBit(0));
        Assert.True(id.GetBit(100));
        Assert.True(id.GetBit(159));
        Assert.False(id.GetBit(1));
        Assert.Equal(NodeId.Zero, id.WithBit(0, false).WithBit(159, false).WithBit(100, false));
        var target = NodeId.Zero;
        Assert.True(NodeId.ParseHex("0000000000000000000000000000000000000001").IsCloserTo(target, NodeId.ParseHex("0000000000000000000000000000000000000002")));
        Assert.Throws<ArgumentOutOfRangeException>(() => id.GetBit(160));
        Assert.Throws<ArgumentException>(() => new NodeId(new byte[19]));
    }

    [Property]
    public Property Xor_is_a_metric() => Prop.ForAll(Ids, Ids, Ids, (x, y, z) =>
        (x ^ x) == NodeId.Zero &&
        (x ^ y) == (y ^ x) &&
        // XOR satisfies d(x,z) <= d(x,y) XOR-combined: d(x,z) = d(x,y) ^ d(y,z) (Kademlia §2.1, unidirectional).
        (x ^ z) == ((x ^ y) ^ (y ^ z)) &&
        (x == y) == ((x ^ y) == NodeId.Zero));

    [Property]
    public Property Ordering_matches_byte_comparison_and_bytes_round_trip() => Prop.ForAll(Ids, Ids, (x, y) =>
        Math.Sign(x.CompareTo(y)) == Math.Sign(x.ToArray().AsSpan().SequenceCompareTo(y.ToArray())) &&
        new NodeId(x.ToArray()) == x &&
        NodeId.ParseHex(x.ToString()) == x &&
        x.CommonPrefixLength(y) == (x ^ y).LeadingZeroCount());

    [Fact]
    public void Sha1_of_empty_input() =>
        Assert.Equal("da39a3ee5e6b4b0d3255bfef95601890afd80709", NodeId.Sha1([]).ToString());

    [Fact]
    public void Seeded_random_is_deterministic() =>
        Assert.Equal(NodeId.Random(new Random(1)), NodeId.Random(new Random(1)));

    [Fact]
    public void Id_from_bytes_helper() => Assert.Equal(NodeId.Max, Id(Enumerable.Repeat((byte)0xff, 20).ToArray()));
}
