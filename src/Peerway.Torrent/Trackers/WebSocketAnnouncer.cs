using Microsoft.Extensions.Logging;
using Peerway.Core;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Trackers;

/// <summary>
/// Announces one session to one WebSocket tracker (WebTorrent's protocol): keeps the socket open, sends offers made by
/// the <see cref="IWebRtcPeerSource"/> with each announce, answers relayed offers, and gives relayed answers to the
/// offer they answer. Offers nobody answered expire after <see cref="OfferTimeout"/> (bittorrent-tracker: 50 s).
/// </summary>
internal sealed class WebSocketAnnouncer : IAsyncDisposable
{
    /// <summary>bittorrent-tracker's client: an offer unanswered for 50 s is destroyed.</summary>
    public static readonly TimeSpan OfferTimeout = TimeSpan.FromSeconds(50);

    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(15);

    private readonly Uri _url;
    private readonly TorrentSession _session;
    private readonly IWebRtcPeerSource? _webrtc;
    private readonly WebSocketConnector? _connector;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly Dictionary<NodeId, (IWebRtcOffer Offer, DateTimeOffset Expires)> _offers = [];
    private readonly List<Task> _signalling = [];
    private readonly CancellationTokenSource _cts = new();
    private WebSocketTrackerClient? _client;

    public WebSocketAnnouncer(Uri url, TorrentSession session, IWebRtcPeerSource? webrtc, WebSocketConnector? connector, TimeProvider time, ILogger log)
    {
        _url = url;
        _session = session;
        _webrtc = webrtc;
        _connector = connector;
        _time = time;
        _log = log;
    }

    public async Task<TrackerResult> AnnounceAsync(AnnounceRequest request, CancellationToken ct)
    {
        WebSocketTrackerClient client;
        try
        {
            client = await ConnectedAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is System.Net.WebSockets.WebSocketException or IOException or System.Net.Http.HttpRequestException)
        {
            return new TrackerResult(null, TrackerError.Unreachable, ex.Message);
        }

        await ExpireOffersAsync().ConfigureAwait(false);
        var offers = new List<WebSocketOffer>();
        // bittorrent-tracker's client sends no offers with "stopped" or "completed".
        if (_webrtc is not null && request.Event is not (AnnounceEvent.Stopped or AnnounceEvent.Completed))
        {
            for (var i = 0; i < _webrtc.OffersPerAnnounce; i++)
            {
                var offer = await _webrtc.CreateOfferAsync(_session, ct).ConfigureAwait(false);
                var id = NodeId.Random();
                lock (_gate) _offers[id] = (offer, _time.GetUtcNow() + OfferTimeout);
                offers.Add(new WebSocketOffer(id, offer.Description));
            }
        }

        var message = new WebSocketTrackerMessage
        {
            InfoHash = request.InfoHash,
            PeerId = request.PeerId,
            Event = request.Event,
            Left = request.Left,
            Uploaded = request.Uploaded,
            Downloaded = request.Downloaded,
            NumWant = offers.Count,
            Offers = offers,
        };
        return await client.AnnounceAsync(message, ReplyTimeout, _time, ct).ConfigureAwait(false);
    }

    private async Task<WebSocketTrackerClient> ConnectedAsync(CancellationToken ct)
    {
        if (_client is { Closed.IsCompleted: false } open) return open;
        if (_client is not null) await _client.DisposeAsync().ConfigureAwait(false);
        _client = null;
        var client = await WebSocketTrackerClient.ConnectAsync(_url, _connector, _log, ct).ConfigureAwait(false);
        client.Signal += OnSignal;
        _client = client;
        return client;
    }

    private void OnSignal(WebSocketTrackerMessage m)
    {
        if (m.InfoHash != _session.InfoHash || m.PeerId is not { } from || from == _session.PeerId || m.OfferId is not { } offerId) return;
        if (m.Offer is { } offer)
        {
            if (_webrtc is null) return;
            lock (_gate)
            {
                _signalling.RemoveAll(t => t.IsCompleted);
                _signalling.Add(AnswerAsync(from, offerId, offer, _cts.Token));
            }
        }
        else if (m.Answer is { } answer)
        {
            IWebRtcOffer? mine;
            lock (_gate)
            {
                if (_offers.Remove(offerId, out var entry)) mine = entry.Offer;
                else mine = null;
            }

            if (mine is null)
            {
                _log.LogDebug("WebSocket tracker {Url}: an answer to no offer of ours ignored", _url);
                return;
            }

            mine.Answered(from, answer);
            lock (_gate)
            {
                _signalling.RemoveAll(t => t.IsCompleted);
                _signalling.Add(mine.DisposeAsync().AsTask());
            }
        }
    }

    private async Task AnswerAsync(NodeId from, NodeId offerId, RtcSessionDescription offer, CancellationToken ct)
    {
        try
        {
            var answer = await _webrtc!.AnswerAsync(_session, from, offer, ct).ConfigureAwait(false);
            if (answer is null || _client is not { } client) return;
            await client.SendAsync(new WebSocketTrackerMessage
            {
                InfoHash = _session.InfoHash,
                PeerId = _session.PeerId,
                ToPeerId = from,
                OfferId = offerId,
                Answer = answer,
            }, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or System.Net.WebSockets.WebSocketException or IOException or ObjectDisposedException)
        {
            _log.LogDebug("WebSocket tracker {Url}: answer to {Peer} not sent: {Message}", _url, from, ex.Message);
        }
    }

    private async Task ExpireOffersAsync()
    {
        List<IWebRtcOffer> expired;
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            expired = _offers.Where(o => o.Value.Expires <= now).Select(o => o.Value.Offer).ToList();
            foreach (var id in _offers.Where(o => o.Value.Expires <= now).Select(o => o.Key).ToList()) _offers.Remove(id);
        }

        foreach (var o in expired) await o.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync().ConfigureAwait(false);
        if (_client is not null) await _client.DisposeAsync().ConfigureAwait(false);
        Task[] pending;
        List<IWebRtcOffer> offers;
        lock (_gate)
        {
            pending = [.. _signalling];
            offers = _offers.Values.Select(o => o.Offer).ToList();
            _offers.Clear();
        }

        await Task.WhenAll(pending).ConfigureAwait(false);
        foreach (var o in offers) await o.DisposeAsync().ConfigureAwait(false);
        _cts.Dispose();
    }
}
