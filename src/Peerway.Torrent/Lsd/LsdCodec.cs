using System.Globalization;
using System.Net;
using System.Text;
using Peerway.Core;

namespace Peerway.Torrent.Lsd;

/// <summary>Why a datagram is not a BEP 14 announce.</summary>
public enum LsdDecodeError
{
    /// <summary>A valid announce.</summary>
    None,

    /// <summary>Longer than <see cref="LsdCodec.MaxMessageSize"/>.</summary>
    TooLarge,

    /// <summary>The request line is not <c>BT-SEARCH * HTTP/1.1</c>.</summary>
    NotBtSearch,

    /// <summary>A header line without a colon, a non-ASCII byte, or no blank line ending the headers.</summary>
    MalformedHeaders,

    /// <summary>More than <see cref="LsdCodec.MaxHeaders"/> header lines.</summary>
    TooManyHeaders,

    /// <summary>No <c>Port</c> header, or one that is not 1–65535.</summary>
    BadPort,

    /// <summary>No <c>Infohash</c> header with 40 hex digits (invalid ones are skipped, as libtorrent does).</summary>
    NoInfoHash,
}

/// <summary>One BEP 14 announce: the TCP port the sender listens on, the torrents it has, and its cookie.</summary>
/// <param name="Port">The sender's BitTorrent port (its address is the datagram's source).</param>
/// <param name="InfoHashes">1 to <see cref="LsdCodec.MaxInfoHashes"/> info-hashes, in message order.</param>
/// <param name="Cookie">The sender's cookie (to recognise its own announces looped back); null when absent.</param>
public sealed record LsdAnnounce(int Port, IReadOnlyList<NodeId> InfoHashes, string? Cookie);

/// <summary>
/// BEP 14 (Local Service Discovery) messages, sans I/O: an HTTP-like request in one UDP datagram, multicast to
/// 239.192.152.143:6771 or [ff15::efc0:988f]:6771.
/// <code>
/// BT-SEARCH * HTTP/1.1\r\n
/// Host: &lt;host&gt;\r\n
/// Port: &lt;port&gt;\r\n
/// Infohash: &lt;ihash&gt;\r\n   (one or more)
/// cookie: &lt;cookie&gt;\r\n     (optional)
/// \r\n
/// \r\n
/// </code>
/// </summary>
public static class LsdCodec
{
    /// <summary>BEP 14: the IPv4 multicast group and port.</summary>
    public static readonly IPEndPoint GroupV4 = new(IPAddress.Parse("239.192.152.143"), 6771);

    /// <summary>BEP 14: the IPv6 multicast group (organisation-local scope) and port.</summary>
    public static readonly IPEndPoint GroupV6 = new(IPAddress.Parse("ff15::efc0:988f"), 6771);

    /// <summary>Largest datagram decoded or encoded: one that fits a 1,500-byte Ethernet frame (libtorrent reads 1,500).</summary>
    public const int MaxMessageSize = 1400;

    /// <summary>Most header lines read; a message with more is rejected (no unbounded work per datagram).</summary>
    public const int MaxHeaders = 48;

    /// <summary>Most info-hashes taken from one message (and put in one we send): 20 × 52 bytes and the other lines fit <see cref="MaxMessageSize"/>.</summary>
    public const int MaxInfoHashes = 20;

    /// <summary>Longest cookie kept (ours are 8 hex digits; libtorrent's up to 8).</summary>
    public const int MaxCookieLength = 32;

    private const string RequestLine = "BT-SEARCH * HTTP/1.1";

    /// <summary>The Host header value for a group ("239.192.152.143:6771", "[ff15::efc0:988f]:6771").</summary>
    public static string HostFor(IPEndPoint group)
    {
        ArgumentNullException.ThrowIfNull(group);
        return group.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            ? string.Create(CultureInfo.InvariantCulture, $"[{group.Address}]:{group.Port}")
            : string.Create(CultureInfo.InvariantCulture, $"{group.Address}:{group.Port}");
    }

