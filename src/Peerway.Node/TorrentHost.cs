using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;
using Peerway.Dht;
using Peerway.Net;
using Peerway.Torrent;
using Peerway.Torrent.Lsd;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Proxy;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Trackers;
using Peerway.WebTorrent;
using Peerway.Torrent.Utp;

namespace Peerway.Node;

/// <summary>What to run: a torrent (or magnet) with its peer sources.</summary>
public sealed record TorrentHostOptions
{
    public required NodeId InfoHash { get; init; }

    /// <summary>Known metadata (.torrent); null for a magnet link (fetched with BEP 9).</summary>
    public TorrentInfo? Info { get; init; }

    /// <summary>Download directory; or, with <see cref="ContentIsSource"/>, the content itself (file or directory).</summary>
    public required string Path { get; init; }

    public bool ContentIsSource { get; init; }

    public IReadOnlyList<string> Trackers { get; init; } = [];

    public IReadOnlyList<IPEndPoint> Peers { get; init; } = [];

    public TorrentSessionOptions Session { get; init; } = new();

    /// <summary>How the content is stored on disk (O_DIRECT, overwriting files that do not fit).</summary>
    public FileStorageOptions Storage { get; init; } = new();

    /// <summary>DHT routers to join (BEP 5); empty: no DHT node of our own (unless one is passed to the host).</summary>
    public IReadOnlyList<IPEndPoint> DhtBootstrap { get; init; } = [];

    /// <summary>Where our DHT node binds (port 0: any).</summary>
    public IPEndPoint DhtBind { get; init; } = new(IPAddress.Any, 0);

    /// <summary>
    /// BEP 32: with a DHT node of the host's own, an address of the other family for a second node paired with it (same
    /// id; the first one's port number when free), so that the torrent is looked up and announced on both DHTs; null:
    /// one family. Not bound (no IPv6 on the host): one family, with a warning.
    /// </summary>
    public IPAddress? DhtPairAddress { get; init; }

    public DhtPeerSourceOptions DhtPeerSource { get; init; } = new();

    /// <summary>TCP, uTP or both (the default: uTP dialled first, TCP fallback; both listened on, on one port number).</summary>
    public PeerTransports Transports { get; init; } = PeerTransports.Both;

    /// <summary>uTP tuning (BEP 29, LEDBAT).</summary>
    public UtpOptions Utp { get; init; } = new();

    /// <summary>Which files to download, chosen once the info dictionary is known (see <see cref="TorrentAddOptions.FileSelection"/>); null: all.</summary>
    public Func<TorrentInfo, IReadOnlyList<FilePriority>?>? FileSelection { get; init; }

    /// <summary>BEP 19 web seeds to download from (a .torrent's url-list), besides peers.</summary>
    public IReadOnlyList<Uri> WebSeeds { get; init; } = [];

    /// <summary>WebRTC peers (WebTorrent, browsers) through the ws:// and wss:// trackers; null: none (WebSocket trackers
    /// are still announced to, without offers).</summary>
    public WebRtcPeerSourceOptions? WebRtc { get; init; }

    /// <summary>BEP 14 Local Service Discovery: multicast announces on 6771 find peers on the LAN (off unless set; the CLI turns it on).</summary>
    public bool LocalDiscovery { get; init; }

    /// <summary>
    /// Outgoing peer connections (TCP), HTTP trackers and web seeds through this SOCKS5 or HTTP CONNECT proxy; null:
    /// direct. uTP and the DHT go through it only with a UDP ASSOCIATE given to the constructor (RFC 1928 §7); without
    /// one set <see cref="Transports"/> to TCP and leave the DHT off (the CLI does). UDP trackers are skipped with a
    /// warning and LSD should be off (the CLI turns it off).
    /// </summary>
    public ProxySettings? Proxy { get; init; }

    public void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(Path);
        Session.Validate();
        ArgumentNullException.ThrowIfNull(Utp);
        Utp.Validate();
        WebRtc?.Validate();
        if (Proxy is not null && DhtPairAddress is not null) throw new ArgumentException("a second DHT node (BEP 32) would not go through the proxy", nameof(DhtPairAddress));
    }
}

/// <summary>
/// Runs one torrent on real sockets: a <see cref="TorrentClient"/> on uTP and TCP (one port number) and the file system,
/// the trackers (HTTP, and UDP on one shared socket) and, with a DHT node, the DHT as a peer source. The uTP socket is
/// the DHT node's socket too when the host runs its own (<see cref="SharedUdpPort"/>). The Node layer is where real sockets are
/// created; the engines underneath take them.
/// </summary>
public sealed class TorrentHost : IAsyncDisposable
{
    private readonly TorrentHostOptions _options;
    private readonly ILoggerFactory _loggers;
    private readonly HttpClient _http;

