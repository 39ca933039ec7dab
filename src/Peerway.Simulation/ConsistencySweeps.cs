using System.Globalization;
using System.Text;

namespace Peerway.Simulation;

/// <summary>The runs behind the consistency plots: for items and logs, the replication factor k swept at the base
/// republish interval, and the republish interval swept at the base k.</summary>
public sealed record ConsistencySweepResults(IReadOnlyList<ConsistencyReport> ByK, IReadOnlyList<ConsistencyReport> ByRepublish)
{
    /// <summary>Every report once (the base run of each mode is in both sweeps).</summary>
    public IEnumerable<ConsistencyReport> AllReports() => ByK.Concat(ByRepublish.Where(r => !ByK.Contains(r)));
}

/// <summary>Sweeps of the eventual-consistency scenario, their CSV and their plots.</summary>
public static class ConsistencySweeps
{
    /// <summary>Replication factors swept.</summary>
    public static readonly int[] Ks = [4, 8, 16];

    /// <summary>Republish intervals swept (minutes).</summary>
    public static readonly double[] RepublishMinutes = [5, 15, 60];

    /// <summary>Runs both modes with <paramref name="baseline"/>'s settings, sweeping k (at its republish interval)
    /// and the republish interval (at its k). Runs are independent (each has its own scheduler and seeded random
    /// source), so up to <paramref name="parallelism"/> of them run at once, each on one thread; the results do not
    /// depend on it. <paramref name="progress"/> is called once per finished run, one call at a time.</summary>
    public static ConsistencySweepResults Run(ConsistencyOptions baseline, int parallelism = 1, Action<ConsistencyReport>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        ArgumentOutOfRangeException.ThrowIfLessThan(parallelism, 1);
        // The scenarios in order: per mode, the k sweep, then the republish intervals the k sweep has not run.
        var scenarios = new List<ConsistencyOptions>();
        var byK = new List<int>();
        var byRepublish = new List<int>();
        foreach (var mode in new[] { ConsistencyMode.Item, ConsistencyMode.Log })
        {
            var o = baseline with { Mode = mode };
            var baseIndex = -1;
            foreach (var k in Ks)
            {
                if (k == o.Dht.K) baseIndex = scenarios.Count;
                byK.Add(scenarios.Count);
                scenarios.Add(o with { Dht = o.Dht with { K = k } });
            }

            foreach (var minutes in RepublishMinutes)
            {
                var interval = TimeSpan.FromMinutes(minutes);
                if (baseIndex >= 0 && o.RepublishInterval == interval)
                {
                    byRepublish.Add(baseIndex);
                    continue;
                }

                byRepublish.Add(scenarios.Count);
                scenarios.Add(o with { RepublishInterval = interval });
            }
        }

        var reports = new ConsistencyReport[scenarios.Count];
        var gate = new object();
        Parallel.For(0, scenarios.Count, new ParallelOptions { MaxDegreeOfParallelism = parallelism }, i =>
        {
            reports[i] = ConsistencySimulator.Run(scenarios[i]);
            if (progress is null) return;
            lock (gate) progress(reports[i]);
        });
        return new ConsistencySweepResults(byK.Select(i => reports[i]).ToList(), byRepublish.Select(i => reports[i]).ToList());
    }

