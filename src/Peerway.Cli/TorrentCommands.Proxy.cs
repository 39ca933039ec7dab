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
        Description = "Connect to peers, HTTP trackers and web seeds through a proxy: socks5://[user:pass@]host:port (RFC 1928/1929) or http://[user:pass@]host:port (CONNECT, TCP only). Through a SOCKS5 proxy that grants UDP ASSOCIATE (RFC 1928 §7), uTP, the DHT and UDP trackers go through its UDP relay too; otherwise (HTTP CONNECT, or a refusal: one warning line) peers are dialled over TCP, the DHT is off and UDP trackers are skipped. LSD is never proxied: with --proxy it is off.",
    };

    /// <summary>The proxy, or null; a bad URL, or a UDP-only setting with an HTTP CONNECT proxy, is a usage error.</summary>
    private static ProxySettings? CheckProxy(string? value, ref PeerTransports transports, bool explicitTransport, bool dht)
    {
        if (value is null) return null;
        if (!ProxySettings.TryParse(value, out var proxy, out var error)) throw new UsageException($"--proxy: {error}");
        // A SOCKS5 proxy may relay UDP: decided once it answers UDP ASSOCIATE (ProxyUdpAsync).
        if (proxy!.Kind == ProxyKind.Socks5) return proxy;
        if (explicitTransport && transports == PeerTransports.Utp) throw new UsageException("an HTTP CONNECT proxy carries TCP only: --transport utp cannot go through it");
        if (dht) throw new UsageException("an HTTP CONNECT proxy does not carry the DHT (UDP): leave out --dht-bootstrap or use a SOCKS5 proxy");
        // Incoming uTP would still be accepted, but every outgoing connection goes through the proxy over TCP.
        transports = PeerTransports.Tcp;
        return proxy;
    }

    /// <summary>
    /// A SOCKS5 proxy's greeting and authentication, before anything is fetched (a wrong password fails here, exit 1);
    /// then, when uTP or the DHT is wanted, its UDP relay (RFC 1928 §7). A refusal (microsocks has no UDP ASSOCIATE) is
    /// one warning line: peers over TCP only, no DHT (exit 1 if only uTP was asked for).
    /// </summary>
    private static async Task<(Socks5UdpAssociation? Udp, PeerTransports Transports, bool Dht)> ProxyUdpAsync(
        ProxySettings proxy, PeerTransports transports, bool dht, TextWriter error, CancellationToken ct)
    {
        var transport = new ProxyStreamTransport(new TcpStreamTransport(), proxy, TimeSpan.FromSeconds(10));
        try
        {
            await transport.CheckAsync(ct);
            if (proxy.Kind != ProxyKind.Socks5 || ((transports & PeerTransports.Utp) == 0 && !dht)) return (null, transports, dht);
        }
        catch (ProxyException ex)
        {
            throw new RuntimeFailureException(ex.Message);
        }

        try
        {
            return (await transport.UdpAssociateAsync(ct), transports, dht);
        }
        catch (ProxyException ex)
        {
            if (transports == PeerTransports.Utp) throw new RuntimeFailureException($"{ex.Message}: --transport utp cannot go through it");
            await error.WriteLineAsync($"warning: {ex.Message}: uTP and the DHT are off, peers are dialled over TCP through the proxy");
            return (null, PeerTransports.Tcp, false);
        }
    }
}
