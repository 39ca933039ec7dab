using System.Buffers;
using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Peerway.Core;
using Peerway.Torrent.Trackers;

namespace Peerway.Node;

/// <summary>
/// The WebSocket tracker (WebTorrent's signalling, as bittorrent-tracker's server speaks it): a WebSocket upgrade on the
/// HTTP port, JSON announces whose offers are relayed to other WebSocket peers of the swarm and whose answers go back to
/// the offerer. Bounded: connections, message size, offers per announce, messages per second per connection, pending
/// offers (each expires after <see cref="TrackerServerOptions.OfferTimeout"/>); a bad message closes that socket only.
/// </summary>
public sealed partial class TrackerServer
{
    /// <summary>RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key.</summary>
    private const string WebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    /// <summary>Messages queued for one slow WebSocket before it is dropped.</summary>
    private const int WebSocketOutbox = 64;

    /// <summary>Most torrents one WebSocket may announce (WebTorrent shares one socket per tracker for all its torrents).</summary>
    private const int MaxSwarmsPerWebSocket = 256;

    private readonly Dictionary<NodeId, Dictionary<NodeId, WsPeer>> _wsSwarms = [];
    private readonly Dictionary<NodeId, PendingOffer> _pendingOffers = [];
    private int _wsConnections;

    /// <summary>WebSocket connections open now.</summary>
    public int WebSocketConnections => Volatile.Read(ref _wsConnections);

    private sealed record WsPeer(WsClient Client, long Left, DateTimeOffset Seen);

    /// <summary>An offer relayed from <paramref name="From"/> to <paramref name="To"/>: only <paramref name="To"/> may answer it, once.</summary>
    private sealed record PendingOffer(NodeId InfoHash, NodeId From, NodeId To, DateTimeOffset Expires);

    private sealed class WsClient(WebSocket socket, IPEndPoint remote)
    {
        public WebSocket Socket { get; } = socket;

        public IPEndPoint Remote { get; } = remote;

        public Channel<byte[]> Outbox { get; } = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(WebSocketOutbox) { SingleReader = true });

        /// <summary>The swarms (info-hash, peer id) this socket announced in.</summary>
        public HashSet<(NodeId InfoHash, NodeId PeerId)> Joined { get; } = [];

        public DateTimeOffset WindowStart { get; set; }

