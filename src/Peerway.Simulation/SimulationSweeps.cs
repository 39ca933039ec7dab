namespace Peerway.Simulation;

/// <summary>The runs behind the plots: rounds against N, success against churn, success against the adversary
/// fraction with and without BEP 42 enforcement and disjoint paths.</summary>
public sealed record SweepResults(
    SimulationReport Main,
    IReadOnlyList<SimulationReport> BySize,
    IReadOnlyList<SimulationReport> ByChurn,
    IReadOnlyList<SimulationReport> ByAdversaries)
{
    /// <summary>Every report once: the main run, then the size, churn and adversary sweeps.</summary>
    public IEnumerable<SimulationReport> AllReports() => new[] { Main }.Concat(BySize.Where(r => r != Main)).Concat(ByChurn).Concat(ByAdversaries);
}

/// <summary>The main scenario plus sweeps over network size, churn and adversary fraction, and their plots.</summary>
public static class SimulationSweeps
{
    /// <summary>Churn medians (minutes) swept; null is no churn.</summary>
    public static readonly double?[] ChurnMedians = [null, 120, 30, 10, 3];

    /// <summary>Adversary fractions swept.</summary>
    public static readonly double[] AdversaryFractions = [0, 0.1, 0.2, 0.3, 0.4];

    /// <summary>Runs <paramref name="main"/> and the sweeps around it; sweeps use <paramref name="sweepNodes"/> nodes
    /// (the size sweep goes from N/64 up to N).</summary>
    public static SweepResults Run(SimulationOptions main, int sweepNodes, int sweepLookups, Action<SimulationReport>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(main);
        var mainReport = Simulator.Run(main);
        progress?.Invoke(mainReport);
        var small = main with { Churn = null, AdversaryFraction = 0, Lookups = Math.Min(main.Lookups, sweepLookups), LookupWindow = null, Settle = null };

        var bySize = new List<SimulationReport>();
        foreach (var n in new[] { main.Nodes / 64, main.Nodes / 16, main.Nodes / 4 })
        {
            if (n < 64) continue;
            bySize.Add(Report(small with { Nodes = n, AdversaryFraction = main.AdversaryFraction, Churn = main.Churn, Routers = Math.Min(main.Routers, n / 2) }, progress));
        }

        bySize.Add(mainReport);
        var sweepBase = small with { Nodes = sweepNodes, Routers = Math.Min(main.Routers, sweepNodes / 2) };
        var shape = main.Churn?.Shape ?? 0.5;
        var byChurn = ChurnMedians
            .Select(m => Report(sweepBase with { Churn = m is { } minutes ? new ChurnModel(shape, TimeSpan.FromMinutes(minutes)) : null }, progress))
            .ToList();

        var d = Math.Max(main.DisjointPaths, 4);
        var byAdversaries = new List<SimulationReport>();
        foreach (var (bep42, paths) in new[] { (false, 1), (true, 1), (false, d), (true, d) })
        {
            foreach (var f in AdversaryFractions)
            {
                byAdversaries.Add(Report(sweepBase with { AdversaryFraction = f, EnforceBep42 = bep42, DisjointPaths = paths }, progress));
            }
        }

        return new SweepResults(mainReport, bySize, byChurn, byAdversaries);
    }

    private static SimulationReport Report(SimulationOptions o, Action<SimulationReport>? progress)
    {
        var r = Simulator.Run(o);
        progress?.Invoke(r);
        return r;
    }

    /// <summary>Writes rounds-vs-nodes, success-vs-churn and success-vs-adversaries as .svg and .png into
    /// <paramref name="directory"/>; returns the paths.</summary>
    public static IReadOnlyList<string> WritePlots(SweepResults results, string directory)
    {
        ArgumentNullException.ThrowIfNull(results);
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        void Plot(string name, string title, string xLabel, string yLabel, IReadOnlyList<PlotSeries> series, bool logX = false, double? yMin = null, double? yMax = null) =>
            written.AddRange(PngPlot.WriteBoth(directory, name, title, xLabel, yLabel, series, logX, yMin, yMax));

        var size = results.BySize.OrderBy(r => r.Nodes).ToList();
        Plot("rounds-vs-nodes", "Lookup rounds and messages vs network size", "nodes N", "per lookup",
            [
                new PlotSeries("rounds p50", size.Select(r => ((double)r.Nodes, r.RoundsP50)).ToList()),
                new PlotSeries("rounds p90", size.Select(r => ((double)r.Nodes, r.RoundsP90)).ToList()),
                new PlotSeries("rounds mean", size.Select(r => ((double)r.Nodes, r.RoundsMean)).ToList()),
                new PlotSeries("messages / 10", size.Select(r => ((double)r.Nodes, r.MessagesMean / 10)).ToList()),
            ], logX: true);

        // Churn rate as departures per node per hour; the no-churn run sits at 0.
        var churn = results.ByChurn.Select(r => (Rate: r.Departures / (double)r.Nodes / (r.VirtualSeconds / 3600), r)).OrderBy(p => p.Rate).ToList();
        Plot("success-vs-churn", "Lookup success vs churn (Weibull sessions)", "departures per node per hour", "fraction",
            [
                new PlotSeries("success", churn.Select(p => (p.Rate, p.r.SuccessRate)).ToList()),
                new PlotSeries("find_node", churn.Select(p => (p.Rate, p.r.FindNodeSuccessRate)).ToList()),
                new PlotSeries("get_peers", churn.Select(p => (p.Rate, p.r.GetPeersSuccessRate)).ToList()),
                new PlotSeries("RT freshness", churn.Select(p => (p.Rate, p.r.RoutingTableFreshness)).ToList()),
            ], yMin: 0, yMax: 1);

        var series = results.ByAdversaries
            .GroupBy(r => (r.EnforceBep42, r.DisjointPaths))
            .Select(g => new PlotSeries($"{(g.Key.EnforceBep42 ? "BEP 42" : "no BEP 42")}, d={g.Key.DisjointPaths}", g.Select(r => (r.AdversaryFraction, r.SuccessRate)).ToList()))
            .ToList();
        Plot("success-vs-adversaries", "Lookup success vs adversary fraction", "adversary fraction f", "success rate", series, yMin: 0, yMax: 1);
        return written;
    }
}
