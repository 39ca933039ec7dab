using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Text;
using Peerway.Core;
using Peerway.Core.Bencoding;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Trackers;

/// <summary>BEP 3 announce events.</summary>
public enum AnnounceEvent
{
    /// <summary>A regular announce (no event).</summary>
    None = 0,
    /// <summary>The download completed.</summary>
    Completed = 1,
    /// <summary>The first announce of a download or seed.</summary>
    Started = 2,
    /// <summary>The client stops sharing the torrent.</summary>
    Stopped = 3,
}

/// <summary>What a client tells a tracker.</summary>
public sealed record AnnounceRequest(NodeId InfoHash, NodeId PeerId, int Port, long Uploaded, long Downloaded, long Left, AnnounceEvent Event, int NumWant = 50);

/// <summary>What a tracker answers.</summary>
public sealed record AnnounceResponse(TimeSpan Interval, IReadOnlyList<IPEndPoint> Peers, int? Seeders = null, int? Leechers = null);

/// <summary>Why a tracker exchange failed.</summary>
public enum TrackerError
{
    /// <summary>Not an error.</summary>
    None = 0,
    /// <summary>The answer could not be parsed.</summary>
    Malformed,
    /// <summary>The tracker answered with a "failure reason" (BEP 3) or an error action (BEP 15).</summary>
    Failure,
    /// <summary>No answer in time.</summary>
    Timeout,
    /// <summary>The tracker could not be reached (connection refused, name not resolved).</summary>
    Unreachable,
}

/// <summary>BEP 3 / BEP 23 HTTP tracker messages (sans-I/O).</summary>
internal static class HttpTrackerCodec
{
    /// <summary>Largest announce response accepted.</summary>
    public const int MaxResponseLength = 1024 * 1024;

    /// <summary>Builds the announce URL: BEP 3 parameters, binary values percent-encoded byte by byte, compact=1 (BEP 23).</summary>
    public static Uri AnnounceUri(Uri announce, AnnounceRequest r)
    {
        ArgumentNullException.ThrowIfNull(announce);
        ArgumentNullException.ThrowIfNull(r);
        var sb = new StringBuilder(announce.OriginalString);
        sb.Append(announce.Query.Length > 0 ? '&' : '?');
        sb.Append("info_hash=").Append(Escape(r.InfoHash.ToArray()));
        sb.Append("&peer_id=").Append(Escape(r.PeerId.ToArray()));
        sb.Append(CultureInfo.InvariantCulture, $"&port={r.Port}&uploaded={r.Uploaded}&downloaded={r.Downloaded}&left={r.Left}&compact=1&numwant={r.NumWant}");
        if (r.Event != AnnounceEvent.None) sb.Append("&event=").Append(r.Event.ToString().ToLowerInvariant());
        return new Uri(sb.ToString());
    }

