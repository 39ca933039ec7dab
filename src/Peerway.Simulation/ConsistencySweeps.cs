namespace Peerway.Simulation;

/// <summary>The runs behind the consistency plots: for items and logs, the replication factor k swept at the base
/// republish interval, and the republish interval swept at the base k.</summary>
public sealed record ConsistencySweepResults(IReadOnlyList<ConsistencyReport> ByK, IReadOnlyList<ConsistencyReport> ByRepublish)
{
    /// <summary>Every report once (the base run of each mode is in both sweeps).</summary>
    public IEnumerable<ConsistencyReport> AllReports() => ByK.Concat(ByRepublish.Where(r => !ByK.Contains(r)));
}

/// <summary>Sweeps of the eventual-consistency scenario and their plots.</summary>
public static class ConsistencySweeps
{
    /// <summary>Replication factors swept.</summary>
    public static readonly int[] Ks = [4, 8, 16];

    /// <summary>Republish intervals swept (minutes).</summary>
    public static readonly double[] RepublishMinutes = [5, 15, 60];

    /// <summary>Runs both modes with <paramref name="baseline"/>'s settings, sweeping k (at its republish interval)
    /// and the republish interval (at its k).</summary>
    public static ConsistencySweepResults Run(ConsistencyOptions baseline, Action<ConsistencyReport>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        var byK = new List<ConsistencyReport>();
        var byRepublish = new List<ConsistencyReport>();
        foreach (var mode in new[] { ConsistencyMode.Item, ConsistencyMode.Log })
        {
            var o = baseline with { Mode = mode };
            ConsistencyReport? baseReport = null;
            foreach (var k in Ks)
            {
                var r = Report(o with { Dht = o.Dht with { K = k } }, progress);
                byK.Add(r);
                if (k == o.Dht.K) baseReport = r;
            }

            foreach (var minutes in RepublishMinutes)
            {
                var interval = TimeSpan.FromMinutes(minutes);
                byRepublish.Add(baseReport is not null && o.RepublishInterval == interval
                    ? baseReport
                    : Report(o with { RepublishInterval = interval }, progress));
            }
        }

        return new ConsistencySweepResults(byK, byRepublish);
    }

    private static ConsistencyReport Report(ConsistencyOptions o, Action<ConsistencyReport>? progress)
    {
        var r = ConsistencySimulator.Run(o);
        progress?.Invoke(r);
        return r;
    }

    /// <summary>Writes consistency-vs-k, consistency-vs-republish and consistency-timeline as .svg and .png into
    /// <paramref name="directory"/>; returns the paths.</summary>
    public static IReadOnlyList<string> WritePlots(ConsistencySweepResults results, string directory)
    {
        ArgumentNullException.ThrowIfNull(results);
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        void Plot(string name, string title, string xLabel, string yLabel, IReadOnlyList<PlotSeries> series, double? yMin = null, double? yMax = null) =>
            written.AddRange(PngPlot.WriteBoth(directory, name, title, xLabel, yLabel, series, logX: false, yMin, yMax));

        static string Name(ConsistencyMode m) => m == ConsistencyMode.Item ? "item" : "log";
        var series = new List<PlotSeries>();
        foreach (var g in results.ByK.GroupBy(r => r.Mode))
        {
            series.Add(new PlotSeries($"{Name(g.Key)}: to 99 % p50", g.Select(r => ((double)r.K, r.Converge99P50)).ToList()));
            series.Add(new PlotSeries($"{Name(g.Key)}: staleness p99", g.Select(r => ((double)r.K, r.StalenessP99)).ToList()));
        }

        Plot("consistency-vs-k", "Time until 99 % of live readers see an update, vs k", "replication factor k", "seconds", series);

        series = [];
        foreach (var g in results.ByRepublish.GroupBy(r => r.Mode))
        {
            series.Add(new PlotSeries($"{Name(g.Key)}: current (mean)", g.Select(r => (r.RepublishSeconds / 60, r.MeanFractionCurrent)).ToList()));
            series.Add(new PlotSeries($"{Name(g.Key)}: at next update", g.Select(r => (r.RepublishSeconds / 60, r.FractionCurrentAtNextUpdate)).ToList()));
        }

        Plot("consistency-vs-republish", "Live readers holding the latest update, vs republish interval", "republish interval (minutes)", "fraction of live readers", series, yMin: 0, yMax: 1);

        series = results.ByK
            .Select(r => new PlotSeries($"{Name(r.Mode)}, k={r.K}", r.FractionSeries.Select(s => (s.Seconds / 60, s.Fraction)).ToList()))
            .ToList();
        Plot("consistency-timeline", "Live readers holding the latest update over time", "minutes since the first update", "fraction of live readers", series, yMin: 0, yMax: 1);
        return written;
    }
}
