using System.Net;
using Peerway.Core;
using Peerway.Net;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent;

/// <summary>Settings of a <see cref="TorrentClient"/>: what all its torrents share.</summary>
public sealed record TorrentClientOptions
{
    /// <summary>
    /// Where every transport listens for peers, one port for all torrents. A port of 0 picks a free one on the first
    /// endpoint, and the same port is then used on the others. Empty: no listener (outgoing connections only).
    /// </summary>
    public IReadOnlyList<IPEndPoint> ListenEndPoints { get; init; } = [new(IPAddress.Any, 0)];

    /// <summary>
    /// Most registered peer connections across all torrents (libtorrent's <c>connections_limit</c>, 200 by default).
    /// Incoming connections still in the handshake are capped at the same number.
    /// </summary>
    public int MaxConnections { get; init; } = 200;

    /// <summary>Most connections (registered or in the handshake) with one IP address.</summary>
    public int MaxConnectionsPerIp { get; init; } = 8;

    /// <summary>An incoming connection that has not completed its handshake (MSE included) this long after it opened is closed.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Upload cap for all torrents together, in bytes/s (one token bucket); null: unlimited.</summary>
    public long? UploadRateLimit { get; init; }

    /// <summary>Download cap for all torrents together, in bytes/s (reads pause while the bucket is empty); null: unlimited.</summary>
    public long? DownloadRateLimit { get; init; }

    /// <summary>MSE/PE policy for every connection, both directions (see <see cref="EncryptionPolicy"/>).</summary>
    public EncryptionPolicy Encryption { get; init; } = EncryptionPolicy.Prefer;

    /// <summary>Our 20-byte peer id for every torrent; null: "-PW0001-" followed by random bytes.</summary>
    public NodeId? PeerId { get; init; }

    /// <summary>Which of the given TCP and uTP transports listen and dial (BEP 29: <see cref="PeerTransports.Both"/>, uTP
    /// tried first with TCP at once as the fallback, as libtorrent does).</summary>
    public PeerTransports Transports { get; init; } = PeerTransports.Both;

    /// <summary>A uTP connect not answered within this falls back to TCP (libtorrent utp_connect_timeout: 3 s).</summary>
    public TimeSpan UtpConnectTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>How often the DHT (when given) is asked for peers.</summary>
    public DhtPeerSourceOptions Dht { get; init; } = new();

    /// <summary>
    /// Outgoing peer connections through this SOCKS5 or HTTP CONNECT proxy (TCP only: uTP is not dialled, as UDP
    /// ASSOCIATE is not implemented); null: direct. Incoming connections are still accepted on the listeners.
    /// </summary>
    public Proxy.ProxySettings? Proxy { get; init; }

    /// <summary>
    /// With <see cref="Proxy"/>: the uTP transports already send through the proxy's UDP relay (a
    /// <see cref="Proxy.Socks5DatagramSocket"/> under them, RFC 1928 §7), so uTP is dialled too; otherwise peers are dialled over TCP only.
    /// </summary>
    public bool ProxyRelaysUdp { get; init; }

