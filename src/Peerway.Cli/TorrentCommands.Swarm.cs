using System.CommandLine;
using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Core;
using Peerway.Node;
using Peerway.Torrent;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Proxy;
using Peerway.Torrent.Swarm;
using Peerway.WebTorrent;

namespace Peerway.Cli;

/// <summary>
/// The swarm options that share, get and stream have in common, declared, checked and turned into a
/// <see cref="TorrentHostOptions"/> in one place, so the three commands join a swarm the same way.
/// </summary>
internal static partial class TorrentCommands
{
    /// <summary>The common options of one command (each command makes its own set: an option belongs to one command).</summary>
    private sealed class SwarmOptions
    {
        public Option<int> Port { get; } = PortOption();

        public Option<string> Bind { get; } = BindOption();

        public Option<string[]> Trackers { get; } = TrackerOption();

        public Option<string?> WebRtc { get; } = WebRtcOption();

        public Option<string[]> Dht { get; } = DhtBootstrapOption();

        public Option<string?> DhtIpv6 { get; } = DhtIpv6Option();

        public Option<string> Lsd { get; } = LsdOption();

        public Option<string?> Proxy { get; } = ProxyOption();

        public Option<int?> UploadLimit { get; } = UploadLimitOption();

        public Option<string> Encryption { get; } = EncryptionOption();

        public Option<string> Transport { get; } = TransportOption();

        public Option<bool> Verbose { get; } = VerboseOption();

        /// <summary>Adds every common option to <paramref name="command"/>, after the options it already has.</summary>
        public void AddTo(Command command)
        {
            foreach (var option in new Option[] { Port, Bind, Trackers, WebRtc, Dht, DhtIpv6, Lsd, Proxy, UploadLimit, Encryption, Transport, Verbose })
            {
                command.Options.Add(option);
            }
        }

        /// <summary>The options checked, in the order a user error is reported (the first wrong one wins).</summary>
        public SwarmSettings Check(ParseResult parse)
        {
            var transports = CheckTransport(parse.GetValue(Transport));
            var localDiscovery = CheckLsd(parse.GetValue(Lsd));
            var hasDht = parse.GetValue(Dht) is { Length: > 0 };
            var proxy = CheckProxy(parse.GetValue(Proxy), ref transports, parse.GetValue(Transport) == "utp", hasDht);
            if (proxy is not null) localDiscovery = false; // LSD would announce us outside the proxy (libtorrent turns it off too)
            var address = Listening.ParseAddress(parse.GetValue(Bind));
            var trackers = CheckTrackers(parse.GetValue(Trackers));
            return new SwarmSettings(this, parse, transports, localDiscovery, proxy, address, trackers, hasDht)
            {
                UploadLimit = CheckLimit(parse.GetValue(UploadLimit)),
                Encryption = CheckEncryption(parse.GetValue(Encryption)),
            };
        }
    }

    /// <summary>The checked common options of one run of a command.</summary>
    private sealed record SwarmSettings(
        SwarmOptions Options, ParseResult Parse, PeerTransports Transports, bool LocalDiscovery, ProxySettings? Proxy, IPAddress Address, string[] Trackers, bool HasDhtBootstrap)
    {
        public long? UploadLimit { get; init; }

        public EncryptionPolicy Encryption { get; init; }

        public int Port => Parse.GetValue(Options.Port);

        /// <summary>--webrtc for the trackers the torrent will use (those given and those of its magnet or .torrent).</summary>
        public WebRtcPeerSourceOptions? WebRtcFor(IEnumerable<string> trackers) => CheckWebRtc(Parse.GetValue(Options.WebRtc), trackers, Address);
    }

    /// <summary>What joining the swarm set up before the torrent starts; disposing it disposes the loggers.</summary>
    private sealed class SwarmJoin(SwarmSettings settings, Socks5UdpAssociation? proxyUdp, PeerTransports transports, ILoggerFactory loggers, IReadOnlyList<IPEndPoint> dhtRouters, IPAddress? dhtPair) : IDisposable
    {
        public SwarmSettings Settings { get; } = settings;

