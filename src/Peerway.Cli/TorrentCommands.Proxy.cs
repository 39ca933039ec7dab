using System.CommandLine;
using Peerway.Net;
using Peerway.Torrent;
using Peerway.Torrent.Proxy;

namespace Peerway.Cli;

/// <summary>--proxy on share and get: peers (TCP), HTTP trackers and web seeds through SOCKS5 or HTTP CONNECT.</summary>
internal static partial class TorrentCommands
{
    private static Option<string?> ProxyOption() => new("--proxy")
    {
        Description = "Connect to peers (TCP), HTTP trackers and web seeds through a proxy: socks5://[user:pass@]host:port (RFC 1928/1929) or http://[user:pass@]host:port (CONNECT). uTP, the DHT, UDP trackers and LSD are not proxied: with --proxy, peers are dialled over TCP and LSD is off.",
    };

    /// <summary>The proxy, or null; a bad URL, or --proxy with a UDP-only setting, is a usage error.</summary>
    private static ProxySettings? CheckProxy(string? value, ref PeerTransports transports, bool explicitTransport, bool dht)
    {
        if (value is null) return null;
        if (!ProxySettings.TryParse(value, out var proxy, out var error)) throw new UsageException($"--proxy: {error}");
        if (explicitTransport && transports == PeerTransports.Utp) throw new UsageException("--proxy carries TCP only: --transport utp cannot go through it");
        if (dht) throw new UsageException("--proxy does not carry the DHT (UDP ASSOCIATE is not implemented): leave out --dht-bootstrap");
        // Incoming uTP would still be accepted, but every outgoing connection goes through the proxy over TCP.
        transports = PeerTransports.Tcp;
        return proxy;
    }

    /// <summary>A SOCKS5 proxy's greeting and authentication, before anything is fetched: a wrong password fails here (exit 1).</summary>
    private static async Task CheckProxyReachableAsync(ProxySettings proxy, CancellationToken ct)
    {
        try
        {
            await new ProxyStreamTransport(new TcpStreamTransport(), proxy, TimeSpan.FromSeconds(10)).CheckAsync(ct);
        }
        catch (ProxyException ex)
        {
            throw new RuntimeFailureException(ex.Message);
        }
    }
}
