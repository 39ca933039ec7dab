using Peerway.Core;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Trackers;

/// <summary>
/// Makes WebRTC peer connections for the WebSocket tracker client (WebTorrent's transport). Implemented above the
/// torrent engine (Peerway.Torrent does not reference WebRTC): a connection that opens is handed to the session as a
/// stream carrying the ordinary BitTorrent wire.
/// </summary>
public interface IWebRtcPeerSource
{
    /// <summary>Offers created for each announce (bittorrent-tracker's client makes at most 5).</summary>
    int OffersPerAnnounce { get; }

    /// <summary>Creates an offer, its ICE candidates gathered (WebTorrent does not trickle through trackers).</summary>
    ValueTask<IWebRtcOffer> CreateOfferAsync(TorrentSession session, CancellationToken cancellationToken);

    /// <summary>Answers an offer the tracker relayed from <paramref name="remotePeerId"/>; the connection, once open,
    /// joins <paramref name="session"/>. Null: the offer is not answered (unusable, or too many peers).</summary>
    ValueTask<RtcSessionDescription?> AnswerAsync(TorrentSession session, NodeId remotePeerId, RtcSessionDescription offer, CancellationToken cancellationToken);
}

/// <summary>One outstanding offer. Disposed by the announcer once answered or expired.</summary>
public interface IWebRtcOffer : IAsyncDisposable
{
    /// <summary>The offer, every ICE candidate in it.</summary>
    RtcSessionDescription Description { get; }

    /// <summary>The remote's answer arrived: the source connects and hands the connection to the session. The connection
    /// outlives this offer object.</summary>
    void Answered(NodeId remotePeerId, RtcSessionDescription answer);
}
