using System.Buffers.Binary;
using System.Net;
using Peerway.Net;

namespace Peerway.Simulation;

/// <summary>Options of a <see cref="VirtualSwarm"/>.</summary>
public sealed record VirtualSwarmOptions
{
    /// <summary>Seed of the run (the scheduler's random source and the latency draw).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>One-way latency between peers; <see langword="null"/>: none.</summary>
    public LatencyModel? Latency { get; init; } = new();

    /// <summary>Send buffer, segment size and backlog of every connection (its latency comes from
    /// <see cref="Latency"/>).</summary>
    public VirtualStreamNetworkOptions Network { get; init; } = new();

    /// <summary>Port every peer's <see cref="VirtualSwarmPeer.ListenEndPoint"/> uses.</summary>
    public int Port { get; init; } = 6881;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> when <see cref="Port"/> is outside [1, 65535], <see cref="ArgumentNullException"/>
    /// when <see cref="Network"/> is null, and what <see cref="LatencyModel.Validate"/> throws for <see cref="Latency"/>.</summary>
    public void Validate()
    {
        Latency?.Validate();
        ArgumentNullException.ThrowIfNull(Network);
        if (Port is < 1 or > 65535) throw new ArgumentOutOfRangeException(nameof(Port), Port, "Port must be in [1, 65535].");
    }
}

/// <summary>One peer of a <see cref="VirtualSwarm"/>: the transport to give its engine, and its link.</summary>
public sealed class VirtualSwarmPeer
{
    internal VirtualSwarmPeer(int index, VirtualStreamEndpoint endpoint, PeerCapacity capacity, int port)
    {
        Index = index;
        Endpoint = endpoint;
        Capacity = capacity;
        ListenEndPoint = new IPEndPoint(endpoint.Address, port);
    }

    /// <summary>Position in <see cref="VirtualSwarm.Peers"/>.</summary>
    public int Index { get; }

    /// <summary>The transport the peer's engine dials and listens with.</summary>
    public IStreamTransport Transport => Endpoint;

    /// <summary>The peer's endpoint on <see cref="VirtualSwarm.Network"/> (the same object as <see cref="Transport"/>).</summary>
    public VirtualStreamEndpoint Endpoint { get; }

    /// <summary>Its upload and download rates (<see cref="double.PositiveInfinity"/>: unlimited).</summary>
    public PeerCapacity Capacity { get; }

    /// <summary>Where it is expected to listen (its address, the swarm's port), for the others to dial.</summary>
    public IPEndPoint ListenEndPoint { get; }
}

/// <summary>
/// A deterministic swarm for engines that take an <see cref="IStreamTransport"/> and a <see cref="TimeProvider"/>: N
/// endpoints of a <see cref="VirtualStreamNetwork"/> with their own upload and download rates and a latency model,
/// all on one <see cref="SimulationScheduler"/>. A test adds the peers, builds one engine per peer on
/// <see cref="VirtualSwarmPeer.Transport"/> and <see cref="Time"/>, and runs each peer's work with
/// <see cref="RunEach"/>; what it gets back (virtual completion times) compares with <see cref="KumarRossBound"/>.
/// </summary>
public sealed class VirtualSwarm
{
    private readonly VirtualSwarmOptions _options;
    private readonly List<VirtualSwarmPeer> _peers = [];

    /// <summary>Creates an empty swarm; <paramref name="options"/> <see langword="null"/>: the defaults. Throws what
    /// <see cref="VirtualSwarmOptions.Validate"/> throws.</summary>
    public VirtualSwarm(VirtualSwarmOptions? options = null)
    {
        _options = options ?? new VirtualSwarmOptions();
        _options.Validate();
        Scheduler = new SimulationScheduler(_options.Seed);
        var latency = _options.Latency;
        var seed = _options.Seed;
        var networkOptions = latency is null
            ? _options.Network with { Latency = static (_, _) => TimeSpan.Zero }
            : _options.Network with { Latency = (a, b) => TimeSpan.FromTicks(latency.DelayTicks(HostKey(a), HostKey(b), seed)) };
        Network = new VirtualStreamNetwork(Scheduler, Scheduler.Time, networkOptions);
    }

