using System.Buffers;
using System.Text.Json;
using Peerway.Core;

namespace Peerway.Torrent.Trackers;

/// <summary>What a WebSocket tracker message asks or answers.</summary>
public enum WebSocketTrackerAction
{
    /// <summary>"announce": an announce, an answer to one, or a relayed offer or answer.</summary>
    Announce,
    /// <summary>"scrape": counts of one or more torrents.</summary>
    Scrape,
}

/// <summary>A WebRTC session description as WebTorrent's trackers relay it: <c>{"type":"offer","sdp":"v=0..."}</c>.</summary>
public sealed record RtcSessionDescription(string Type, string Sdp);

/// <summary>One offer of an announce: its 20-byte id (a binary string on the wire) and the description.</summary>
public sealed record WebSocketOffer(NodeId OfferId, RtcSessionDescription Offer);

/// <summary>Per-torrent counts of a scrape answer.</summary>
public sealed record WebSocketScrapeFile(NodeId InfoHash, int Complete, int Incomplete, int Downloaded);

/// <summary>
/// One JSON message of the WebSocket tracker protocol (WebTorrent's; bittorrent-tracker's
/// <c>lib/server/parse-websocket.js</c> and <c>lib/client/websocket-tracker.js</c>). The same shape carries client
/// announces (with <see cref="Offers"/>, or an <see cref="Answer"/> to <see cref="ToPeerId"/>), the tracker's answers
/// (<see cref="Interval"/>, counts), relayed offers and answers (<see cref="PeerId"/> is then the sender), and scrapes.
/// </summary>
public sealed record WebSocketTrackerMessage
{
    /// <summary>"announce" or "scrape".</summary>
    public WebSocketTrackerAction Action { get; init; }

    /// <summary>The torrent of an announce (and of a scrape of one torrent).</summary>
    public NodeId? InfoHash { get; init; }

    /// <summary>Torrents of a scrape (empty: all).</summary>
    public IReadOnlyList<NodeId> ScrapeHashes { get; init; } = [];

    /// <summary>The sender's peer id (of a relayed offer or answer: the remote peer's).</summary>
    public NodeId? PeerId { get; init; }

    /// <summary>The announce event.</summary>
    public AnnounceEvent Event { get; init; }

    /// <summary>Bytes the announcing client still needs.</summary>
    public long? Left { get; init; }

    /// <summary>Bytes the announcing client uploaded.</summary>
    public long? Uploaded { get; init; }

    /// <summary>Bytes the announcing client downloaded.</summary>
    public long? Downloaded { get; init; }

    /// <summary>Peers (offers) the client wants.</summary>
    public int? NumWant { get; init; }

    /// <summary>Offers a client sends with an announce, one per peer it wants.</summary>
    public IReadOnlyList<WebSocketOffer> Offers { get; init; } = [];

    /// <summary>A relayed offer (tracker to client).</summary>
    public RtcSessionDescription? Offer { get; init; }

    /// <summary>An answer (client to tracker with <see cref="ToPeerId"/>, or relayed to the offerer).</summary>
    public RtcSessionDescription? Answer { get; init; }

    /// <summary>The offer an answer (or a relayed offer) belongs to.</summary>
    public NodeId? OfferId { get; init; }

    /// <summary>The peer an answer is for.</summary>
    public NodeId? ToPeerId { get; init; }

    /// <summary>The tracker's announce interval, in seconds.</summary>
    public int? Interval { get; init; }

    /// <summary>Seeders the tracker knows.</summary>
    public int? Complete { get; init; }

    /// <summary>Leechers the tracker knows.</summary>
    public int? Incomplete { get; init; }

    /// <summary>The tracker's "failure reason".</summary>
    public string? Failure { get; init; }

    /// <summary>The tracker's "warning message".</summary>
    public string? Warning { get; init; }

    /// <summary>The counts of a scrape answer.</summary>
    public IReadOnlyList<WebSocketScrapeFile> Files { get; init; } = [];
}

