using System.Diagnostics;
using System.Net;
using Peerway.Core;
using Peerway.Dht;

namespace Peerway.Simulation;

/// <summary>
/// Runs one <see cref="SimulationOptions"/> scenario: the production <see cref="DhtNode"/>, N times over a
/// <see cref="SimulationNetwork"/>, in virtual time on the calling thread. The same options give the same report
/// (except the wall-clock and memory figures).
/// </summary>
public static class Simulator
{
    /// <summary>Runs one scenario to completion (options are validated first) and reports what it measured.</summary>
    public static SimulationReport Run(SimulationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var run = new SimulationRun(options);
        var report = run.Scheduler.Run(run.ScenarioAsync);
        if (run.Scheduler.FirstViolation is { } where && Environment.GetEnvironmentVariable("PEERWAY_SIM_TRACE") is { Length: > 0 } path) File.AppendAllText(path, where + Environment.NewLine);
        return report;
    }
}

internal sealed partial class SimulationRun
{
    /// <summary>How long (virtual) the run waits for outstanding lookups before giving up on them.</summary>
    private static readonly TimeSpan StragglerLimit = TimeSpan.FromMinutes(120);

    private static readonly TimeSpan JoinTick = TimeSpan.FromMilliseconds(10);

    private readonly SimulationOptions _o;
    private readonly SimulationNetwork _network;
    private readonly Random _random;
    private readonly GroundTruth _truth = new();
    private readonly List<Honest?> _byHost = [];
    private readonly List<Honest> _live = [];
    private readonly List<Honest> _routers = [];
    private readonly List<AdversaryNode> _adversaries = [];
    private readonly Dictionary<int, AdversaryNode> _adversaryByHost = [];
    private readonly GroundTruth _adversaryIds = new();
    private readonly List<(NodeId Hash, HashSet<IPEndPoint> Peers)> _announced = [];
    private readonly List<Task> _background = [];
    private readonly Stopwatch _wall = Stopwatch.StartNew();

    /// <summary>PEERWAY_SIM_FULLGC set: progress lines report the live heap (after a full collection) instead of the
    /// heap including garbage; for measuring memory per node, at the price of a full collection per line.</summary>
    private readonly bool _fullGcInProgress = Environment.GetEnvironmentVariable("PEERWAY_SIM_FULLGC") is { Length: > 0 };
    private long _departedBytes;
    private long _departures;
    private long _peakWorkingSet;

    public SimulationRun(SimulationOptions options)
    {
        _o = options;
        Scheduler = new SimulationScheduler(options.Seed);
        _network = new SimulationNetwork(Scheduler, options.Latency, options.LossRate);
        _random = Scheduler.Random;
    }

    public SimulationScheduler Scheduler { get; }

    private TimeProvider Time => Scheduler.Time;

    private sealed class Honest(DhtNode node, SimulationSocket socket, TimeSpan joined, bool router)
    {
        public DhtNode Node { get; } = node;
        public SimulationSocket Socket { get; } = socket;
        public NodeId Id => Node.Id;
        public TimeSpan Joined { get; } = joined;
        public bool Router { get; } = router;
        public bool Alive { get; set; } = true;
        public int LiveIndex { get; set; }
        /// <summary>Cancelled when the node leaves (only nodes that can leave get one: they are many).</summary>
        public CancellationTokenSource? Life { get; set; }

        public CancellationToken Token => Life?.Token ?? CancellationToken.None;
    }

