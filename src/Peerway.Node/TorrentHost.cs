using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;
using Peerway.Dht;
using Peerway.Net;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Trackers;
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

    /// <summary>DHT routers to join (BEP 5); empty: no DHT node of our own (unless one is passed to the host).</summary>
    public IReadOnlyList<IPEndPoint> DhtBootstrap { get; init; } = [];

    /// <summary>Where our DHT node binds (port 0: any).</summary>
    public IPEndPoint DhtBind { get; init; } = new(IPAddress.Any, 0);

    public DhtPeerSourceOptions DhtPeerSource { get; init; } = new();

    public void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(Path);
        Session.Validate();
    }
}

/// <summary>
/// Runs one torrent on real sockets: the swarm engine on TCP, the trackers (HTTP, and UDP on one shared socket).
/// The Node layer is where real sockets are created; the engines underneath take them.
/// </summary>
public sealed class TorrentHost : IAsyncDisposable
{
    private readonly TorrentHostOptions _options;
    private readonly ILoggerFactory _loggers;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private UdpDatagramSocket? _udpSocket;
    private UtpResetResponder? _utpReset;
    private UdpTrackerClient? _udp;
    private TrackerAnnouncer? _announcer;
    private readonly DhtHost? _dhtHost;
    private DhtPeerSource? _dhtSource;
    private readonly DhtNode? _dht;

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
        var sessionOptions = options.Session;
        if (dht is null && options.DhtBootstrap.Count > 0)
        {
            _dhtHost = DhtHost.Start(new DhtHostOptions { Bind = options.DhtBind }, _loggers);
            dht = _dhtHost.Node;
        }

        _dht = dht;
        if (dht is not null) sessionOptions = sessionOptions with { DhtPort = dht.LocalEndPoint.Port };
        Session = new TorrentSession(options.InfoHash, options.Info, options.Path, options.ContentIsSource, sessionOptions, TimeProvider.System,
            _loggers.CreateLogger<TorrentSession>());
    }

    public DhtPeerSource? DhtSource => _dhtSource;

    public TorrentSession Session { get; }

    public TrackerAnnouncer? Announcer => _announcer;

    public async Task StartAsync(CancellationToken ct)
    {
        await Session.StartAsync(ct).ConfigureAwait(false);
        StartUtpReset();
        Session.AddPeers(_options.Peers);
        if (_options.Trackers.Count > 0)
        {
            if (_options.Trackers.Any(t => t.StartsWith("udp:", StringComparison.OrdinalIgnoreCase)))
            {
                _udpSocket = new UdpDatagramSocket(new IPEndPoint(IPAddress.Any, 0));
                _udp = new UdpTrackerClient(_udpSocket, TimeProvider.System, new UdpTrackerOptions());
            }

            _announcer = new TrackerAnnouncer(Session, _options.Trackers, _http, _udp, TimeProvider.System, _loggers.CreateLogger<TrackerAnnouncer>());
            _announcer.Start();
        }

        if (_dht is not null)
        {
            if (_dhtHost is not null)
            {
                var size = await _dhtHost.JoinAsync(_options.DhtBootstrap, ct).ConfigureAwait(false);
                if (size == 0) _loggers.CreateLogger<TorrentHost>().LogWarning("the DHT bootstrap nodes did not answer");
            }

            _dhtSource = new DhtPeerSource(Session, _dht, _options.DhtPeerSource, TimeProvider.System, _loggers.CreateLogger<DhtPeerSource>());
            _dhtSource.Start();
        }
    }

    /// <summary>
    /// Until Peerway speaks uTP: answer uTP SYNs on the listen port (UDP) with ST_RESET, so libtorrent-based clients,
    /// which try uTP first, fall back to TCP at once (issue 22). A busy UDP port only costs that speed-up.
    /// </summary>
    private void StartUtpReset()
    {
        try
        {
            var socket = new UdpDatagramSocket(new IPEndPoint(_options.Session.ListenAddress, Session.ListenPort));
            _utpReset = new UtpResetResponder(socket, TimeProvider.System, new UtpResetOptions(), _loggers.CreateLogger<UtpResetResponder>());
            _utpReset.Start();
        }
        catch (System.Net.Sockets.SocketException ex)
        {
            _loggers.CreateLogger<TorrentHost>().LogWarning("uTP port {Port} unavailable, SYNs go unanswered: {Message}", Session.ListenPort, ex.Message);
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
        if (_dhtSource is not null) await _dhtSource.DisposeAsync().ConfigureAwait(false);
        await Session.DisposeAsync().ConfigureAwait(false);
        _utpReset?.Dispose();
        if (_dhtHost is not null) await _dhtHost.DisposeAsync().ConfigureAwait(false);
        _udp?.Dispose();
        _udpSocket?.Dispose();
        _http.Dispose();
    }
}
