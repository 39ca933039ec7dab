using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Peerway.Node;

namespace Peerway.Cli;

/// <summary>BEP 32 in share and get: the DHT of both address families, as libtorrent joins it (--dht-ipv6).</summary>
internal static partial class TorrentCommands
{
    private static Option<string?> DhtIpv6Option() => new("--dht-ipv6")
    {
        Description = "BEP 32: also join the IPv6 DHT (a second node with the same id, on [::], or [::1] with a loopback --bind): on or off (default: on where the host has IPv6).",
    };

    /// <summary>
    /// The address of the other family's DHT node paired with the one on <paramref name="bind"/> (BEP 32), or null for one
    /// family: the other family's wildcard, or its loopback when <paramref name="bind"/> is a loopback address. Default on
    /// where the host has IPv6; <c>off</c> keeps the IPv4 DHT only (a usage error with an IPv6 <c>--bind</c>), and then
    /// an IPv6 bootstrap address is a usage error. No DHT (<paramref name="useDht"/> false, or no bootstrap): null.
    /// </summary>
    internal static IPAddress? CheckDhtPair(string? value, IPAddress bind, IReadOnlyList<IPEndPoint> routers, bool useDht)
    {
        var on = value switch
        {
            null => Socket.OSSupportsIPv6,
            "on" => true,
            "off" => false,
            _ => throw new UsageException($"--dht-ipv6 must be on or off, not {value}"),
        };
        var v6Bind = bind.AddressFamily == AddressFamily.InterNetworkV6;
        if (!on && v6Bind) throw new UsageException("--dht-ipv6 off needs an IPv4 --bind (the DHT node binds it)");
        if (!on && routers.FirstOrDefault(r => r.AddressFamily == AddressFamily.InterNetworkV6) is { } v6)
        {
            throw new UsageException($"--dht-bootstrap {EndPointParser.Format(v6)} is in the IPv6 DHT, which --dht-ipv6 off leaves out");
        }

        if (!on || !useDht || routers.Count == 0) return null;
        if (IPAddress.IsLoopback(bind)) return v6Bind ? IPAddress.Loopback : IPAddress.IPv6Loopback;
        return v6Bind ? IPAddress.Any : IPAddress.IPv6Any;
    }
}
