using System.Diagnostics;
using System.Text;
using Peerway.Core;
using Peerway.Dht;
using Peerway.Dht.Log;

namespace Peerway.Simulation;

/// <summary>
/// Runs one <see cref="ConsistencyOptions"/> scenario (issue 17 item 7): the production <see cref="DhtNode"/> on the
/// simulated network with churn, one owner publishing a BEP 44 mutable item or a log's signed heads, and every other
/// node reading it. The same options give the same report (except the wall-clock figure).
/// </summary>
public static class ConsistencySimulator
{
    /// <summary>Runs one scenario to completion (options are validated first).</summary>
    public static ConsistencyReport Run(ConsistencyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var run = new SimulationRun(options.Network());
        return run.Scheduler.Run(() => run.ConsistencyScenarioAsync(options));
    }
}

/// <summary>The eventual-consistency scenario on the shared join and churn machinery of <see cref="SimulationRun"/>.</summary>
internal sealed partial class SimulationRun
{
    private Consistency? _c;

    /// <summary>A reader (or follower): when it joined, and the newest update it has seen (0: none).</summary>
    private sealed class Reader(TimeSpan joined)
    {
        public TimeSpan Joined { get; } = joined;
        public long Seen { get; set; }
    }

    private sealed class Update(TimeSpan made)
    {
        public TimeSpan Made { get; } = made;
        public double To50 { get; set; } = double.PositiveInfinity;
        public double To99 { get; set; } = double.PositiveInfinity;
        public double FractionAtNext { get; set; } = double.NaN;
    }

    /// <summary>State of the consistency scenario (one per run, created when it starts).</summary>
    private sealed class Consistency(ConsistencyOptions options, DhtSigningKey key, byte[] salt)
    {
        public ConsistencyOptions O { get; } = options;
        public DhtSigningKey Key { get; } = key;
        public byte[] Salt { get; } = salt;
        public Dictionary<Honest, Reader> Readers { get; } = [];
        public List<Update> Updates { get; } = [];
        public Honest? Owner { get; set; }
        public bool Measuring { get; set; }
        public bool Stopped { get; set; }

        /// <summary>Highest update whose owner put has completed (a read started later should see it).</summary>
        public long Stored { get; set; }
        public long Latest => Updates.Count;
        public int Live { get; set; }
        public int Current { get; set; }
        public double Area { get; set; }
        public TimeSpan LastChange { get; set; }
        public Percentiles Staleness { get; } = new();
        public long LeftStale { get; set; }
        public long Reads { get; set; }
        public long StaleReads { get; set; }
        public long EmptyReads { get; set; }
        public long Puts { get; set; }
        public long StoredOn { get; set; }
        public List<FractionSample> Series { get; } = [];
        public int Errors { get; set; }
        public string? FirstError { get; set; }
        public double Fraction => Live == 0 ? double.NaN : (double)Current / Live;

        public void Error(Exception ex)
        {
            Errors++;
            FirstError ??= $"{ex.GetType().Name}: {ex.Message} at {ex.StackTrace?.Split('\n').FirstOrDefault()?.Trim()}";
        }
    }

    public async Task<ConsistencyReport> ConsistencyScenarioAsync(ConsistencyOptions o)
    {
        Span<byte> seed = stackalloc byte[32];
        _random.NextBytes(seed);
        var salt = Encoding.UTF8.GetBytes(o.Mode == ConsistencyMode.Log ? "sim-log" : "sim-item");
        using var key = DhtSigningKey.FromSeed(seed);
        _c = new Consistency(o, key, salt);
        var c = _c;
        await JoinAllAsync();
        Sample("joined");
        await Task.Delay(_o.EffectiveSettle, Time);
        Sample("settled");

        // The owner: one more node, that never leaves; it bootstraps like any other.
        var owner = JoinHonest(router: false, permanent: true);
        c.Owner = owner;
        await owner.Node.BootstrapAsync(_routers.Select(r => r.Socket.LocalEndPoint).ToList(), CancellationToken.None);

        // Readers start polling at random phases; those that join later start after their bootstrap.
        c.Measuring = true;
        c.Live = c.Readers.Count;
        c.LastChange = Scheduler.Now;
        var poll = o.EffectivePollInterval;
        foreach (var (h, r) in c.Readers) Track(ReadLoopAsync(h, r, Task.CompletedTask, TimeSpan.FromTicks((long)(_random.NextDouble() * poll.Ticks))));

        var start = Scheduler.Now;
        Track(SampleLoopAsync(start));
        Task? ownerLoop = null;
        for (var n = 1; n <= o.Updates; n++)
        {
            MakeUpdate();
            if (o.Mode == ConsistencyMode.Item) Track(OwnerPutAsync(DhtItem.Mutable(key, salt, n, ItemValue(n))));
            ownerLoop ??= o.Mode == ConsistencyMode.Log ? LogOwnerLoopAsync() : ItemRepublishLoopAsync();
            Sample($"update {n}");
            await Task.Delay(o.UpdateInterval, Time);
        }

        // The end: what is left of the last update, then everything stops at its next step.
        Changed();
        c.Updates[^1].FractionAtNext = c.Fraction;
        c.Stopped = true;
        Track(ownerLoop!); // it stops at its next step, which the run does not wait for
        Sample("consistency measured");
        return ConsistencyReportOf(c, Scheduler.Now - start);
    }

