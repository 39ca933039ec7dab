using System.Net;
using System.Security.Cryptography;
using Peerway.Net;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Utp;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// uTP in <see cref="TorrentClient"/> (BEP 29, issue 15 item 3): one port number for uTP (UDP) and TCP, uTP dialled
/// first with TCP at once as the fallback (a reset or no answer), what worked remembered per peer, the
/// <see cref="TorrentClientOptions.Transports"/> choice, and MSE/PE over uTP. Real UDP and TCP sockets on loopback.
/// </summary>
public sealed class TorrentClientTransportTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-client-utp-").FullName;
    private readonly List<IAsyncDisposable> _disposables = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--) await _disposables[i].DisposeAsync();
        Directory.Delete(_dir, true);
    }

    private async Task<(TorrentMetainfo Meta, byte[] Content)> MakeTorrentAsync(int size)
    {
        var path = Path.Combine(_dir, "content.bin");
        var content = RandomNumberGenerator.GetBytes(size);
        await File.WriteAllBytesAsync(path, content);
        var bytes = await TorrentCreator.CreateAsync(path, new TorrentCreateOptions { PieceLength = 32 * 1024 });
        File.Delete(path);
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        return (meta!, content);
    }

    /// <summary>A uTP transport on a free loopback UDP port (its port is the client's, TCP's too, when listed first).</summary>
    private UtpTransport Utp(bool listen = true)
    {
        var utp = new UtpTransport(UdpPortWithTcpFree(), TimeProvider.System, new UtpOptions());
        if (!listen) _disposables.Add(utp);
        return utp;
    }

    /// <summary>
    /// A loopback UDP socket on a free port whose TCP port number was free a moment ago: the client then listens for
    /// TCP on the same number, and an ephemeral TCP socket of another test may hold it (seen once in CI).
    /// </summary>
    private static UdpDatagramSocket UdpPortWithTcpFree()
    {
        for (var attempt = 1; ; attempt++)
        {
            var udp = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0));
            try
            {
                using var probe = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                probe.Bind(new IPEndPoint(IPAddress.Loopback, udp.LocalEndPoint.Port));
                return udp;
            }
            catch (System.Net.Sockets.SocketException) when (attempt < 20)
            {
                udp.Dispose();
            }
        }
    }

    private async Task<TorrentClient> StartClientAsync(ITorrentStorageFactory storage, IReadOnlyList<IStreamTransport> transports, TorrentClientOptions? options = null, bool listen = true)
    {
        var client = new TorrentClient(transports, (options ?? new TorrentClientOptions()) with { ListenEndPoints = listen ? [new IPEndPoint(IPAddress.Loopback, 0)] : [] },
            storage, TimeProvider.System);
        _disposables.Add(client);
        foreach (var t in transports.OfType<UtpTransport>()) _disposables.Add(t);
        await client.StartAsync(CancellationToken.None);
        return client;
    }

    private static TorrentAddOptions Seeding => new() { SeedOnly = true };

    /// <summary>What carries the first peer connection of <paramref name="handle"/>, and its encryption.</summary>
    private static Task<(StreamTransportKind Kind, CryptoMethods Encryption)> FirstPeerAsync(TorrentHandle handle)
    {
        var first = new TaskCompletionSource<(StreamTransportKind, CryptoMethods)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var session = handle.Session!;
        session.PeerConnected += _ => first.TrySetResult((session.ConnectionTransports()[^1], session.ConnectionEncryption()[^1]));
        return first.Task;
    }

    private static TorrentAddOptions From(int port) => new() { Peers = [new IPEndPoint(IPAddress.Loopback, port)] };

    [Fact]
    public async Task Both_transports_listen_on_one_port_number_and_a_peer_with_both_is_reached_over_utp()
    {
        var (meta, content) = await MakeTorrentAsync(300_000);
        var seedStore = new MemoryStorageFactory();
        seedStore.Add(meta.Info, content);
        var seedUtp = Utp();
        var seeder = await StartClientAsync(seedStore, [seedUtp, new TcpStreamTransport()]);
        var peer = FirstPeerAsync(await seeder.AddAsync(meta, "seed", Seeding));
        Assert.Equal(2, seeder.LocalEndPoints.Count);
        Assert.All(seeder.LocalEndPoints, e => Assert.Equal(seedUtp.LocalEndPoint.Port, e.Port));

        var leechStore = new MemoryStorageFactory();
        var leecher = await StartClientAsync(leechStore, [new TcpStreamTransport(), Utp()], listen: false);
        var got = await leecher.AddAsync(meta, "dl", From(seeder.Port));
        await got.Completed.WaitAsync(Deadline);

        Assert.Equal(content, leechStore.Get(meta.InfoHash)!.ToArray());
        // TCP is listed first at the leecher, yet uTP is dialled first (libtorrent's order), and that is remembered.
        Assert.Equal(StreamTransportKind.Utp, leecher.RememberedTransport(new IPEndPoint(IPAddress.Loopback, seeder.Port)));
        Assert.Equal(StreamTransportKind.Utp, (await peer.WaitAsync(Deadline)).Kind);
    }

    [Fact]
    public async Task A_peer_whose_udp_port_answers_syns_with_a_reset_is_reached_over_tcp_at_once_and_that_is_remembered()
    {
        var (meta, content) = await MakeTorrentAsync(200_000);
        var seedStore = new MemoryStorageFactory();
        seedStore.Add(meta.Info, content);
        // The seeder speaks TCP only, but its port's UDP side is a uTP transport without a listener: SYNs get ST_RESET.
        var resetter = Utp(listen: false);
        var tcpOnly = new TorrentClient([new TcpStreamTransport()], new TorrentClientOptions { ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, resetter.LocalEndPoint.Port)] },
            seedStore, TimeProvider.System);
        _disposables.Add(tcpOnly);
        await tcpOnly.StartAsync(CancellationToken.None);
        var peer = FirstPeerAsync(await tcpOnly.AddAsync(meta, "seed", Seeding));

        var leechStore = new MemoryStorageFactory();
        // A uTP connect timeout far beyond the test's deadline: only the reset can make the fallback this quick.
        var leecher = await StartClientAsync(leechStore, [Utp(), new TcpStreamTransport()], new TorrentClientOptions { UtpConnectTimeout = TimeSpan.FromHours(1) });
        var got = await leecher.AddAsync(meta, "dl", From(tcpOnly.Port));
        await got.Completed.WaitAsync(Deadline);

        Assert.Equal(content, leechStore.Get(meta.InfoHash)!.ToArray());
        Assert.True(resetter.Resets > 0, "the SYN was not answered with a reset");
        Assert.Equal(StreamTransportKind.Tcp, leecher.RememberedTransport(new IPEndPoint(IPAddress.Loopback, tcpOnly.Port)));
        Assert.Equal(StreamTransportKind.Tcp, (await peer.WaitAsync(Deadline)).Kind);
    }

    [Fact]
    public async Task A_peer_whose_udp_port_is_silent_is_reached_over_tcp_after_the_utp_connect_timeout()
    {
        var (meta, content) = await MakeTorrentAsync(100_000);
        var seedStore = new MemoryStorageFactory();
        seedStore.Add(meta.Info, content);
        // Nothing answers on the seeder's UDP port: a socket that drops every datagram holds it.
        using var silent = UdpPortWithTcpFree();
        var received = 0;
        silent.Start((_, _) => Interlocked.Increment(ref received));
        var seeder = new TorrentClient([new TcpStreamTransport()], new TorrentClientOptions { ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, silent.LocalEndPoint.Port)] },
            seedStore, TimeProvider.System);
        _disposables.Add(seeder);
        await seeder.StartAsync(CancellationToken.None);
        await seeder.AddAsync(meta, "seed", Seeding);

        var leechStore = new MemoryStorageFactory();
        var leecher = await StartClientAsync(leechStore, [Utp(), new TcpStreamTransport()], new TorrentClientOptions { UtpConnectTimeout = TimeSpan.FromMilliseconds(300) });
        var got = await leecher.AddAsync(meta, "dl", From(seeder.Port));
        await got.Completed.WaitAsync(Deadline);

        Assert.Equal(content, leechStore.Get(meta.InfoHash)!.ToArray());
        Assert.True(Volatile.Read(ref received) > 0, "no uTP SYN was tried first");
        Assert.Equal(StreamTransportKind.Tcp, leecher.RememberedTransport(new IPEndPoint(IPAddress.Loopback, seeder.Port)));
    }

    [Fact]
    public async Task Transports_utp_leaves_tcp_out_of_listening_and_dialling()
    {
        var (meta, content) = await MakeTorrentAsync(100_000);
        var seedStore = new MemoryStorageFactory();
        seedStore.Add(meta.Info, content);
        var seeder = await StartClientAsync(seedStore, [Utp(), new TcpStreamTransport()], new TorrentClientOptions { Transports = PeerTransports.Utp });
        await seeder.AddAsync(meta, "seed", Seeding);
        Assert.Single(seeder.LocalEndPoints);
        // No TCP listener on the port: a TCP connect is refused.
        using var tcp = new System.Net.Sockets.TcpClient();
        await Assert.ThrowsAsync<System.Net.Sockets.SocketException>(() => tcp.ConnectAsync(IPAddress.Loopback, seeder.Port));

        // A TCP-only client cannot reach it; a uTP-only one can.
        var tcpStore = new MemoryStorageFactory();
        var tcpLeecher = await StartClientAsync(tcpStore, [Utp(), new TcpStreamTransport()], new TorrentClientOptions { Transports = PeerTransports.Tcp });
        Assert.Throws<ArgumentException>(() => new TorrentClient([new TcpStreamTransport()], new TorrentClientOptions { Transports = PeerTransports.Utp }, tcpStore, TimeProvider.System));
        var leechStore = new MemoryStorageFactory();
        var leecher = await StartClientAsync(leechStore, [new TcpStreamTransport(), Utp()], new TorrentClientOptions { Transports = PeerTransports.Utp }, listen: false);
        var got = await leecher.AddAsync(meta, "dl", From(seeder.Port));
        await got.Completed.WaitAsync(Deadline);
        Assert.Equal(content, leechStore.Get(meta.InfoHash)!.ToArray());
        Assert.Single(tcpLeecher.LocalEndPoints);
        Assert.Equal(0, tcpLeecher.ConnectionCount);
    }

    [Fact]
    public async Task Mse_is_negotiated_over_utp_when_both_sides_require_it()
    {
        var (meta, content) = await MakeTorrentAsync(200_000);
        var seedStore = new MemoryStorageFactory();
        seedStore.Add(meta.Info, content);
        var required = new TorrentClientOptions { Transports = PeerTransports.Utp, Encryption = EncryptionPolicy.Require };
        var seeder = await StartClientAsync(seedStore, [Utp()], required);
        var peer = FirstPeerAsync(await seeder.AddAsync(meta, "seed", Seeding));

        var leechStore = new MemoryStorageFactory();
        var leecher = await StartClientAsync(leechStore, [Utp()], required);
        var got = await leecher.AddAsync(meta, "dl", From(seeder.Port));
        await got.Completed.WaitAsync(Deadline);

        Assert.Equal(content, leechStore.Get(meta.InfoHash)!.ToArray());
        Assert.Equal((StreamTransportKind.Utp, CryptoMethods.Rc4), await peer.WaitAsync(Deadline));
    }
}
