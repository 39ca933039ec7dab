using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Peerway.Core.Multiformats;
using Peerway.Libp2p;
using Peerway.Net;
using Peerway.Nat.Turn;
using Peerway.Node.Content;
using Peerway.Node.Ipfs;
using Peerway.Node.Nat;
using Peerway.Torrent;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Trackers;
using Peerway.Torrent.Utp;

namespace Peerway.Node.Daemon;

/// <summary>
/// <c>peerway node</c>: one process running the DHT node, one <see cref="TorrentClient"/> with every torrent, the
/// content repository and its trustless gateway, and the HTTP APIs existing tools speak — Transmission RPC at
/// <c>/transmission/rpc</c> on the rpc listener, the kubo-style API at <c>/api/v0/</c> on the api listener. Everything it
/// keeps lives in the data directory: <c>state.json</c> (torrents, settings, pins), <c>torrents/</c> (info
/// dictionaries), <c>dht.state</c> (routing table), <c>repo/</c> (blocks, and <c>repo/libp2p.key</c>: the IPFS peer's
/// identity), <c>downloads/</c>. The repository is also served by the node's libp2p/IPFS peer (<see cref="Ipfs"/>).
/// </summary>
public sealed class NodeDaemon : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _owned = [];
    private readonly List<Task> _tasks = [];
    private readonly Lock _tasksGate = new();
    private readonly TaskCompletionSource _ipfsJoined = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly ILogger _log;
    private int _disposed;

    private NodeDaemon(NodeConfig config, ILoggerFactory loggers)
    {
        Config = config;
        _log = loggers.CreateLogger<NodeDaemon>();
    }

    public NodeConfig Config { get; }

    public DhtHost Dht { get; private set; } = null!;

    public NodeTorrents Torrents { get; private set; } = null!;

    public ContentRepo Repo { get; private set; } = null!;

    /// <summary>
    /// The IPFS peer over <see cref="Repo"/> (issue 19 in the node): listens on <see cref="NodeConfig.Swarm"/>, serves every
    /// block by Bitswap, provides the pinned roots and the repository's roots in the IPFS DHT and reprovides them on its
    /// timer (22 h); the kubo API's <c>id</c>, <c>routing/findprovs</c> and <c>swarm/*</c> answer through it.
    /// </summary>
    public IpfsPeer Ipfs { get; private set; } = null!;

    /// <summary>Completes when the IPFS peer has joined the DHT through its bootstrap peers (at once without any).</summary>
    public Task IpfsJoined => _ipfsJoined.Task;

    /// <summary>The IPFS peer's first listen address, <c>/ip4/…/tcp/…/p2p/&lt;PeerId&gt;</c>.</summary>
    public string SwarmAddress => Ipfs?.Host.ListenAddresses is [var first, ..] ? first.ToString() : "";

    public TransmissionRpc Rpc { get; private set; } = null!;

    /// <summary>The STUN/TURN server the node hosts (<c>turn</c> in the config), or null.</summary>
    public TurnServerHost? Turn { get; private set; }

    /// <summary>The meters exported at <c>/metrics</c>.</summary>
    internal NodeMetrics Metrics { get; } = new();

    /// <summary>The Transmission RPC URL (bound port).</summary>
    public string RpcUrl { get; private set; } = "";

    /// <summary>The web dashboard (bound port), on the rpc listener.</summary>
    public string DashboardUrl => RpcUrl.Length == 0 ? "" : RpcUrl[..^(TransmissionRpcPath.Length - 1)];

    /// <summary>Where the Transmission RPC answers on the rpc listener (rpc-spec.md §2: <c>/transmission/rpc</c>).</summary>
    internal const string TransmissionRpcPath = "/transmission/rpc";

    /// <summary>Canceled when the node starts to stop (long-lived responses such as the dashboard's event stream end).</summary>
    internal CancellationToken Stopping => _stop.Token;

    /// <summary>The kubo-style API root (bound port).</summary>
    public string ApiUrl { get; private set; } = "";

    /// <summary>The gateway root (bound port).</summary>
    public string GatewayUrl { get; private set; } = "";

    /// <summary>The first line <c>peerway node</c> prints: every endpoint, bound.</summary>
    public string Banner => $"node: rpc {RpcUrl} api {ApiUrl} gateway {GatewayUrl} dht udp {EndPointParser.Format(Dht.LocalEndPoint)} peers tcp {Torrents.Client.Port}"
        + (Turn is null ? "" : $" turn udp+tcp {EndPointParser.Format(Turn.UdpEndPoint)}")
        + $" swarm {SwarmAddress}";

    /// <summary>
    /// Starts everything (a failure stops what was started and rethrows): a port in use is an <see cref="IOException"/>
    /// or a <see cref="System.Net.Sockets.SocketException"/>; a bad state file an <see cref="InvalidDataException"/>.
    /// </summary>
    public static async Task<NodeDaemon> StartAsync(NodeConfig config, ILoggerFactory loggers, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(loggers);
        config.Validate();
        var node = new NodeDaemon(config, loggers);
        try
        {
            await node.StartCoreAsync(loggers, ct).ConfigureAwait(false);
            return node;
        }
        catch
        {
            await node.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartCoreAsync(ILoggerFactory loggers, CancellationToken ct)
    {
        var config = Config;
        var data = Directory.CreateDirectory(config.Data).FullName;
        var peerAddress = IPAddress.Parse(config.PeerBind);
        var time = TimeProvider.System;

        Dht = DhtHost.Start(new DhtHostOptions { Bind = new IPEndPoint(peerAddress, config.DhtPort), StatePath = Path.Combine(data, "dht.state") }, loggers);
        _owned.Add(Dht);
        var routers = new List<IPEndPoint>();
        foreach (var b in config.DhtBootstrap)
        {
            if (await TorrentHost.ResolveAsync(b, ct).ConfigureAwait(false) is { } ep) routers.Add(ep);
            else _log.LogWarning("dht-bootstrap {Router} does not resolve", b);
        }

        lock (_tasksGate) _tasks.Add(JoinDhtAsync(routers, _stop.Token));

        // Session speed limits (session-set) are saved in the state and applied to the client here, at start.
        var settings = SavedNodeState.TryRead(Path.Combine(data, "state.json"))?.Settings ?? new SavedSettings();
        // BEP 29: uTP listens on the peer port's UDP side, bound first so that a port 0 is then the TCP listener's too
        // (as `share`/`get` run it, TorrentHost); the client dials uTP first and falls back to TCP.
        List<IStreamTransport> transports = [new TcpStreamTransport()];
        if (config.UtpEnabled)
        {
            var peerUdp = SharedUdpPort.Bind(new IPEndPoint(peerAddress, config.PeerPort), new UtpOptions(), loggers);
            _owned.Add(peerUdp);
            transports.Insert(0, peerUdp.Utp);
        }

        var client = new TorrentClient(transports, new TorrentClientOptions
        {
            Transports = config.UtpEnabled ? PeerTransports.Both : PeerTransports.Tcp,
            ListenEndPoints = [new IPEndPoint(peerAddress, config.PeerPort)],
            UploadRateLimit = settings.SpeedLimitUpEnabled && settings.SpeedLimitUp > 0 ? settings.SpeedLimitUp * 1000 : null,
            DownloadRateLimit = settings.SpeedLimitDownEnabled && settings.SpeedLimitDown > 0 ? settings.SpeedLimitDown * 1000 : null,
        }, new FileStorageFactory(new FileStorageOptions(), time), time, new DhtNodeTorrentDht(Dht.Node), loggers);
        UdpDatagramSocket? udpSocket = null;
        UdpTrackerClient? udp = null;
        try
        {
            await client.StartAsync(ct).ConfigureAwait(false);
            udpSocket = new UdpDatagramSocket(new IPEndPoint(IPAddress.Any, 0));
            udp = new UdpTrackerClient(udpSocket, time, new UdpTrackerOptions());
        }
        catch
        {
            udpSocket?.Dispose();
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        // Disposed in reverse order: the torrents (and their announcers) before the UDP tracker socket.
        _owned.Add(new DisposeAction(() =>
        {
            udp.Dispose();
            udpSocket.Dispose();
        }));
        Torrents = new NodeTorrents(client, data, config.EffectiveDownloadDir, config.AllowedDownloadRoots, udp, time, loggers);
        _owned.Add(Torrents);
        await Torrents.LoadAsync(ct).ConfigureAwait(false);

        if (config.Turn is not null) StartTurn(config, time, loggers);
        _owned.Add(new DisposeAction(Metrics.Dispose));
        Metrics.Start(client, Dht.Node, Turn?.Server);

        Repo = new ContentRepo(Path.Combine(data, "repo"));
        var gatewayAt = NodeConfig.ParseHttpEndPoint(config.Gateway, "gateway");
        var gateway = new GatewayServer(Repo.Blocks, gatewayAt.Address.ToString(), gatewayAt.Port, loggers.CreateLogger<GatewayServer>()) { OnAnswered = Metrics.GatewayRequest };
        _owned.Add(gateway);
        await gateway.StartAsync(ct).ConfigureAwait(false);
        GatewayUrl = gateway.Prefix.TrimEnd('/');
        await StartIpfsAsync(config, loggers, ct).ConfigureAwait(false);

        Rpc = new TransmissionRpc(Torrents, config, () => Dht.LocalEndPoint.Port, time, loggers.CreateLogger<TransmissionRpc>()) { OnMethod = m => Metrics.RpcRequest("transmission", m) };
        _owned.Add(new DisposeAction(Rpc.Dispose));
        var rpcApp = BuildApp(NodeConfig.ParseHttpEndPoint(config.Rpc, "rpc"), config.RpcMaxBody, app =>
        {
            new Dashboard.NodeDashboard(this, time, loggers.CreateLogger<Dashboard.NodeDashboard>()).Map(app);
            Metrics.Map(app, Rpc.AdmitAsync);
        }, inlineScheduling: true, direct: (TransmissionRpcPath, Rpc.ServeAsync));
        var rpcPort = await StartAppAsync(rpcApp, ct).ConfigureAwait(false);
        RpcUrl = $"{Url(config.Rpc, rpcPort)}{TransmissionRpcPath}";

        var apiAccess = new KuboApiAccess(config.ApiAuthorizations);
        var apiApp = BuildApp(NodeConfig.ParseHttpEndPoint(config.Api, "api"), config.RpcMaxBody, app =>
        {
            app.Use(async (context, next) =>
            {
                if (await apiAccess.AdmitAsync(context).ConfigureAwait(false)) await next(context).ConfigureAwait(false);
            });
            app.Use((context, next) =>
            {
                Metrics.RpcRequest("kubo", context.Request.Path.Value ?? "/");
                return next(context);
            });
            new KuboApi(Repo, Torrents, Ipfs, loggers.CreateLogger<KuboApi>(), Provide, IpfsJoined).Map(app);
        });
        var apiPort = await StartAppAsync(apiApp, ct).ConfigureAwait(false);
        ApiUrl = $"{Url(config.Api, apiPort)}/api/v0";
        _log.LogInformation("{Banner}", Banner);
    }

    /// <summary>Issue 18 item 1: Peerway's STUN/TURN server (as <c>peerway turn-server</c>) inside the node.</summary>
    private void StartTurn(NodeConfig config, TimeProvider time, ILoggerFactory loggers)
    {
        var at = NodeConfig.ParseHttpEndPoint(config.Turn, "turn");
        var relay = config.TurnRelayIp is { } r ? IPAddress.Parse(r) : at.Address;
        var options = new TurnServerOptions
        {
            Realm = config.TurnRealm,
            Users = config.TurnUsers,
            SharedSecret = config.TurnSecret,
        };
        if (config.TurnAllowedPeers.Count > 0) options = options with { AllowedPeers = [.. config.TurnAllowedPeers.Select(IPNetwork.Parse)] };
        options.Validate();
        Turn = TurnServerHost.Start(at, new UdpRelaySocketFactory(relay), options, time, loggers);
        _owned.Add(Turn);
    }

    /// <summary>The IPFS peer on the repository: listens, then joins the IPFS DHT and provides in the background.</summary>
    private async Task StartIpfsAsync(NodeConfig config, ILoggerFactory loggers, CancellationToken ct)
    {
        Ipfs = IpfsPeer.Open(Repo, loggers);
        _owned.Add(Ipfs);
        await Ipfs.StartAsync(Multiaddr.FromTcp(NodeConfig.ParseHttpEndPoint(config.Swarm, "swarm")), ct).ConfigureAwait(false);
        List<Multiaddr> bootstrap = [];
        foreach (var b in config.IpfsBootstrap)
        {
            if (Multiaddr.TryParse(b, out var a) == Libp2pError.None) bootstrap.Add(a!);
        }

        // Provider records expire after 48 h: every 22 h the pinned and repository roots are announced again (kubo's
        // reprovider), those pinned since included; a peer that connects in between joins the routing table.
        Ipfs.Dht.StartReproviding(ProvidedKeys);
        lock (_tasksGate) _tasks.Add(JoinIpfsAsync(bootstrap, _stop.Token));
    }

    /// <summary>What the node provides: its pins and the repository's roots.</summary>
    private List<Cid> ProvidedKeys()
    {
        var keys = new HashSet<Cid>(Repo.Roots());
        foreach (var p in Torrents.Pins)
        {
            if (Cid.TryParse(p, out var cid) == MultiformatError.None) keys.Add(cid!);
        }

        return [.. keys];
    }

    /// <summary>
    /// Joins the IPFS DHT through the bootstrap peers, then provides every pinned and repository root; <see cref="IpfsJoined"/>
    /// completes once the join is over and every root's local provider record is kept (the announcements go on).
    /// </summary>
    private async Task JoinIpfsAsync(List<Multiaddr> bootstrap, CancellationToken ct)
    {
        try
        {
            await Task.Yield();
            if (bootstrap.Count > 0)
            {
                var reached = await Ipfs.Dht.BootstrapAsync(bootstrap, ct).ConfigureAwait(false);
                _log.LogInformation("IPFS DHT: {Reached} of {Count} bootstrap peers answered; routing table {Size}", reached, bootstrap.Count, Ipfs.Dht.RoutingTableSize);
            }

            var provides = ProvidedKeys().Select(cid => ProvideAsync(cid, ct)).ToList();
            _ipfsJoined.TrySetResult();
            await Task.WhenAll(provides).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopped before the join finished.
        }
        finally
        {
            _ipfsJoined.TrySetResult();
        }
    }

    /// <summary>Announces <paramref name="cid"/> in the IPFS DHT in the background (the local record is kept at once).</summary>
    private void Provide(Cid cid)
    {
        lock (_tasksGate)
        {
            _tasks.RemoveAll(t => t.IsCompleted);
            if (!_stop.IsCancellationRequested) _tasks.Add(ProvideAsync(cid, _stop.Token));
        }
    }

    private async Task ProvideAsync(Cid cid, CancellationToken ct)
    {
        try
        {
            var stored = await Ipfs.Dht.ProvideAsync(cid, ct).ConfigureAwait(false);
            _log.LogDebug("IPFS DHT: provided {Cid} to {Stored} peers", cid, stored);
        }
        catch (OperationCanceledException)
        {
            // The node is stopping.
        }
        catch (IOException ex)
        {
            _log.LogDebug("IPFS DHT: providing {Cid} failed: {Message}", cid, ex.Message);
        }
    }

    private async Task JoinDhtAsync(IReadOnlyList<IPEndPoint> routers, CancellationToken ct)
    {
        try
        {
            var size = await Dht.JoinAsync(routers, ct).ConfigureAwait(false);
            _log.LogInformation("DHT joined: routing table {Size}", size);
        }
        catch (OperationCanceledException)
        {
            // Stopped before the join finished.
        }
    }

    private static string Url(string configured, int port)
    {
        var ep = NodeConfig.ParseHttpEndPoint(configured, "");
        var host = ep.Address.Equals(IPAddress.Any) ? "127.0.0.1" : ep.Address.Equals(IPAddress.IPv6Any) ? "[::1]" : EndPointParser.Format(new IPEndPoint(ep.Address, 1))[..^2];
        return $"http://{host}:{port}";
    }

    /// <summary>
    /// A Kestrel app on one endpoint (HTTP/1.1, the gateway's slow-client limits, a body cap). With
    /// <paramref name="inlineScheduling"/> a request runs on the thread pool thread that read it, not after two more
    /// hops through Kestrel's I/O queue and the pool (issue 18 §8: 1,000 pollers a second otherwise wake idle workers
    /// that spin for work, CPU the download needs); for handlers that never block a thread (the rpc listener's).
    /// <paramref name="direct"/> is answered by the first middleware, ahead of endpoint routing (issue 18 §8: the
    /// pollers' path skips the route match, the endpoint lookup and the other middleware, ~1,000 times a second).
    /// </summary>
    private WebApplication BuildApp(IPEndPoint at, long maxBody, Action<WebApplication> map, bool inlineScheduling = false,
        (PathString Path, RequestDelegate Handler)? direct = null)
    {
        var limitsFrom = new GatewayServerOptions();
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Logging.ClearProviders();
        builder.Services.AddRouting();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.RequestHeadersTimeout = limitsFrom.HeadersTimeout;
            kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(60);
            kestrel.Limits.MinRequestBodyDataRate = new MinDataRate(limitsFrom.MinBodyBytesPerSecond, limitsFrom.BodyGracePeriod);
            kestrel.Limits.MaxRequestBodySize = maxBody;
            kestrel.Limits.MaxConcurrentConnections = 2000;
            kestrel.AddServerHeader = false;
            kestrel.Listen(at, l => l.Protocols = HttpProtocols.Http1);
        });
        builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = inlineScheduling);
        var app = builder.Build();
        if (direct is var (path, handler))
        {
            // Exact path only (no prefix, case as sent by Transmission clients), as app.Map matched it.
            app.Use(next => context => IsPath(context.Request.Path, path) ? handler(context) : next(context));
        }

        app.UseRouting();
        map(app);
        _owned.Add(app);
        return app;
    }

    /// <summary>What endpoint routing matched for a literal route: the path in any case, with or without one trailing slash.</summary>
    internal static bool IsPath(PathString requested, PathString route) =>
        requested.Equals(route, StringComparison.OrdinalIgnoreCase) ||
        (requested.Value is { } v && v.Length == route.Value!.Length + 1 && v[^1] == '/' && v.StartsWith(route.Value, StringComparison.OrdinalIgnoreCase));

    private static async Task<int> StartAppAsync(WebApplication app, CancellationToken ct)
    {
        try
        {
            await app.StartAsync(ct).ConfigureAwait(false);
        }
        catch (IOException ex) when (ex.InnerException is AddressInUseException inUse)
        {
            throw new IOException(inUse.Message, ex);
        }

        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        return bound is not null && BindingAddress.Parse(bound) is { Port: > 0 } address ? address.Port : 0;
    }

    /// <summary>Stops the HTTP APIs first (no new requests), then the torrents (resume files saved), the DHT (state saved).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            if (_owned[i] is WebApplication app) await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            if (_owned[i] is DhtHost dht) dht.SaveState();
            await _owned[i].DisposeAsync().ConfigureAwait(false);
        }

        Task[] tasks;
        lock (_tasksGate) tasks = [.. _tasks];
        await Task.WhenAll(tasks).ConfigureAwait(false);
        _stop.Dispose();
    }

    private sealed class DisposeAction(Action action) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            action();
            return ValueTask.CompletedTask;
        }
    }
}