    private ConsistencyReport ConsistencyReportOf(Consistency c, TimeSpan measured)
    {
        var o = c.O;
        var to50 = new Percentiles();
        var to99 = new Percentiles();
        foreach (var u in c.Updates)
        {
            to50.Add(u.To50);
            to99.Add(u.To99);
        }

        return new ConsistencyReport
        {
            Mode = o.Mode,
            Readers = o.Readers,
            K = o.Dht.K,
            RepublishSeconds = o.RepublishInterval?.TotalSeconds ?? double.PositiveInfinity,
            PollSeconds = o.EffectivePollInterval.TotalSeconds,
            UpdateIntervalSeconds = o.UpdateInterval.TotalSeconds,
            Churn = o.Churn?.ToString() ?? "none",
            Seed = o.Seed,
            Updates = c.Updates.Count,
            UpdatesConverged = c.Updates.Count(u => double.IsFinite(u.To99)),
            Converge50P50 = to50.Percentile(50),
            Converge99P50 = to99.Percentile(50),
            Converge99P99 = to99.Percentile(99),
            StalenessP50 = c.Staleness.Percentile(50),
            StalenessP99 = c.Staleness.Percentile(99),
            StalenessMax = c.Staleness.Percentile(100),
            LeftStale = c.LeftStale,
            MeanFractionCurrent = measured > TimeSpan.Zero ? c.Area / measured.TotalSeconds : double.NaN,
            FractionCurrentAtNextUpdate = c.Updates.Average(u => u.FractionAtNext),
            Reads = c.Reads,
            StaleReads = c.StaleReads,
            EmptyReads = c.EmptyReads,
            Puts = c.Puts,
            StoredPerPut = c.Puts == 0 ? double.NaN : (double)c.StoredOn / c.Puts,
            FractionSeries = c.Series,
            StoringAtEnd = Storing(),
            Departures = _departures,
            Datagrams = _network.DatagramsSent,
            VirtualSeconds = Scheduler.Now.TotalSeconds,
            WallSeconds = _wall.Elapsed.TotalSeconds,
            ThreadViolations = Scheduler.ThreadViolations,
            Errors = c.Errors,
            FirstError = c.FirstError,
        };
    }

    /// <summary>BEP 46's value layout, <c>d2:ih20:&lt;info-hash&gt;e</c>, with an info-hash made from the update number.</summary>
    private static byte[] ItemValue(long n)
    {
        var ih = new byte[20];
        BitConverter.TryWriteBytes(ih, n);
        return [.. "d2:ih20:"u8, .. ih, (byte)'e'];
    }

    /// <summary>The signed head of a log of <paramref name="length"/> entries (entry i is its index as 8 bytes).</summary>
    private static LogHead LogHeadOf(DhtSigningKey key, long length)
    {
        var leaves = new List<byte[]>((int)length);
        for (var i = 0L; i < length; i++) leaves.Add(MerkleTree.LeafHash(BitConverter.GetBytes(i)));
        return LogHead.Sign(key, "sim-log", length, MerkleTree.Root(leaves, length));
    }

    // ---- Hooks from the join and churn machinery -------------------------------------------------------------------

    partial void OnJoined(Honest h, Task bootstrap, bool permanent)
    {
        if (_c is not { } c || h.Router || permanent || c.Stopped) return;
        var r = new Reader(Scheduler.Now);
        c.Readers.Add(h, r);
        if (!c.Measuring) return;
        Changed();
        c.Live++;
        // A reader starting late reads as soon as it has bootstrapped, then every poll interval.
        Track(ReadLoopAsync(h, r, bootstrap, TimeSpan.Zero));
    }

    partial void OnDeparted(Honest h)
    {
        if (_c is not { } c || !c.Readers.Remove(h, out var r) || !c.Measuring) return;
        Changed();
        c.Live--;
        if (r.Seen >= c.Latest && c.Latest > 0) c.Current--;
        for (var m = r.Seen + 1; m <= c.Latest; m++)
        {
            if (WasLiveFor(c, r, m)) c.LeftStale++;
        }

        CheckConvergence(c);
    }

    /// <summary>True when the reader was live while update <paramref name="m"/> was the latest.</summary>
    private static bool WasLiveFor(Consistency c, Reader r, long m) => m == c.Latest || r.Joined < c.Updates[(int)m].Made;

