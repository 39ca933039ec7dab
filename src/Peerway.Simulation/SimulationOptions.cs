using Peerway.Dht;

namespace Peerway.Simulation;

/// <summary>One simulated scenario: N nodes join, optional churn and adversaries, then M lookups.</summary>
public sealed record SimulationOptions
{
    /// <summary>Most nodes one run accepts (the address plan holds more; memory is the real limit).</summary>
    public const int MaxNodes = 10_000_000;

    /// <summary>Number of nodes (honest plus adversaries) kept alive at any time.</summary>
    public int Nodes { get; init; } = 1_000;

    /// <summary>Lookups measured after the network has settled: half find_node of a random target, half get_peers of
    /// an announced info-hash.</summary>
    public int Lookups { get; init; } = 100;

    /// <summary>Session-time model; null for a network without churn.</summary>
    public ChurnModel? Churn { get; init; }

    /// <summary>Fraction f of nodes that are adversaries, in [0, 0.9].</summary>
    public double AdversaryFraction { get; init; }

    /// <summary>Whether adversaries lie, drop, or (null) alternate between the two.</summary>
    public AdversaryBehavior? AdversaryBehavior { get; init; }

    /// <summary>Whether honest nodes enforce BEP 42 (node ids bound to IP addresses).</summary>
    public bool EnforceBep42 { get; init; }

    /// <summary>S/Kademlia disjoint lookup paths d (<see cref="DhtOptions.DisjointPaths"/>).</summary>
    public int DisjointPaths { get; init; } = 1;

    /// <summary>Seed of the run's single random source: the same options give the same report.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Per-pair one-way latency of the simulated network.</summary>
    public LatencyModel Latency { get; init; } = new();

    /// <summary>Probability a datagram is lost.</summary>
    public double LossRate { get; init; }

    /// <summary>The well-known routers every node bootstraps from (as router.bittorrent.com); they never leave.</summary>
    public int Routers { get; init; } = 8;

    /// <summary>Nodes joining per virtual second during the join phase.</summary>
    public double JoinRate { get; init; } = 1_000;

    /// <summary>Quiet time after the last join (routing tables fill from each other's traffic); longer under churn so
    /// that the population reaches its churn steady state.</summary>
    public TimeSpan? Settle { get; init; }

    /// <summary>Window with no lookups over which maintenance traffic (bytes sent per node per second) is measured.</summary>
    public TimeSpan MaintenanceWindow { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Lookups start at evenly spaced instants over this window.</summary>
    public TimeSpan? LookupWindow { get; init; }

    /// <summary>Routing tables inspected (a random sample of live honest nodes) for freshness.</summary>
    public int FreshnessSample { get; init; } = 1_000;

    /// <summary>Receives one line per phase (and every 100,000 joins) with virtual time, wall and CPU time and the
    /// resident set, for long runs; null for none. Not part of the results.</summary>
    public Action<string>? Progress { get; init; }

    /// <summary>The engine's settings besides those set above (K, α, timeouts, refresh interval, ...).</summary>
    public DhtOptions Dht { get; init; } = new();

    internal TimeSpan EffectiveSettle => Settle ?? (Churn is null ? TimeSpan.FromSeconds(30) : TimeSpan.FromMinutes(10));

    internal TimeSpan EffectiveLookupWindow => LookupWindow ?? TimeSpan.FromSeconds(Math.Max(10, Lookups / 100.0));

    /// <summary>Throws ArgumentException when an option is out of range.</summary>
    public void Validate()
    {
        if (Nodes is < 2 or > MaxNodes) throw new ArgumentOutOfRangeException(nameof(Nodes), Nodes, $"--nodes must be between 2 and {MaxNodes}.");
        if (Lookups is < 0 or > 10_000_000) throw new ArgumentOutOfRangeException(nameof(Lookups), Lookups, "--lookups must be between 0 and 10000000.");
        if (AdversaryFraction is < 0 or > 0.9 || double.IsNaN(AdversaryFraction)) throw new ArgumentOutOfRangeException(nameof(AdversaryFraction), AdversaryFraction, "--adversaries must be a fraction in [0, 0.9].");
        ArgumentNullException.ThrowIfNull(Dht);
        // S/Kademlia: the k closest known nodes are dealt to the d paths, so d cannot exceed k (DhtOptions says the same).
        if (DisjointPaths < 1 || DisjointPaths > Dht.K) throw new ArgumentOutOfRangeException(nameof(DisjointPaths), DisjointPaths, $"--disjoint must be between 1 and {Dht.K} (the bucket size k).");
        if (LossRate is < 0 or >= 1 || double.IsNaN(LossRate)) throw new ArgumentOutOfRangeException(nameof(LossRate), LossRate, "The loss rate must be in [0, 1).");
        if (Routers < 1 || Routers >= Nodes) throw new ArgumentOutOfRangeException(nameof(Routers), Routers, "There must be at least one router and fewer routers than nodes.");
        if (JoinRate is <= 0 or > 1e7 || double.IsNaN(JoinRate)) throw new ArgumentOutOfRangeException(nameof(JoinRate), JoinRate, "The join rate must be positive.");
        if (MaintenanceWindow < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(MaintenanceWindow), MaintenanceWindow, "The maintenance window must be non-negative.");
        if (FreshnessSample < 0) throw new ArgumentOutOfRangeException(nameof(FreshnessSample), FreshnessSample, "The freshness sample must be non-negative.");
        Churn?.Validate();
        Latency.Validate();
        Dht.Validate();
    }
}
