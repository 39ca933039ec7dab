using Peerway.Net;

namespace Peerway.Torrent.Swarm;

/// <summary>What carries each connection (uTP, TCP, ...).</summary>
public sealed partial class TorrentSession
{
    /// <summary>The transport of each registered connection.</summary>
    internal IReadOnlyList<StreamTransportKind> ConnectionTransports()
    {
        lock (_gate) return _connections.Select(c => c.Transport).ToList();
    }
}