    public async Task<SimulationReport> ScenarioAsync()
    {
        // The info-hashes are chosen first: Sybils that may choose their ids settle next to them.
        var hashes = _o.Lookups == 0 ? 0 : Math.Max(1, _o.Lookups / 20);
        for (var i = 0; i < hashes; i++) _announced.Add((NodeId.Random(_random), []));
        await JoinAllAsync();
        Sample("joined");
        await Task.Delay(_o.EffectiveSettle, Time);
        Sample("settled");

        var maintenance = await MeasureMaintenanceAsync();
        Sample("maintenance measured");
        var announced = await AnnounceAsync(_announced);
        Sample("announced");
        var stats = await LookupsAsync(announced);
        var (rtSize, fresh, adv) = Freshness();
        Sample("lookups done");

        var adversaries = _adversaries.Count;
        return new SimulationReport
        {
            Nodes = _o.Nodes,
            HonestNodes = _live.Count,
            Adversaries = adversaries,
            Seed = _o.Seed,
            Churn = _o.Churn?.ToString() ?? "none",
            AdversaryFraction = _o.AdversaryFraction,
            EnforceBep42 = _o.EnforceBep42,
            DisjointPaths = _o.DisjointPaths,
            Lookups = _o.Lookups,
            LookupsCompleted = stats.Completed,
            SuccessRate = Ratio(stats.FindOk + stats.PeersOk, stats.FindDone + stats.PeersDone),
            FindNodeSuccessRate = Ratio(stats.FindOk, stats.FindDone),
            GetPeersSuccessRate = Ratio(stats.PeersOk, stats.PeersDone),
            ClosestOverlap = stats.FindDone == 0 ? double.NaN : stats.OverlapSum / stats.FindDone,
            RoundsMean = stats.Rounds.Mean,
            RoundsP50 = stats.Rounds.Percentile(50),
            RoundsP90 = stats.Rounds.Percentile(90),
            MessagesMean = stats.Messages.Mean,
            MessagesP50 = stats.Messages.Percentile(50),
            MessagesP99 = stats.Messages.Percentile(99),
            LatencyP50Ms = stats.Latency.Percentile(50),
            LatencyP90Ms = stats.Latency.Percentile(90),
            LatencyP99Ms = stats.Latency.Percentile(99),
            RoutingTableMean = rtSize,
            RoutingTableFreshness = fresh,
            RoutingTableAdversaries = adv,
            MaintenanceBytesPerNodePerSecond = maintenance,
            Departures = _departures,
            Datagrams = _network.DatagramsSent,
            Events = Scheduler.EventsRun,
            VirtualSeconds = Scheduler.Now.TotalSeconds,
            WallSeconds = _wall.Elapsed.TotalSeconds,
            PeakWorkingSetMegabytes = _peakWorkingSet / 1048576.0,
            ThreadViolations = Scheduler.ThreadViolations,
            LookupErrors = stats.Errors,
            FirstLookupError = stats.FirstError,
        };
    }

    private static double Ratio(int a, int b) => b == 0 ? double.NaN : (double)a / b;

    private void Sample(string? phase = null)
    {
        using var p = Process.GetCurrentProcess();
        _peakWorkingSet = Math.Max(_peakWorkingSet, p.PeakWorkingSet64);
        if (phase is not null && _o.Progress is { } progress)
        {
            progress(FormattableString.Invariant(
                $"simulate: {phase}: {_live.Count + _adversaries.Count} nodes, {_network.DatagramsSent} datagrams, virtual {Scheduler.Now.TotalSeconds:0} s, wall {_wall.Elapsed.TotalSeconds:0} s, CPU {p.TotalProcessorTime.TotalSeconds:0} s, RSS {p.WorkingSet64 / 1048576.0:0} MB (peak {_peakWorkingSet / 1048576.0:0} MB), managed heap {GC.GetTotalMemory(forceFullCollection: _fullGcInProgress) / 1048576.0:0} MB, allocated {GC.GetTotalAllocatedBytes() / 1048576.0:0} MB, GCs {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)} (gen0/1/2), GC pause {GC.GetTotalPauseDuration().TotalSeconds:0.0} s"));
        }
    }

    // ---- Join and churn ---------------------------------------------------------------------------------------

    private async Task JoinAllAsync()
    {
        var adversary = ChooseAdversaries();
        var perTick = Math.Max(1, (int)Math.Round(_o.JoinRate * JoinTick.TotalSeconds));
        for (var i = 0; i < _o.Nodes; i++)
        {
            if (adversary[i]) JoinAdversary();
            else JoinHonest(router: i < _o.Routers);
            if ((i + 1) % perTick == 0) await Task.Delay(JoinTick, Time);
            if ((i + 1) % 100_000 == 0) Sample($"joining {i + 1:N0}/{_o.Nodes:N0}");
        }

        // Adversaries query honest nodes once everybody is in, so that they sit in routing tables all over the network.
        foreach (var a in _adversaries) a.Announce(RandomHonest(3 * _o.Dht.K).Select(h => h.Socket.LocalEndPoint));
    }

