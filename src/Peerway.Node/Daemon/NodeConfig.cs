using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;

namespace Peerway.Node.Daemon;

/// <summary>
/// What <c>peerway node</c> runs, from its JSON config file (<c>--config FILE</c>) and flags (a flag wins over the
/// file). Keys are kebab-case, as transmission-daemon's settings.json: <c>{"data": "/var/lib/peerway", "rpc":
/// "127.0.0.1:9091", "rpc-username": "u", "rpc-password": "p", "dht-bootstrap": ["router:6881"], "log-level": "Information"}</c>.
/// </summary>
public sealed record NodeConfig
{
    /// <summary>Largest config file read.</summary>
    public const int MaxConfigBytes = 1024 * 1024;

    /// <summary>The data directory: torrents, settings, the DHT state, the content repository, downloads.</summary>
    [JsonPropertyName("data")]
    public string Data { get; init; } = DefaultDataDirectory();

    /// <summary>Transmission RPC (<c>/transmission/rpc</c>), the dashboard and <c>/metrics</c>; 9091 as transmission-daemon.</summary>
    [JsonPropertyName("rpc")]
    public string Rpc { get; init; } = "127.0.0.1:9091";

    /// <summary>The kubo-style API (<c>/api/v0/</c>); 5001 as kubo.</summary>
    [JsonPropertyName("api")]
    public string Api { get; init; } = "127.0.0.1:5001";

    /// <summary>The IPFS trustless gateway over the content repository; 8080 as kubo.</summary>
    [JsonPropertyName("gateway")]
    public string Gateway { get; init; } = "127.0.0.1:8080";

    /// <summary>
    /// The IPFS peer's TCP listen address IP:PORT (kubo's <c>Addresses.Swarm</c>; 4001 as kubo, on loopback): libp2p with
    /// Noise, Yamux, identify, Bitswap and the IPFS Kademlia DHT over the content repository.
    /// </summary>
    [JsonPropertyName("swarm")]
    public string Swarm { get; init; } = "127.0.0.1:4001";

    /// <summary>IPFS DHT peers to join, multiaddrs with <c>/p2p/</c> (kubo's <c>Bootstrap</c>); empty: none.</summary>
    [JsonPropertyName("ipfs-bootstrap")]
    public IReadOnlyList<string> IpfsBootstrap { get; init; } = [];

    /// <summary>UDP port of the DHT node (BEP 5 suggests 6881; 0: any).</summary>
    [JsonPropertyName("dht-port")]
    public int DhtPort { get; init; } = 6881;

    /// <summary>Port for BitTorrent peers, all torrents: TCP, and uTP on UDP (51413 as transmission-daemon; 0: any).</summary>
    [JsonPropertyName("peer-port")]
    public int PeerPort { get; init; } = 51413;

    /// <summary>BEP 29 uTP on the peer port (listened on, and dialled first with TCP as the fallback); transmission's <c>utp-enabled</c>.</summary>
    [JsonPropertyName("utp-enabled")]
    public bool UtpEnabled { get; init; } = true;

    /// <summary>Address the DHT and the peer listener bind.</summary>
    [JsonPropertyName("peer-bind")]
    public string PeerBind { get; init; } = "0.0.0.0";

    /// <summary>DHT routers to join (HOST:PORT); empty: the node answers but joins no network until one contacts it.</summary>
    [JsonPropertyName("dht-bootstrap")]
    public IReadOnlyList<string> DhtBootstrap { get; init; } = [];

    /// <summary>Basic-auth user of the RPC; with <see cref="RpcPassword"/>, every RPC request must carry it.</summary>
    [JsonPropertyName("rpc-username")]
    public string? RpcUsername { get; init; }

    [JsonPropertyName("rpc-password")]
    public string? RpcPassword { get; init; }

