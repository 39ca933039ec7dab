using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Peerway.Node;

/// <summary>A host (IP literal or name) and a port, as typed by a user: <c>HOST:PORT</c> or <c>[v6]:PORT</c>.</summary>
public sealed record HostPort(string Host, int Port)
{
    public override string ToString() =>
        Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}

/// <summary>Parses and resolves user-supplied endpoints (CLI arguments, config). No DHT logic here.</summary>
public static class EndPointParser
{
    /// <summary>Longest DNS name (RFC 1035 §2.3.4: 255 octets on the wire, 253 as text).</summary>
    public const int MaxHostNameLength = 253;

    /// <summary>
    /// Parses <c>HOST:PORT</c>, <c>IPv4:PORT</c> or <c>[IPv6]:PORT</c> with a port in 1..65535. Returns false with a
    /// one-line reason when the text is malformed.
    /// </summary>
    public static bool TryParse(string? text, out HostPort? endPoint, out string error)
    {
        endPoint = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "an endpoint is empty (expected HOST:PORT)";
            return false;
        }

        string host;
        string portText;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
            {
                error = $"'{text}' is not a valid endpoint (expected [IPv6]:PORT)";
                return false;
            }

            host = text[1..close];
            portText = text[(close + 2)..];
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                error = $"'{host}' in '{text}' is not an IPv6 address";
                return false;
            }
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon <= 0 || text.IndexOf(':', StringComparison.Ordinal) != colon)
            {
                error = colon < 0 || colon == 0
                    ? $"'{text}' is not a valid endpoint (expected HOST:PORT)"
                    : $"'{text}' is not a valid endpoint (write IPv6 addresses as [ADDRESS]:PORT)";
                return false;
            }

            host = text[..colon];
            portText = text[(colon + 1)..];
            if (!IsValidHost(host))
            {
                error = $"'{host}' in '{text}' is not a valid host name or IP address";
                return false;
            }
        }

        if (!TryParsePort(portText, allowZero: false, out var port))
        {
            error = $"'{portText}' in '{text}' is not a valid port (1-65535)";
            return false;
        }

        endPoint = new HostPort(host, port);
        error = string.Empty;
        return true;
    }

    /// <summary>Parses a port number; 0 (an ephemeral port) only when <paramref name="allowZero"/>.</summary>
    public static bool TryParsePort(string? text, bool allowZero, out int port)
    {
        port = 0;
        if (string.IsNullOrEmpty(text) || text.Length > 5 || !text.All(char.IsAsciiDigit)) return false;
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port)) return false;
        return port is <= IPEndPoint.MaxPort && (port > 0 || allowZero);
    }

    /// <summary>Parses an IP address literal (for <c>--bind</c>): IPv4 dotted quad or IPv6, without a port.</summary>
    public static bool TryParseAddress(string? text, out IPAddress? address)
    {
        address = null;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var t = text.StartsWith('[') && text.EndsWith(']') ? text[1..^1] : text;
        // IPAddress.TryParse accepts "1" or "1.2" (inet_aton forms); a bind address must be written in full.
        if (!t.Contains(':', StringComparison.Ordinal) && t.Count(c => c == '.') != 3) return false;
        if (!IPAddress.TryParse(t, out var parsed)) return false;
        address = parsed;
        return true;
    }

    /// <summary>
    /// Resolves <paramref name="endPoint"/> with the local resolver (an IP literal is used as is). Prefers an address
    /// of <paramref name="family"/> when given. Throws <see cref="SocketException"/> when the name does not resolve.
    /// </summary>
    public static async Task<IPEndPoint> ResolveAsync(HostPort endPoint, AddressFamily? family, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        if (IPAddress.TryParse(endPoint.Host, out var literal)) return new IPEndPoint(literal, endPoint.Port);
        var addresses = await Dns.GetHostAddressesAsync(endPoint.Host, ct);
        var pick = addresses.FirstOrDefault(a => family is null || a.AddressFamily == family)
            ?? addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
            ?? addresses.FirstOrDefault()
            ?? throw new SocketException((int)SocketError.HostNotFound);
        if (pick.IsIPv4MappedToIPv6) pick = pick.MapToIPv4();
        return new IPEndPoint(pick, endPoint.Port);
    }

    /// <summary>Formats an endpoint as <c>ip:port</c> or <c>[v6]:port</c>.</summary>
    public static string Format(IPEndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        return endPoint.ToString();
    }

    private static bool IsValidHost(string host)
    {
        if (host.Length is 0 or > MaxHostNameLength) return false;
        if (IPAddress.TryParse(host, out _) && host.Count(c => c == '.') == 3) return true;
        // RFC 1123 §2.1: labels of letters, digits and hyphens, 1-63 characters, not starting or ending with '-'.
        var labels = host.TrimEnd('.').Split('.');
        if (labels.All(l => l.Length > 0 && l.All(char.IsAsciiDigit))) return false; // "1.2.3" or "300.1.1.1"
        return labels.All(l => l.Length is > 0 and <= 63 && l[0] != '-' && l[^1] != '-'
            && l.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'));
    }
}