    private void MakeUpdate()
    {
        var c = _c!;
        Changed();
        if (c.Updates.Count > 0) c.Updates[^1].FractionAtNext = c.Fraction;
        c.Updates.Add(new Update(Scheduler.Now));
        c.Current = 0; // nobody can have seen it yet
    }

    /// <summary>Accumulates the time-weighted fraction up to now (call before Live or Current changes).</summary>
    private void Changed()
    {
        var c = _c!;
        var now = Scheduler.Now;
        if (c.Updates.Count > 0 && double.IsFinite(c.Fraction)) c.Area += c.Fraction * (now - c.LastChange).TotalSeconds;
        c.LastChange = now;
    }

    private void CheckConvergence(Consistency c)
    {
        if (c.Updates.Count == 0 || c.Live == 0) return;
        var u = c.Updates[^1];
        var since = (Scheduler.Now - u.Made).TotalSeconds;
        if (!double.IsFinite(u.To50) && c.Fraction >= 0.5) u.To50 = since;
        if (!double.IsFinite(u.To99) && c.Fraction >= ConsistencyOptions.ConvergedFraction) u.To99 = since;
    }

    /// <summary>Reader <paramref name="r"/> now holds update <paramref name="seq"/> (ignored unless newer).</summary>
    private void See(Reader r, long seq)
    {
        var c = _c!;
        if (seq <= r.Seen || c.Stopped) return;
        var now = Scheduler.Now;
        for (var m = r.Seen + 1; m <= Math.Min(seq, c.Latest); m++)
        {
            if (!WasLiveFor(c, r, m)) continue;
            var from = c.Updates[(int)m - 1].Made;
            c.Staleness.Add((now - (r.Joined > from ? r.Joined : from)).TotalSeconds);
        }

        var wasCurrent = r.Seen >= c.Latest;
        r.Seen = seq;
        if (!wasCurrent && seq >= c.Latest)
        {
            Changed();
            c.Current++;
            CheckConvergence(c);
        }
    }

    private void CountRead(long stored, long got)
    {
        var c = _c!;
        c.Reads++;
        if (got == 0 && stored > 0) c.EmptyReads++;
        else if (got < stored) c.StaleReads++;
    }

    /// <summary>Live nodes (readers, routers, the owner) that store a BEP 44 item: the scenario puts only one target,
    /// so this is how many could answer a get for it (any seq).</summary>
    private int Storing()
    {
        var n = 0;
        foreach (var h in _live)
        {
            if (h.Node.Stats.StoredItems > 0) n++;
        }

        return n;
    }

    private async Task SampleLoopAsync(TimeSpan start)
    {
        var c = _c!;
        while (!c.Stopped)
        {
            c.Series.Add(new FractionSample((Scheduler.Now - start).TotalSeconds, c.Fraction, Storing()));
            await Task.Delay(c.O.SampleInterval, Time);
        }
    }

    // ---- Readers and followers ---------------------------------------------------------------------------------

    private async Task ReadLoopAsync(Honest h, Reader r, Task bootstrap, TimeSpan phase)
    {
        var c = _c!;
        var poll = c.O.EffectivePollInterval;
        var republish = c.O.RepublishInterval;
        var nextPublish = Scheduler.Now;
        LogHead? held = null;
        try
        {
            await bootstrap;
            if (phase > TimeSpan.Zero) await Task.Delay(phase, Time, h.Token);
            while (!c.Stopped && h.Alive)
            {
                var stored = c.Stored;
                var found = await h.Node.GetMutableAsync(c.Key.PublicKey, c.Salt, h.Token);
                if (!h.Alive || c.Stopped) return;
                if (c.O.Mode == ConsistencyMode.Item)
                {
                    var seq = found.Item?.Sequence ?? 0;
                    CountRead(stored, seq);
                    See(r, seq);
                }
                else
                {
                    // LogReplica.SyncAsync: the head must verify as a log head; a newer one is fetched from a holder found
                    // with get_peers (the entry transfer itself is not simulated: a live holder serves it at once).
                    var head = found.Item is { } item ? LogHead.FromItem(item) : null;
                    CountRead(stored, head?.Length ?? 0);
                    if (head is not null && head.Length > r.Seen)
                    {
                        var peers = await h.Node.GetPeersAsync(SwarmId(c), h.Token);
                        if (!h.Alive || c.Stopped) return;
                        if (HasHolder(c, h, peers.Peers, head.Length))
                        {
                            held = head;
                            See(r, head.Length);
                            nextPublish = Scheduler.Now; // RunAsync: publish what was gained at once
                        }
                    }

                    if (held is not null && Scheduler.Now >= nextPublish)
                    {
                        await PublishHeadAsync(h, held);
                        if (!h.Alive || c.Stopped) return;
                        nextPublish = republish is { } every ? Scheduler.Now + every : TimeSpan.MaxValue;
                    }
                }

                await Task.Delay(poll, Time, h.Token);
            }
        }
        catch (OperationCanceledException) when (h.Token.IsCancellationRequested)
        {
            // The reader left.
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            c.Error(ex);
        }
    }

