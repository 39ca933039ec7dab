using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Peerway.Net;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Swarm;

/// <summary>
/// BEP 55 hole punching over uTP, as libtorrent runs it: a peer whose direct dial failed, and which a connected peer
/// introduced through PEX, is asked of that peer with a <c>rendezvous</c>; a relay answers a rendezvous by sending
/// <c>connect</c> to both ends (or an error to the initiator), and each end that gets a <c>connect</c> dials the other
/// over uTP at once, so each NAT sees an outgoing packet before the other's arrives. The SYNs cross: each side may end
/// up with an incoming and an outgoing connection to the other, and the duplicate is dropped after the BitTorrent
/// handshake by the lower-peer-id rule (see <c>Register</c>), as libtorrent drops duplicate peer ids. Every method
/// named <c>...Locked</c> runs under <c>_gate</c>.
/// </summary>
public sealed partial class TorrentSession
{
    /// <summary>Most endpoints whose introducer (the connected peer whose PEX named it) is remembered.</summary>
    private const int MaxIntroduced = 1024;

    /// <summary>Most holepunch dials in flight at once: a peer sending <c>connect</c> storms cannot make us send SYNs at will.</summary>
    private const int MaxHolepunchDials = 8;

    /// <summary>Endpoints learned through PEX, and the connection that named them (libtorrent's find_introducer).</summary>
    private readonly Dictionary<IPEndPoint, PeerConnection> _introducedBy = [];

    /// <summary>Endpoints a rendezvous was sent for (once each, until the set is full and starts over).</summary>
    private readonly HashSet<IPEndPoint> _rendezvousSent = [];

    /// <summary>Endpoints being dialled because of a <c>connect</c>.</summary>
    private readonly HashSet<IPEndPoint> _holepunchDials = [];

    /// <summary>Raised (outside the lock) when a dial to a peer failed (before any handshake).</summary>
    internal event Action<IPEndPoint>? DialFailed;

    /// <summary>Raised (outside the lock) when a dial started by a BEP 55 <c>connect</c> reached the peer over uTP.</summary>
    internal event Action<IPEndPoint>? HolepunchConnected;

    /// <summary>The uTP transport to punch through (the client's, or our own when it is uTP); null: no hole punching.</summary>
    private IStreamTransport? HolepunchTransport =>
        !_options.Holepunch ? null
        : _transport is TransportDialer dialer ? dialer.Utp : _transport.Kind == StreamTransportKind.Utp ? _transport : null;

    /// <summary>Relays, rendezvous and connects sent and received (for tests and diagnostics).</summary>
    internal HolepunchStats HolepunchCounters { get; } = new();

    private void NoteIntroducedLocked(PeerConnection from, IEnumerable<IPEndPoint> peers)
    {
        foreach (var p in peers)
        {
            if (_introducedBy.Count >= MaxIntroduced && !_introducedBy.ContainsKey(p)) _introducedBy.Clear();
            _introducedBy[p] = from;
        }
    }

    /// <summary>
    /// After a failed dial (libtorrent: a uTP connect that failed, to a peer an introducer knows): asks the peer that
    /// introduced <paramref name="endPoint"/> through PEX, when it is still connected and speaks ut_holepunch, to relay.
    /// </summary>
    private void RequestRendezvousLocked(IPEndPoint endPoint)
    {
        if (DialFailed is { } failed) ThreadPool.UnsafeQueueUserWorkItem(_ => failed(endPoint), null);
        if (HolepunchTransport is null || !_introducedBy.TryGetValue(endPoint, out var relay) || !_connections.Contains(relay)) return;
        var id = relay.Extended?.ExtensionId(HolepunchCodec.ExtensionName) ?? 0;
        if (id == 0) return;
        if (_rendezvousSent.Count >= MaxIntroduced) _rendezvousSent.Clear();
        if (!_rendezvousSent.Add(endPoint)) return;
        _log.LogDebug("asking {Relay} to relay a holepunch to {Peer}", relay, endPoint);
        HolepunchCounters.RendezvousSent++;
        SendHolepunch(relay, id, new HolepunchMessage(HolepunchMessageType.Rendezvous, endPoint, HolepunchError.None));
    }

    private static void SendHolepunch(PeerConnection to, byte id, HolepunchMessage message)
    {
        var payload = HolepunchCodec.Encode(message);
        to.Send(w => PeerWire.WriteExtended(w, id, payload));
    }

    /// <summary>BEP 55: a <c>ut_holepunch</c> message from <paramref name="conn"/>; an undecodable one drops the peer.</summary>
    private PeerWireError OnHolepunchLocked(PeerConnection conn, ReadOnlySpan<byte> payload)
    {
        if (HolepunchCodec.TryDecode(payload, out var message) != HolepunchDecodeError.None) return PeerWireError.BadExtension;
        switch (message.Type)
        {
            case HolepunchMessageType.Rendezvous:
                RelayLocked(conn, message.EndPoint);
                break;
            case HolepunchMessageType.Connect:
                HolepunchCounters.ConnectsReceived++;
                StartHolepunchDialLocked(Normalize(message.EndPoint));
                break;
            default:
                HolepunchCounters.ErrorsReceived++;
                _log.LogDebug("{Relay} cannot relay a holepunch to {Peer}: {Error}", conn, message.EndPoint, message.Error);
                break;
        }

        return PeerWireError.None;
    }

