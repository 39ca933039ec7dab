using System.Net;
using FsCheck;
using FsCheck.Fluent;
using Peerway.Nat.Ice;

namespace Peerway.Nat.Tests.Ice;

public sealed class IceCandidateTests
{
    [Fact]
    public void Pair_priority_follows_rfc_8445_formula()
    {
        // RFC 8445 §6.1.2.3 with G = controlling, D = controlled.
        const uint g = 2130706431, d = 1694498815;
        Assert.Equal((1UL << 32) * d + 2UL * g + 1, IceCandidate.PairPriority(g, d));
        Assert.Equal((1UL << 32) * d + 2UL * g, IceCandidate.PairPriority(d, g));
    }

    [Fact]
    public void Sdp_round_trips()
    {
        var c = new IceCandidate("abc1", IceCandidate.ComputePriority(IceCandidateType.ServerReflexive), new IPEndPoint(IPAddress.Parse("198.51.100.7"), 20001), IceCandidateType.ServerReflexive, new IPEndPoint(IPAddress.Parse("192.168.1.2"), 5000));
        Assert.Equal("candidate:abc1 1 udp 1694498815 198.51.100.7 20001 typ srflx raddr 192.168.1.2 rport 5000", c.ToSdp());
        Assert.True(IceCandidate.TryParse("a=" + c.ToSdp(), out var back));
        Assert.Equal(c, back);
    }

    [Theory]
    [InlineData("candidate:1 1 udp 0 1.2.3.4 5 typ host")]
    [InlineData("candidate:1 2 udp 5 1.2.3.4 5 typ host")]
    [InlineData("candidate:1 1 tcp 5 1.2.3.4 5 typ host")]
    [InlineData("candidate:1 1 udp 5 1.2.3.4 70000 typ host")]
    [InlineData("candidate:1 1 udp 5 1.2.3.4 5 typ bogus")]
    [InlineData("candidate:a_b 1 udp 5 1.2.3.4 5 typ host")]
    [InlineData("")]
    public void Bad_lines_are_rejected(string line) => Assert.False(IceCandidate.TryParse(line, out _));

    [FsCheck.Xunit.Property(MaxTest = 2000)]
    public Property Parser_never_throws(string? text) => Prop.ToProperty(IceCandidate.TryParse(text, out var c) == (c is not null));

    [FsCheck.Xunit.Property(MaxTest = 2000)]
    public Property Mutated_lines_never_throw(int position, char ch)
    {
        var line = "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host raddr 1.2.3.4 rport 9";
        var chars = line.ToCharArray();
        chars[(int)((uint)position % chars.Length)] = ch;
        var mutated = new string(chars);
        return Prop.ToProperty(IceCandidate.TryParse(mutated, out var c) == (c is not null));
    }
}
