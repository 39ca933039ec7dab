namespace Peerway.Simulation.Tests;

/// <summary>End-to-end scenarios: the production DhtNode on the simulated network. Assertions are on direction and
/// broad ranges, never on wall time.</summary>
public sealed class ScenarioTests
{
    private static SimulationOptions Small(int nodes = 400) => new()
    {
        Nodes = nodes,
        Lookups = 200,
        Routers = 4,
        MaintenanceWindow = TimeSpan.FromMinutes(1),
        FreshnessSample = 200,
    };

    /// <summary>Everything but wall-clock and memory figures.</summary>
    private static SimulationReport Virtual(SimulationReport r) => r with { WallSeconds = 0, PeakWorkingSetMegabytes = 0 };

    [Fact]
    public void Same_seed_gives_an_identical_report_and_another_seed_a_different_one()
    {
        var o = Small(200) with { Churn = new ChurnModel(0.5, TimeSpan.FromMinutes(5)), AdversaryFraction = 0.2, Seed = 11, Settle = TimeSpan.FromMinutes(3) };
        var a = Virtual(Simulator.Run(o));
        var b = Virtual(Simulator.Run(o));
        Assert.Equal(a, b);
        Assert.Equal(0, a.ThreadViolations);
        var c = Virtual(Simulator.Run(o with { Seed = 12 }));
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Ten_thousand_nodes_in_steady_state_find_the_closest_node()
    {
        var r = Simulator.Run(new SimulationOptions { Nodes = 10_000, Lookups = 1_000, Seed = 3, FreshnessSample = 500 });
        Assert.Equal(0, r.ThreadViolations);
        Assert.Equal(1_000, r.LookupsCompleted);
        Assert.True(r.FindNodeSuccessRate >= 0.9, $"find_node success {r.FindNodeSuccessRate}");
        Assert.True(r.GetPeersSuccessRate >= 0.9, $"get_peers success {r.GetPeersSuccessRate}");
        // Kademlia: O(log N) rounds; with k = 8 buckets of a 10^4 network a handful suffice.
        Assert.InRange(r.RoundsP50, 1, 8);
        Assert.InRange(r.MessagesMean, 3, 100);
        // Latency: at least one round trip of the 50 ms-median one-way links, and not minutes.
        Assert.InRange(r.LatencyP50Ms, 50, 5_000);
        Assert.True(r.LatencyP50Ms <= r.LatencyP90Ms && r.LatencyP90Ms <= r.LatencyP99Ms);
        Assert.True(r.RoutingTableFreshness >= 0.95, $"freshness {r.RoutingTableFreshness}");
        Assert.True(r.RoutingTableMean >= 8);
    }

    [Fact]
    public void Churn_makes_routing_tables_stale_and_does_not_improve_success()
    {
        var steady = Simulator.Run(Small() with { Settle = TimeSpan.FromMinutes(10) });
        var churn = Simulator.Run(Small() with { Churn = new ChurnModel(0.5, TimeSpan.FromMinutes(3)) });
        Assert.Equal(0, steady.Departures);
        Assert.True(churn.Departures > 200, $"departures {churn.Departures}");
        Assert.True(churn.RoutingTableFreshness < steady.RoutingTableFreshness, $"{churn.RoutingTableFreshness} vs {steady.RoutingTableFreshness}");
        Assert.True(churn.SuccessRate <= steady.SuccessRate, $"{churn.SuccessRate} vs {steady.SuccessRate}");
        Assert.True(churn.LookupsCompleted > 100);
        Assert.Equal(0, churn.ThreadViolations);
    }

    [Fact]
    public void Adversaries_hurt_lookups_and_disjoint_paths_help()
    {
        var clean = Simulator.Run(Small());
        var attacked = Simulator.Run(Small() with { AdversaryFraction = 0.3, AdversaryBehavior = AdversaryBehavior.Lie });
        var disjoint = Simulator.Run(Small() with { AdversaryFraction = 0.3, AdversaryBehavior = AdversaryBehavior.Lie, DisjointPaths = 4 });
        Assert.Equal(120, attacked.Adversaries);
        Assert.True(attacked.RoutingTableAdversaries > 0.1, $"adversaries in routing tables {attacked.RoutingTableAdversaries}");
        Assert.True(attacked.SuccessRate < clean.SuccessRate, $"{attacked.SuccessRate} vs {clean.SuccessRate}");
        Assert.True(disjoint.SuccessRate >= attacked.SuccessRate, $"d=4 {disjoint.SuccessRate} vs d=1 {attacked.SuccessRate}");
    }

    [Fact]
    public void Bep42_enforcement_stops_Sybils_from_eclipsing_an_info_hash()
    {
        // Without BEP 42 a quarter of the attackers choose ids next to the 5 announced info-hashes (12 per hash, more
        // than k = 8) and swallow their announces.
        var o = Small(600) with { Lookups = 100, AdversaryFraction = 0.4 };
        var open = Simulator.Run(o);
        var enforced = Simulator.Run(o with { EnforceBep42 = true });
        Assert.True(open.GetPeersSuccessRate < 0.8, $"get_peers without BEP 42 {open.GetPeersSuccessRate}");
        Assert.True(enforced.GetPeersSuccessRate > open.GetPeersSuccessRate + 0.2, $"{enforced.GetPeersSuccessRate} vs {open.GetPeersSuccessRate}");
    }

    [Fact]
    public void Progress_reports_each_phase_in_order_without_changing_the_results()
    {
        var lines = new List<string>();
        var o = Small(100) with { Lookups = 20 };
        var quiet = Virtual(Simulator.Run(o));
        var loud = Virtual(Simulator.Run(o with { Progress = lines.Add }));
        Assert.Equal(quiet, loud);
        var phases = lines.Select(l => l.Split(':')[1].Trim()).ToList();
        Assert.Equal(["joined", "settled", "maintenance measured", "announced", "lookups done"], phases);
        Assert.All(lines, l => Assert.Contains("RSS", l, StringComparison.Ordinal));
    }
}
