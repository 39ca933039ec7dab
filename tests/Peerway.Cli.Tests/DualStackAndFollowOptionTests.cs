using System.Net;

namespace Peerway.Cli.Tests;

/// <summary>
/// Issue 17 §2/§3: when `peerway get` follows a BEP 46 magnet (by default when it stays up to seed, --follow without
/// seeding, --no-follow to seed without following; a plain get exits), and which DHT node of the other family
/// share/get pair with theirs (BEP 32, --dht-ipv6).
/// </summary>
public sealed class DualStackAndFollowOptionTests
{
    [Theory]
    // mutable magnet, --follow, --no-follow, --follow-interval given, --seed → follows
    [InlineData(true, false, false, false, false, false)] // a plain get exits when done (scripts rely on it)
    [InlineData(true, false, false, false, true, true)]   // --seed: the process stays up, so it follows
    [InlineData(true, false, false, true, true, true)]
    [InlineData(true, true, false, false, false, true)]   // --follow without seeding
    [InlineData(true, false, true, false, true, false)]   // --seed --no-follow
    [InlineData(false, false, false, false, true, false)] // an ordinary magnet with --seed
    public void Get_follows_when_it_stays_up_or_is_asked_to(bool magnet, bool follow, bool noFollow, bool interval, bool seed, bool expected) =>
        Assert.Equal(expected, TorrentCommands.CheckFollow(magnet, follow, noFollow, interval, seed));

    [Theory]
    [InlineData(false, true, false, false)]
    [InlineData(false, false, true, false)]
    [InlineData(false, false, false, true)]
    [InlineData(true, true, true, false)]
    [InlineData(true, false, true, true)]
    public void Contradictory_or_misplaced_follow_options_are_usage_errors(bool magnet, bool follow, bool noFollow, bool interval) =>
        Assert.Throws<UsageException>(() => TorrentCommands.CheckFollow(magnet, follow, noFollow, interval, seed: true));

    [Fact]
    public void The_other_familys_node_binds_its_wildcard_or_its_loopback()
    {
        IPEndPoint[] both = [IPEndPoint.Parse("127.0.0.1:6881"), IPEndPoint.Parse("[::1]:6881")];
        Assert.Equal(IPAddress.IPv6Any, TorrentCommands.CheckDhtPair("on", IPAddress.Any, both, useDht: true));
        Assert.Equal(IPAddress.IPv6Loopback, TorrentCommands.CheckDhtPair("on", IPAddress.Loopback, both, useDht: true));
        Assert.Equal(IPAddress.Loopback, TorrentCommands.CheckDhtPair("on", IPAddress.IPv6Loopback, both, useDht: true));
        Assert.Equal(IPAddress.Any, TorrentCommands.CheckDhtPair("on", IPAddress.IPv6Any, both, useDht: true));
        // No DHT (no bootstrap, or a proxy that relays none): no second node.
        Assert.Null(TorrentCommands.CheckDhtPair("on", IPAddress.Any, [], useDht: true));
        Assert.Null(TorrentCommands.CheckDhtPair("on", IPAddress.Any, both, useDht: false));
        // Off: the IPv4 DHT only; an IPv6 bootstrap address or --bind is then a usage error.
        Assert.Null(TorrentCommands.CheckDhtPair("off", IPAddress.Any, [both[0]], useDht: true));
        Assert.Throws<UsageException>(() => TorrentCommands.CheckDhtPair("off", IPAddress.Any, both, useDht: true));
        Assert.Throws<UsageException>(() => TorrentCommands.CheckDhtPair("off", IPAddress.IPv6Loopback, [both[1]], useDht: true));
        Assert.Throws<UsageException>(() => TorrentCommands.CheckDhtPair("maybe", IPAddress.Any, both, useDht: true));
    }
}