    private bool[] ChooseAdversaries()
    {
        var flags = new bool[_o.Nodes];
        var count = (int)Math.Round(_o.AdversaryFraction * _o.Nodes);
        count = Math.Min(count, _o.Nodes - _o.Routers);
        // Partial Fisher–Yates over the non-router positions.
        var positions = Enumerable.Range(_o.Routers, _o.Nodes - _o.Routers).ToArray();
        for (var i = 0; i < count; i++)
        {
            var j = i + _random.Next(positions.Length - i);
            (positions[i], positions[j]) = (positions[j], positions[i]);
            flags[positions[i]] = true;
        }

        return flags;
    }

    private Honest JoinHonest(bool router, bool permanent = false)
    {
        var socket = _network.CreateSocket();
        var id = _o.EnforceBep42 ? Bep42.GenerateId(socket.LocalEndPoint.Address, (byte)_random.Next(256), _random) : NodeId.Random(_random);
        var options = _o.Dht with
        {
            NodeId = id,
            RandomSeed = (int)Hash.Mix(((ulong)(uint)_o.Seed << 32) | (uint)socket.Host),
            EnforceBep42 = _o.EnforceBep42,
            DisjointPaths = _o.DisjointPaths,
        };
        var node = new DhtNode(socket, Time, options);
        var h = new Honest(node, socket, Scheduler.Now, router);
        while (_byHost.Count <= socket.Host) _byHost.Add(null);
        _byHost[socket.Host] = h;
        h.LiveIndex = _live.Count;
        _live.Add(h);
        _truth.Add(node.Id, socket.Host);
        if (router) _routers.Add(h);
        // Not disposed after the node leaves: late continuations still read its token (it holds no timer).
        if (_o.Churn is not null && !router && !permanent) h.Life = new CancellationTokenSource();
        node.Start();

        var routers = _routers.Where(r => r != h).Select(r => r.Socket.LocalEndPoint).ToList();
        var bootstrap = routers.Count > 0 && !permanent ? BootstrapAsync(h, routers) : Task.CompletedTask;
        Track(bootstrap);
        if (_o.Churn is { } churn && !router && !permanent)
        {
            Scheduler.Schedule(churn.NextSession(_random), () => Depart(h));
        }

        OnJoined(h, bootstrap, permanent);
        return h;
    }

    /// <summary>A node joined (<paramref name="bootstrap"/> completes when its bootstrap has); <paramref name="permanent"/>
    /// nodes never leave.</summary>
    partial void OnJoined(Honest h, Task bootstrap, bool permanent);

    /// <summary>A node left (already marked dead, before its replacement joins).</summary>
    partial void OnDeparted(Honest h);

    private static async Task BootstrapAsync(Honest h, List<IPEndPoint> routers)
    {
        try
        {
            await h.Node.BootstrapAsync(routers, h.Token);
        }
        catch (OperationCanceledException) when (h.Token.IsCancellationRequested)
        {
            // Left before the bootstrap finished.
        }
    }

    private void Depart(Honest h)
    {
        _departures++;
        h.Alive = false;
        var last = _live[^1];
        _live[h.LiveIndex] = last;
        last.LiveIndex = h.LiveIndex;
        _live.RemoveAt(_live.Count - 1);
        _truth.Remove(h.Id);
        _departedBytes += h.Socket.BytesSent;
        // Cancel, not CancelAsync: the latter runs the callbacks on the thread pool, outside the simulation.
        h.Life?.Cancel();
        // A departure is silent (a crash or a closed laptop): the socket goes, nobody is told.
        h.Socket.Dispose();
        Track(h.Node.DisposeAsync().AsTask());
        OnDeparted(h);
        JoinHonest(router: false);
    }

