using System.Net;
using Microsoft.Extensions.Logging;

namespace Peerway.Torrent.Swarm;

/// <summary>
/// Connection admission and limits: who may connect, and who leaves when the session is full, so that idle
/// connections (a handshake, then nothing) cannot keep out a peer that wants data. Modelled on libtorrent's
/// <c>handshake_timeout</c>, <c>inactivity_timeout</c>, <c>allow_multiple_connections_per_ip</c> and
/// <c>connections_limit</c> (which replaces its lowest-ranked peer when full). Every method here runs under <c>_gate</c>.
/// </summary>
public sealed partial class TorrentSession
{
    /// <summary>Raised (outside the lock) when an incoming connection was admitted and its handshake timeout started.</summary>
    internal event Action<IPEndPoint>? IncomingAdmitted;

    /// <summary>How useful a connected peer is, least useful first: the order in which peers make room.</summary>
    private enum PeerUse
    {
        /// <summary>Neither interested nor interesting, and no payload moved in the rate window.</summary>
        Idle,

        /// <summary>One side wants data from the other, but no payload moved in the rate window (e.g. choked, waiting).</summary>
        Interested,

        /// <summary>Payload moved either way in the rate window: never dropped to make room.</summary>
        Transferring,
    }

    private static PeerUse UseOf(PeerConnection c) =>
        c.DownloadRate > 0 || c.UploadRate > 0 ? PeerUse.Transferring
        : c.PeerInterested || c.AmInterested ? PeerUse.Interested
        : PeerUse.Idle;

    private static IPAddress IpOf(PeerConnection c) => c.Remote.Address.IsIPv4MappedToIPv6 ? c.Remote.Address.MapToIPv4() : c.Remote.Address;

    private int CountFromLocked(IPAddress ip)
    {
        var n = 0;
        foreach (var c in _connections)
        {
            if (IpOf(c).Equals(ip)) n++;
        }

        return n;
    }

    /// <summary>
    /// Makes room for a peer that has completed its handshake; false: it is refused. The per-IP limit holds for both
    /// directions. At <see cref="TorrentSessionOptions.MaxConnections"/>, the least useful connected peer leaves: an idle
    /// one (the one idle longest) before one that is interested but waiting (the one without payload longest); a peer
    /// moving payload is never dropped for a newcomer, so when every peer is, the newcomer is refused. Under a
    /// <see cref="TorrentClient"/> the client's connection limit holds too: when it is reached, this torrent makes room
    /// from its own peers the same way (a torrent never drops another torrent's peer), or refuses.
    /// </summary>
    private bool MakeRoomLocked(PeerConnection conn)
    {
        if (CountFromLocked(IpOf(conn)) >= _options.MaxConnectionsPerIp)
        {
            _log.LogDebug("refusing {Peer}: {Limit} connections from its address", conn, _options.MaxConnectionsPerIp);
            return false;
        }

        if (_connections.Count < _options.MaxConnections && !_shared.Connections.IsFull) return true;
        if (LeastUsefulLocked() is not { } victim)
        {
            _log.LogDebug("refusing {Peer}: {Count} peers connected, all moving payload", conn, _connections.Count);
            return false;
        }

        EvictLocked(victim, "the connection limit is reached and a new peer arrived");
        return true;
    }

    private PeerConnection? LeastUsefulLocked()
    {
        PeerConnection? victim = null;
        var victimUse = PeerUse.Transferring;
        var victimSince = DateTimeOffset.MaxValue;
        foreach (var c in _connections)
        {
            var use = UseOf(c);
            if (use == PeerUse.Transferring) continue;
            var since = use == PeerUse.Idle ? c.LastInterest : c.LastTransfer;
            // Strictly less: on a tie the earlier-registered peer goes.
            if (use < victimUse || (use == victimUse && since < victimSince))
            {
                victim = c;
                victimUse = use;
                victimSince = since;
            }
        }

        return victim;
    }

    private bool WantsDataLocked() => !(_have?.IsComplete ?? false);

    private void EvictLocked(PeerConnection victim, string reason)
    {
        _log.LogDebug("dropping {Peer}: {Reason}", victim, reason);
        victim.Evicted = true;
        Unregister(victim);
        victim.Close();
    }

    /// <summary>
    /// Each tick: notes when each peer was last interested or interesting and last moved payload, and applies
    /// libtorrent's <c>inactivity_timeout</c> rule (peer_connection::second_tick): while every connection slot is used,
    /// a peer that has been neither interested nor interesting for <see cref="TorrentSessionOptions.InactivityTimeout"/>
    /// is closed. Not before the metadata is known (no one is interesting then).
    /// </summary>
    private void UpdateActivityLocked(DateTimeOffset now)
    {
        var snapshot = SnapshotConnectionsLocked();
        foreach (var c in snapshot)
        {
            if (c.PeerInterested || c.AmInterested) c.LastInterest = now;
            if (c.DownloadRate > 0 || c.UploadRate > 0) c.LastTransfer = now;
            else if (_info is not null && (_connections.Count >= _options.MaxConnections || _shared.Connections.IsFull) && now - c.LastInterest > _options.InactivityTimeout)
            {
                EvictLocked(c, "neither interested nor interesting for the inactivity timeout");
            }
        }

        ReturnSnapshot(snapshot);
    }
}