/// <summary>Why a WebSocket tracker message was rejected.</summary>
public enum WebSocketTrackerError
{
    /// <summary>Not an error.</summary>
    None = 0,
    /// <summary>The message is longer than the limit.</summary>
    TooLarge,
    /// <summary>Not valid JSON.</summary>
    MalformedJson,
    /// <summary>The JSON is not an object.</summary>
    NotAnObject,
    /// <summary>"action" is missing or neither "announce" nor "scrape".</summary>
    UnknownAction,
    /// <summary>An info_hash is not a 20-byte binary string.</summary>
    InvalidInfoHash,
    /// <summary>A peer_id is not a 20-byte binary string.</summary>
    InvalidPeerId,
    /// <summary>An offer is malformed.</summary>
    InvalidOffer,
    /// <summary>More offers than the limit.</summary>
    TooManyOffers,
    /// <summary>An answer is malformed.</summary>
    InvalidAnswer,
}

/// <summary>
/// The WebSocket tracker protocol's JSON messages (sans-I/O). Ids are "binary strings": each of the 20 bytes is one
/// UTF-16 code unit 0–255, as JavaScript's <c>Buffer.toString('binary')</c> makes them.
/// </summary>
public static class WebSocketTrackerCodec
{
    /// <summary>Largest message accepted (five offers of a few KiB of SDP each fit many times over).</summary>
    public const int MaxMessageLength = 64 * 1024;

    /// <summary>Most offers read from one announce (bittorrent-tracker's client sends at most 5 and its server relays at most 50).</summary>
    public const int MaxOffers = 10;

    /// <summary>Longest SDP accepted in an offer or answer.</summary>
    public const int MaxSdpLength = 16 * 1024;

