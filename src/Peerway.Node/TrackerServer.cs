using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;
using Peerway.Core.Bencoding;
using Peerway.Net;
using Peerway.Torrent.Trackers;
using Peerway.Torrent.Wire;

namespace Peerway.Node;

/// <summary>Tracker server settings.</summary>
public sealed record TrackerServerOptions
{
    public IPAddress ListenAddress { get; init; } = IPAddress.Any;

    public int Port { get; init; } = 6969;

    /// <summary>Re-announce interval we ask clients for.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Most peers returned per announce.</summary>
    public int MaxPeersPerResponse { get; init; } = 200;

    /// <summary>Most info-hashes tracked (bounded memory).</summary>
    public int MaxTorrents { get; init; } = 100_000;

    /// <summary>Re-announce interval given to WebSocket (WebTorrent) clients: shorter, as their offers go stale.</summary>
    public TimeSpan WebSocketInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Most WebSocket connections open at once; more are answered 503.</summary>
    public int MaxWebSocketConnections { get; init; } = 1000;

    /// <summary>Most offers of one announce relayed (bittorrent-tracker's client sends up to 5).</summary>
    public int MaxOffersPerAnnounce { get; init; } = 10;

    /// <summary>How long a relayed offer may be answered (bittorrent-tracker's client gives up on it after 50 s).</summary>
    public TimeSpan OfferTimeout { get; init; } = TimeSpan.FromSeconds(50);

    /// <summary>Most offers waiting for an answer, all connections together.</summary>
    public int MaxPendingOffers { get; init; } = 10_000;

    /// <summary>Messages per second one WebSocket may send before it is closed (an offer flood).</summary>
    public int MaxWebSocketMessagesPerSecond { get; init; } = 20;

    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegative(Port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Port, 65535);
        if (Interval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Interval), "must be positive");
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPeersPerResponse, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxTorrents, 1);
        if (WebSocketInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(WebSocketInterval), "must be positive");
        if (OfferTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(OfferTimeout), "must be positive");
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxWebSocketConnections, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxOffersPerAnnounce, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPendingOffers, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxWebSocketMessagesPerSecond, 1);
    }
}

/// <summary>
/// A tracker: HTTP announce and scrape (BEP 3, BEP 48 scrape, BEP 23 compact) on TCP, and optionally BEP 15 on a datagram
/// socket, and WebSocket (WebTorrent) announces on the HTTP port (TrackerServer.WebSocket.cs). Peers expire after two
/// intervals without an announce.
/// </summary>
public sealed partial class TrackerServer : IAsyncDisposable
{
    /// <summary>Longest HTTP request head accepted.</summary>
    private const int MaxRequestHead = 8 * 1024;

    private readonly TrackerServerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly Dictionary<NodeId, Dictionary<IPEndPoint, PeerEntry>> _swarms = [];
    private readonly Dictionary<NodeId, int> _completed = [];
    private readonly CancellationTokenSource _cts = new();
    private readonly byte[] _udpSecret = RandomNumberGenerator.GetBytes(16);
    private TcpListener? _listener;
    private Task? _accept;
    private IDatagramSocket? _udp;

    public TrackerServer(TrackerServerOptions options, TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _time = time;
        _log = logger ?? NullLogger.Instance;
    }

    private sealed record PeerEntry(IPEndPoint EndPoint, long Left, DateTimeOffset Seen);

    public int Port { get; private set; }

    public long Announces { get; private set; }

    public void Start(IDatagramSocket? udp = null)
    {
        _listener = new TcpListener(_options.ListenAddress, _options.Port);
        _listener.Start(256);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accept = AcceptLoopAsync(_cts.Token);
        if (udp is not null) StartUdp(udp);
    }

    /// <summary>Serves BEP 15 on <paramref name="udp"/> (typically bound to the same port number as HTTP).</summary>
    public void StartUdp(IDatagramSocket udp)
    {
        ArgumentNullException.ThrowIfNull(udp);
        _udp = udp;
        udp.Start(OnUdp);
    }

