using System.Net;
using Peerway.Core;

namespace Peerway.Torrent;

/// <summary>
/// The DHT as a <see cref="TorrentClient"/> needs it (BEP 5): a peer source that also makes us findable, and a place
/// for the DHT nodes peers name in PORT messages. The node behind it is the caller's (it may serve other uses).
/// </summary>
public interface ITorrentDht
{
    /// <summary>Our DHT node's UDP port, sent to peers in the BEP 5 PORT message.</summary>
    int Port { get; }

    /// <summary>get_peers for <paramref name="infoHash"/>, then announce_peer with <paramref name="port"/> to the closest
    /// nodes that gave a token; returns the peers found.</summary>
    Task<IReadOnlyList<IPEndPoint>> AnnounceAsync(NodeId infoHash, int port, CancellationToken ct);

    /// <summary>A DHT node a peer told us of (BEP 5 PORT): pinged, and added to the routing table if it answers.</summary>
    Task AddNodeAsync(IPEndPoint node, CancellationToken ct);
}
