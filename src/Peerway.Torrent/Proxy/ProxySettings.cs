using System.Globalization;
using System.Net;

namespace Peerway.Torrent.Proxy;

/// <summary>Which proxy protocol.</summary>
public enum ProxyKind
{
    /// <summary>SOCKS version 5 (RFC 1928), with username/password authentication (RFC 1929) when credentials are given.</summary>
    Socks5,

    /// <summary>An HTTP proxy's CONNECT method (RFC 9110 §9.3.6), with Basic Proxy-Authorization when credentials are given.</summary>
    HttpConnect,
}

/// <summary>A proxy for outgoing TCP connections: <c>socks5://[user:pass@]host:port</c> or <c>http://[user:pass@]host:port</c>.</summary>
public sealed record ProxySettings
{
    /// <summary>The proxy protocol.</summary>
    public required ProxyKind Kind { get; init; }

    /// <summary>The proxy's host name or IP address.</summary>
    public required string Host { get; init; }

    /// <summary>The proxy's TCP port.</summary>
    public required int Port { get; init; }

    /// <summary>User name for the proxy (RFC 1929, or Basic); null: no authentication.</summary>
    public string? UserName { get; init; }

    /// <summary>Password for <see cref="UserName"/>.</summary>
    public string? Password { get; init; }

    /// <summary>The proxy without credentials, for logs ("socks5://10.0.0.1:1080").</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{(Kind == ProxyKind.Socks5 ? "socks5" : "http")}://{(Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]" : Host)}:{Port}");

    /// <summary>Parses a proxy URL; false with a one-line reason when it is not one.</summary>
    public static bool TryParse(string? text, out ProxySettings? proxy, out string error)
    {
        proxy = null;
        error = "";
        if (string.IsNullOrWhiteSpace(text) || !Uri.TryCreate(text, UriKind.Absolute, out var uri))
        {
            error = $"not a proxy URL: '{text}' (socks5://[user:pass@]host:port or http://host:port)";
            return false;
        }

        ProxyKind kind;
        switch (uri.Scheme)
        {
            case "socks5" or "socks5h":
                kind = ProxyKind.Socks5;
                break;
            case "http":
                kind = ProxyKind.HttpConnect;
                break;
            default:
                error = $"unsupported proxy scheme '{uri.Scheme}' (socks5 or http)";
                return false;
        }

        if (uri.IsDefaultPort || uri.Port is <= 0 or > 65535 || string.IsNullOrEmpty(uri.Host) || uri.AbsolutePath is not ("/" or ""))
        {
            error = $"a proxy URL needs a host and a port, and nothing else: '{text}'";
            return false;
        }

        string? user = null, password = null;
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            user = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            password = colon < 0 ? "" : Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            // RFC 1929: each is 1 to 255 bytes.
            if (kind == ProxyKind.Socks5 && (user.Length is 0 or > 255 || System.Text.Encoding.UTF8.GetByteCount(password) > 255 || System.Text.Encoding.UTF8.GetByteCount(user) > 255))
            {
                error = "a SOCKS5 username and password are 1 to 255 bytes each (RFC 1929)";
                return false;
            }
        }

        proxy = new ProxySettings { Kind = kind, Host = uri.IdnHost.Trim('[', ']'), Port = uri.Port, UserName = user, Password = password };
        return true;
    }

    /// <summary>The same proxy for <see cref="HttpClient"/> (trackers, web seeds): .NET's handler speaks SOCKS5 (with RFC 1929 credentials) and HTTP CONNECT.</summary>
    public IWebProxy ToWebProxy()
    {
        var proxy = new WebProxy(new Uri(ToString())) { BypassProxyOnLocal = false };
        if (UserName is not null) proxy.Credentials = new NetworkCredential(UserName, Password);
        return proxy;
    }
}
