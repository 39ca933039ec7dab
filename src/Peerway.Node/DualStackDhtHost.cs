using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Peerway.Dht;
using Peerway.Net;

namespace Peerway.Node;

/// <summary>
/// BEP 32 on real sockets, as libtorrent joins both DHTs: a <see cref="DhtHost"/> of one family and, when asked for, a
/// node of the other family with the same id ("the same node ID should be used for both"), paired
/// (<see cref="DhtNode.PairWith"/>): lookups and announces then run on both (<see cref="DhtNode.AnnounceDualStackAsync"/>)
/// and each joins through the bootstrap nodes of its own family.
/// </summary>
public sealed class DualStackDhtHost : IAsyncDisposable
{
    private readonly ILogger _log;

    private DualStackDhtHost(DhtHost primary, DhtHost? pair, ILogger log)
    {
        Primary = primary;
        Pair = pair;
        _log = log;
    }

    /// <summary>The node of the first family (the one given a socket or <see cref="DhtHostOptions.Bind"/>).</summary>
    public DhtHost Primary { get; }

    /// <summary>The paired node of the other family, or null (one family: not asked for, or its address could not be bound).</summary>
    public DhtHost? Pair { get; }

    /// <summary>The primary node (paired with <see cref="Pair"/>'s when there is one).</summary>
    public DhtNode Node => Primary.Node;

    /// <summary>
    /// Starts the primary node (as <see cref="DhtHost.Start"/>) and, with <paramref name="pairAddress"/> (an address of the
    /// other family), a node there on the primary's port number when it is free (any port otherwise), paired with it.
    /// When the pair's address cannot be bound (no IPv6 on the host), the primary runs alone, with a warning, as
    /// libtorrent skips a listen interface it cannot open.
    /// </summary>
    public static DualStackDhtHost Start(DhtHostOptions options, IPAddress? pairAddress, ILoggerFactory loggers, TimeProvider? time = null, IDatagramSocket? socket = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        var family = (socket?.LocalEndPoint ?? options.Bind).AddressFamily;
        if (pairAddress is not null && pairAddress.AddressFamily == family)
        {
            throw new ArgumentException($"BEP 32 pairs nodes of two families: {pairAddress} is of the primary's family ({family}).", nameof(pairAddress));
        }

        var log = loggers.CreateLogger<DualStackDhtHost>();
        var primary = DhtHost.Start(options, loggers, time, socket);
        if (pairAddress is null) return new DualStackDhtHost(primary, null, log);
        var pairOptions = new DhtHostOptions { Bind = new IPEndPoint(pairAddress, primary.LocalEndPoint.Port), Dht = options.Dht with { NodeId = primary.Node.Id } };
        DhtHost pair;
        try
        {
            try
            {
                pair = DhtHost.Start(pairOptions, loggers, time);
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                pair = DhtHost.Start(pairOptions with { Bind = new IPEndPoint(pairAddress, 0) }, loggers, time);
            }
        }
        catch (SocketException ex)
        {
            log.LogWarning("BEP 32: no DHT node on {Address} ({Error}); the DHT of {Family} only", pairAddress, ex.SocketErrorCode, family);
            return new DualStackDhtHost(primary, null, log);
        }

        primary.Node.PairWith(pair.Node);
        return new DualStackDhtHost(primary, pair, log);
    }

    /// <summary>
    /// Joins both DHTs at once, each node through the <paramref name="routers"/> of its own family (BEP 32: "there are
    /// two distinct DHTs"); returns the two routing tables' sizes added up.
    /// </summary>
    public async Task<int> JoinAsync(IReadOnlyList<IPEndPoint> routers, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(routers);
        var hosts = Pair is null ? [Primary] : new[] { Primary, Pair };
        var sizes = await Task.WhenAll(hosts.Select(h =>
            h.JoinAsync(routers.Where(r => r.AddressFamily == h.LocalEndPoint.AddressFamily).ToList(), ct))).ConfigureAwait(false);
        _log.LogInformation("DHT joined: {Sizes} nodes ({Families})", string.Join(" + ", sizes), string.Join(", ", hosts.Select(h => EndPointParser.Format(h.LocalEndPoint))));
        return sizes.Sum();
    }

    public async ValueTask DisposeAsync()
    {
        if (Pair is not null) await Pair.DisposeAsync().ConfigureAwait(false);
        await Primary.DisposeAsync().ConfigureAwait(false);
    }
}