    private void JoinAdversary()
    {
        var socket = _network.CreateSocket();
        var behavior = _o.AdversaryBehavior ?? (_adversaries.Count % 2 == 0 ? AdversaryBehavior.Lie : AdversaryBehavior.Drop);
        NodeId id;
        if (_o.EnforceBep42)
        {
            // BEP 42 takes away the choice of id: only an id derived from the attacker's IP gets into routing tables.
            id = Bep42.GenerateId(socket.LocalEndPoint.Address, (byte)_random.Next(256), _random);
        }
        else if (behavior == AdversaryBehavior.Lie && _announced.Count > 0 && _adversaries.Count % 4 < 2)
        {
            // Eclipse: half the liars take ids sharing the first 64 bits with an announced info-hash, closer than any
            // honest node; they accept its announces, keep them, and answer get_peers with wrong peers.
            Span<byte> b = stackalloc byte[NodeId.Length];
            _random.NextBytes(b);
            Span<byte> hash = stackalloc byte[NodeId.Length];
            _announced[_adversaries.Count / 4 % _announced.Count].Hash.WriteTo(hash);
            hash[..8].CopyTo(b);
            id = new NodeId(b);
        }
        else
        {
            id = NodeId.Random(_random);
        }

        var a = new AdversaryNode(socket, id, behavior, Accomplices, new Random(_random.Next()));
        _adversaries.Add(a);
        _adversaryByHost[socket.Host] = a;
        _adversaryIds.Add(id, socket.Host);
        a.Start();
    }

    private IEnumerable<NodeContact> Accomplices(NodeId target, int count) =>
        _adversaryIds.Closest(target, count).Select(id =>
        {
            _adversaryIds.TryGetHost(id, out var host);
            return new NodeContact(id, _adversaryByHost[host].EndPoint);
        });

    private List<Honest> RandomHonest(int count)
    {
        var list = new List<Honest>(count);
        for (var i = 0; i < count && _live.Count > 0; i++) list.Add(_live[_random.Next(_live.Count)]);
        return list;
    }

    private void Track(Task task)
    {
        if (task.IsCompleted)
        {
            task.GetAwaiter().GetResult(); // surface engine exceptions immediately
            return;
        }

        _background.Add(task);
        if (_background.Count > 4096)
        {
#pragma warning disable VSTHRD002 // completed tasks only: rethrows a failure
            foreach (var t in _background.Where(t => t.IsCompleted)) t.GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
            _background.RemoveAll(t => t.IsCompleted);
        }
    }

    // ---- Measurements -----------------------------------------------------------------------------------------

    private long HonestBytesSent() => _departedBytes + _live.Sum(h => h.Socket.BytesSent);

    private async Task<double> MeasureMaintenanceAsync()
    {
        if (_o.MaintenanceWindow <= TimeSpan.Zero) return double.NaN;
        var bytes0 = HonestBytesSent();
        var nodes0 = _live.Count;
        await Task.Delay(_o.MaintenanceWindow, Time);
        var bytes = HonestBytesSent() - bytes0;
        var nodes = (nodes0 + _live.Count) / 2.0;
        return bytes / nodes / _o.MaintenanceWindow.TotalSeconds;
    }

    private async Task<List<(NodeId Hash, HashSet<IPEndPoint> Peers)>> AnnounceAsync(List<(NodeId Hash, HashSet<IPEndPoint> Peers)> announced)
    {
        var tasks = new List<Task>();
        foreach (var (hash, peers) in announced)
        {
            foreach (var h in RandomHonest(2))
            {
                peers.Add(h.Socket.LocalEndPoint);
                tasks.Add(AnnounceOneAsync(h, hash));
            }
        }

        await Task.WhenAny(Task.WhenAll(tasks), Task.Delay(StragglerLimit, Time));
        return announced;
    }

    private static async Task AnnounceOneAsync(Honest h, NodeId hash)
    {
        try
        {
            await h.Node.AnnounceAsync(hash, SimulationNetwork.Port, impliedPort: true, h.Token);
        }
        catch (OperationCanceledException) when (h.Token.IsCancellationRequested)
        {
            // The announcer left.
        }
    }

    private sealed class LookupStats
    {
        public int Completed;
        public int FindDone;
        public int FindOk;
        public int PeersDone;
        public int PeersOk;
        public double OverlapSum;
        public readonly Percentiles Rounds = new();
        public readonly Percentiles Messages = new();
        public readonly Percentiles Latency = new();
        public int Errors;
        public string? FirstError;

        /// <summary>A lookup whose task failed: an engine bug, counted and described in the report.</summary>
        public void Error(Exception ex)
        {
            Errors++;
            FirstError ??= $"{ex.GetType().Name}: {ex.Message} at {ex.StackTrace?.Split('\n').FirstOrDefault()?.Trim()}";
        }
    }

