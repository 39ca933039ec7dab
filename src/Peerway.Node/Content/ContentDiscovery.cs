using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Content;
using Peerway.Core.Multiformats;
using Peerway.Dht;

namespace Peerway.Node.Content;

/// <summary>Announces provided roots in the DHT and finds gateways that provide a CID (see <see cref="ContentRouting"/>).</summary>
public sealed partial class ContentDiscovery
{
    /// <summary>BEP 5: stored peers expire (30 min in Peerway); re-announce well before that.</summary>
    public static readonly TimeSpan ReannounceInterval = TimeSpan.FromMinutes(15);

    private readonly DhtNode _dht;
    private readonly ILogger _logger;

    public ContentDiscovery(DhtNode dht, ILogger<ContentDiscovery>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(dht);
        _dht = dht;
        _logger = logger ?? NullLogger<ContentDiscovery>.Instance;
    }

    /// <summary>Announces each root under its DHT key with the gateway's TCP port; returns how many reached a node.</summary>
    public async Task<int> AnnounceAsync(IReadOnlyList<Cid> roots, int gatewayPort, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(roots);
        var announced = 0;
        foreach (var root in roots)
        {
            var result = await _dht.AnnounceAsync(ContentRouting.DhtKey(root), gatewayPort, impliedPort: false, cancellationToken)
                .ConfigureAwait(false);
            LogAnnounced(root.ToString(), ContentRouting.DhtKey(root).ToString(), result.AnnouncedTo);
            if (result.AnnouncedTo > 0)
            {
                announced++;
            }
        }

        return announced;
    }

    /// <summary>Looks the CID up in the DHT; each provider peer ip:port becomes a gateway URL http://ip:port/.</summary>
    public async Task<IReadOnlyList<Uri>> FindGatewaysAsync(Cid cid, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(cid);
        var result = await _dht.GetPeersAsync(ContentRouting.DhtKey(cid), cancellationToken).ConfigureAwait(false);
        var gateways = result.Peers
            .Distinct()
            .Select(p => new Uri($"http://{FormatHost(p.Address)}:{p.Port}/"))
            .ToList();
        LogFound(cid.ToString(), gateways.Count);
        return gateways;
    }

    private static string FormatHost(IPAddress address) =>
        address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();

    [LoggerMessage(Level = LogLevel.Information, Message = "announced {Cid} (DHT key {Key}) to {Count} nodes")]
    private partial void LogAnnounced(string cid, string key, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "found {Count} providers of {Cid}")]
    private partial void LogFound(string cid, int count);
}
