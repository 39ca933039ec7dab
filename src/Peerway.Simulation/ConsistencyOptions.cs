using Peerway.Dht.Log;

namespace Peerway.Simulation;

/// <summary>What the owner publishes and how readers follow it.</summary>
public enum ConsistencyMode
{
    /// <summary>A BEP 44 mutable item (e.g. a BEP 46 mutable torrent's info-hash): the owner puts seq 1, 2, 3, … and puts
    /// the current one again every republish interval; readers only get.</summary>
    Item,

    /// <summary>A tamper-evident log (issue 17 item 6): the owner appends and publishes each signed head (a BEP 44 item,
    /// salt = the log's name) as <c>log serve</c> does; followers poll the head, fetch from a holder, and put the head
    /// they hold again, as <c>log clone --follow</c> (<see cref="LogReplica.RunAsync"/>) does.</summary>
    Log,
}

/// <summary>
/// An eventual-consistency scenario: a network of <see cref="Readers"/> churning readers (each a production DhtNode),
/// plus the routers and one owner that never leave. After the settle phase the owner publishes
/// <see cref="Updates"/> updates, one every <see cref="UpdateInterval"/>; readers poll every <see cref="PollInterval"/>.
/// </summary>
public sealed record ConsistencyOptions
{
    /// <summary>Fraction of live readers that counts as converged.</summary>
    public const double ConvergedFraction = 0.99;

    /// <summary>Item or log.</summary>
    public ConsistencyMode Mode { get; init; } = ConsistencyMode.Item;

    /// <summary>Readers (item) or followers (log) kept alive at any time; the network has these plus the routers and the owner.</summary>
    public int Readers { get; init; } = 1_000;

    /// <summary>Updates the owner publishes (seq 1, 2, 3, … / log lengths 1, 2, 3, …).</summary>
    public int Updates { get; init; } = 6;

    /// <summary>Time between two updates.</summary>
    public TimeSpan UpdateInterval { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>How often a reader gets the item; null: 1 minute for items, <see cref="LogReplicaOptions.PollInterval"/>
    /// (30 s, what <c>log clone --follow</c> uses) for logs.</summary>
    public TimeSpan? PollInterval { get; init; }

    /// <summary>How often the current item or head is put again by the owner (and, for a log, by every follower, as
    /// <see cref="LogReplica"/> does); null: never (an item is then put once per update, a log head once per update by
    /// the owner and once by each follower that fetched it).</summary>
    public TimeSpan? RepublishInterval { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Session-time model of the readers; null for none.</summary>
    public ChurnModel? Churn { get; init; } = new(0.5, TimeSpan.FromMinutes(10));

    /// <summary>Seed of the run's single random source.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Routers (they never leave, and read nothing).</summary>
    public int Routers { get; init; } = 8;

    /// <summary>Quiet time after the join, before the first update (routing tables fill, churn reaches its steady state).</summary>
    public TimeSpan Settle { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>The fraction of live readers at the latest update is sampled at this interval for the time series.</summary>
    public TimeSpan SampleInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>The engine's settings (K is the replication factor: a put goes to the k closest nodes).</summary>
    public Peerway.Dht.DhtOptions Dht { get; init; } = new();

    /// <summary>Receives one line per phase; null for none.</summary>
    public Action<string>? Progress { get; init; }

    internal TimeSpan EffectivePollInterval => PollInterval ?? (Mode == ConsistencyMode.Log ? new LogReplicaOptions().PollInterval : TimeSpan.FromMinutes(1));

    /// <summary>Throws ArgumentException when an option is out of range.</summary>
    public void Validate()
    {
        if (Readers is < 2 or > 1_000_000) throw new ArgumentOutOfRangeException(nameof(Readers), Readers, "--readers must be between 2 and 1000000.");
        if (Updates is < 1 or > 10_000) throw new ArgumentOutOfRangeException(nameof(Updates), Updates, "--updates must be between 1 and 10000.");
        if (UpdateInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(UpdateInterval), UpdateInterval, "--interval must be positive.");
        if (EffectivePollInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(PollInterval), PollInterval, "--poll must be positive.");
        if (RepublishInterval is { } r && r <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(RepublishInterval), r, "--republish must be positive, or off.");
        if (Routers < 1 || Routers > Readers) throw new ArgumentOutOfRangeException(nameof(Routers), Routers, "There must be at least one router and no more routers than readers.");
        if (Settle < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Settle), Settle, "The settle time must be non-negative.");
        if (SampleInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(SampleInterval), SampleInterval, "The sample interval must be positive.");
        Churn?.Validate();
        ArgumentNullException.ThrowIfNull(Dht);
        Dht.Validate();
    }

    /// <summary>The network part of the scenario, for the shared join and churn machinery.</summary>
    internal SimulationOptions Network() => new()
    {
        Nodes = Readers + Routers,
        Lookups = 0,
        Routers = Routers,
        Churn = Churn,
        Seed = Seed,
        Settle = Settle,
        MaintenanceWindow = TimeSpan.Zero,
        FreshnessSample = 0,
        Dht = Dht,
        Progress = Progress,
    };
}
