using Microsoft.Extensions.Logging;
using Peerway.Net;
using Peerway.Torrent.Proxy;

namespace Peerway.Torrent;

/// <summary>Outgoing peer connections through a proxy (<see cref="TorrentClientOptions.Proxy"/>).</summary>
public sealed partial class TorrentClient
{
    /// <summary>
    /// The transports peers are dialled on: all of them, or with a proxy, the TCP ones through it, and uTP only when its
    /// socket is relayed by the proxy (<see cref="TorrentClientOptions.ProxyRelaysUdp"/>; otherwise uTP would bypass the
    /// proxy, so it is not dialled, as libtorrent does under a TCP-only proxy).
    /// </summary>
    private IStreamTransport[] DialTransports(IReadOnlyList<IStreamTransport> transports, TorrentClientOptions options, TimeProvider time)
    {
        if (options.Proxy is not { } proxy) return [.. transports];
        var log = _loggers.CreateLogger<ProxyStreamTransport>();
        IStreamTransport[] proxied = [.. transports.Where(t => t.Kind == StreamTransportKind.Tcp).Select(t => new ProxyStreamTransport(t, proxy, options.HandshakeTimeout, time, log))];
        if (options.ProxyRelaysUdp) return [.. proxied, .. transports.Where(t => t.Kind != StreamTransportKind.Tcp)];
        if (proxied.Length == 0) throw new ArgumentException("a proxy carries TCP connections: a TCP transport is needed", nameof(transports));
        if (proxied.Length < transports.Count) log.LogInformation("peers are dialled through {Proxy} over TCP only (uTP is not proxied)", proxy);
        return proxied;
    }
}
