using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Core;
using Peerway.Dht;

namespace Peerway.Node;

/// <summary>Shape of a <see cref="LocalDhtSwarm"/>.</summary>
public sealed record LocalSwarmOptions
{
    /// <summary>Upper bound on nodes: each binds its own loopback address 127.10.x.y.</summary>
    public const int MaxNodes = 10_000;

    public int Nodes { get; init; } = 50;

    /// <summary>Random info-hashes announced, each from a random node.</summary>
    public int InfoHashes { get; init; } = 20;

    /// <summary>Lookups per info-hash, each from a random node other than the announcer.</summary>
    public int LookupsPerInfoHash { get; init; } = 2;

    /// <summary>Nodes joining at the same time during bootstrap.</summary>
    public int JoinParallelism { get; init; } = 8;

    /// <summary>Seed for the choice of info-hashes, announcers and lookers (null: random).</summary>
    public int? Seed { get; init; }

    /// <summary>
    /// Give every node its own loopback address (127.10.x.y), as on a real network; per-IP rate limits and tokens then
    /// apply per node. Linux routes all of 127.0.0.0/8 to the loopback interface; elsewhere every node uses 127.0.0.1.
    /// </summary>
    public bool DistinctAddresses { get; init; } = OperatingSystem.IsLinux();

    /// <summary>Engine settings of every node.</summary>
    public DhtOptions Dht { get; init; } = new() { QueryTimeout = TimeSpan.FromSeconds(1) };

    public void Validate()
    {
        if (Nodes is < 2 or > MaxNodes) throw new ArgumentOutOfRangeException(nameof(Nodes), Nodes, $"Nodes must be in 2..{MaxNodes}.");
        if (InfoHashes is < 1 or > 100_000) throw new ArgumentOutOfRangeException(nameof(InfoHashes), InfoHashes, "InfoHashes must be in 1..100000.");
        if (LookupsPerInfoHash is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(LookupsPerInfoHash), LookupsPerInfoHash, "LookupsPerInfoHash must be in 1..100.");
        if (JoinParallelism is < 1 or > 1024) throw new ArgumentOutOfRangeException(nameof(JoinParallelism), JoinParallelism, "JoinParallelism must be in 1..1024.");
        ArgumentNullException.ThrowIfNull(Dht);
        Dht.Validate();
    }
}

/// <summary>Progress of a swarm phase ("bind", "join", "announce", "lookup").</summary>
public sealed record SwarmProgress(string Phase, int Done, int Total);

/// <summary>The outcome of one lookup in the swarm.</summary>
public sealed record SwarmLookup(NodeId InfoHash, IPEndPoint Expected, bool Found, int Rounds, int Queries, int PeersReturned);

/// <summary>Summary of a swarm run.</summary>
public sealed record LocalSwarmReport(
    int Nodes,
    int MeanRoutingTableSize,
    int Announces,
    int AnnouncesAccepted,
    IReadOnlyList<SwarmLookup> Lookups,
    long DatagramsSent,
    long BytesSent,
    TimeSpan Elapsed)
{
    public int Successes => Lookups.Count(l => l.Found);

    public double SuccessRate => Lookups.Count == 0 ? 0 : (double)Successes / Lookups.Count;

    public double MeanRounds => Lookups.Count == 0 ? 0 : Lookups.Average(l => l.Rounds);

    /// <summary>90th percentile of lookup rounds (nearest-rank).</summary>
    public int P90Rounds
    {
        get
        {
            if (Lookups.Count == 0) return 0;
            var sorted = Lookups.Select(l => l.Rounds).Order().ToArray();
            var rank = (int)Math.Ceiling(0.9 * sorted.Length);
            return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
        }
    }

    public bool AllFound => Lookups.Count > 0 && Successes == Lookups.Count;
}

/// <summary>
/// Many DHT nodes on loopback, each a <see cref="DhtHost"/> on its own real UDP socket, joined into one network:
/// the demo (and later the torrent demo) runs on it. No DHT logic here: it drives the public DhtNode API.
/// </summary>
public sealed class LocalDhtSwarm : IAsyncDisposable
{
    private readonly LocalSwarmOptions _options;
    private readonly List<DhtHost> _hosts;
    private readonly Random _random;
    private readonly ILogger _log;

    private LocalDhtSwarm(LocalSwarmOptions options, List<DhtHost> hosts, Random random, ILogger log)
    {
        _options = options;
        _hosts = hosts;
        _random = random;
        _log = log;
    }

    public IReadOnlyList<DhtHost> Hosts => _hosts;

    /// <summary>Binds and starts every node (not yet joined).</summary>
    public static LocalDhtSwarm Start(LocalSwarmOptions options, ILoggerFactory loggers, IProgress<SwarmProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        options.Validate();
        var hosts = new List<DhtHost>(options.Nodes);
        try
        {
            for (var i = 0; i < options.Nodes; i++)
            {
                var address = options.DistinctAddresses ? AddressOf(i) : IPAddress.Loopback;
                var seeded = options.Seed is { } s ? options.Dht with { RandomSeed = unchecked(s * 7919 + i) } : options.Dht;
                hosts.Add(DhtHost.Start(new DhtHostOptions { Bind = new IPEndPoint(address, 0), Dht = seeded }, loggers));
                progress?.Report(new SwarmProgress("bind", i + 1, options.Nodes));
            }
        }
        catch
        {
#pragma warning disable VSTHRD002 // Start is synchronous; undoing a half-built swarm before rethrowing
            foreach (var h in hosts) h.DisposeAsync().AsTask().GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
            throw;
        }

        var random = options.Seed is { } seed ? new Random(seed) : new Random();
        return new LocalDhtSwarm(options, hosts, random, loggers.CreateLogger<LocalDhtSwarm>());
    }