    /// <summary>
    /// Who may call the kubo-style API, as kubo's <c>API.Authorizations</c>: <c>"api-authorizations": {"alice":
    /// {"auth-secret": "basic:alice:s3cret", "allowed-paths": ["/api/v0"]}}</c> (or <c>"bearer:TOKEN"</c>). Empty: only
    /// clients on this host, without auth. Set: every request needs one of them (<see cref="KuboApiAccess"/>).
    /// </summary>
    [JsonPropertyName("api-authorizations")]
    public IReadOnlyDictionary<string, ApiAuthorization> ApiAuthorizations { get; init; } = new Dictionary<string, ApiAuthorization>();

    /// <summary>
    /// Issue 18 item 1: host Peerway's STUN/TURN server (RFC 8656; the one <c>peerway turn-server</c> runs) on this UDP
    /// and TCP address (IP:PORT); null (the default): none. Needs <see cref="TurnUsers"/> or <see cref="TurnSecret"/>
    /// (no open relay); relays bind <see cref="TurnRelayIp"/>, default the listen IP.
    /// </summary>
    [JsonPropertyName("turn")]
    public string? Turn { get; init; }

    /// <summary>TURN long-term credentials, user name to password (RFC 8489 §9.2).</summary>
    [JsonPropertyName("turn-users")]
    public IReadOnlyDictionary<string, string> TurnUsers { get; init; } = new Dictionary<string, string>();

    /// <summary>TURN REST API shared secret (time-limited credentials, as coturn's static-auth-secret).</summary>
    [JsonPropertyName("turn-secret")]
    public string? TurnSecret { get; init; }

    [JsonPropertyName("turn-realm")]
    public string TurnRealm { get; init; } = "peerway";

    /// <summary>Address the relay sockets bind (a concrete address; default the TURN listen IP).</summary>
    [JsonPropertyName("turn-relay-ip")]
    public string? TurnRelayIp { get; init; }

    /// <summary>Peer addresses relays may send to (CIDR list; empty: the TURN server's default policy).</summary>
    [JsonPropertyName("turn-allowed-peers")]
    public IReadOnlyList<string> TurnAllowedPeers { get; init; } = [];

    /// <summary>Where torrents are saved unless torrent-add names a download-dir; default DATA/downloads.</summary>
    [JsonPropertyName("download-dir")]
    public string? DownloadDir { get; init; }

    /// <summary>Directories a download-dir given over RPC must lie under (the download dir is always one).</summary>
    [JsonPropertyName("allowed-download-roots")]
    public IReadOnlyList<string> AllowedDownloadRoots { get; init; } = [];

    /// <summary>Lowest level logged to stderr (Microsoft.Extensions.Logging level name).</summary>
    [JsonPropertyName("log-level")]
    public LogLevel LogLevel { get; init; } = LogLevel.Warning;

    /// <summary>
    /// Levels by logger category (a category and every category under it, as Microsoft.Extensions.Logging filters):
    /// <c>"logging": {"Peerway.Torrent": "Debug", "Peerway.Dht": "None"}</c>; <see cref="LogLevel"/> for the rest.
    /// </summary>
    [JsonPropertyName("logging")]
    public IReadOnlyDictionary<string, LogLevel> Logging { get; init; } = new Dictionary<string, LogLevel>();

    /// <summary>"simple" (one line per entry) or "json" (one JSON object per entry, with the message's named values).</summary>
    [JsonPropertyName("log-format")]
    public string LogFormat { get; init; } = "simple";

    /// <summary>Largest RPC request body, in bytes (a base64 .torrent of <c>TorrentLimits.MaxTorrentFileLength</c> fits).</summary>
    [JsonPropertyName("rpc-max-body")]
    public long RpcMaxBody { get; init; } = 48L * 1024 * 1024;

    /// <summary>
    /// RPC requests handled at once (issue 18 §8): more clients wait their turn in the RPC, so a crowd of pollers
    /// takes at most this many threads from the downloads.
    /// </summary>
    [JsonPropertyName("rpc-max-concurrent")]
    public int RpcMaxConcurrent { get; init; } = 4;

    /// <summary>The download directory in effect.</summary>
    [JsonIgnore]
    public string EffectiveDownloadDir => Path.GetFullPath(DownloadDir ?? Path.Combine(Data, "downloads"));