    /// <summary>Records an announce and returns the peers to give back (not including the announcer).</summary>
    public AnnounceResponse Announce(AnnounceRequest r, IPAddress from)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentNullException.ThrowIfNull(from);
        var now = _time.GetUtcNow();
        var ep = new IPEndPoint(from.IsIPv4MappedToIPv6 ? from.MapToIPv4() : from, r.Port);
        lock (_gate)
        {
            Announces++;
            if (!_swarms.TryGetValue(r.InfoHash, out var swarm))
            {
                if (_swarms.Count >= _options.MaxTorrents) return new AnnounceResponse(_options.Interval, []);
                _swarms[r.InfoHash] = swarm = [];
            }

            foreach (var stale in swarm.Values.Where(p => now - p.Seen > 2 * _options.Interval).ToList()) swarm.Remove(stale.EndPoint);
            if (r.Event == AnnounceEvent.Stopped) swarm.Remove(ep);
            else swarm[ep] = new PeerEntry(ep, r.Left, now);
            if (r.Event == AnnounceEvent.Completed) _completed[r.InfoHash] = _completed.GetValueOrDefault(r.InfoHash) + 1;
            var peers = swarm.Values.Where(p => !p.EndPoint.Equals(ep)).OrderBy(_ => Random.Shared.Next())
                .Take(Math.Min(r.NumWant <= 0 ? 50 : r.NumWant, _options.MaxPeersPerResponse)).Select(p => p.EndPoint).ToList();
            return new AnnounceResponse(_options.Interval, peers, swarm.Values.Count(p => p.Left == 0), swarm.Values.Count(p => p.Left > 0));
        }
    }

    private (int Complete, int Incomplete, int Downloaded) Scrape(NodeId hash)
    {
        lock (_gate)
        {
            // Peers that have expired (two intervals without an announce) are not counted, even before an announce purges them.
            var now = _time.GetUtcNow();
            var (wsComplete, wsIncomplete) = WsCounts(hash, now);
            if (!_swarms.TryGetValue(hash, out var swarm)) return (wsComplete, wsIncomplete, _completed.GetValueOrDefault(hash));
            var live = swarm.Values.Where(p => now - p.Seen <= 2 * _options.Interval).ToList();
            return (live.Count(p => p.Left == 0) + wsComplete, live.Count(p => p.Left > 0) + wsIncomplete, _completed.GetValueOrDefault(hash));
        }
    }

    private async Task AcceptLoopAsync(CancellationToken ct)
    {
        var clients = new List<Task>();
        while (!ct.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener!.AcceptSocketAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                break;
            }

            clients.RemoveAll(t => t.IsCompleted);
            clients.Add(ServeHttpAsync(socket, ct));
        }

        await Task.WhenAll(clients).ConfigureAwait(false);
    }

    private async Task ServeHttpAsync(Socket socket, CancellationToken ct)
    {
        using var _ = socket;
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            var head = new byte[MaxRequestHead];
            var n = 0;
            while (n < head.Length && head.AsSpan(0, n).IndexOf("\r\n\r\n"u8) < 0)
            {
                var read = await stream.ReadAsync(head.AsMemory(n), timeout.Token).ConfigureAwait(false);
                if (read == 0) break;
                n += read;
            }

            var line = Encoding.ASCII.GetString(head, 0, Math.Max(0, head.AsSpan(0, n).IndexOf("\r\n"u8)));
            var parts = line.Split(' ');
            var remoteEndPoint = (IPEndPoint)socket.RemoteEndPoint!;
            if (parts.Length == 3 && parts[0] == "GET" && IsWebSocketUpgrade(head.AsSpan(0, n), out var key))
            {
                // The WebSocket tracker shares the HTTP port (bittorrent-tracker's server does the same).
                await ServeWebSocketAsync(stream, key, remoteEndPoint, ct).ConfigureAwait(false);
                return;
            }

            var remote = remoteEndPoint.Address;
            var (status, body) = parts.Length == 3 && parts[0] == "GET" ? HandleHttp(parts[1], remote) : (400, Failure("bad request"));
            var header = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
                $"HTTP/1.1 {status} {(status == 200 ? "OK" : "Error")}\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"));
            await stream.WriteAsync(header, timeout.Token).ConfigureAwait(false);
            await stream.WriteAsync(body, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
        {
            _log.LogDebug("tracker HTTP client error: {Message}", ex.Message);
        }
    }

    private static byte[] Failure(string reason) => Bencode.Encode(new BDictionary { ["failure reason"] = new BString(reason) });

    internal (int Status, byte[] Body) HandleHttp(string target, IPAddress remote)
    {
        var q = target.IndexOf('?', StringComparison.Ordinal);
        var path = q < 0 ? target : target[..q];
        var query = ParseQuery(q < 0 ? string.Empty : target[(q + 1)..]);
        if (path.EndsWith("/announce", StringComparison.Ordinal))
        {
            if (!query.TryGetValue("info_hash", out var ih) || ih[0].Length != 20) return (200, Failure("missing or invalid info_hash"));
            if (!query.TryGetValue("peer_id", out var pid) || pid[0].Length != 20) return (200, Failure("missing or invalid peer_id"));
            if (!TryInt(query, "port", out var port) || port is <= 0 or > 65535) return (200, Failure("missing or invalid port"));
            TryLong(query, "left", out var left);
            TryLong(query, "uploaded", out var up);
            TryLong(query, "downloaded", out var down);
            var numWant = TryInt(query, "numwant", out var nw) ? nw : 50;
            var ev = query.TryGetValue("event", out var e) ? Encoding.ASCII.GetString(e[0]) switch
            {
                "started" => AnnounceEvent.Started,
                "completed" => AnnounceEvent.Completed,
                "stopped" => AnnounceEvent.Stopped,
                _ => AnnounceEvent.None,
            } : AnnounceEvent.None;
            var response = Announce(new AnnounceRequest(new NodeId(ih[0]), new NodeId(pid[0]), port, up, down, left, ev, numWant), remote);
            var compact = !query.TryGetValue("compact", out var c) || Encoding.ASCII.GetString(c[0]) != "0";
            var d = new BDictionary
            {
                ["complete"] = new BInteger(response.Seeders ?? 0),
                ["incomplete"] = new BInteger(response.Leechers ?? 0),
                ["interval"] = new BInteger((long)response.Interval.TotalSeconds),
                ["min interval"] = new BInteger(Math.Max(1, (long)response.Interval.TotalSeconds / 2)),
            };
            if (compact)
            {
                // BEP 23: IPv4 peers as 6-byte strings; BEP 7: IPv6 peers in "peers6".
                d["peers"] = new BString(CompactPeers.Encode(response.Peers, 4));
                var v6 = CompactPeers.Encode(response.Peers, 16);
                if (v6.Length > 0) d["peers6"] = new BString(v6);
            }
            else
            {
                d["peers"] = new BList(response.Peers.Select(p => (BValue)new BDictionary
                {
                    ["ip"] = new BString(p.Address.ToString()),
                    ["port"] = new BInteger(p.Port),
                }).ToList());
            }

            return (200, Bencode.Encode(d));
        }

        if (path.EndsWith("/scrape", StringComparison.Ordinal))
        {
            var files = new BDictionary();
            var hashes = query.TryGetValue("info_hash", out var list) ? list : [];
            lock (_gate)
            {
                if (hashes.Count == 0) hashes = _swarms.Keys.Take(1000).Select(k => k.ToArray()).ToList();
            }

            foreach (var h in hashes.Where(h => h.Length == 20).Distinct(ByteArrayComparer.Instance))
            {
                var (complete, incomplete, downloaded) = Scrape(new NodeId(h));
                files.Add(h, new BDictionary
                {
                    ["complete"] = new BInteger(complete),
                    ["downloaded"] = new BInteger(downloaded),
                    ["incomplete"] = new BInteger(incomplete),
                });
            }

            return (200, Bencode.Encode(new BDictionary { ["files"] = files }));
        }

        return (404, Failure("not found"));
    }

    private static bool TryInt(Dictionary<string, List<byte[]>> q, string key, out int value)
    {
        value = 0;
        return q.TryGetValue(key, out var v) && int.TryParse(Encoding.ASCII.GetString(v[0]), NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    private static bool TryLong(Dictionary<string, List<byte[]>> q, string key, out long value)
    {
        value = 0;
        return q.TryGetValue(key, out var v) && long.TryParse(Encoding.ASCII.GetString(v[0]), NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>Query parameters with binary-safe percent-decoding (info_hash and peer_id are raw bytes).</summary>
    internal static Dictionary<string, List<byte[]>> ParseQuery(string query)
    {
        var result = new Dictionary<string, List<byte[]>>(StringComparer.Ordinal);
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries).Take(64))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = eq < 0 ? pair : pair[..eq];
            var raw = eq < 0 ? string.Empty : pair[(eq + 1)..];
            var bytes = new List<byte>(raw.Length);
            for (var i = 0; i < raw.Length; i++)
            {
                if (raw[i] == '%' && i + 2 < raw.Length &&
                    byte.TryParse(raw.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
                {
                    bytes.Add(b);
                    i += 2;
                }
                else
                {
                    bytes.Add(raw[i] == '+' ? (byte)' ' : (byte)raw[i]);
                }
            }

            if (!result.TryGetValue(key, out var list)) result[key] = list = [];
            list.Add([.. bytes]);
        }

        return result;
    }

    // BEP 15 ---------------------------------------------------------------------------------------------------

    private long ConnectionIdFor(IPEndPoint remote, long minute)
    {
        // Stateless connection ids: HMAC(secret, address, minute) — valid for the current and previous minute.
        Span<byte> input = stackalloc byte[32];
        remote.Address.TryWriteBytes(input, out var n);
        BinaryPrimitives.WriteInt64BigEndian(input[16..], minute);
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_udpSecret, input, mac);
        return BinaryPrimitives.ReadInt64BigEndian(mac);
    }

    private void OnUdp(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        var minute = _time.GetUtcNow().ToUnixTimeSeconds() / 60;
        Span<byte> reply = stackalloc byte[20 + (6 * 200)];
        if (datagram.Length >= 16 && BinaryPrimitives.ReadInt64BigEndian(datagram) == UdpTrackerCodec.ProtocolId &&
            BinaryPrimitives.ReadInt32BigEndian(datagram[8..]) == UdpTrackerCodec.ActionConnect)
        {
            BinaryPrimitives.WriteInt32BigEndian(reply, UdpTrackerCodec.ActionConnect);
            datagram.Slice(12, 4).CopyTo(reply[4..]);
            BinaryPrimitives.WriteInt64BigEndian(reply[8..], ConnectionIdFor(remote, minute));
            _udp!.Send(reply[..16], remote);
            return;
        }

        if (!UdpTrackerCodec.TryReadAnnounceRequest(datagram, out var cid, out var tid, out var request)) return;
        if (cid != ConnectionIdFor(remote, minute) && cid != ConnectionIdFor(remote, minute - 1))
        {
            _udp!.Send(reply[..UdpTrackerCodec.WriteError(reply, tid, "bad connection id")], remote);
            return;
        }

        var response = Announce(request!, remote.Address);
        BinaryPrimitives.WriteInt32BigEndian(reply, UdpTrackerCodec.ActionAnnounce);
        BinaryPrimitives.WriteInt32BigEndian(reply[4..], tid);
        BinaryPrimitives.WriteInt32BigEndian(reply[8..], (int)response.Interval.TotalSeconds);
        BinaryPrimitives.WriteInt32BigEndian(reply[12..], response.Leechers ?? 0);
        BinaryPrimitives.WriteInt32BigEndian(reply[16..], response.Seeders ?? 0);
        var v4 = response.Peers.Where(p => p.AddressFamily == AddressFamily.InterNetwork).Take(200).ToList();
        for (var i = 0; i < v4.Count; i++) CompactPeers.Write(v4[i], reply[(20 + (6 * i))..]);
        _udp!.Send(reply[..(20 + (6 * v4.Count))], remote);
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync().ConfigureAwait(false);
        _listener?.Stop();
        if (_accept is not null) await _accept.ConfigureAwait(false);
        _listener?.Dispose();
        _udp?.Dispose();
        _cts.Dispose();
    }
}