    public static string Escape(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length * 3);
        foreach (var b in bytes)
        {
            if (b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9') or (byte)'-' or (byte)'_' or (byte)'.' or (byte)'~') sb.Append((char)b);
            else sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }

    public static bool TryParseResponse(ReadOnlySpan<byte> body, out AnnounceResponse? response, out TrackerError error, out string? failure)
    {
        response = null;
        failure = null;
        if (body.Length > MaxResponseLength || !Bencode.TryDecode(body, out var value, out _, BencodeLimits.Datagram with { MaxInputLength = MaxResponseLength, MaxStringLength = MaxResponseLength }) || value is not BDictionary d)
        {
            error = TrackerError.Malformed;
            return false;
        }

        if (d["failure reason"] is BString reason)
        {
            failure = reason.Utf8;
            error = TrackerError.Failure;
            return false;
        }

        var peers = new List<IPEndPoint>();
        switch (d["peers"])
        {
            case BString compact:
                if (!CompactPeers.TryRead(compact.Value.Span, 4, peers))
                {
                    error = TrackerError.Malformed;
                    return false;
                }

                break;
            case BList list:
                // BEP 3 original (non-compact) form: a list of {ip, port, peer id}.
                foreach (var item in list.Items)
                {
                    if (item is BDictionary p && p["ip"] is BString ip && p["port"] is BInteger { Value: > 0 and <= 65535 } port &&
                        IPAddress.TryParse(ip.Utf8, out var address))
                    {
                        peers.Add(new IPEndPoint(address, (int)port.Value));
                    }
                }

                break;
            case null:
                break;
            default:
                error = TrackerError.Malformed;
                return false;
        }

        // BEP 7: IPv6 peers in "peers6", 18 bytes each.
        if (d["peers6"] is BString v6 && !CompactPeers.TryRead(v6.Value.Span, 16, peers))
        {
            error = TrackerError.Malformed;
            return false;
        }

        var interval = d["interval"] is BInteger { Value: > 0 and < 86_400 } i ? TimeSpan.FromSeconds(i.Value) : TimeSpan.FromMinutes(30);
        response = new AnnounceResponse(interval, peers, (int?)(d["complete"] as BInteger)?.Value, (int?)(d["incomplete"] as BInteger)?.Value);
        error = TrackerError.None;
        return true;
    }
}

/// <summary>BEP 15 UDP tracker messages (sans-I/O).</summary>
public static class UdpTrackerCodec
{
    /// <summary>BEP 15: the connect request's magic protocol id.</summary>
    public const long ProtocolId = 0x41727101980;

    /// <summary>BEP 15 action: connect.</summary>
    public const int ActionConnect = 0;
    /// <summary>BEP 15 action: announce.</summary>
    public const int ActionAnnounce = 1;
    /// <summary>BEP 15 action: scrape.</summary>
    public const int ActionScrape = 2;
    /// <summary>BEP 15 action: error.</summary>
    public const int ActionError = 3;

    /// <summary>Bytes of a connect request.</summary>
    public const int ConnectRequestLength = 16;
    /// <summary>Bytes of an IPv4 announce request.</summary>
    public const int AnnounceRequestLength = 98;

    /// <summary>Writes a connect request (<see cref="ConnectRequestLength"/> bytes) into <paramref name="d"/>.</summary>
    public static void WriteConnect(Span<byte> d, int transactionId)
    {
        BinaryPrimitives.WriteInt64BigEndian(d, ProtocolId);
        BinaryPrimitives.WriteInt32BigEndian(d[8..], ActionConnect);
        BinaryPrimitives.WriteInt32BigEndian(d[12..], transactionId);
    }

    /// <summary>Writes an announce request (<see cref="AnnounceRequestLength"/> bytes) into <paramref name="d"/>.</summary>
    public static void WriteAnnounce(Span<byte> d, long connectionId, int transactionId, AnnounceRequest r, int key)
    {
        ArgumentNullException.ThrowIfNull(r);
        BinaryPrimitives.WriteInt64BigEndian(d, connectionId);
        BinaryPrimitives.WriteInt32BigEndian(d[8..], ActionAnnounce);
        BinaryPrimitives.WriteInt32BigEndian(d[12..], transactionId);
        r.InfoHash.WriteTo(d[16..]);
        r.PeerId.WriteTo(d[36..]);
        BinaryPrimitives.WriteInt64BigEndian(d[56..], r.Downloaded);
        BinaryPrimitives.WriteInt64BigEndian(d[64..], r.Left);
        BinaryPrimitives.WriteInt64BigEndian(d[72..], r.Uploaded);
        BinaryPrimitives.WriteInt32BigEndian(d[80..], (int)r.Event);
        BinaryPrimitives.WriteInt32BigEndian(d[84..], 0); // IP: default (the sender's)
        BinaryPrimitives.WriteInt32BigEndian(d[88..], key);
        BinaryPrimitives.WriteInt32BigEndian(d[92..], r.NumWant);
        BinaryPrimitives.WriteUInt16BigEndian(d[96..], (ushort)r.Port);
    }