    /// <summary>A node on 127.0.0.1 only with every port picked by the system (the demo's node, tests).</summary>
    public static NodeConfig Loopback(string data) => new()
    {
        Data = data,
        Rpc = "127.0.0.1:0",
        Api = "127.0.0.1:0",
        Gateway = "127.0.0.1:0",
        Swarm = "127.0.0.1:0",
        DhtPort = 0,
        PeerPort = 0,
        PeerBind = "127.0.0.1",
    };

    /// <summary>Throws <see cref="ArgumentException"/> with one line naming the bad setting.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Data)) throw new ArgumentException("data: an empty directory");
        ParseHttpEndPoint(Rpc, "rpc");
        ParseHttpEndPoint(Api, "api");
        ParseHttpEndPoint(Gateway, "gateway");
        ParseHttpEndPoint(Swarm, "swarm");
        foreach (var b in IpfsBootstrap)
        {
            if (Peerway.Libp2p.Multiaddr.TryParse(b ?? "", out var a) != Peerway.Libp2p.Libp2pError.None || a!.PeerId is null || !a.TryGetTcpEndPoint(out _))
                throw new ArgumentException($"ipfs-bootstrap '{b}' is not a /ip4|ip6/…/tcp/…/p2p/… multiaddr");
        }
        if (DhtPort is < 0 or > 65535) throw new ArgumentException($"dht-port {DhtPort} is not a valid port (0-65535)");
        if (PeerPort is < 0 or > 65535) throw new ArgumentException($"peer-port {PeerPort} is not a valid port (0-65535)");
        if (!IPAddress.TryParse(PeerBind, out _)) throw new ArgumentException($"peer-bind '{PeerBind}' is not an IP address");
        foreach (var b in DhtBootstrap)
        {
            if (!EndPointParser.TryParse(b, out _, out var error)) throw new ArgumentException($"dht-bootstrap '{b}': {error}");
        }

        if (string.IsNullOrEmpty(RpcUsername) != string.IsNullOrEmpty(RpcPassword))
            throw new ArgumentException("rpc-username and rpc-password go together");
        foreach (var (name, a) in ApiAuthorizations)
        {
            if (a is null || !KuboApiAccess.TryParseSecret(a.AuthSecret, out _, out _))
                throw new ArgumentException($"api-authorizations {name}: auth-secret must be basic:USER:PASSWORD or bearer:TOKEN");
            if (a.AllowedPaths.Any(p => string.IsNullOrEmpty(p) || !p.StartsWith('/')))
                throw new ArgumentException($"api-authorizations {name}: allowed-paths must start with /");
        }

        if (Turn is not null) ValidateTurn();
        if (RpcMaxBody < 1024) throw new ArgumentException("rpc-max-body must be at least 1024 bytes");
        if (RpcMaxConcurrent is < 1 or > 1024) throw new ArgumentException($"rpc-max-concurrent {RpcMaxConcurrent} is not between 1 and 1024");
        if (!Enum.IsDefined(LogLevel)) throw new ArgumentException($"log-level {LogLevel} is not a level");
        foreach (var (category, level) in Logging)
        {
            if (string.IsNullOrWhiteSpace(category)) throw new ArgumentException("logging: an empty category");
            if (!Enum.IsDefined(level)) throw new ArgumentException($"logging {category}: {level} is not a level");
        }