    /// <summary>One row per report: the scenario's settings, then what it measured. Times are virtual seconds; an update
    /// that never reached 99 % is <c>inf</c>, a republish interval of never is <c>off</c>.</summary>
    public static string Csv(IEnumerable<ConsistencyReport> reports)
    {
        ArgumentNullException.ThrowIfNull(reports);
        var sb = new StringBuilder();
        sb.Append("mode,readers,k,republish_min,poll_s,update_interval_s,churn,seed,updates,updates_converged,")
          .Append("to50_p50_s,to99_p50_s,to99_p99_s,staleness_p50_s,staleness_p99_s,staleness_max_s,left_stale,")
          .Append("current_mean,current_at_next_update,storing_at_end,reads,stale_reads,empty_reads,puts,stored_per_put,")
          .AppendLine("departures,datagrams,virtual_s,wall_s");
        foreach (var r in reports)
        {
            string[] cells =
            [
                r.Mode.ToString().ToLowerInvariant(), I(r.Readers), I(r.K),
                double.IsPositiveInfinity(r.RepublishSeconds) ? "off" : D(r.RepublishSeconds / 60),
                D(r.PollSeconds), D(r.UpdateIntervalSeconds), r.Churn, I(r.Seed), I(r.Updates), I(r.UpdatesConverged),
                D(r.Converge50P50), D(r.Converge99P50), D(r.Converge99P99),
                D(r.StalenessP50), D(r.StalenessP99), D(r.StalenessMax), I(r.LeftStale),
                D(r.MeanFractionCurrent), D(r.FractionCurrentAtNextUpdate), I(r.StoringAtEnd),
                I(r.Reads), I(r.StaleReads), I(r.EmptyReads), I(r.Puts), D(r.StoredPerPut),
                I(r.Departures), I(r.Datagrams), D(r.VirtualSeconds), D(r.WallSeconds),
            ];
            // RFC 4180: a cell with a comma or a quote is quoted (the churn model has a comma).
            sb.AppendLine(string.Join(',', cells.Select(c => c.Contains(',', StringComparison.Ordinal) || c.Contains('"', StringComparison.Ordinal) ? "\"" + c.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : c)));
        }

        return sb.ToString();

        static string I(long v) => v.ToString(CultureInfo.InvariantCulture);
        static string D(double v) => double.IsPositiveInfinity(v) ? "inf" : double.IsNaN(v) ? "" : v.ToString("0.####", CultureInfo.InvariantCulture);
    }

    /// <summary>Writes consistency-vs-k, consistency-vs-republish (time to 99 % p50/p99 and staleness p99),
    /// consistency-current-vs-republish and consistency-timeline as .svg and .png into <paramref name="directory"/>;
    /// returns the paths. An update that never reached 99 % has no point.</summary>
    public static IReadOnlyList<string> WritePlots(ConsistencySweepResults results, string directory)
    {
        ArgumentNullException.ThrowIfNull(results);
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        void Plot(string name, string title, string xLabel, string yLabel, IReadOnlyList<PlotSeries> series, bool logX = false, double? yMin = null, double? yMax = null) =>
            written.AddRange(PngPlot.WriteBoth(directory, name, title, xLabel, yLabel, series, logX, yMin, yMax));

        static string Name(ConsistencyMode m) => m == ConsistencyMode.Item ? "item" : "log";
        static List<PlotSeries> Times(IEnumerable<ConsistencyReport> reports, Func<ConsistencyReport, double> x)
        {
            var series = new List<PlotSeries>();
            foreach (var g in reports.GroupBy(r => r.Mode))
            {
                series.Add(new PlotSeries($"{Name(g.Key)}: to 99 % p50", g.Select(r => (x(r), r.Converge99P50)).ToList()));
                series.Add(new PlotSeries($"{Name(g.Key)}: to 99 % p99", g.Select(r => (x(r), r.Converge99P99)).ToList()));
                series.Add(new PlotSeries($"{Name(g.Key)}: staleness p99", g.Select(r => (x(r), r.StalenessP99)).ToList()));
            }

            return series;
        }

        Plot("consistency-vs-k", "Time until 99 % of live readers see an update, vs k", "replication factor k", "seconds", Times(results.ByK, r => r.K), logX: true, yMin: 0);
        Plot("consistency-vs-republish", "Time until 99 % of live readers see an update, vs republish interval", "republish interval (minutes)", "seconds", Times(results.ByRepublish, r => r.RepublishSeconds / 60), logX: true, yMin: 0);

        var fractions = new List<PlotSeries>();
        foreach (var g in results.ByRepublish.GroupBy(r => r.Mode))
        {
            fractions.Add(new PlotSeries($"{Name(g.Key)}: current (mean)", g.Select(r => (r.RepublishSeconds / 60, r.MeanFractionCurrent)).ToList()));
            fractions.Add(new PlotSeries($"{Name(g.Key)}: at next update", g.Select(r => (r.RepublishSeconds / 60, r.FractionCurrentAtNextUpdate)).ToList()));
        }

        Plot("consistency-current-vs-republish", "Live readers holding the latest update, vs republish interval", "republish interval (minutes)", "fraction of live readers", fractions, logX: true, yMin: 0, yMax: 1);

        var timeline = results.ByK
            .Select(r => new PlotSeries($"{Name(r.Mode)}, k={r.K}", r.FractionSeries.Select(s => (s.Seconds / 60, s.Fraction)).ToList()))
            .ToList();
        Plot("consistency-timeline", "Live readers holding the latest update over time", "minutes since the first update", "fraction of live readers", timeline, yMin: 0, yMax: 1);
        return written;
    }
}