        /// <summary>The proxy's UDP relay (SOCKS5 UDP ASSOCIATE), or null.</summary>
        public Socks5UdpAssociation? ProxyUdp { get; } = proxyUdp;

        /// <summary>The transports left once the proxy answered (a refused UDP relay leaves TCP).</summary>
        public PeerTransports Transports { get; } = transports;

        public ILoggerFactory Loggers { get; } = loggers;

        /// <summary>The DHT nodes to join through (none when the DHT is off or not asked for).</summary>
        public IReadOnlyList<IPEndPoint> DhtRouters { get; } = dhtRouters;

        /// <summary>The other family's DHT node address (BEP 32), or null for one family.</summary>
        public IPAddress? DhtPair { get; } = dhtPair;

        /// <summary>
        /// The host's options from the common ones; <paramref name="rtc"/> is <see cref="SwarmSettings.WebRtcFor"/> of
        /// <paramref name="trackers"/>. <paramref name="dht"/> is a DHT node the command started itself (BEP 46
        /// publishing or following), which the host then uses instead of starting its own.
        /// </summary>
        public TorrentHostOptions HostOptions(NodeId infoHash, TorrentInfo? info, string path, IReadOnlyList<string> trackers, WebRtcPeerSourceOptions? rtc, DualStackDhtHost? dht) => new()
        {
            InfoHash = infoHash,
            Info = info,
            Path = path,
            Trackers = trackers,
            WebRtc = rtc,
            DhtBootstrap = dht is null ? DhtRouters : [],
            DhtBind = new IPEndPoint(Settings.Address, 0),
            DhtPairAddress = dht is null ? DhtPair : null,
            Transports = Transports,
            LocalDiscovery = Settings.LocalDiscovery,
            Proxy = Settings.Proxy,
            Session = new TorrentSessionOptions
            {
                ListenAddress = Settings.Address,
                ListenPort = Settings.Port,
                UploadRateLimit = Settings.UploadLimit,
                Encryption = Settings.Encryption,
            },
        };

        /// <summary>Makes the host, binding the peer port's UDP side (uTP, and the DHT node) as it is made; TCP binds when it starts.</summary>
        public TorrentHost Host(TorrentHostOptions options, DualStackDhtHost? dht) =>
            Listening.Bind(Settings.Address, (Transports & PeerTransports.Utp) != 0 ? Settings.Port : 0, () => new TorrentHost(options, Loggers, dht?.Node, ProxyUdp));

        public void Dispose() => Loggers.Dispose();
    }

    /// <summary>
    /// Joins what the swarm needs before the torrent starts: the proxy (a refused password ends the command here, exit 1,
    /// before anything is stored), the loggers, the DHT routers and the other family's DHT address.
    /// </summary>
    private static async Task<SwarmJoin> JoinSwarmAsync(SwarmSettings settings, CancellationToken ct)
    {
        var parse = settings.Parse;
        Socks5UdpAssociation? proxyUdp = null;
        var transports = settings.Transports;
        var useDht = true;
        if (settings.Proxy is not null)
        {
            (proxyUdp, transports, useDht) = await ProxyUdpAsync(settings.Proxy, transports, settings.HasDhtBootstrap, parse.InvocationConfiguration.Error, ct);
        }

        var loggers = Loggers(parse.GetValue(settings.Options.Verbose));
        try
        {
            var dhtRouters = useDht ? await ResolveAllAsync(parse.GetValue(settings.Options.Dht), "DHT node", ct) : [];
            var dhtPair = CheckDhtPair(parse.GetValue(settings.Options.DhtIpv6), settings.Address, dhtRouters, useDht && settings.Proxy is null);
            return new SwarmJoin(settings, proxyUdp, transports, loggers, dhtRouters, dhtPair);
        }
        catch (Exception ex) when (ex is UsageException or RuntimeFailureException or OperationCanceledException)
        {
            loggers.Dispose();
            if (proxyUdp is not null) await proxyUdp.Control.DisposeAsync();
            throw;
        }
    }
}
