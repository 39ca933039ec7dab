using System.Net;
using Peerway.Core;
using Peerway.Torrent.Encryption;

namespace Peerway.Torrent.Swarm;

/// <summary>Settings of one torrent's swarm engine.</summary>
public sealed record TorrentSessionOptions
{
    /// <summary>Address to listen on when the session runs standalone (not under a <see cref="TorrentClient"/>).</summary>
    public IPAddress ListenAddress { get; init; } = IPAddress.Any;

    /// <summary>TCP port for incoming peers; 0 picks a free one.</summary>
    public int ListenPort { get; init; }

    /// <summary>
    /// Most peers connected at once. When it is reached, a peer that completes the handshake takes the place of the
    /// least useful connected one (libtorrent's <c>connections_limit</c>, which also replaces its lowest-ranked peer);
    /// a peer moving payload either way is never dropped for it. Incoming connections still in the handshake are
    /// capped at the same number (the oldest goes first).
    /// </summary>
    public int MaxConnections { get; init; } = 60;

    /// <summary>
    /// Most connections (registered or in the handshake) with one IP address; more are refused. libtorrent allows one
    /// unless <c>allow_multiple_connections_per_ip</c> is set; a few are allowed here for peers behind one NAT (or on
    /// one loopback address).
    /// </summary>
    public int MaxConnectionsPerIp { get; init; } = 8;

    /// <summary>A connection that has not completed the BitTorrent handshake this long after it opened is closed (libtorrent's <c>handshake_timeout</c>, 10 s).</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// While the connection limit is reached, a peer that has been neither interested nor interesting this long is
    /// closed, making room for peers that want data (libtorrent's <c>inactivity_timeout</c>, 600 s, with the same
    /// condition).
    /// </summary>
    public TimeSpan InactivityTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Upload slots and the choking rounds (BEP 3 choking).</summary>
    public ChokerOptions Choker { get; init; } = new();

    /// <summary>Keep uploading after the download completes.</summary>
    public bool SeedWhenComplete { get; init; } = true;

    /// <summary>How often the resume file is rewritten while pieces complete.</summary>
    public TimeSpan ResumeInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A peer that sends none of our requested blocks for this long has its requests given to others.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>A dial that has not connected this long is abandoned.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Delay before dialling again a peer whose dial failed; doubled per failure up to <see cref="MaxRedialDelay"/>.</summary>
    public TimeSpan RedialDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Upper bound of the doubling <see cref="RedialDelay"/>.</summary>
    public TimeSpan MaxRedialDelay { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Dials of one endpoint that may fail in a row before it is forgotten (until a tracker, the DHT or PEX names it again).</summary>
    public int MaxDialAttempts { get; init; } = 10;

    /// <summary>BEP 11: "peer exchange messages should not be sent more often than once a minute".</summary>
    public TimeSpan PexInterval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>BEP 55: advertise ut_holepunch and relay rendezvous between our peers; with a uTP transport, also ask for
    /// rendezvous and punch through uTP on a connect.</summary>
    public bool Holepunch { get; init; } = true;

    /// <summary>BEP 3: keep-alives are sent after two minutes of silence; peers time out after that.</summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(90);

    /// <summary>A peer that sends nothing (not even a keep-alive) this long is closed (libtorrent's <c>peer_timeout</c>).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>Bounds of the adaptive request queue (outstanding block requests per peer).</summary>
    public int MinQueueDepth { get; init; } = 4;
    /// <summary>Upper bound of the adaptive request queue (see <see cref="MinQueueDepth"/>).</summary>
    public int MaxQueueDepth { get; init; } = 500;

    /// <summary>Most requests from one peer we queue (our BEP 10 "reqq").</summary>
    public int MaxIncomingRequests { get; init; } = 500;

    /// <summary>A peer involved in this many failed pieces (across its connections) is banned.</summary>
    public int BanAfterHashFailures { get; init; } = 2;

    /// <summary>BEP 6: size of the allowed-fast set we grant.</summary>
    public int AllowedFastCount { get; init; } = 10;

    /// <summary>Our DHT port, announced with the BEP 5 PORT message when both sides set the DHT bit.</summary>
    public int? DhtPort { get; init; }

    /// <summary>Our client name, sent as "v" in the BEP 10 extended handshake.</summary>
    public string ClientName { get; init; } = "Peerway 0.1";

    /// <summary>Our 20-byte peer id; null: "-PW0001-" followed by random bytes (Azureus style).</summary>
    public NodeId? PeerId { get; init; }

    /// <summary>Seed for the picker's and choker's randomness (tests); null: random.</summary>
    public int? RandomSeed { get; init; }

    /// <summary>
    /// While seeding, give each piece to one peer first (a light form of BEP 16 super-seeding): a BEP 6 peer asking for
    /// a piece already given to another connected peer is rejected while some piece has not been given to anyone, so
    /// the seeder's upload goes into new pieces and the peers trade the rest among themselves. Once every piece has
    /// gone out, requests are served as usual. A peer without the fast extension is always served.
    /// </summary>
    public bool SeedEachPieceOnceFirst { get; init; }

    /// <summary>Upload cap for the whole session in bytes/s (token bucket); null: unlimited.</summary>
    public long? UploadRateLimit { get; init; }

    /// <summary>
    /// MSE/PE (Message Stream Encryption): <see cref="EncryptionPolicy.Prefer"/> accepts plain and encrypted peers
    /// and dials encrypted first, falling back to plaintext; <see cref="EncryptionPolicy.Require"/> speaks RC4 only;
    /// <see cref="EncryptionPolicy.Off"/> plain only.
    /// </summary>
    public EncryptionPolicy Encryption { get; init; } = EncryptionPolicy.Prefer;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> or <see cref="ArgumentException"/> when a setting is out of range.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Encryption)) throw new ArgumentOutOfRangeException(nameof(Encryption), Encryption, "not a policy");
        if (UploadRateLimit is <= 0) throw new ArgumentOutOfRangeException(nameof(UploadRateLimit), UploadRateLimit, "must be positive");
        ArgumentOutOfRangeException.ThrowIfNegative(ListenPort);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ListenPort, 65535);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConnections, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConnectionsPerIp, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(HandshakeTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(InactivityTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(MinQueueDepth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxQueueDepth, MinQueueDepth);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxIncomingRequests, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(BanAfterHashFailures, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxDialAttempts, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(RedialDelay, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxRedialDelay, RedialDelay);
        ArgumentNullException.ThrowIfNull(Choker);
        Choker.Validate();
    }
}

/// <summary>A snapshot of a session's progress.</summary>
public sealed record TorrentSessionStats(
    int PieceCount,
    int VerifiedPieces,
    long TotalLength,
    long Downloaded,
    long Uploaded,
    int Connections,
    int HashFailures,
    int BannedPeers,
    int PiecesKeptOnOpen,
    int PiecesRechecked,
    IReadOnlyDictionary<NodeId, long> ReceivedByPeerId,
    bool HasMetadata)
{
    /// <summary>Fraction of the pieces verified, 0 to 1 (1 for an empty torrent once its metadata is known).</summary>
    public double Progress => PieceCount == 0 ? (HasMetadata ? 1 : 0) : (double)VerifiedPieces / PieceCount;
}
