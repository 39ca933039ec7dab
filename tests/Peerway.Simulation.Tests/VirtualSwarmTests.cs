using System.Net;
using Peerway.Net;

namespace Peerway.Simulation.Tests;

public sealed class VirtualSwarmTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int FileBytes = 1_000_000;

    /// <summary>The plainest engine on the seam: the seeder sends the whole file to whoever connects (client-server
    /// distribution); a leecher dials the seeder and reads to the end.</summary>
    private static (IReadOnlyList<TimeSpan> Done, VirtualSwarm Swarm, VirtualSwarmPeer Seeder) ClientServer(int leechers, int seed)
    {
        var swarm = new VirtualSwarm(new VirtualSwarmOptions { Seed = seed });
        var seeder = swarm.AddPeer(new PeerCapacity(1_000_000, double.PositiveInfinity));
        var peers = swarm.AddPeers(leechers, new PeerCapacity(0, 4_000_000));
        var file = new byte[FileBytes];
        new Random(seed).NextBytes(file);
        IStreamListener listener = null!;
        var serving = new List<Task>();
        swarm.Run(async () =>
        {
            listener = await seeder.Transport.ListenAsync(seeder.ListenEndPoint, CancellationToken.None);
            serving.Add(ServeAsync());
            return true;
        });

        var done = swarm.RunEach(peers, async peer =>
        {
            await using var c = await peer.Transport.ConnectAsync(seeder.ListenEndPoint, CancellationToken.None);
            var got = new byte[FileBytes];
            await c.Stream.ReadExactlyAsync(got);
            Assert.Equal(file, got);
        });
        swarm.Run(async () =>
        {
            await listener.DisposeAsync();
            await Task.WhenAll(serving);
            return true;
        });
        Assert.Equal(0, swarm.Scheduler.ThreadViolations);
        return (done, swarm, seeder);

        async Task ServeAsync()
        {
            while (await listener.AcceptAsync(CancellationToken.None) is { } c) serving.Add(SendAsync(c));
        }

        async Task SendAsync(IStreamConnection c)
        {
            await using (c)
            {
                await c.Stream.WriteAsync(file);
                Assert.Equal(0, await c.Stream.ReadAsync(new byte[1])); // the leecher closes when it has it all
            }
        }
    }

    [Fact]
    public void ClientServerDistributionMeetsTheKumarRossBoundWithoutPeerUpload()
    {
        var (done, swarm, seeder) = ClientServer(leechers: 20, seed: 7);
        var bound = swarm.KumarRossBound(FileBytes, seeder);
        Assert.Equal(20.0, bound.TotalSeconds, 6); // N·F / u_s: the leechers upload nothing
        var last = done.Max();
        // A fair seeder reaches the bound; latency (log-normal, ~50 ms) and the one-segment burst move it a little.
        Assert.InRange(last / bound, 1.0, 1.02);
        Assert.Equal(0, swarm.Network.ConnectionCount);
    }

    [Fact]
    public void AThousandPeerRelayTreeUsesPeerUploadAndIsComparedWithTheBound()
    {
        // 1,000 leechers in a binary tree under a 2 MB/s seeder; each leecher forwards what it reads to its two
        // children as it arrives (1 MB/s up, so 0.5 MB/s per child; a child's full window holds up its sibling). Leaves
        // upload nothing and every hop adds latency, so the tree is well off the bound (≈ 0.26 s here), but it must
        // beat client-server distribution (N·F/u_s = 128 s) by far.
        const int leechers = 1000, fileBytes = 256_000;
        var swarm = new VirtualSwarm(new VirtualSwarmOptions { Seed = 11 });
        var seeder = swarm.AddPeer(new PeerCapacity(2_000_000, double.PositiveInfinity));
        var peers = swarm.AddPeers(leechers, new PeerCapacity(1_000_000, 4_000_000));
        var file = new byte[fileBytes];
        new Random(5).NextBytes(file);
        var all = new[] { seeder }.Concat(peers).ToArray();
        var haveAll = new TimeSpan[all.Length];
        var listeners = swarm.Run(async () =>
        {
            var bound = new IStreamListener[all.Length];
            for (var i = 0; i < all.Length; i++) bound[i] = await all[i].Transport.ListenAsync(all[i].ListenEndPoint, CancellationToken.None);
            return bound;
        });

        swarm.RunEach(all, async peer =>
        {
            var i = peer.Index;
            var childCount = Enumerable.Range((2 * i) + 1, 2).Count(c => c < all.Length);
            var accepting = AcceptChildrenAsync(listeners[i], childCount);
            if (i == 0)
            {
                var children = await accepting;
                foreach (var c in children) await c.Stream.WriteAsync(file);
                foreach (var c in children) await c.DisposeAsync();
                return;
            }

            var got = new byte[fileBytes];
            var offset = 0;
            await using (var upstream = await peer.Transport.ConnectAsync(all[(i - 1) / 2].ListenEndPoint, CancellationToken.None))
            {
                var children = await accepting;
                int n;
                while ((n = await upstream.Stream.ReadAsync(got.AsMemory(offset, Math.Min(16 * 1024, fileBytes - offset)))) > 0)
                {
                    foreach (var c in children) await c.Stream.WriteAsync(got.AsMemory(offset, n));
                    offset += n;
                    if (offset == fileBytes) break;
                }

                haveAll[i] = swarm.Scheduler.Now;
                foreach (var c in children) await c.DisposeAsync();
            }

            Assert.Equal(file, got);
        });
        foreach (var l in listeners) swarm.Run(async () => { await l.DisposeAsync(); return true; });

        var last = haveAll.Max();
        var kumarRoss = swarm.KumarRossBound(fileBytes, seeder);
        output.WriteLine($"{leechers} leechers, relay tree: last complete at {last.TotalSeconds:F3} s virtual; Kumar-Ross bound {kumarRoss.TotalSeconds:F3} s; ratio {last / kumarRoss:F2}; {swarm.Network.EventsRun} delivery events");
        Assert.True(last >= kumarRoss, "faster than the bound: a rate is not enforced");
        Assert.InRange(last.TotalSeconds, kumarRoss.TotalSeconds, 20 * kumarRoss.TotalSeconds);
        Assert.Equal(0, swarm.Scheduler.ThreadViolations);
        Assert.Equal(0, swarm.Network.ConnectionCount);

        static async Task<IStreamConnection[]> AcceptChildrenAsync(IStreamListener listener, int count)
        {
            var children = new IStreamConnection[count];
            for (var k = 0; k < count; k++) children[k] = (await listener.AcceptAsync(CancellationToken.None))!;
            return children;
        }
    }

    [Fact]
    public void TheSameSeedGivesTheSameRun()
    {
        var first = ClientServer(leechers: 8, seed: 3).Done;
        var second = ClientServer(leechers: 8, seed: 3).Done;
        Assert.Equal(first, second);
        var other = ClientServer(leechers: 8, seed: 4).Done;
        Assert.NotEqual(first, other); // other latencies
    }

    [Fact]
    public void PeersGetDistinctAddressesAndTheirRates()
    {
        var swarm = new VirtualSwarm(new VirtualSwarmOptions { Latency = null });
        var peers = swarm.AddPeers(300, new PeerCapacity(1_000, double.PositiveInfinity));
        Assert.Equal(300, peers.Select(p => p.ListenEndPoint).Distinct().Count());
        Assert.All(peers, p => Assert.Equal(6881, p.ListenEndPoint.Port));
        Assert.Equal(1_000, peers[0].Endpoint.Options.UploadBytesPerSecond);
        Assert.Equal(0, peers[0].Endpoint.Options.DownloadBytesPerSecond); // unlimited
        Assert.Equal(StreamTransportKind.Virtual, peers[0].Transport.Kind);
        Assert.Throws<ArgumentOutOfRangeException>(() => swarm.AddPeer(new PeerCapacity(-1, 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VirtualSwarm(new VirtualSwarmOptions { Port = 0 }));
        Assert.IsType<IPEndPoint>(peers[299].ListenEndPoint);
    }
}
