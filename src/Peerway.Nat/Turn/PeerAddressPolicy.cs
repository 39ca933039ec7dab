using System.Net;
using System.Net.Sockets;

namespace Peerway.Nat.Turn;

/// <summary>
/// Which peer addresses a relay may talk to. RFC 8656 §21.3 warns that a TURN server can be used to reach hosts
/// behind it; by default loopback, private, link-local, shared, multicast and reserved ranges (RFC 6890) are refused
/// unless allowed explicitly.
/// </summary>
public sealed class PeerAddressPolicy
{
    private static readonly IPNetwork[] Reserved =
    [
        IPNetwork.Parse("0.0.0.0/8"), IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("100.64.0.0/10"),
        IPNetwork.Parse("127.0.0.0/8"), IPNetwork.Parse("169.254.0.0/16"), IPNetwork.Parse("172.16.0.0/12"),
        IPNetwork.Parse("192.0.0.0/24"), IPNetwork.Parse("192.0.2.0/24"), IPNetwork.Parse("192.168.0.0/16"),
        IPNetwork.Parse("198.18.0.0/15"), IPNetwork.Parse("198.51.100.0/24"), IPNetwork.Parse("203.0.113.0/24"),
        IPNetwork.Parse("224.0.0.0/4"), IPNetwork.Parse("240.0.0.0/4"),
        IPNetwork.Parse("::/128"), IPNetwork.Parse("::1/128"), IPNetwork.Parse("::ffff:0:0/96"), IPNetwork.Parse("64:ff9b::/96"),
        IPNetwork.Parse("100::/64"), IPNetwork.Parse("2001:db8::/32"), IPNetwork.Parse("fc00::/7"), IPNetwork.Parse("fe80::/10"),
        IPNetwork.Parse("ff00::/8"),
    ];

    private readonly IReadOnlyList<IPNetwork> _allowed;
    private readonly IReadOnlyList<IPNetwork> _denied;

    /// <summary>
    /// Creates a policy: <paramref name="denied"/> ranges are refused first, then <paramref name="allowed"/> ranges are
    /// accepted, then the built-in reserved ranges are refused.
    /// </summary>
    /// <param name="allowed">Ranges accepted although reserved (e.g. a lab's private network).</param>
    /// <param name="denied">Ranges always refused.</param>
    public PeerAddressPolicy(IReadOnlyList<IPNetwork> allowed, IReadOnlyList<IPNetwork> denied)
    {
        _allowed = allowed;
        _denied = denied;
    }

    /// <summary>
    /// Whether the relay may send to or receive from <paramref name="address"/> (an IPv4-mapped IPv6 address is
    /// checked as IPv4). False for addresses that are not IPv4 or IPv6.
    /// </summary>
    public bool IsAllowed(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        foreach (var n in _denied)
        {
            if (n.Contains(address)) return false;
        }

        foreach (var n in _allowed)
        {
            if (n.Contains(address)) return true;
        }

        if (address.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)) return false;
        foreach (var n in Reserved)
        {
            if (n.Contains(address)) return false;
        }

        return true;
    }
}