        if (LogFormat is not ("simple" or "json")) throw new ArgumentException($"log-format '{LogFormat}' is not simple or json");
    }

    private void ValidateTurn()
    {
        var at = ParseHttpEndPoint(Turn, "turn");
        if (TurnUsers.Count == 0 && string.IsNullOrEmpty(TurnSecret)) throw new ArgumentException("turn needs turn-users or turn-secret (no open relay)");
        if (TurnUsers.Any(u => string.IsNullOrEmpty(u.Key) || string.IsNullOrEmpty(u.Value))) throw new ArgumentException("turn-users: empty user name or password");
        if (string.IsNullOrWhiteSpace(TurnRealm)) throw new ArgumentException("turn-realm: empty");
        var relay = TurnRelayIp is null ? at.Address : IPAddress.TryParse(TurnRelayIp, out var r) ? r : throw new ArgumentException($"turn-relay-ip '{TurnRelayIp}' is not an IP address");
        if (relay.Equals(IPAddress.Any) || relay.Equals(IPAddress.IPv6Any)) throw new ArgumentException("turn-relay-ip must be a concrete address when turn binds a wildcard");
        foreach (var p in TurnAllowedPeers)
        {
            if (!IPNetwork.TryParse(p, out _)) throw new ArgumentException($"turn-allowed-peers '{p}' is not a CIDR");
        }
    }

    /// <summary>Logs to stderr in <see cref="LogFormat"/>, at <see cref="LogLevel"/> with the per-category <see cref="Logging"/> levels.</summary>
    public void ConfigureLogging(ILoggingBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.SetMinimumLevel(LogLevel);
        foreach (var (category, level) in Logging) builder.AddFilter(category, level);
        if (LogFormat == "json") builder.AddJsonConsole(o => o.IncludeScopes = true);
        else builder.AddSimpleConsole(o => o.SingleLine = true);
        builder.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
    }

    /// <summary>True when RPC clients must authenticate.</summary>
    [JsonIgnore]
    public bool RpcAuth => !string.IsNullOrEmpty(RpcUsername);

    /// <summary>Parses an HTTP listen address "IP:PORT" (an IP literal; IPv6 in brackets).</summary>
    public static IPEndPoint ParseHttpEndPoint(string? text, string name)
    {
        if (text is null || !IPEndPoint.TryParse(text, out var ep) || !text.Contains(':', StringComparison.Ordinal) || (text.Count(c => c == ':') > 1 && !text.StartsWith('[')))
            throw new ArgumentException($"{name} '{text}' is not IP:PORT");
        return ep;
    }

    /// <summary>Reads a config file; a missing file, bad JSON or an unknown key throws <see cref="ArgumentException"/> (a user error).</summary>
    public static NodeConfig Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = new FileInfo(path);
        if (!file.Exists) throw new ArgumentException($"no such config file: {path}");
        if (file.Length > MaxConfigBytes) throw new ArgumentException($"config file {path} is larger than {MaxConfigBytes} bytes");
        try
        {
            var document = JsonNode.Parse(File.ReadAllBytes(path), documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            if (document is not JsonObject keys) throw new ArgumentException($"config file {path} is not a JSON object");
            // The generated reader sets every init-only property, a key left out to null or 0: the keys left out are
            // filled in from the defaults first (and each API authorization's from its own), so they keep them.
            var defaults = JsonSerializer.SerializeToNode(new NodeConfig(), NodeConfigJson.Default.NodeConfig)!.AsObject();
            if (keys["api-authorizations"] is JsonObject authorizations)
            {
                var authorizationDefaults = JsonSerializer.SerializeToNode(new ApiAuthorization(), NodeConfigJson.Default.ApiAuthorization)!.AsObject();
                foreach (var (_, authorization) in authorizations)
                {
                    if (authorization is JsonObject entry) FillIn(entry, authorizationDefaults);
                }
            }

            FillIn(keys, defaults);
            return keys.Deserialize(NodeConfigJson.Default.NodeConfig) ?? throw new ArgumentException($"config file {path} is empty");
        }
        catch (JsonException ex)
        {
            throw new ArgumentException($"config file {path}: {ex.Message}", ex);
        }
    }

    private static void FillIn(JsonObject target, JsonObject defaults)
    {
        foreach (var (key, value) in defaults)
        {
            if (!target.ContainsKey(key)) target[key] = value?.DeepClone();
        }
    }

    private static string DefaultDataDirectory()
    {
        var env = Environment.GetEnvironmentVariable("PEERWAY_NODE_DATA");
        return !string.IsNullOrEmpty(env) ? env : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".peerway-node");
    }
}