    /// <summary>
    /// BEP 55, the relay: "connect" to both the initiator (naming the target) and the target (naming the initiator),
    /// or an error to the initiator. The target is a connected peer whose address (for uTP, the NAT's mapping the
    /// packets come from) or listen endpoint is the one named; the initiator is named by its uTP address when it came
    /// over uTP (the mapping a punch must reach), else by its listen endpoint.
    /// </summary>
    private void RelayLocked(PeerConnection initiator, IPEndPoint named)
    {
        var id = initiator.Extended?.ExtensionId(HolepunchCodec.ExtensionName) ?? 0;
        if (id == 0) return; // it did not say it speaks ut_holepunch: nowhere to send the answer
        var target = Normalize(named);
        var error = HolepunchError.None;
        PeerConnection? peer = null;
        if (target.Port == 0 || target.Address.Equals(IPAddress.Any) || target.Address.Equals(IPAddress.Broadcast) || IsMulticast(target.Address))
        {
            error = HolepunchError.NoSuchPeer;
        }
        else if (IsSelf(initiator, target))
        {
            error = HolepunchError.NoSelf;
        }
        else if ((peer = _connections.Find(c => c != initiator && (target.Equals(Normalize(c.Remote)) || (c.ListenEndPoint is { } l && target.Equals(Normalize(l)))))) is null)
        {
            error = HolepunchError.NotConnected;
        }
        else if ((peer.Extended?.ExtensionId(HolepunchCodec.ExtensionName) ?? 0) == 0)
        {
            error = HolepunchError.NoSupport;
        }

        if (error != HolepunchError.None)
        {
            _log.LogDebug("holepunch rendezvous from {Peer} for {Target}: {Error}", initiator, named, error);
            HolepunchCounters.ErrorsSent++;
            SendHolepunch(initiator, id, new HolepunchMessage(HolepunchMessageType.Error, named, error));
            return;
        }

        HolepunchCounters.Relayed++;
        _log.LogDebug("relaying a holepunch between {Initiator} and {Target}", initiator, peer);
        SendHolepunch(initiator, id, new HolepunchMessage(HolepunchMessageType.Connect, PunchEndPoint(peer!), HolepunchError.None));
        SendHolepunch(peer!, peer!.Extended!.ExtensionId(HolepunchCodec.ExtensionName), new HolepunchMessage(HolepunchMessageType.Connect, PunchEndPoint(initiator), HolepunchError.None));
    }

    /// <summary>Where a punch reaches <paramref name="c"/>: the uTP address its packets come from, else its listen endpoint.</summary>
    private static IPEndPoint PunchEndPoint(PeerConnection c) =>
        Normalize(c.Transport == StreamTransportKind.Utp ? c.Remote : c.ListenEndPoint ?? c.Remote);

    /// <summary>The named endpoint is ours: our listen port at the address the initiator says it sees us at (BEP 10 "yourip"), or a local one.</summary>
    private bool IsSelf(PeerConnection initiator, IPEndPoint target) =>
        target.Port == ListenPort &&
        (IPAddress.IsLoopback(target.Address) || (initiator.Extended?.YourIp is { } seen && Normalize(new IPEndPoint(seen, 0)).Address.Equals(target.Address)));

    private static bool IsMulticast(IPAddress a) =>
        a.AddressFamily == AddressFamily.InterNetwork ? (a.GetAddressBytes()[0] & 0xF0) == 0xE0 : a.IsIPv6Multicast;

    private static IPEndPoint Normalize(IPEndPoint e) => e.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(e.Address.MapToIPv4(), e.Port) : e;

    /// <summary>BEP 55: on <c>connect</c>, a uTP dial to the named peer at once (its SYN opens our NAT for the other's).</summary>
    private void StartHolepunchDialLocked(IPEndPoint endPoint)
    {
        if (HolepunchTransport is not { } utp || _disposed != 0 || _bannedEndPoints.Contains(endPoint) || IsConnectedTo(endPoint)) return;
        if (_holepunchDials.Count >= MaxHolepunchDials || !_holepunchDials.Add(endPoint)) return;
        _tasks.Add(HolepunchDialAsync(endPoint, utp, _cts.Token));
    }

    private async Task HolepunchDialAsync(IPEndPoint endPoint, IStreamTransport utp, CancellationToken ct)
    {
        await Task.Yield(); // not under _gate
        PeerConnection conn;
        try
        {
            conn = await ConnectPeerAsync(endPoint, utp, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or IOException)
        {
            // The other side's SYN may have got through instead: its incoming connection is the one kept.
            _log.LogDebug("holepunch dial to {Peer} failed: {Message}", endPoint, ex.Message);
            lock (_gate) _holepunchDials.Remove(endPoint);
            return;
        }

        lock (_gate)
        {
            _holepunchDials.Remove(endPoint);
            _redials.Remove(endPoint);
        }

        _log.LogDebug("holepunch: reached {Peer} over uTP", endPoint);
        HolepunchConnected?.Invoke(endPoint);
        await RunConnectionAsync(conn, ct).ConfigureAwait(false);
    }
}

/// <summary>BEP 55 counters of one torrent (guarded by the session lock; read for tests and diagnostics).</summary>
internal sealed class HolepunchStats
{
    public int RendezvousSent { get; set; }

    public int Relayed { get; set; }

    public int ErrorsSent { get; set; }

    public int ConnectsReceived { get; set; }

    public int ErrorsReceived { get; set; }
}
