using Peerway.Net;

namespace Peerway.Torrent.Swarm;

public sealed partial class TorrentSession
{
    /// <summary>
    /// Runs a connection that no transport of ours dialled or accepted — a WebRTC data channel opened through a WebSocket
    /// tracker's offer and answer (WebTorrent) — with the ordinary wire: handshake (sent first when
    /// <paramref name="outgoing"/>), BEP 10, ut_metadata, pieces. Such peers are never given out by PEX (they have no
    /// address another client could dial, as WebTorrent does). The session owns the connection from here; false when it
    /// is shutting down (the connection is then disposed).
    /// </summary>
    public async Task<bool> AddConnectionAsync(IStreamConnection connection, bool outgoing)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var conn = new PeerConnection(connection, outgoing, _time, pump: Scheduler.Pipes);
        lock (_gate)
        {
            if (_disposed == 0)
            {
                _tasks.Add(RunConnectionAsync(conn, _cts.Token));
                return true;
            }
        }

        await conn.DisposeAsync().ConfigureAwait(false);
        return false;
    }
}