    private async Task<LookupStats> LookupsAsync(List<(NodeId Hash, HashSet<IPEndPoint> Peers)> announced)
    {
        var stats = new LookupStats();
        var tasks = new List<Task>(_o.Lookups);
        var spacing = _o.Lookups == 0 ? TimeSpan.Zero : _o.EffectiveLookupWindow / _o.Lookups;
        var carry = TimeSpan.Zero;
        for (var i = 0; i < _o.Lookups; i++)
        {
            var h = _live[_random.Next(_live.Count)];
            tasks.Add(i % 2 == 0 || announced.Count == 0
                ? FindOneAsync(h, NodeId.Random(_random), stats)
                : PeersOneAsync(h, announced[_random.Next(announced.Count)], stats));
            carry += spacing;
            if (carry >= JoinTick)
            {
                await Task.Delay(carry, Time);
                carry = TimeSpan.Zero;
            }
        }

        await Task.WhenAny(Task.WhenAll(tasks), Task.Delay(StragglerLimit, Time));
        return stats;
    }

    private static void Record(LookupStats stats, LookupResult r)
    {
        stats.Completed++;
        stats.Rounds.Add(r.Rounds);
        stats.Messages.Add(r.QueriesSent);
        stats.Latency.Add(r.Elapsed.TotalMilliseconds);
    }

    /// <summary>Runs one lookup on <paramref name="h"/>; null when the node left meanwhile or the engine failed (counted).</summary>
    private static async Task<T?> AttemptAsync<T>(Honest h, Func<CancellationToken, Task<T>> lookup, LookupStats stats)
        where T : class
    {
        try
        {
            var result = await lookup(h.Token);
            return h.Alive ? result : null;
        }
        catch (OperationCanceledException) when (h.Token.IsCancellationRequested)
        {
            return null;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            stats.Error(ex);
            return null;
        }
    }

    private async Task FindOneAsync(Honest h, NodeId target, LookupStats stats)
    {
        var start = Scheduler.Now;
        if (await AttemptAsync(h, ct => h.Node.FindNodeAsync(target, ct), stats) is not { } r) return;
        Record(stats, r);
        stats.FindDone++;
        // The truth: the k closest honest nodes alive now that were already there when the lookup started.
        var truth = _truth.Closest(target, _o.Dht.K * 2)
            .Where(id => _truth.TryGetHost(id, out var host) && _byHost[host]!.Joined <= start)
            .Take(_o.Dht.K)
            .ToList();
        if (truth.Count == 0) return;
        var found = r.Closest.Select(c => c.Id).ToHashSet();
        if (found.Contains(truth[0])) stats.FindOk++;
        stats.OverlapSum += truth.Count(found.Contains) / (double)truth.Count;
    }

    private static async Task PeersOneAsync(Honest h, (NodeId Hash, HashSet<IPEndPoint> Peers) item, LookupStats stats)
    {
        if (await AttemptAsync(h, ct => h.Node.GetPeersAsync(item.Hash, ct), stats) is not { } r) return;
        Record(stats, r.Lookup);
        stats.PeersDone++;
        if (r.Peers.Any(item.Peers.Contains)) stats.PeersOk++;
    }

    private (double Size, double Fresh, double Adversarial) Freshness()
    {
        if (_o.FreshnessSample == 0 || _live.Count == 0) return (double.NaN, double.NaN, double.NaN);
        long entries = 0, fresh = 0, adversarial = 0;
        var sample = RandomHonest(Math.Min(_o.FreshnessSample, _live.Count));
        foreach (var h in sample)
        {
            foreach (var c in h.Node.RoutingTableNodes())
            {
                entries++;
                var host = SimulationNetwork.HostOf(c.EndPoint);
                if (_adversaryByHost.TryGetValue(host, out var a))
                {
                    adversarial++;
                    if (a.Id == c.Id) fresh++;
                }
                else if (host >= 0 && host < _byHost.Count && _byHost[host] is { Alive: true } other && other.Id == c.Id)
                {
                    fresh++;
                }
            }
        }

        return entries == 0 ? (0, double.NaN, double.NaN) : (entries / (double)sample.Count, fresh / (double)entries, adversarial / (double)entries);
    }
}
