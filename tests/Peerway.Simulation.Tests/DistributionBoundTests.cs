namespace Peerway.Simulation.Tests;

public sealed class DistributionBoundTests
{
    private const long F = 100_000_000;

    private static PeerCapacity[] Peers(int n, double up, double down) => Enumerable.Repeat(new PeerCapacity(up, down), n).ToArray();

    [Fact]
    public void TheSeedersUploadBoundsAFastSwarm()
    {
        // Leechers upload plenty: the seeder still has to send the file once. 100 MB at 1 MB/s.
        var t = DistributionBound.MinimumDistributionTime(F, 1_000_000, Peers(10, 10_000_000, 100_000_000));
        Assert.Equal(100, t.TotalSeconds, 9);
    }

    [Fact]
    public void TheSlowestDownloaderBoundsTheSwarm()
    {
        var peers = Peers(10, 10_000_000, 100_000_000);
        peers[3] = new PeerCapacity(10_000_000, 500_000);
        var t = DistributionBound.MinimumDistributionTime(F, 100_000_000, peers);
        Assert.Equal(200, t.TotalSeconds, 9);
    }

    [Fact]
    public void TheTotalUploadBoundsALargeSwarm()
    {
        // 1,000 leechers uploading 1 MB/s each, seeder 10 MB/s: N·F / (u_s + Σu_i) = 1e11 / 1.01e9 ≈ 99.0 s.
        var t = DistributionBound.MinimumDistributionTime(F, 10_000_000, Peers(1000, 1_000_000, double.PositiveInfinity));
        Assert.Equal(1000 * (double)F / (10_000_000 + (1000 * 1_000_000.0)), t.TotalSeconds, 6);
        Assert.True(t.TotalSeconds > F / 10_000_000.0);
    }

    [Fact]
    public void WithoutPeerUploadItIsClientServerDistribution()
    {
        var t = DistributionBound.MinimumDistributionTime(F, 1_000_000, Peers(5, 0, double.PositiveInfinity));
        Assert.Equal(500, t.TotalSeconds, 9); // N·F / u_s
    }

    [Fact]
    public void EdgesAndInvalidArguments()
    {
        Assert.Equal(TimeSpan.Zero, DistributionBound.MinimumDistributionTime(F, 1, []));
        Assert.Equal(TimeSpan.Zero, DistributionBound.MinimumDistributionTime(0, 1, Peers(3, 1, 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => DistributionBound.MinimumDistributionTime(-1, 1, Peers(1, 1, 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => DistributionBound.MinimumDistributionTime(F, 0, Peers(1, 1, 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => DistributionBound.MinimumDistributionTime(F, 1, Peers(1, -1, 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => DistributionBound.MinimumDistributionTime(F, 1, Peers(1, 1, 0)));
    }
}