    /// <summary>The loopback address of node <paramref name="index"/>: 127.10.x.y.</summary>
    public static IPAddress AddressOf(int index) =>
        new([127, 10, (byte)(index / 250), (byte)(1 + (index % 250))]);

    /// <summary>
    /// Joins the nodes: node 0 is the seed; every other node bootstraps from node 0 and a random earlier node,
    /// <see cref="LocalSwarmOptions.JoinParallelism"/> at a time. Returns the mean routing table size.
    /// </summary>
    public async Task<int> JoinAsync(IProgress<SwarmProgress>? progress, CancellationToken ct)
    {
        var total = _hosts.Count - 1;
        var done = 0;
        var seed = _hosts[0].LocalEndPoint;
        var routers = new List<IPEndPoint>[_hosts.Count];
        for (var i = 1; i < _hosts.Count; i++)
        {
            var other = _random.Next(0, i);
            routers[i] = other == 0 ? [seed] : [seed, _hosts[other].LocalEndPoint];
        }

        await Parallel.ForEachAsync(
            Enumerable.Range(1, total),
            new ParallelOptions { MaxDegreeOfParallelism = _options.JoinParallelism, CancellationToken = ct },
            async (i, token) =>
            {
                await _hosts[i].Node.BootstrapAsync(routers[i], token);
                progress?.Report(new SwarmProgress("join", Interlocked.Increment(ref done), total));
            });

        // Nodes that joined early met few others; a lookup of their own id fills their buckets (BEP 5 refresh).
        var sparse = _hosts.Where(h => h.Node.RoutingTableNodes().Count < _options.Dht.K).ToList();
        await Parallel.ForEachAsync(
            sparse,
            new ParallelOptions { MaxDegreeOfParallelism = _options.JoinParallelism, CancellationToken = ct },
            async (h, token) => await h.Node.FindNodeAsync(h.Node.Id, token));

        var mean = (int)Math.Round(_hosts.Average(h => h.Node.RoutingTableNodes().Count));
        _log.LogInformation("Swarm joined: {Nodes} nodes, mean routing table {Mean}", _hosts.Count, mean);
        return mean;
    }

    /// <summary>
    /// Announces <see cref="LocalSwarmOptions.InfoHashes"/> random info-hashes from random nodes, then looks each up
    /// from other random nodes and checks the announcer is found.
    /// </summary>
    public async Task<(int Accepted, IReadOnlyList<SwarmLookup> Lookups)> AnnounceAndLookUpAsync(
        IProgress<SwarmProgress>? progress, CancellationToken ct)
    {
        var plans = new List<(NodeId Hash, int Announcer, int Port)>();
        for (var i = 0; i < _options.InfoHashes; i++)
        {
            plans.Add((NodeId.Random(_random), _random.Next(_hosts.Count), _random.Next(10_000, 60_000)));
        }

        var announced = 0;
        var accepted = 0;
        await Task.WhenAll(plans.Select(async p =>
        {
            var r = await _hosts[p.Announcer].Node.AnnounceAsync(p.Hash, p.Port, impliedPort: false, ct);
            if (r.AnnouncedTo > 0) Interlocked.Increment(ref accepted);
            progress?.Report(new SwarmProgress("announce", Interlocked.Increment(ref announced), plans.Count));
        }));

        var lookups = new List<(NodeId Hash, int Looker, IPEndPoint Expected)>();
        foreach (var p in plans)
        {
            var expected = new IPEndPoint(_hosts[p.Announcer].LocalEndPoint.Address, p.Port);
            for (var j = 0; j < _options.LookupsPerInfoHash; j++)
            {
                int looker;
                do looker = _random.Next(_hosts.Count);
                while (looker == p.Announcer);
                lookups.Add((p.Hash, looker, expected));
            }
        }

        var finished = 0;
        var results = await Task.WhenAll(lookups.Select(async l =>
        {
            var r = await _hosts[l.Looker].Node.GetPeersAsync(l.Hash, ct);
            progress?.Report(new SwarmProgress("lookup", Interlocked.Increment(ref finished), lookups.Count));
            return new SwarmLookup(l.Hash, l.Expected, r.Peers.Contains(l.Expected), r.Lookup.Rounds, r.Lookup.QueriesSent, r.Peers.Count);
        }));
        return (accepted, results);
    }

    /// <summary>Join, announce, look up; the report covers the whole run.</summary>
    public async Task<LocalSwarmReport> RunAsync(IProgress<SwarmProgress>? progress, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var meanTable = await JoinAsync(progress, ct);
        var (accepted, lookups) = await AnnounceAndLookUpAsync(progress, ct);
        clock.Stop();
        return new LocalSwarmReport(
            _hosts.Count,
            meanTable,
            _options.InfoHashes,
            accepted,
            lookups,
            _hosts.Sum(h => h.Socket.DatagramsSent),
            _hosts.Sum(h => h.Socket.BytesSent),
            clock.Elapsed);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var h in _hosts) await h.DisposeAsync();
        _hosts.Clear();
    }
}