    /// <summary>Most info-hashes in one scrape.</summary>
    public const int MaxScrapeHashes = 100;

    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 8 };

    /// <summary>A 20-byte id as a binary string.</summary>
    public static string ToBinaryString(NodeId id)
    {
        return string.Create(NodeId.Length, id, static (chars, value) =>
        {
            Span<byte> bytes = stackalloc byte[NodeId.Length];
            value.WriteTo(bytes);
            for (var i = 0; i < chars.Length; i++) chars[i] = (char)bytes[i];
        });
    }

    /// <summary>Reads a 20-character binary string (every character 0–255).</summary>
    public static bool TryReadBinaryString(string? s, out NodeId id)
    {
        id = default;
        if (s is null || s.Length != NodeId.Length) return false;
        Span<byte> bytes = stackalloc byte[NodeId.Length];
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] > 0xFF) return false;
            bytes[i] = (byte)s[i];
        }

        id = new NodeId(bytes);
        return true;
    }

    /// <summary>Decodes one message; never throws on any input.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> utf8, out WebSocketTrackerMessage? message, out WebSocketTrackerError error)
    {
        message = null;
        if (utf8.Length > MaxMessageLength)
        {
            error = WebSocketTrackerError.TooLarge;
            return false;
        }

        JsonDocument doc;
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = DocumentOptions.MaxDepth });
            doc = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException)
        {
            error = WebSocketTrackerError.MalformedJson;
            return false;
        }

        using (doc)
        {
            error = Read(doc.RootElement, out message);
            return error == WebSocketTrackerError.None;
        }
    }

    private static WebSocketTrackerError Read(JsonElement root, out WebSocketTrackerMessage? message)
    {
        message = null;
        if (root.ValueKind != JsonValueKind.Object) return WebSocketTrackerError.NotAnObject;
        var action = String(root, "action");
        if (action == "scrape") return ReadScrape(root, out message);
        if (action != "announce") return WebSocketTrackerError.UnknownAction;

        NodeId? infoHash = null;
        if (root.TryGetProperty("info_hash", out var ih))
        {
            if (!TryReadBinaryString(ih.ValueKind == JsonValueKind.String ? ih.GetString() : null, out var h)) return WebSocketTrackerError.InvalidInfoHash;
            infoHash = h;
        }

        NodeId? peerId = null;
        if (root.TryGetProperty("peer_id", out var pid))
        {
            if (!TryReadBinaryString(pid.ValueKind == JsonValueKind.String ? pid.GetString() : null, out var p)) return WebSocketTrackerError.InvalidPeerId;
            peerId = p;
        }

        var offers = new List<WebSocketOffer>();
        if (root.TryGetProperty("offers", out var list))
        {
            if (list.ValueKind != JsonValueKind.Array) return WebSocketTrackerError.InvalidOffer;
            if (list.GetArrayLength() > MaxOffers) return WebSocketTrackerError.TooManyOffers;
            foreach (var item in list.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object || !TryReadId(item, "offer_id", out var oid) ||
                    !item.TryGetProperty("offer", out var o) || ReadDescription(o) is not { } desc)
                {
                    return WebSocketTrackerError.InvalidOffer;
                }

                offers.Add(new WebSocketOffer(oid, desc));
            }
        }

        RtcSessionDescription? offer = null;
        if (root.TryGetProperty("offer", out var single))
        {
            offer = ReadDescription(single);
            if (offer is null || !TryReadId(root, "offer_id", out _)) return WebSocketTrackerError.InvalidOffer;
        }

        RtcSessionDescription? answer = null;
        if (root.TryGetProperty("answer", out var ans))
        {
            answer = ReadDescription(ans);
            if (answer is null || !TryReadId(root, "offer_id", out _)) return WebSocketTrackerError.InvalidAnswer;
        }

        NodeId? toPeer = null;
        if (root.TryGetProperty("to_peer_id", out var to))
        {
            if (!TryReadBinaryString(to.ValueKind == JsonValueKind.String ? to.GetString() : null, out var t)) return WebSocketTrackerError.InvalidAnswer;
            toPeer = t;
        }

        message = new WebSocketTrackerMessage
        {
            Action = WebSocketTrackerAction.Announce,
            InfoHash = infoHash,
            PeerId = peerId,
            Event = String(root, "event") switch
            {
                "started" => AnnounceEvent.Started,
                "completed" => AnnounceEvent.Completed,
                "stopped" => AnnounceEvent.Stopped,
                _ => AnnounceEvent.None,
            },
            Left = Number(root, "left"),
            Uploaded = Number(root, "uploaded"),
            Downloaded = Number(root, "downloaded"),
            NumWant = Int(root, "numwant"),
            Offers = offers,
            Offer = offer,
            Answer = answer,
            OfferId = TryReadId(root, "offer_id", out var id) ? id : null,
            ToPeerId = toPeer,
            Interval = Int(root, "interval") ?? Int(root, "min interval"),
            Complete = Int(root, "complete"),
            Incomplete = Int(root, "incomplete"),
            Failure = String(root, "failure reason"),
            Warning = String(root, "warning message"),
        };
        return WebSocketTrackerError.None;
    }

    private static WebSocketTrackerError ReadScrape(JsonElement root, out WebSocketTrackerMessage? message)
    {
        message = null;
        var hashes = new List<NodeId>();
        if (root.TryGetProperty("info_hash", out var ih))
        {
            var items = ih.ValueKind == JsonValueKind.Array ? ih.EnumerateArray().ToList() : [ih];
            if (items.Count > MaxScrapeHashes) return WebSocketTrackerError.InvalidInfoHash;
            foreach (var item in items)
            {
                if (!TryReadBinaryString(item.ValueKind == JsonValueKind.String ? item.GetString() : null, out var h)) return WebSocketTrackerError.InvalidInfoHash;
                hashes.Add(h);
            }
        }

        var files = new List<WebSocketScrapeFile>();
        if (root.TryGetProperty("files", out var f) && f.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in f.EnumerateObject().Take(MaxScrapeHashes))
            {
                if (!TryReadBinaryString(p.Name, out var h) || p.Value.ValueKind != JsonValueKind.Object) return WebSocketTrackerError.InvalidInfoHash;
                files.Add(new WebSocketScrapeFile(h, Int(p.Value, "complete") ?? 0, Int(p.Value, "incomplete") ?? 0, Int(p.Value, "downloaded") ?? 0));
            }
        }

        message = new WebSocketTrackerMessage
        {
            Action = WebSocketTrackerAction.Scrape,
            ScrapeHashes = hashes,
            Files = files,
            Failure = String(root, "failure reason"),
        };
        return WebSocketTrackerError.None;
    }

    private static RtcSessionDescription? ReadDescription(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object) return null;
        var type = String(e, "type");
        var sdp = String(e, "sdp");
        return type is "offer" or "answer" && sdp is { Length: > 0 and <= MaxSdpLength } ? new RtcSessionDescription(type, sdp) : null;
    }

    private static bool TryReadId(JsonElement e, string name, out NodeId id)
    {
        id = default;
        return e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && TryReadBinaryString(v.GetString(), out id);
    }

    private static string? String(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static long? Number(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) && double.IsFinite(d) && d >= 0
            ? (long)Math.Min(d, long.MaxValue)
            : null;

    private static int? Int(JsonElement e, string name) => Number(e, name) is { } n ? (int)Math.Min(n, int.MaxValue) : null;

    /// <summary>Encodes a message as UTF-8 JSON, with only the fields that are set.</summary>
    public static byte[] Encode(WebSocketTrackerMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("action", m.Action == WebSocketTrackerAction.Scrape ? "scrape" : "announce");
            if (m.Action == WebSocketTrackerAction.Scrape)
            {
                WriteScrape(w, m);
            }
            else
            {
                WriteAnnounce(w, m);
            }

            if (m.Failure is not null) w.WriteString("failure reason", m.Failure);
            if (m.Warning is not null) w.WriteString("warning message", m.Warning);
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteScrape(Utf8JsonWriter w, WebSocketTrackerMessage m)
    {
        if (m.ScrapeHashes.Count > 0)
        {
            w.WriteStartArray("info_hash");
            foreach (var h in m.ScrapeHashes) w.WriteStringValue(ToBinaryString(h));
            w.WriteEndArray();
        }

        if (m.Files.Count > 0)
        {
            w.WriteStartObject("files");
            foreach (var f in m.Files)
            {
                w.WriteStartObject(ToBinaryString(f.InfoHash));
                w.WriteNumber("complete", f.Complete);
                w.WriteNumber("incomplete", f.Incomplete);
                w.WriteNumber("downloaded", f.Downloaded);
                w.WriteEndObject();
            }

            w.WriteEndObject();
        }
    }

    private static void WriteAnnounce(Utf8JsonWriter w, WebSocketTrackerMessage m)
    {
        if (m.InfoHash is { } ih) w.WriteString("info_hash", ToBinaryString(ih));
        if (m.PeerId is { } pid) w.WriteString("peer_id", ToBinaryString(pid));
        if (m.Event != AnnounceEvent.None) w.WriteString("event", m.Event.ToString().ToLowerInvariant());
        if (m.Left is { } left) w.WriteNumber("left", left);
        if (m.Uploaded is { } up) w.WriteNumber("uploaded", up);
        if (m.Downloaded is { } down) w.WriteNumber("downloaded", down);
        if (m.NumWant is { } nw) w.WriteNumber("numwant", nw);
        if (m.Offers.Count > 0)
        {
            w.WriteStartArray("offers");
            foreach (var o in m.Offers)
            {
                w.WriteStartObject();
                w.WritePropertyName("offer");
                WriteDescription(w, o.Offer);
                w.WriteString("offer_id", ToBinaryString(o.OfferId));
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        if (m.Offer is not null)
        {
            w.WritePropertyName("offer");
            WriteDescription(w, m.Offer);
        }

        if (m.Answer is not null)
        {
            w.WritePropertyName("answer");
            WriteDescription(w, m.Answer);
        }

        if (m.OfferId is { } oid) w.WriteString("offer_id", ToBinaryString(oid));
        if (m.ToPeerId is { } to) w.WriteString("to_peer_id", ToBinaryString(to));
        if (m.Interval is { } interval) w.WriteNumber("interval", interval);
        if (m.Complete is { } c) w.WriteNumber("complete", c);
        if (m.Incomplete is { } i) w.WriteNumber("incomplete", i);
    }

    private static void WriteDescription(Utf8JsonWriter w, RtcSessionDescription d)
    {
        w.WriteStartObject();
        w.WriteString("type", d.Type);
        w.WriteString("sdp", d.Sdp);
        w.WriteEndObject();
    }
}
