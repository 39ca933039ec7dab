using System.Net;
using Peerway.Net;

namespace Peerway.Simulation.Tests;

public sealed class VirtualSwarmTests
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
            serving.Add(Serve());
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

        async Task Serve()
        {
            while (await listener.AcceptAsync(CancellationToken.None) is { } c) serving.Add(Send(c));
        }

        async Task Send(IStreamConnection c)
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