        public int WindowMessages { get; set; }
    }

    private static bool IsWebSocketUpgrade(ReadOnlySpan<byte> head, out string key)
    {
        key = string.Empty;
        var text = Encoding.ASCII.GetString(head);
        var upgrade = false;
        foreach (var line in text.Split("\r\n").Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0) continue;
            var name = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            if (name.Equals("Upgrade", StringComparison.OrdinalIgnoreCase)) upgrade = value.Equals("websocket", StringComparison.OrdinalIgnoreCase);
            else if (name.Equals("Sec-WebSocket-Key", StringComparison.OrdinalIgnoreCase)) key = value;
        }

        return upgrade && key.Length > 0;
    }

    private async Task ServeWebSocketAsync(Stream stream, string key, IPEndPoint remote, CancellationToken ct)
    {
        if (Interlocked.Increment(ref _wsConnections) > _options.MaxWebSocketConnections)
        {
            Interlocked.Decrement(ref _wsConnections);
            _log.LogInformation("tracker: WebSocket from {Remote} refused, {Max} connections open", remote, _options.MaxWebSocketConnections);
            await stream.WriteAsync("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), ct).ConfigureAwait(false);
            return;
        }

        try
        {
            // RFC 6455 §4.2.2: Sec-WebSocket-Accept is base64(SHA-1(key + GUID)).
            var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + WebSocketGuid)));
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"), ct).ConfigureAwait(false);
            using var ws = WebSocket.CreateFromStream(stream, new WebSocketCreationOptions
            {
                IsServer = true,
                KeepAliveInterval = TimeSpan.FromSeconds(30),
                KeepAliveTimeout = TimeSpan.FromSeconds(30),
            });
            var client = new WsClient(ws, remote) { WindowStart = _time.GetUtcNow() };
            var writer = WriteLoopAsync(client, ct);
            CloseReason? reason;
            try
            {
                reason = await ReadLoopAsync(client, ct).ConfigureAwait(false);
            }
            finally
            {
                Leave(client);
                client.Outbox.Writer.TryComplete();
                await writer.ConfigureAwait(false);
            }

            if (reason is { } r && ws.State == WebSocketState.Open)
            {
                _log.LogInformation("tracker: closing WebSocket {Remote}: {Reason}", remote, r.Description);
                using var close = CancellationTokenSource.CreateLinkedTokenSource(ct);
                close.CancelAfter(TimeSpan.FromSeconds(2));
                await ws.CloseOutputAsync(r.Status, r.Description, close.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException)
        {
            _log.LogDebug("tracker: WebSocket {Remote} ended: {Message}", remote, ex.Message);
        }
        finally
        {
            Interlocked.Decrement(ref _wsConnections);
        }
    }

    private readonly record struct CloseReason(WebSocketCloseStatus Status, string Description);

    /// <summary>Reads messages until the peer closes (null) or sends something that closes the socket (the reason).</summary>
    private async Task<CloseReason?> ReadLoopAsync(WsClient client, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(WebSocketTrackerCodec.MaxMessageLength);
        try
        {
            while (true)
            {
                var n = 0;
                ValueWebSocketReceiveResult r;
                do
                {
                    if (n == WebSocketTrackerCodec.MaxMessageLength) return new CloseReason(WebSocketCloseStatus.MessageTooBig, "message too large");
                    r = await client.Socket.ReceiveAsync(buffer.AsMemory(n, WebSocketTrackerCodec.MaxMessageLength - n), ct).ConfigureAwait(false);
                    n += r.Count;
                }
                while (!r.EndOfMessage && r.MessageType != WebSocketMessageType.Close);

                if (r.MessageType == WebSocketMessageType.Close) return null;
                var now = _time.GetUtcNow();
                if (now - client.WindowStart >= TimeSpan.FromSeconds(1))
                {
                    client.WindowStart = now;
                    client.WindowMessages = 0;
                }

                if (++client.WindowMessages > _options.MaxWebSocketMessagesPerSecond) return new CloseReason(WebSocketCloseStatus.PolicyViolation, "too many messages");
                if (!WebSocketTrackerCodec.TryDecode(buffer.AsSpan(0, n), out var message, out var error))
                {
                    return new CloseReason(WebSocketCloseStatus.InvalidPayloadData, $"bad message: {error}");
                }

                if (OnWebSocketMessage(client, message!) is { } reason) return new CloseReason(WebSocketCloseStatus.PolicyViolation, reason);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task WriteLoopAsync(WsClient client, CancellationToken ct)
    {
        try
        {
            await foreach (var message in client.Outbox.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                await client.Socket.SendAsync(message, WebSocketMessageType.Text, endOfMessage: true, ct).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException)
        {
            // The read loop sees the same failure and ends the connection.
            client.Socket.Abort();
        }
    }

    /// <summary>Queues a message; a client whose queue is full is too slow and is dropped.</summary>
    private void Send(WsClient client, WebSocketTrackerMessage message)
    {
        if (client.Outbox.Writer.TryWrite(WebSocketTrackerCodec.Encode(message))) return;
        _log.LogInformation("tracker: WebSocket {Remote} does not read its messages; dropped", client.Remote);
        client.Outbox.Writer.TryComplete();
        client.Socket.Abort();
    }

    /// <summary>Handles one message; returns why the socket must close, or null.</summary>
    private string? OnWebSocketMessage(WsClient client, WebSocketTrackerMessage m)
    {
        if (m.Action == WebSocketTrackerAction.Scrape)
        {
            List<NodeId> hashes;
            lock (_gate)
            {
                hashes = m.ScrapeHashes.Count > 0 ? [.. m.ScrapeHashes] : _swarms.Keys.Concat(_wsSwarms.Keys).Distinct().Take(WebSocketTrackerCodec.MaxScrapeHashes).ToList();
            }

            var files = hashes.Distinct().Select(h =>
            {
                var (complete, incomplete, downloaded) = Scrape(h);
                return new WebSocketScrapeFile(h, complete, incomplete, downloaded);
            }).ToList();
            Send(client, new WebSocketTrackerMessage { Action = WebSocketTrackerAction.Scrape, Files = files });
            return null;
        }

        if (m.InfoHash is not { } hash || m.PeerId is not { } peerId) return "announce without info_hash or peer_id";
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            Announces++;
            PurgeOffers(now);
            if (m.Answer is not null) return RelayAnswer(client, hash, peerId, m, now);
            if (!_wsSwarms.TryGetValue(hash, out var swarm))
            {
                if (_wsSwarms.Count + _swarms.Count >= _options.MaxTorrents)
                {
                    Send(client, new WebSocketTrackerMessage { InfoHash = hash, Failure = "too many torrents" });
                    return null;
                }

                _wsSwarms[hash] = swarm = [];
            }

            foreach (var stale in swarm.Where(p => now - p.Value.Seen > 2 * _options.WebSocketInterval).Select(p => p.Key).ToList()) swarm.Remove(stale);
            if (swarm.TryGetValue(peerId, out var existing) && existing.Client != client)
            {
                // A peer id belongs to the socket that announced it first: no one else can take its offers and answers.
                Send(client, new WebSocketTrackerMessage { InfoHash = hash, Failure = "peer_id in use on another connection" });
                return null;
            }

            if (m.Event == AnnounceEvent.Stopped)
            {
                swarm.Remove(peerId);
                client.Joined.Remove((hash, peerId));
            }
            else
            {
                if (!client.Joined.Contains((hash, peerId)) && client.Joined.Count >= MaxSwarmsPerWebSocket) return "too many torrents on one connection";
                swarm[peerId] = new WsPeer(client, m.Left ?? long.MaxValue, now);
                client.Joined.Add((hash, peerId));
                if (m.Event == AnnounceEvent.Completed) _completed[hash] = _completed.GetValueOrDefault(hash) + 1;
            }

            var (complete, incomplete) = WsCounts(hash, now);
            Send(client, new WebSocketTrackerMessage
            {
                InfoHash = hash,
                Interval = (int)Math.Max(1, _options.WebSocketInterval.TotalSeconds),
                Complete = complete,
                Incomplete = incomplete,
            });
            if (m.Event != AnnounceEvent.Stopped) RelayOffers(hash, peerId, swarm, m.Offers, now);
        }

        return null;
    }

    /// <summary>Each offer to a different random WebSocket peer of the swarm (bittorrent-tracker: offer i to peer i).</summary>
    private void RelayOffers(NodeId hash, NodeId from, Dictionary<NodeId, WsPeer> swarm, IReadOnlyList<WebSocketOffer> offers, DateTimeOffset now)
    {
        if (offers.Count == 0) return;
        var targets = swarm.Where(p => p.Key != from).OrderBy(_ => Random.Shared.Next())
            .Take(Math.Min(offers.Count, _options.MaxOffersPerAnnounce)).ToList();
        for (var i = 0; i < targets.Count; i++)
        {
            if (_pendingOffers.Count >= _options.MaxPendingOffers)
            {
                _log.LogInformation("tracker: {Count} offers pending; offers from {Peer} dropped", _pendingOffers.Count, from);
                return;
            }

            var offer = offers[i];
            if (!_pendingOffers.TryAdd(offer.OfferId, new PendingOffer(hash, from, targets[i].Key, now + _options.OfferTimeout))) continue;
            Send(targets[i].Value.Client, new WebSocketTrackerMessage { InfoHash = hash, PeerId = from, Offer = offer.Offer, OfferId = offer.OfferId });
        }
    }

    /// <summary>An answer goes to the offerer only when it answers an offer relayed to the answerer and not yet expired.</summary>
    private string? RelayAnswer(WsClient client, NodeId hash, NodeId peerId, WebSocketTrackerMessage m, DateTimeOffset now)
    {
        if (m.OfferId is not { } offerId || m.ToPeerId is not { } to) return "answer without offer_id or to_peer_id";
        if (!_wsSwarms.TryGetValue(hash, out var swarm) || !swarm.TryGetValue(peerId, out var self) || self.Client != client ||
            !_pendingOffers.TryGetValue(offerId, out var pending) || pending.InfoHash != hash || pending.From != to || pending.To != peerId ||
            pending.Expires < now || !swarm.TryGetValue(to, out var offerer))
        {
            _log.LogDebug("tracker: answer from {Remote} for an unknown or expired offer dropped", client.Remote);
            return null;
        }

        _pendingOffers.Remove(offerId);
        Send(offerer.Client, new WebSocketTrackerMessage { InfoHash = hash, PeerId = peerId, Answer = m.Answer, OfferId = offerId });
        return null;
    }

    private void PurgeOffers(DateTimeOffset now)
    {
        foreach (var expired in _pendingOffers.Where(p => p.Value.Expires < now).Select(p => p.Key).ToList()) _pendingOffers.Remove(expired);
    }

    private (int Complete, int Incomplete) WsCounts(NodeId hash, DateTimeOffset now)
    {
        if (!_wsSwarms.TryGetValue(hash, out var swarm)) return (0, 0);
        var live = swarm.Values.Where(p => now - p.Seen <= 2 * _options.WebSocketInterval).ToList();
        return (live.Count(p => p.Left == 0), live.Count(p => p.Left > 0));
    }

    /// <summary>A closed socket leaves every swarm it joined (bittorrent-tracker: a synthetic "stopped").</summary>
    private void Leave(WsClient client)
    {
        lock (_gate)
        {
            foreach (var (hash, peerId) in client.Joined)
            {
                if (_wsSwarms.TryGetValue(hash, out var swarm) && swarm.TryGetValue(peerId, out var p) && p.Client == client)
                {
                    swarm.Remove(peerId);
                    if (swarm.Count == 0) _wsSwarms.Remove(hash);
                }
            }

            client.Joined.Clear();
        }
    }
}