    /// <summary>Web seeds (BEP 19): keep-alive connections, a few redirects at most (a loop fails fast); the engine times each request.</summary>
    private readonly HttpClient _webSeedHttp;
    private UdpDatagramSocket? _udpSocket;
    private readonly SharedUdpPort? _udpPort;
    private readonly bool _proxyRelaysUdp;
    private UdpTrackerClient? _udp;
    private TrackerAnnouncer? _announcer;
    private WebRtcPeerSource? _webrtc;
    private readonly DualStackDhtHost? _dhtHost;
    private TorrentHandle? _handle;
    private List<LsdChannel> _lsdChannels = [];
    private LocalDiscovery? _lsd;

    /// <summary>
    /// Creates the host. With <paramref name="dht"/> the torrent uses that (already joined) DHT node; otherwise, when
    /// <see cref="TorrentHostOptions.DhtBootstrap"/> is set, it starts and joins a DHT node of its own.
    /// </summary>
    /// <param name="proxyUdp">
    /// A UDP ASSOCIATE granted by <see cref="TorrentHostOptions.Proxy"/> (owned): uTP, the DHT node and UDP trackers then
    /// send through its relay (RFC 1928 §7, <see cref="Socks5DatagramSocket"/>) and uTP is dialled as well as TCP.
    /// </param>
    public TorrentHost(TorrentHostOptions options, ILoggerFactory? loggers = null, DhtNode? dht = null, Socks5UdpAssociation? proxyUdp = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _loggers = loggers ?? NullLoggerFactory.Instance;
        // With a proxy, .NET's handler speaks SOCKS5 (RFC 1929 credentials) or HTTP CONNECT for trackers and web seeds.
        var proxy = options.Proxy?.ToWebProxy();
        _http = new HttpClient(new SocketsHttpHandler { Proxy = proxy, UseProxy = proxy is not null }) { Timeout = TimeSpan.FromSeconds(30) };
        _webSeedHttp = new HttpClient(new SocketsHttpHandler { MaxAutomaticRedirections = 5, MaxConnectionsPerServer = 16, Proxy = proxy, UseProxy = proxy is not null }) { Timeout = Timeout.InfiniteTimeSpan };
        var session = options.Session;
        var transports = new List<IStreamTransport>();
        var ownDht = dht is null && options.DhtBootstrap.Count > 0;
        if (proxyUdp is not null && (((options.Transports & PeerTransports.Utp) == 0 && !ownDht) || options.Proxy is null))
        {
            throw new ArgumentException("a proxy's UDP association needs the proxy set, and uTP or a DHT node of the host's own to use it", nameof(proxyUdp));
        }

        if ((options.Transports & PeerTransports.Utp) != 0 || (proxyUdp is not null && ownDht))
        {
            // Bound first: its port (the one asked for, or any) is then the TCP listener's too.
            Func<IDatagramSocket, IDatagramSocket>? relay = proxyUdp is null ? null : socket => new Socks5DatagramSocket(socket, proxyUdp, _loggers.CreateLogger<Socks5DatagramSocket>());
            _udpPort = SharedUdpPort.Bind(new IPEndPoint(session.ListenAddress, session.ListenPort), options.Utp, _loggers, relay);
            if ((options.Transports & PeerTransports.Utp) != 0) transports.Add(_udpPort.Utp);
            _proxyRelaysUdp = proxyUdp is not null;
        }

        if ((options.Transports & PeerTransports.Tcp) != 0) transports.Add(new TcpStreamTransport());
        try
        {
            if (ownDht)
            {
                _dhtHost = DualStackDhtHost.Start(new DhtHostOptions { Bind = options.DhtBind }, options.DhtPairAddress, _loggers, socket: _udpPort?.Krpc);
                dht = _dhtHost.Node;
            }
        }
        catch
        {
            _udpPort?.Dispose();
            throw;
        }

        Client = new TorrentClient(transports, new TorrentClientOptions
        {
            Transports = options.Transports,
            ListenEndPoints = [new IPEndPoint(session.ListenAddress, session.ListenPort)],
            MaxConnections = session.MaxConnections,
            MaxConnectionsPerIp = session.MaxConnectionsPerIp,
            HandshakeTimeout = session.HandshakeTimeout,
            UploadRateLimit = session.UploadRateLimit,
            Encryption = session.Encryption,
            PeerId = session.PeerId,
            Dht = options.DhtPeerSource,
            Proxy = options.Proxy,
            ProxyRelaysUdp = proxyUdp is not null,
        }, new FileStorageFactory(options.Storage, TimeProvider.System), TimeProvider.System, dht is null ? null : new DhtNodeTorrentDht(dht), _loggers)
        {
            WebSeedHttp = _webSeedHttp,
        };
    }

    /// <summary>The client running the torrent (one torrent here).</summary>
    public TorrentClient Client { get; }

    /// <summary>The torrent, once started.</summary>
    public TorrentHandle Handle => _handle ?? throw new InvalidOperationException("the host is not started");

    /// <summary>The torrent's engine, once started.</summary>
    public TorrentSession Session => Handle.Session ?? throw new InvalidOperationException("the torrent is not running");

    public TrackerAnnouncer? Announcer => _announcer;

