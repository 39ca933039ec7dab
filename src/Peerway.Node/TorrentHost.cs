using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;
using Peerway.Dht;
using Peerway.Net;
using Peerway.Torrent;
using Peerway.Torrent.Metainfo;
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

    public DhtPeerSourceOptions DhtPeerSource { get; init; } = new();

    /// <summary>WebRTC peers (WebTorrent, browsers) through the ws:// and wss:// trackers; null: none (WebSocket trackers
    /// are still announced to, without offers).</summary>
    public WebRtcPeerSourceOptions? WebRtc { get; init; }

    public void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(Path);
        Session.Validate();
        WebRtc?.Validate();
    }
}

/// <summary>
/// Runs one torrent on real sockets: a <see cref="TorrentClient"/> on TCP and the file system, the trackers (HTTP, and
/// UDP on one shared socket) and, with a DHT node, the DHT as a peer source. The Node layer is where real sockets are
/// created; the engines underneath take them.
/// </summary>
public sealed class TorrentHost : IAsyncDisposable
{
    private readonly TorrentHostOptions _options;
    private readonly ILoggerFactory _loggers;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private UdpDatagramSocket? _udpSocket;
    private UtpTransport? _utp;
    private UdpTrackerClient? _udp;
    private TrackerAnnouncer? _announcer;
    private WebRtcPeerSource? _webrtc;
    private readonly DhtHost? _dhtHost;
    private TorrentHandle? _handle;

    /// <summary>
    /// Creates the host. With <paramref name="dht"/> the torrent uses that (already joined) DHT node; otherwise, when
    /// <see cref="TorrentHostOptions.DhtBootstrap"/> is set, it starts and joins a DHT node of its own.
    /// </summary>
    public TorrentHost(TorrentHostOptions options, ILoggerFactory? loggers = null, DhtNode? dht = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _loggers = loggers ?? NullLoggerFactory.Instance;
        if (dht is null && options.DhtBootstrap.Count > 0)
        {
            _dhtHost = DhtHost.Start(new DhtHostOptions { Bind = options.DhtBind }, _loggers);
            dht = _dhtHost.Node;
        }

        var session = options.Session;
        Client = new TorrentClient([new TcpStreamTransport()], new TorrentClientOptions
        {
            ListenEndPoints = [new IPEndPoint(session.ListenAddress, session.ListenPort)],
            MaxConnections = session.MaxConnections,
            MaxConnectionsPerIp = session.MaxConnectionsPerIp,
            HandshakeTimeout = session.HandshakeTimeout,
            UploadRateLimit = session.UploadRateLimit,
            Encryption = session.Encryption,
            PeerId = session.PeerId,
            Dht = options.DhtPeerSource,
        }, new FileStorageFactory(options.Storage, TimeProvider.System), TimeProvider.System, dht is null ? null : new DhtNodeTorrentDht(dht), _loggers);
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

    public async Task StartAsync(CancellationToken ct)
    {
        await Client.StartAsync(ct).ConfigureAwait(false);
        // Joined before the torrent is added, so its first DHT lookup has a routing table to walk.
        if (_dhtHost is not null)
        {
            var size = await _dhtHost.JoinAsync(_options.DhtBootstrap, ct).ConfigureAwait(false);
            if (size == 0) _loggers.CreateLogger<TorrentHost>().LogWarning("the DHT bootstrap nodes did not answer");
        }

        var savePath = _options.ContentIsSource ? System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(_options.Path))! : _options.Path;
        var add = new TorrentAddOptions { Session = _options.Session, SeedOnly = _options.ContentIsSource, Peers = _options.Peers };
        _handle = _options.Info is { } info
            ? await Client.AddAsync(info, savePath, add, ct).ConfigureAwait(false)
            : await Client.AddAsync(new MagnetLink(_options.InfoHash, null, [], []), savePath, add, ct).ConfigureAwait(false);
        StartUtp();
        if (_options.Trackers.Count > 0)
        {
            if (_options.Trackers.Any(t => t.StartsWith("udp:", StringComparison.OrdinalIgnoreCase)))
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

    /// <summary>
    /// uTP (BEP 29) on the listen port (UDP). Until the session takes uTP connections (it listens on TCP only), the
    /// transport has no listener, so it answers every SYN with ST_RESET and libtorrent-based clients, which try uTP
    /// first, fall back to TCP at once (issue 22). A busy UDP port only costs that speed-up.
    /// </summary>
    private void StartUtp()
    {
        try
        {
            var socket = new UdpDatagramSocket(new IPEndPoint(_options.Session.ListenAddress, Client.Port));
            _utp = new UtpTransport(socket, TimeProvider.System, new UtpOptions(), _loggers.CreateLogger<UtpTransport>());
        }
        catch (System.Net.Sockets.SocketException ex)
        {
            _loggers.CreateLogger<TorrentHost>().LogWarning("uTP port {Port} unavailable, SYNs go unanswered: {Message}", Client.Port, ex.Message);
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
        // The client first: it closes the sessions' WebRTC connections, which the peer source then sees end.
        await Client.DisposeAsync().ConfigureAwait(false);
        if (_webrtc is not null) await _webrtc.DisposeAsync().ConfigureAwait(false);
        if (_utp is not null) await _utp.DisposeAsync().ConfigureAwait(false);
        if (_dhtHost is not null) await _dhtHost.DisposeAsync().ConfigureAwait(false);
        _udp?.Dispose();
        _udpSocket?.Dispose();
        _http.Dispose();
    }
}
