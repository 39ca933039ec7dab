using System.Net;
using System.Net.Sockets;
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
    /// <summary>Incoming connections accepted and still in the handshake (MSE included), oldest first.</summary>
    private readonly List<PendingIncoming> _handshaking = [];

    /// <summary>
    /// An accepted connection from admission until its BitTorrent handshake is read: first a bare socket (while MSE is
    /// negotiated), then its <see cref="PeerConnection"/>. Its fields change under <c>_gate</c> only.
    /// </summary>
    private sealed class PendingIncoming(Socket socket, IPEndPoint remote, DateTimeOffset opened)
    {
        public Socket Socket { get; } = socket;

        public IPEndPoint Remote { get; } = remote;

        public DateTimeOffset Opened { get; } = opened;

        public PeerConnection? Connection { get; private set; }

        public bool Closed { get; private set; }

        /// <summary>The connection built after MSE; false when this entry was closed meanwhile (the caller disposes it).</summary>
        public bool Attach(PeerConnection connection)
        {
            if (Closed) return false;
            Connection = connection;
            return true;
        }

        public void Close()
        {
            Closed = true;
            if (Connection is { } c) c.Close();
            else Socket.Dispose();
        }

        public override string ToString() => Remote.ToString();
    }

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

    private static IPAddress IpOf(PeerConnection c) => IpOf(c.Remote);

    private static IPAddress IpOf(IPEndPoint remote) => remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address;

    private int CountFromLocked(IPAddress ip, bool withHandshaking)
    {
        var n = 0;
        foreach (var c in _connections)
        {
            if (IpOf(c).Equals(ip)) n++;
        }

        if (!withHandshaking) return n;
        foreach (var p in _handshaking)
        {
            if (IpOf(p.Remote).Equals(ip)) n++;
        }

        return n;
    }

    /// <summary>
    /// A waiting handshake this old may be closed to let a newcomer start: a real peer sends its 68 bytes at once, so one
    /// still silent after a second is far more likely a connection that will never send them. Younger ones are left
    /// alone, so a burst of arrivals cannot close each other's handshakes before they are read.
    /// </summary>
    private static readonly TimeSpan HandshakeGrace = TimeSpan.FromSeconds(1);

    /// <summary>
    /// An accepted connection may start its handshake unless its address already has
    /// <see cref="TorrentSessionOptions.MaxConnectionsPerIp"/> connections (registered or handshaking). At most
    /// <see cref="TorrentSessionOptions.MaxConnections"/> handshakes wait at once; when that many wait, the oldest is
    /// closed for the newcomer if it has waited at least <see cref="HandshakeGrace"/>, else the newcomer is refused
    /// (a peer dialling us tries again later).
    /// </summary>
    private bool AdmitIncomingLocked(PendingIncoming conn)
    {
        if (_disposed != 0) return false;
        if (CountFromLocked(IpOf(conn.Remote), withHandshaking: true) >= _options.MaxConnectionsPerIp)
        {
            _log.LogDebug("refusing {Peer}: {Limit} connections from its address", conn, _options.MaxConnectionsPerIp);
            return false;
        }

        if (_handshaking.Count >= _options.MaxConnections)
        {
            var oldest = _handshaking[0];
            if (conn.Opened - oldest.Opened < HandshakeGrace)
            {
                _log.LogDebug("refusing {Peer}: {Count} handshakes already waiting", conn, _handshaking.Count);
                return false;
            }

            _handshaking.RemoveAt(0);
            _log.LogDebug("closing {Peer}: still in the handshake while {Count} others wait", oldest, _handshaking.Count);
            oldest.Close();
        }

        _handshaking.Add(conn);
        return true;
    }

    /// <summary>
    /// Makes room for a peer that has completed its handshake; false: it is refused. The per-IP limit holds for both
    /// directions. At <see cref="TorrentSessionOptions.MaxConnections"/>, the least useful connected peer leaves: an idle
    /// one (the one idle longest) before one that is interested but waiting (the one without payload longest); a peer
    /// moving payload is never dropped for a newcomer, so when every peer is, the newcomer is refused.
    /// </summary>
    private bool MakeRoomLocked(PeerConnection conn)
    {
        if (CountFromLocked(IpOf(conn), withHandshaking: false) >= _options.MaxConnectionsPerIp)
        {
            _log.LogDebug("refusing {Peer}: {Limit} connections from its address", conn, _options.MaxConnectionsPerIp);
            return false;
        }

        if (_connections.Count < _options.MaxConnections) return true;
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
        foreach (var c in _connections.ToList())
        {
            if (c.PeerInterested || c.AmInterested) c.LastInterest = now;
            if (c.DownloadRate > 0 || c.UploadRate > 0) c.LastTransfer = now;
            else if (_info is not null && _connections.Count >= _options.MaxConnections && now - c.LastInterest > _options.InactivityTimeout)
            {
                EvictLocked(c, "neither interested nor interesting for the inactivity timeout");
            }
        }
    }
}