    private static NodeId SwarmId(Consistency c) => LogReplica.DeriveSwarmId(c.Key.PublicKey, "sim-log");

    /// <summary>Whether one of the first <see cref="LogReplicaOptions.MaxPeersPerSync"/> peers found is alive and holds
    /// <paramref name="length"/> entries (the owner, or a follower that has them).</summary>
    private bool HasHolder(Consistency c, Honest self, IReadOnlyList<System.Net.IPEndPoint> peers, long length)
    {
        var tried = 0;
        foreach (var p in peers)
        {
            var host = SimulationNetwork.HostOf(p);
            if (host == self.Socket.Host) continue;
            if (tried++ == new LogReplicaOptions().MaxPeersPerSync) break;
            if (host < 0 || host >= _byHost.Count || _byHost[host] is not { Alive: true } holder) continue;
            if (holder == c.Owner || (c.Readers.TryGetValue(holder, out var r) && r.Seen >= length)) return true;
        }

        return false;
    }

    /// <summary>LogReplica.PublishAsync: put the head, announce this holder under the log's swarm id.</summary>
    private async Task PublishHeadAsync(Honest h, LogHead head)
    {
        var c = _c!;
        var put = await h.Node.PutItemAsync(head.ToItem(), h.Token);
        c.Puts++;
        c.StoredOn += put.StoredOn;
        await h.Node.AnnounceAsync(SwarmId(c), SimulationNetwork.Port, impliedPort: false, h.Token);
    }

    // ---- The owner ---------------------------------------------------------------------------------------------

    private TimeSpan _lastOwnerPut;

    private async Task OwnerPutAsync(DhtItem item)
    {
        var c = _c!;
        _lastOwnerPut = Scheduler.Now;
        try
        {
            var put = await c.Owner!.Node.PutItemAsync(item, CancellationToken.None);
            c.Puts++;
            c.StoredOn += put.StoredOn;
            if (put.StoredOn > 0) c.Stored = Math.Max(c.Stored, item.Sequence);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            c.Error(ex);
        }
    }

    /// <summary>The item's owner puts the current update again once <see cref="ConsistencyOptions.RepublishInterval"/>
    /// has passed since its last put.</summary>
    private async Task ItemRepublishLoopAsync()
    {
        var c = _c!;
        if (c.O.RepublishInterval is not { } every) return;
        while (!c.Stopped)
        {
            var wait = _lastOwnerPut + every - Scheduler.Now;
            if (wait > TimeSpan.Zero)
            {
                // Task.Delay counts whole milliseconds (it truncates): a sub-millisecond remainder would be a zero delay,
                // and this loop would spin at one instant of virtual time forever. Round up.
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(wait.TotalMilliseconds)), Time);
                continue;
            }

            await OwnerPutAsync(DhtItem.Mutable(c.Key, c.Salt, c.Latest, ItemValue(c.Latest)));
        }
    }

    /// <summary>The log's owner as <c>log serve</c> runs it (LogReplica.RunAsync without follow): every poll interval it
    /// rereads its log and publishes a new head at once; the head is put again every republish interval.</summary>
    private async Task LogOwnerLoopAsync()
    {
        var c = _c!;
        var owner = c.Owner!;
        var nextPublish = Scheduler.Now;
        long published = 0;
        while (!c.Stopped)
        {
            if (c.Latest > published) nextPublish = Scheduler.Now;
            if (c.Latest > 0 && Scheduler.Now >= nextPublish)
            {
                var length = c.Latest;
                try
                {
                    var head = LogHeadOf(c.Key, length);
                    var put = await owner.Node.PutItemAsync(head.ToItem(), CancellationToken.None);
                    c.Puts++;
                    c.StoredOn += put.StoredOn;
                    if (put.StoredOn > 0) c.Stored = Math.Max(c.Stored, length);
                    await owner.Node.AnnounceAsync(SwarmId(c), SimulationNetwork.Port, impliedPort: false, CancellationToken.None);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    c.Error(ex);
                }

                published = length;
                nextPublish = c.O.RepublishInterval is { } every ? Scheduler.Now + every : TimeSpan.MaxValue;
            }

            await Task.Delay(c.O.EffectivePollInterval, Time);
        }
    }
}

/// <summary>The fraction of live readers holding the latest update, <see cref="Seconds"/> after the first update, and
/// how many live nodes then stored the item (any seq; the scenario's only BEP 44 target).</summary>
public readonly record struct FractionSample(double Seconds, double Fraction, int Storing);