    /// <summary>
    /// Writes an announce of up to <see cref="MaxInfoHashes"/> torrents into <paramref name="destination"/> (at least
    /// <see cref="MaxMessageSize"/> bytes); returns its length.
    /// </summary>
    public static int Encode(string host, int port, IReadOnlyList<NodeId> infoHashes, string cookie, Span<byte> destination)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        ArgumentNullException.ThrowIfNull(infoHashes);
        ArgumentNullException.ThrowIfNull(cookie);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        if (infoHashes.Count is 0 or > MaxInfoHashes) throw new ArgumentOutOfRangeException(nameof(infoHashes), infoHashes.Count, $"1 to {MaxInfoHashes} info-hashes");
        if (cookie.Length > MaxCookieLength || cookie.Any(c => c is < '!' or > '~')) throw new ArgumentException("the cookie must be printable ASCII without spaces", nameof(cookie));
        var text = new StringBuilder(256);
        text.Append(RequestLine).Append("\r\n");
        text.Append("Host: ").Append(host).Append("\r\n");
        text.Append("Port: ").Append(port.ToString(CultureInfo.InvariantCulture)).Append("\r\n");
        // BEP 14: several Infohash headers may share one message.
        foreach (var hash in infoHashes) text.Append("Infohash: ").Append(hash.ToString()).Append("\r\n");
        if (cookie.Length > 0) text.Append("cookie: ").Append(cookie).Append("\r\n");
        text.Append("\r\n\r\n");
        var s = text.ToString();
        if (s.Length > MaxMessageSize || s.Length > destination.Length) throw new ArgumentException("the announce does not fit", nameof(destination));
        return Encoding.ASCII.GetBytes(s, destination);
    }

    /// <summary>Reads an announce. Never throws: anything else is a typed error.</summary>
    public static LsdDecodeError TryDecode(ReadOnlySpan<byte> datagram, out LsdAnnounce? announce)
    {
        announce = null;
        if (datagram.Length > MaxMessageSize) return LsdDecodeError.TooLarge;
        var rest = datagram;
        if (!NextLine(ref rest, out var line) || !IsRequestLine(line)) return LsdDecodeError.NotBtSearch;
        int? port = null;
        var portSeen = false;
        string? cookie = null;
        List<NodeId>? hashes = null;
        var headers = 0;
        Span<char> hex = stackalloc char[40];
        while (true)
        {
            if (!NextLine(ref rest, out line)) return LsdDecodeError.MalformedHeaders; // no blank line: truncated
            if (line.IsEmpty) break;
            if (++headers > MaxHeaders) return LsdDecodeError.TooManyHeaders;
            var colon = line.IndexOf((byte)':');
            if (colon <= 0) return LsdDecodeError.MalformedHeaders;
            var name = line[..colon];
            var value = Trim(line[(colon + 1)..]);
            foreach (var b in line)
            {
                if (b is < 0x20 or > 0x7e && b != (byte)'\t') return LsdDecodeError.MalformedHeaders;
            }

            if (Is(name, "port"))
            {
                if (portSeen) return LsdDecodeError.BadPort; // two ports: which one?
                portSeen = true;
                if (value.Length is > 0 and <= 5 && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is >= 1 and <= 65535) port = p;
            }
            else if (Is(name, "infohash"))
            {
                // libtorrent skips an Infohash that is not 40 hex digits (or is all zeros) and reads the others.
                if (value.Length != 40) continue;
                for (var i = 0; i < 40; i++) hex[i] = (char)value[i];
                if (!NodeId.TryParseHex(hex, out var id) || id == NodeId.Zero) continue;
                hashes ??= [];
                if (hashes.Count < MaxInfoHashes && !hashes.Contains(id)) hashes.Add(id);
            }
            else if (Is(name, "cookie") && value.Length is > 0 and <= MaxCookieLength)
            {
                cookie = Encoding.ASCII.GetString(value);
            }
        }

        if (port is null) return LsdDecodeError.BadPort;
        if (hashes is null) return LsdDecodeError.NoInfoHash;
        announce = new LsdAnnounce(port.Value, hashes, cookie);
        return LsdDecodeError.None;
    }

    private static bool IsRequestLine(ReadOnlySpan<byte> line)
    {
        // The method is compared case-insensitively (libtorrent lowercases it); the rest must be "* HTTP/1.x".
        var space = line.IndexOf((byte)' ');
        return space > 0 && Is(line[..space], "bt-search") && Trim(line[(space + 1)..]) is var target && target.Length >= 6 && target[0] == (byte)'*'
            && Trim(target[1..]).StartsWith("HTTP/1."u8);
    }

    /// <summary>Cuts the next line (ending in CRLF or LF) off <paramref name="rest"/>; false when there is no line end.</summary>
    private static bool NextLine(ref ReadOnlySpan<byte> rest, out ReadOnlySpan<byte> line)
    {
        var lf = rest.IndexOf((byte)'\n');
        if (lf < 0)
        {
            line = default;
            return false;
        }

        line = lf > 0 && rest[lf - 1] == (byte)'\r' ? rest[..(lf - 1)] : rest[..lf];
        rest = rest[(lf + 1)..];
        return true;
    }

    private static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> s) => s.Trim(" \t"u8);

    private static bool Is(ReadOnlySpan<byte> name, string lower)
    {
        name = Trim(name);
        if (name.Length != lower.Length) return false;
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i] is >= (byte)'A' and <= (byte)'Z' ? (char)(name[i] | 0x20) : (char)name[i];
            if (c != lower[i]) return false;
        }

        return true;
    }
}
