using System.Net;
using Peerway.Core;
using Peerway.Dht;
using Peerway.Torrent;

namespace Peerway.Node;

/// <summary>
/// A <see cref="DhtNode"/> as the torrent client's DHT: announce (get_peers + announce_peer) and ping. A node paired with
/// one of the other family (BEP 32, <see cref="DhtNode.PairWith"/>) announces on both DHTs and returns the peers of both.
/// </summary>
internal sealed class DhtNodeTorrentDht(DhtNode node) : ITorrentDht
{
    public int Port => node.LocalEndPoint.Port;

    public Task<IReadOnlyList<IPEndPoint>> AnnounceAsync(NodeId infoHash, int port, CancellationToken ct) =>
        node.AnnounceDualStackAsync(infoHash, port, impliedPort: false, ct);

    /// <summary>BEP 5 PORT: the node is pinged from our node of its family (BEP 32: the pair's, for the other family).</summary>
    public Task AddNodeAsync(IPEndPoint endPoint, CancellationToken ct) =>
        (endPoint.AddressFamily != node.LocalEndPoint.AddressFamily && node.Pair is { } pair ? pair : node).PingAsync(endPoint, ct);
}