    /// <summary>The scheduler every peer's connections, timers and <see cref="RunEach"/> work run on.</summary>
    public SimulationScheduler Scheduler { get; }

    /// <summary>The virtual clock to give every engine.</summary>
    public TimeProvider Time => Scheduler.Time;

    /// <summary>The stream network the peers' endpoints belong to.</summary>
    public VirtualStreamNetwork Network { get; }

    /// <summary>The peers added so far, in order of <see cref="AddPeer"/>.</summary>
    public IReadOnlyList<VirtualSwarmPeer> Peers => _peers;

    /// <summary>Adds a peer with <paramref name="capacity"/> (bytes per second; <see cref="double.PositiveInfinity"/>:
    /// unlimited).</summary>
    public VirtualSwarmPeer AddPeer(PeerCapacity capacity)
    {
        var endpoint = Network.AddEndpoint(new VirtualEndpointOptions
        {
            UploadBytesPerSecond = ToRate(capacity.UploadBytesPerSecond),
            DownloadBytesPerSecond = ToRate(capacity.DownloadBytesPerSecond),
        });
        var peer = new VirtualSwarmPeer(_peers.Count, endpoint, capacity, _options.Port);
        _peers.Add(peer);
        return peer;
    }

    /// <summary>Adds <paramref name="count"/> peers of the same capacity.</summary>
    public IReadOnlyList<VirtualSwarmPeer> AddPeers(int count, PeerCapacity capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return Enumerable.Range(0, count).Select(_ => AddPeer(capacity)).ToArray();
    }

    /// <summary>The Kumar–Ross minimum time for <paramref name="seeder"/> to give a file of
    /// <paramref name="fileBytes"/> to every other peer (see <see cref="DistributionBound"/>).</summary>
    public TimeSpan KumarRossBound(long fileBytes, VirtualSwarmPeer seeder)
    {
        ArgumentNullException.ThrowIfNull(seeder);
        var leechers = _peers.Where(p => p != seeder).Select(p => p.Capacity).ToArray();
        return DistributionBound.MinimumDistributionTime(fileBytes, seeder.Capacity.UploadBytesPerSecond, leechers);
    }

    /// <summary>Runs <paramref name="scenario"/> on the scheduler until its task ends.</summary>
    public T Run<T>(Func<Task<T>> scenario) => Scheduler.Run(scenario);

    /// <summary>Starts <paramref name="work"/> for every peer in <paramref name="peers"/> and runs until all end; returns
    /// the virtual time (since the start of the run) at which each ended, in the order given.</summary>
    public IReadOnlyList<TimeSpan> RunEach(IEnumerable<VirtualSwarmPeer> peers, Func<VirtualSwarmPeer, Task> work)
    {
        ArgumentNullException.ThrowIfNull(peers);
        ArgumentNullException.ThrowIfNull(work);
        return Run(async () =>
        {
            var start = Scheduler.Now;
            var tasks = peers.Select(async p =>
            {
                await work(p).ConfigureAwait(false);
                return Scheduler.Now - start;
            }).ToArray();
            return (IReadOnlyList<TimeSpan>)await Task.WhenAll(tasks).ConfigureAwait(false);
        });
    }

    /// <summary>A capacity as an endpoint rate: infinity is unlimited (0 there); a finite rate is at least 1 byte/s (a
    /// peer that does not upload is one whose engine sends nothing).</summary>
    private static long ToRate(double bytesPerSecond)
    {
        if (double.IsNaN(bytesPerSecond) || bytesPerSecond < 0) throw new ArgumentOutOfRangeException(nameof(bytesPerSecond), bytesPerSecond, "A rate must not be negative.");
        return double.IsPositiveInfinity(bytesPerSecond) ? 0 : Math.Max(1, (long)Math.Round(Math.Min(bytesPerSecond, long.MaxValue / 2)));
    }

    private static long HostKey(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var written);
        return written == 4 ? BinaryPrimitives.ReadUInt32BigEndian(bytes) : BinaryPrimitives.ReadInt64BigEndian(bytes[8..]);
    }
}
