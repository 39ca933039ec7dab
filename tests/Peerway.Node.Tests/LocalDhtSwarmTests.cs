using Microsoft.Extensions.Logging.Abstractions;

namespace Peerway.Node.Tests;

public sealed class LocalDhtSwarmTests
{
    [Fact]
    public async Task A_small_loopback_swarm_finds_every_announced_infohash()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var phases = new System.Collections.Concurrent.ConcurrentBag<string>();
        var progress = new Progress<SwarmProgress>(p => phases.Add(p.Phase));
        await using var swarm = LocalDhtSwarm.Start(new LocalSwarmOptions { Nodes = 14, InfoHashes = 4, Seed = 3 }, NullLoggerFactory.Instance);

        var report = await swarm.RunAsync(progress, cts.Token);

        Assert.Equal(14, report.Nodes);
        Assert.Equal(8, report.Lookups.Count);
        Assert.True(report.AllFound, string.Join("\n", report.Lookups));
        Assert.Equal(4, report.AnnouncesAccepted);
        Assert.True(report.MeanRoutingTableSize >= 1);
        Assert.True(report.DatagramsSent > 0);
        Assert.InRange(report.P90Rounds, 1, 20);
    }

    [Fact]
    public void Distinct_addresses_are_loopback_and_unique()
    {
        var addresses = Enumerable.Range(0, 600).Select(LocalDhtSwarm.AddressOf).ToList();
        Assert.All(addresses, a => Assert.True(System.Net.IPAddress.IsLoopback(a)));
        Assert.Equal(addresses.Count, addresses.Distinct().Count());
    }

    [Fact]
    public void Report_statistics_are_computed_from_the_lookups()
    {
        var ep = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1);
        var lookups = Enumerable.Range(1, 10)
            .Select(i => new SwarmLookup(Peerway.Core.NodeId.Zero, ep, i != 3, i, 0, 0))
            .ToList();
        var report = new LocalSwarmReport(2, 1, 1, 1, lookups, 0, 0, TimeSpan.Zero);

        Assert.Equal(9, report.Successes);
        Assert.Equal(0.9, report.SuccessRate, 10);
        Assert.Equal(5.5, report.MeanRounds, 10);
        Assert.Equal(9, report.P90Rounds);
        Assert.False(report.AllFound);
    }
}
