using Peerway.Core;

namespace Peerway.Torrent;

/// <summary>What peer sources outside the client (BEP 14 Local Service Discovery) need of it.</summary>
public sealed partial class TorrentClient
{
    /// <summary>Raised when a torrent's engine has started (added or resumed), on the thread that started it.</summary>
    internal event Action<TorrentHandle>? SessionStarted;

    /// <summary>The torrent with this info-hash, if added.</summary>
    internal TorrentHandle? Find(NodeId infoHash)
    {
        lock (_gate) return _torrents.GetValueOrDefault(infoHash);
    }
}
