using System.Diagnostics;
using System.Security.Cryptography;
using Peerway.Net;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;
using Xunit.Abstractions;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// Whole <see cref="TorrentClient"/>s in a <see cref="SimulatedSwarm"/>: virtual network with emulated rates and
/// latency, memory storage, fake clock, one thread. No real socket, disk or wall time; every wait is bounded in virtual
/// time. (SwarmTests keeps the same download over real loopback TCP and disk.)
/// </summary>
public sealed class DeterministicSwarmTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(10);

    /// <summary>10 ms one way between any two peers.</summary>
    private static VirtualStreamNetworkOptions Lan => new() { Latency = static (_, _) => TimeSpan.FromMilliseconds(10) };

    private static VirtualEndpointOptions Link(long up, long down) => new() { UploadBytesPerSecond = up, DownloadBytesPerSecond = down };

    [Fact]
    public void Leecher_downloads_from_seeder_and_verifies() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm(Lan);
        var content = RandomNumberGenerator.GetBytes((3 * 1024 * 1024) + 12345);
        var meta = SimulatedSwarm.MakeTorrent(content, 32 * 1024);
        var seeder = swarm.AddPeer(Link(4 << 20, 4 << 20));
        var seeding = seeder.Seed(meta, content);
        Assert.True(seeding.Completed.IsCompleted);
        var leecher = swarm.AddPeer(Link(4 << 20, 4 << 20));
        var download = leecher.Add(meta, new TorrentAddOptions { Peers = [seeder.EndPoint] });

        Assert.True(swarm.RunUntil(() => download.Completed.IsCompleted, Deadline), "the download did not complete");
        Assert.Equal(content, leecher.Content(meta));
        var stats = download.GetStats();
        Assert.Equal(meta.Info.PieceCount, stats.VerifiedPieces);
        Assert.Equal(content.Length, stats.ReceivedByPeerId[seeder.Client.PeerId]);
        Assert.Equal(0, stats.HashFailures);
        // 3 MiB at 4 MiB/s: no faster than the link allows (the emulated rate holds), and not stalled.
        Assert.InRange(swarm.Elapsed, TimeSpan.FromSeconds(0.75), TimeSpan.FromSeconds(30));
        Assert.Equal(0, swarm.OffThreadEvents);
    });

    [Fact]
    public void Magnet_download_fetches_metadata_with_ut_metadata() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm(Lan);
        var content = RandomNumberGenerator.GetBytes((1024 * 1024) + 7);
        var meta = SimulatedSwarm.MakeTorrent(content, 16384);
        var seeder = swarm.AddPeer();
        seeder.Seed(meta, content);
        var leecher = swarm.AddPeer();
        Assert.True(MagnetLink.TryParse($"magnet:?xt=urn:btih:{meta.InfoHash}", out var magnet, out _));
        var download = leecher.Add(magnet!, new TorrentAddOptions { Peers = [seeder.EndPoint] });

        Assert.True(swarm.RunUntil(() => download.Completed.IsCompleted, Deadline), "the magnet download did not complete");
        Assert.Equal(meta.Info.RawInfo.ToArray(), download.Info!.RawInfo.ToArray());
        Assert.Equal(content, leecher.Content(meta));
        Assert.Equal(0, swarm.OffThreadEvents);
    });

    [Fact]
    public void Leechers_exchange_pieces_among_themselves_through_pex() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm(Lan);
        var (elapsed, fromPeers) = RunPexSwarm(swarm);
        output.WriteLine($"4 leechers done after {elapsed.TotalSeconds:F3} s virtual; {fromPeers} bytes from other leechers");
        // Only the seeder's address was given: any bytes from another leecher arrived via a PEX-learned peer.
        Assert.True(fromPeers > 0, "no leecher received anything from another leecher");
        Assert.Equal(0, swarm.OffThreadEvents);
    });

    [Fact]
    public void The_same_swarm_run_twice_gives_the_same_run() => SimulatedSwarm.OnDeepStack(() =>
    {
        // One thread, one clock, seeded choices: the same swarm ends at the same virtual instant having moved the
        // same bytes in the same number of network events. An engine that hands work to the thread pool breaks this.
        using var first = new SimulatedSwarm(Lan);
        var a = RunPexSwarm(first);
        var aEvents = first.Network.EventsRun;
        using var second = new SimulatedSwarm(Lan);
        var b = RunPexSwarm(second);
        Assert.Equal(a, b);
        Assert.Equal(aEvents, second.Network.EventsRun);
    });

    private static (TimeSpan Elapsed, long FromPeers) RunPexSwarm(SimulatedSwarm swarm)
    {
        var content = new byte[4 * 1024 * 1024];
        new Random(7).NextBytes(content);
        var meta = SimulatedSwarm.MakeTorrent(content, 16384);
        // The seeder uploads 1 MiB/s for 4 × 4 MiB, so the swarm cannot finish from the seeder alone before PEX (every
        // second) has introduced the leechers to each other.
        var session = new TorrentSessionOptions { PexInterval = TimeSpan.FromSeconds(1), RandomSeed = 1 };
        var seeder = swarm.AddPeer(Link(1 << 20, 0));
        seeder.Seed(meta, content, new TorrentAddOptions { Session = session with { Choker = new ChokerOptions { UploadSlots = 1 } } });
        var leechers = new List<(SimulatedSwarm.Peer Peer, TorrentHandle Handle)>();
        for (var i = 0; i < 4; i++)
        {
            var peer = swarm.AddPeer(Link(1 << 20, 4 << 20));
            leechers.Add((peer, peer.Add(meta, new TorrentAddOptions { Peers = [seeder.EndPoint], Session = session with { RandomSeed = i + 2 } })));
        }

        Assert.True(swarm.RunUntil(() => leechers.All(l => l.Handle.Completed.IsCompleted), Deadline), "the swarm did not complete");
        foreach (var (peer, _) in leechers) Assert.Equal(content, peer.Content(meta));
        var fromPeers = leechers.Sum(l => l.Handle.GetStats().ReceivedByPeerId.Where(kv => kv.Key != seeder.Client.PeerId).Sum(kv => kv.Value));
        return (swarm.Elapsed, fromPeers);
    }

    [Fact]
    public void Two_peers_dialling_each_other_at_once_keep_one_connection_and_finish() => SimulatedSwarm.OnDeepStack(() =>
    {
        // Each side may register a different one of the two crossing connections first; without a shared tie-break both
        // drop the connection the other kept and, neither re-dialling an outgoing peer, the download never starts.
        using var swarm = new SimulatedSwarm(Lan);
        var content = RandomNumberGenerator.GetBytes(512 * 1024);
        var meta = SimulatedSwarm.MakeTorrent(content, 16384);
        var pairs = new List<(SimulatedSwarm.Peer Seeder, SimulatedSwarm.Peer Leecher, TorrentHandle Download)>();
        for (var i = 0; i < 4; i++)
        {
            var seeder = swarm.AddPeer();
            var leecher = swarm.AddPeer();
            seeder.Seed(meta, content, new TorrentAddOptions { Peers = [leecher.EndPoint] });
            pairs.Add((seeder, leecher, leecher.Add(meta, new TorrentAddOptions { Peers = [seeder.EndPoint] })));
        }

        Assert.True(swarm.RunUntil(() => pairs.All(p => p.Download.Completed.IsCompleted), Deadline), "a crossing pair did not finish");
        foreach (var (seeder, leecher, download) in pairs)
        {
            Assert.Equal(content, leecher.Content(meta));
            Assert.Equal(content.Length, download.GetStats().ReceivedByPeerId[seeder.Client.PeerId]);
            Assert.Equal(1, download.GetStats().Connections);
        }
    });

    /// <summary>
    /// Issue 14: 1,000 <see cref="TorrentClient"/> leechers and one seeder with an upload cap, in virtual time, against
    /// the Kumar–Ross lower bound T_min = max(F/u_s, F/d_min, N·F/(u_s + Σu_i)) (IEEE HotWeb 2006, §3). Each leecher
    /// is given the seeder and a few random leechers; PEX spreads the rest.
    /// </summary>
    /// <remarks>
    /// In the default run: about 90 s of CPU on this 2-core AMD EPYC with the test project's 256 MiB gen0 budget
    /// (Peerway.Torrent.Tests.runsettings; docs/BENCHMARKS.md, "Swarm scaling"). Nothing here is timed: the swarm runs
    /// in virtual time, and the figures are printed, not asserted.
    /// </remarks>
    [Fact]
    public void Thousand_client_swarm_completes_within_a_multiple_of_the_kumar_ross_bound() => SimulatedSwarm.OnDeepStack(() => KumarRossSwarm(1000));

    /// <summary>The same swarm with 100 leechers (a quick check of the same path).</summary>
    [Fact]
    public void Hundred_client_swarm_completes_within_a_multiple_of_the_kumar_ross_bound() => SimulatedSwarm.OnDeepStack(() => KumarRossSwarm(100));

    private void KumarRossSwarm(int leechers)
    {
        const int fileBytes = 256 * 1024;
        const long seederUp = 256 * 1024;
        const long leecherUp = 64 * 1024;
        const long leecherDown = 512 * 1024;
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var (gen0Before, gen1Before, gen2Before, pausedBefore) = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration());
        var allocatedBefore = GC.GetTotalAllocatedBytes();
        var wall = Stopwatch.StartNew(); // reported, not asserted
        using var swarm = new SimulatedSwarm(new VirtualStreamNetworkOptions
        {
            // 5–20 ms one way, from the two addresses' bytes (IPAddress.GetHashCode is seeded per process, which made
            // every run of this swarm a different swarm).
            Latency = static (a, b) => TimeSpan.FromMilliseconds(5 + ((Mix(a) ^ Mix(b)) & 15)),
        });
        var content = new byte[fileBytes];
        new Random(14).NextBytes(content);
        var meta = SimulatedSwarm.MakeTorrent(content, 16 * 1024);
        var session = new TorrentSessionOptions { PexInterval = TimeSpan.FromSeconds(5), MaxConnections = 30 };
        var clientOptions = new TorrentClientOptions { Encryption = Peerway.Torrent.Encryption.EncryptionPolicy.Off, MaxConnections = 30 };
        var seeder = swarm.AddPeer(Link(seederUp, 0), clientOptions with { UploadRateLimit = seederUp });
        seeder.Seed(meta, content, new TorrentAddOptions { Session = session with { RandomSeed = 0 } });
        var random = new Random(1);
        var peers = new List<SimulatedSwarm.Peer>();
        var handles = new List<TorrentHandle>();
        for (var i = 0; i < leechers; i++)
        {
            var peer = swarm.AddPeer(Link(leecherUp, leecherDown), clientOptions);
            var known = new List<System.Net.IPEndPoint> { seeder.EndPoint };
            for (var k = 0; k < 4 && peers.Count > 0; k++) known.Add(peers[random.Next(peers.Count)].EndPoint);
            peers.Add(peer);
            handles.Add(peer.Add(meta, new TorrentAddOptions { Peers = known, Session = session with { RandomSeed = i + 1 } }));
        }

        var setupCpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
        var start = swarm.Elapsed;
        var done = swarm.RunUntil(() => handles.All(h => h.Completed.IsCompleted), TimeSpan.FromMinutes(30));
        var took = swarm.Elapsed - start;
        var bound = Math.Max((double)fileBytes / seederUp, Math.Max((double)fileBytes / leecherDown, (double)leechers * fileBytes / (seederUp + (leechers * leecherUp))));
        var cpuTime = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
        var gcs = $"GCs {GC.CollectionCount(0) - gen0Before}/{GC.CollectionCount(1) - gen1Before}/{GC.CollectionCount(2) - gen2Before} (gen 0/1/2), GC pauses {(GC.GetTotalPauseDuration() - pausedBefore).TotalSeconds:F1} s, {(GC.GetTotalAllocatedBytes() - allocatedBefore) >> 20} MiB allocated, peak working set {Process.GetCurrentProcess().PeakWorkingSet64 >> 20} MiB";
        output.WriteLine($"{leechers} leechers + 1 seeder, F = {fileBytes} B, u_s = {seederUp} B/s, u_i = {leecherUp} B/s, d_i = {leecherDown} B/s");
        output.WriteLine($"completed: {handles.Count(h => h.Completed.IsCompleted)}/{leechers} after {took.TotalSeconds:F2} s virtual; Kumar–Ross bound {bound:F2} s; ratio {took.TotalSeconds / bound:F2}");
        output.WriteLine($"network events {swarm.Network.EventsRun}, bytes delivered {swarm.Network.BytesDelivered}; process CPU {cpuTime.TotalSeconds:F1} s (setup {setupCpu.TotalSeconds:F1} s), wall {wall.Elapsed.TotalSeconds:F1} s; {gcs}");
        if (Environment.GetEnvironmentVariable("PEERWAY_SWARM_REPORT") is { Length: > 0 } report)
        {
            File.AppendAllText(report, $"{leechers}: {took.TotalSeconds:F2} s virtual, bound {bound:F2} s, ratio {took.TotalSeconds / bound:F2}, CPU {cpuTime.TotalSeconds:F1} s (setup {setupCpu.TotalSeconds:F1} s), events {swarm.Network.EventsRun}; {gcs}\n");
        }
        Assert.True(done, "the swarm did not complete within 30 virtual minutes");
        Assert.Equal(content, peers[^1].Content(meta));
        // Generous: the engine's choker works in 10 s rounds and PEX in 5 s ones; a broken swarm never gets near this.
        Assert.True(took.TotalSeconds <= 40 * bound, $"{took.TotalSeconds:F1} s is more than 40 × the bound ({bound:F2} s)");
        Assert.Equal(0, swarm.OffThreadEvents);
    }

    /// <summary>A hash of <paramref name="address"/>'s bytes, the same in every process.</summary>
    private static int Mix(System.Net.IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var written);
        var hash = 17;
        foreach (var b in bytes[..written]) hash = (hash * 31) + b;
        return hash;
    }
}