    /// <summary>The WebRTC (WebTorrent) peer source, when a WebSocket tracker and <see cref="TorrentHostOptions.WebRtc"/> are set.</summary>
    public WebRtcPeerSource? WebRtc => _webrtc;

    /// <summary>BEP 14 Local Service Discovery, when on and a multicast socket could be opened.</summary>
    public LocalDiscovery? LocalDiscovery => _lsd;

    public async Task StartAsync(CancellationToken ct)
    {
        await Client.StartAsync(ct).ConfigureAwait(false);
        if (_options.LocalDiscovery)
        {
            // Started before the torrent is added, so it is announced as it starts (BEP 14).
            _lsdChannels = LsdSockets.Open(_options.Session.ListenAddress, _loggers.CreateLogger<LocalDiscovery>());
            if (_lsdChannels.Count > 0)
            {
                _lsd = new LocalDiscovery(Client, _lsdChannels, TimeProvider.System, null, _loggers.CreateLogger<LocalDiscovery>());
                _lsd.Start();
            }
        }

        // Joined before the torrent is added, so its first DHT lookup has a routing table to walk.
        if (_dhtHost is not null)
        {
            var size = await _dhtHost.JoinAsync(_options.DhtBootstrap, ct).ConfigureAwait(false);
            if (size == 0) _loggers.CreateLogger<TorrentHost>().LogWarning("the DHT bootstrap nodes did not answer");
        }

        var savePath = _options.ContentIsSource ? System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(_options.Path))! : _options.Path;
        var add = new TorrentAddOptions { Session = _options.Session, SeedOnly = _options.ContentIsSource, Peers = _options.Peers, FileSelection = _options.FileSelection, WebSeeds = _options.WebSeeds };
        _handle = _options.Info is { } info
            ? await Client.AddAsync(info, savePath, add, ct).ConfigureAwait(false)
            : await Client.AddAsync(new MagnetLink(_options.InfoHash, null, [], []), savePath, add, ct).ConfigureAwait(false);
        if (_options.Trackers.Count > 0)
        {
            var udpTrackers = _options.Trackers.Any(t => t.StartsWith("udp:", StringComparison.OrdinalIgnoreCase));
            if (udpTrackers && _options.Proxy is not null && _proxyRelaysUdp)
            {
                // Through the proxy's UDP relay, on the port's tracker side (RFC 1928 §7).
                _udp = new UdpTrackerClient(_udpPort!.Tracker, TimeProvider.System, new UdpTrackerOptions());
            }
            else if (udpTrackers && _options.Proxy is not null)
            {
                _loggers.CreateLogger<TorrentHost>().LogWarning("UDP trackers are not used through the proxy {Proxy}: it relays no UDP for us", _options.Proxy);
            }
            else if (udpTrackers)
            {
                _udpSocket = new UdpDatagramSocket(new IPEndPoint(IPAddress.Any, 0));
                _udp = new UdpTrackerClient(_udpSocket, TimeProvider.System, new UdpTrackerOptions());
            }

            if (_options.WebRtc is { } rtc && _options.Trackers.Any(t => t.StartsWith("ws", StringComparison.OrdinalIgnoreCase)))
            {
                _webrtc = new WebRtcPeerSource(rtc, TimeProvider.System, _loggers);
            }

            _announcer = new TrackerAnnouncer(Session, _options.Trackers, _http, _udp, TimeProvider.System, _loggers.CreateLogger<TrackerAnnouncer>(), _webrtc);
            _announcer.Start();
        }
    }

    /// <summary>Resolves "host:port" (numeric or a name) to an endpoint; null when it is not one.</summary>
    public static async Task<IPEndPoint?> ResolveAsync(string hostPort, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(hostPort);
        if (IPEndPoint.TryParse(hostPort, out var ep) && ep.Port != 0 && hostPort.Contains(':', StringComparison.Ordinal)) return ep;
        var colon = hostPort.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(hostPort.AsSpan(colon + 1), out var port) || port is <= 0 or > 65535) return null;
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(hostPort[..colon], ct).ConfigureAwait(false);
            var address = addresses.FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork) ?? addresses.FirstOrDefault();
            return address is null ? null : new IPEndPoint(address, port);
        }
        catch (System.Net.Sockets.SocketException)
        {
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_announcer is not null) await _announcer.DisposeAsync().ConfigureAwait(false);
        if (_lsd is not null) await _lsd.DisposeAsync().ConfigureAwait(false);
        foreach (var channel in _lsdChannels) channel.Socket.Dispose();
        // The client first: it closes the sessions' WebRTC connections, which the peer source then sees end.
        await Client.DisposeAsync().ConfigureAwait(false);
        if (_webrtc is not null) await _webrtc.DisposeAsync().ConfigureAwait(false);
        if (_dhtHost is not null) await _dhtHost.DisposeAsync().ConfigureAwait(false);
        if (_udpPort is not null) await _udpPort.DisposeAsync().ConfigureAwait(false);
        _udp?.Dispose();
        _udpSocket?.Dispose();
        _http.Dispose();
        _webSeedHttp.Dispose();
    }
}