    /// <summary>Reads a response header: action and transaction id (BEP 15: at least 8 bytes).</summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> datagram, out int action, out int transactionId)
    {
        action = transactionId = 0;
        if (datagram.Length < 8) return false;
        action = BinaryPrimitives.ReadInt32BigEndian(datagram);
        transactionId = BinaryPrimitives.ReadInt32BigEndian(datagram[4..]);
        return true;
    }

    /// <summary>Reads a connect response's connection id; false when <paramref name="datagram"/> is not one.</summary>
    public static bool TryReadConnectResponse(ReadOnlySpan<byte> datagram, out long connectionId)
    {
        connectionId = 0;
        if (datagram.Length < 16 || BinaryPrimitives.ReadInt32BigEndian(datagram) != ActionConnect) return false;
        connectionId = BinaryPrimitives.ReadInt64BigEndian(datagram[8..]);
        return true;
    }

    /// <summary>BEP 15 announce response: action, transaction id, interval, leechers, seeders, then 6-byte peers.</summary>
    public static bool TryReadAnnounceResponse(ReadOnlySpan<byte> datagram, out AnnounceResponse? response)
    {
        response = null;
        if (datagram.Length < 20 || BinaryPrimitives.ReadInt32BigEndian(datagram) != ActionAnnounce) return false;
        var peers = new List<IPEndPoint>();
        var rest = datagram[20..];
        if (!CompactPeers.TryRead(rest[..(rest.Length - (rest.Length % 6))], 4, peers)) return false;
        var interval = BinaryPrimitives.ReadInt32BigEndian(datagram[8..]);
        response = new AnnounceResponse(TimeSpan.FromSeconds(Math.Clamp(interval, 1, 86_400)), peers,
            BinaryPrimitives.ReadInt32BigEndian(datagram[16..]), BinaryPrimitives.ReadInt32BigEndian(datagram[12..]));
        return true;
    }

    /// <summary>Reads an announce request (the tracker side).</summary>
    public static bool TryReadAnnounceRequest(ReadOnlySpan<byte> d, out long connectionId, out int transactionId, out AnnounceRequest? request)
    {
        connectionId = 0;
        transactionId = 0;
        request = null;
        if (d.Length < AnnounceRequestLength || BinaryPrimitives.ReadInt32BigEndian(d[8..]) != ActionAnnounce) return false;
        connectionId = BinaryPrimitives.ReadInt64BigEndian(d);
        transactionId = BinaryPrimitives.ReadInt32BigEndian(d[12..]);
        var ev = BinaryPrimitives.ReadInt32BigEndian(d[80..]);
        var numWant = BinaryPrimitives.ReadInt32BigEndian(d[92..]);
        request = new AnnounceRequest(new NodeId(d.Slice(16, 20)), new NodeId(d.Slice(36, 20)), BinaryPrimitives.ReadUInt16BigEndian(d[96..]),
            BinaryPrimitives.ReadInt64BigEndian(d[72..]), BinaryPrimitives.ReadInt64BigEndian(d[56..]), BinaryPrimitives.ReadInt64BigEndian(d[64..]),
            ev is >= 0 and <= 3 ? (AnnounceEvent)ev : AnnounceEvent.None, numWant is < 0 or > 200 ? 50 : numWant);
        return true;
    }

    /// <summary>Writes an error response (the tracker side) into <paramref name="d"/>; returns its length in bytes.</summary>
    public static int WriteError(Span<byte> d, int transactionId, string message)
    {
        BinaryPrimitives.WriteInt32BigEndian(d, ActionError);
        BinaryPrimitives.WriteInt32BigEndian(d[4..], transactionId);
        return 8 + Encoding.UTF8.GetBytes(message, d[8..]);
    }
}
