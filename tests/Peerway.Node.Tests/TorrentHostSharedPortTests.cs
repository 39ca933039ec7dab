using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Dht;
using Peerway.Net;
using Peerway.TestSupport;
using Peerway.Torrent;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Utp;

namespace Peerway.Node.Tests;

/// <summary>
/// <see cref="TorrentHost"/> on real loopback sockets (issue 15 item 3): one port number for TCP, uTP and the DHT —
/// the DHT node's KRPC and uTP share one UDP socket, told apart by their first bytes.
/// </summary>
public sealed class TorrentHostSharedPortTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-host-utp");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task The_dht_node_and_utp_share_the_peer_port_and_tcp_listens_on_the_same_number()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var content = Path.Combine(_temp.Path, "payload.bin");
        await File.WriteAllBytesAsync(content, RandomNumberGenerator.GetBytes(100_000), cts.Token);
        var bytes = await TorrentCreator.CreateAsync(content, new TorrentCreateOptions(), null, cts.Token);
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        await using var router = DhtHost.Start(new DhtHostOptions { Bind = new IPEndPoint(IPAddress.Loopback, 0) }, NullLoggerFactory.Instance);

        await using var host = new TorrentHost(new TorrentHostOptions
        {
            InfoHash = meta!.InfoHash,
            Info = meta.Info,
            Path = content,
            ContentIsSource = true,
            DhtBootstrap = [router.LocalEndPoint],
            DhtBind = new IPEndPoint(IPAddress.Loopback, 0),
            Session = new() { ListenAddress = IPAddress.Loopback },
        });
        await host.StartAsync(cts.Token);
        var port = host.Client.Port;
        Assert.Equal(2, host.Client.LocalEndPoints.Count);
        Assert.All(host.Client.LocalEndPoints, e => Assert.Equal(port, e.Port));

        // The router learnt the host's DHT node at the peer port: KRPC went out of (and came back to) the shared socket.
        Assert.Contains(router.Node.RoutingTableNodes(), n => n.EndPoint.Equals(new IPEndPoint(IPAddress.Loopback, port)));

        // A uTP SYN to the same port is accepted (not taken for KRPC), and TCP is there too.
        await using var utp = new UtpTransport(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, new UtpOptions());
        await using var connection = await utp.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token);
        Assert.Equal(StreamTransportKind.Utp, connection.Kind);
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port, cts.Token);
    }
}