    /// <summary>
    /// Where the engines run the work they do not run inline (connection tasks, storage opening, the disk queue, the
    /// send pumps), scheduled with a zero delay; null: the thread pool. A single-threaded scheduler that runs in virtual time (the tests' and the
    /// simulator's), with a fake <see cref="TimeProvider"/>, a virtual network and memory storage, makes a whole swarm
    /// of clients run on one thread, deterministically.
    /// </summary>
    public IDeliveryScheduler? Scheduler { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> for a setting out of range.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(ListenEndPoints);
        ArgumentNullException.ThrowIfNull(Dht);
        if (ListenEndPoints.Any(e => e is null)) throw new ArgumentException("a listen endpoint is null", nameof(ListenEndPoints));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConnections, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConnectionsPerIp, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(HandshakeTimeout, TimeSpan.Zero);
        if (UploadRateLimit is <= 0) throw new ArgumentOutOfRangeException(nameof(UploadRateLimit), UploadRateLimit, "must be positive");
        if (DownloadRateLimit is <= 0) throw new ArgumentOutOfRangeException(nameof(DownloadRateLimit), DownloadRateLimit, "must be positive");
        if (!Enum.IsDefined(Encryption)) throw new ArgumentOutOfRangeException(nameof(Encryption), Encryption, "not a policy");
        if (Transports is not (PeerTransports.Tcp or PeerTransports.Utp or PeerTransports.Both)) throw new ArgumentOutOfRangeException(nameof(Transports), Transports, "not tcp, utp or both");
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(UtpConnectTimeout, TimeSpan.Zero);
        if (Proxy is { } proxy && (string.IsNullOrEmpty(proxy.Host) || proxy.Port is <= 0 or > 65535)) throw new ArgumentException("the proxy needs a host and a port", nameof(Proxy));
        Dht.Validate();
    }
}

/// <summary>How one torrent is added to a <see cref="TorrentClient"/>.</summary>
public sealed record TorrentAddOptions
{
    /// <summary>
    /// The torrent's own engine settings (choker, queue depths, timeouts, its own upload cap). Under a client, the
    /// client's listen endpoints, connection limit per address, handshake timeout, encryption policy and peer id apply
    /// instead of the ones here; <see cref="TorrentSessionOptions.MaxConnections"/> still caps this torrent.
    /// </summary>
    public TorrentSessionOptions Session { get; init; } = new();

    /// <summary>The content is already complete under the save path (sharing one's own files): verified, never written.</summary>
    public bool SeedOnly { get; init; }

    /// <summary>Peers to dial at once (from the command line, a magnet link's x.pe, a tracker run by the caller).</summary>
    public IReadOnlyList<IPEndPoint> Peers { get; init; } = [];

    /// <summary>
    /// Added stopped (libtorrent's <c>torrent_flags::paused</c>, transmission's torrent-add <c>paused</c>): no engine,
    /// no storage opened, no file checked, no peers until <see cref="TorrentHandle.ResumeAsync"/>; meanwhile its
    /// stats show the info dictionary's size and nothing verified.
    /// </summary>
    public bool Paused { get; init; }

    /// <summary>
    /// Chooses each file's priority once the info dictionary is known (at once for a .torrent, after BEP 9 for a magnet):
    /// one entry per <see cref="Metainfo.TorrentInfo.ContentFiles"/> entry. Skipped files are not created; pieces they
    /// share with wanted files are fetched and their bytes kept in a parts file. Null (or a null result): every file,
    /// normal priority. <see cref="TorrentHandle.SetFilePriorities"/> changes them while running.
    /// </summary>
    public Func<Metainfo.TorrentInfo, IReadOnlyList<FilePriority>?>? FileSelection { get; init; }

    /// <summary>
    /// BEP 19 web seeds (http(s) URLs of the content, GetRight style), besides a .torrent's own "url-list". Used only
    /// when the client has an HttpClient (<see cref="TorrentClient.WebSeedHttp"/>).
    /// </summary>
    public IReadOnlyList<Uri> WebSeeds { get; init; } = [];

    /// <summary>How web seeds are asked (requests in flight, timeouts, back-off).</summary>
    public WebSeeds.WebSeedOptions WebSeedOptions { get; init; } = new();

    /// <summary>Throws <see cref="ArgumentException"/> for a setting out of range.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Session);
        ArgumentNullException.ThrowIfNull(Peers);
        ArgumentNullException.ThrowIfNull(WebSeeds);
        ArgumentNullException.ThrowIfNull(WebSeedOptions);
        if (WebSeeds.Any(w => w is null || !Metainfo.MetainfoParser.IsWebSeedUrl(w.OriginalString))) throw new ArgumentException("a web seed is not an http(s) URL", nameof(WebSeeds));
        WebSeedOptions.Validate();
        Session.Validate();
    }
}
