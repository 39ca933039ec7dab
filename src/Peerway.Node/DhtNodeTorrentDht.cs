using System.Net;
using Peerway.Core;
using Peerway.Dht;
using Peerway.Torrent;

namespace Peerway.Node;

/// <summary>A <see cref="DhtNode"/> as the torrent client's DHT: announce (get_peers + announce_peer) and ping.</summary>
internal sealed class DhtNodeTorrentDht(DhtNode node) : ITorrentDht
{
    public int Port => node.LocalEndPoint.Port;

    public async Task<IReadOnlyList<IPEndPoint>> AnnounceAsync(NodeId infoHash, int port, CancellationToken ct)
    {
        var result = await node.AnnounceAsync(infoHash, port, impliedPort: false, ct).ConfigureAwait(false);
        return result.Lookup.Peers;
    }

    public Task AddNodeAsync(IPEndPoint endPoint, CancellationToken ct) => node.PingAsync(endPoint, ct);
}
