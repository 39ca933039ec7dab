using System.Globalization;
using System.Text;

namespace Peerway.Simulation;

/// <summary>
/// What one eventual-consistency scenario measured. Times are virtual seconds. An update's convergence time is from the
/// instant the owner made it (the put starts, or the log entry is appended) until 99 % of the live readers have seen it
/// (or a later one); an update that never got there before the next one is counted as +∞.
/// </summary>
public sealed record ConsistencyReport
{
    /// <summary>Item or log.</summary>
    public required ConsistencyMode Mode { get; init; }
    /// <summary>Readers kept alive.</summary>
    public required int Readers { get; init; }
    /// <summary>Replication factor k (the engine's bucket size: a put goes to the k closest nodes).</summary>
    public required int K { get; init; }
    /// <summary>Republish interval, seconds; +∞ for never.</summary>
    public required double RepublishSeconds { get; init; }
    /// <summary>Reader poll interval, seconds.</summary>
    public required double PollSeconds { get; init; }
    /// <summary>Time between updates, seconds.</summary>
    public required double UpdateIntervalSeconds { get; init; }
    /// <summary>The churn model, or "none".</summary>
    public required string Churn { get; init; }
    /// <summary>The seed.</summary>
    public required int Seed { get; init; }

    /// <summary>Updates made.</summary>
    public required int Updates { get; init; }
    /// <summary>Updates seen by 99 % of the live readers before the next update (or the end of the run).</summary>
    public required int UpdatesConverged { get; init; }
    /// <summary>Median over updates of the time until 50 % of live readers saw it.</summary>
    public required double Converge50P50 { get; init; }
    /// <summary>Median over updates of the time until 99 % of live readers saw it.</summary>
    public required double Converge99P50 { get; init; }
    /// <summary>99th percentile over updates of the time until 99 % of live readers saw it.</summary>
    public required double Converge99P99 { get; init; }

    /// <summary>Staleness window: for each reader and update it was live for, the time from the update (or the reader's
    /// join, if later) until the reader saw it or a later one. Median.</summary>
    public required double StalenessP50 { get; init; }
    /// <summary>99th percentile of the staleness window.</summary>
    public required double StalenessP99 { get; init; }
    /// <summary>Longest staleness window.</summary>
    public required double StalenessMax { get; init; }
    /// <summary>(reader, update) pairs whose reader left before seeing the update (not in the percentiles).</summary>
    public required long LeftStale { get; init; }

    /// <summary>Time-averaged fraction of live readers holding the latest update, from the first update to the end.</summary>
    public required double MeanFractionCurrent { get; init; }
    /// <summary>Mean over updates of the fraction of live readers holding it just before the next update (or the end):
    /// what is left of an update once churn has replaced readers.</summary>
    public required double FractionCurrentAtNextUpdate { get; init; }

    /// <summary>Reads (gets of the item or head) completed.</summary>
    public required long Reads { get; init; }
    /// <summary>Reads that returned an older update than one whose put had completed before the read started.</summary>
    public required long StaleReads { get; init; }
    /// <summary>Reads that found nothing although a put had completed before the read started.</summary>
    public required long EmptyReads { get; init; }
    /// <summary>Puts of the item or head (owner and followers), and nodes that stored them in all.</summary>
    public required long Puts { get; init; }
    /// <summary>Mean nodes that accepted one put.</summary>
    public required double StoredPerPut { get; init; }

    /// <summary>(virtual seconds since the first update, fraction of live readers at the latest update), one point per
    /// sample interval.</summary>
    public required IReadOnlyList<FractionSample> FractionSeries { get; init; }

    /// <summary>Live nodes that stored the item (any seq) at the end of the run; 0 means the DHT has lost it (every node
    /// it was put on has left) and no reader that joins from then on can read it.</summary>
    public required int StoringAtEnd { get; init; }

    /// <summary>Readers that left during the run.</summary>
    public required long Departures { get; init; }
    /// <summary>Datagrams sent on the simulated network.</summary>
    public required long Datagrams { get; init; }
    /// <summary>Virtual time simulated, seconds.</summary>
    public required double VirtualSeconds { get; init; }
    /// <summary>Wall-clock time of the run, seconds.</summary>
    public required double WallSeconds { get; init; }
    /// <summary>Calls from threads other than the simulator's; zero in a deterministic run.</summary>
    public required long ThreadViolations { get; init; }
    /// <summary>Reads or puts whose task failed with an exception (an engine bug), and the first one.</summary>
    public required int Errors { get; init; }
    /// <summary>The first failure's text, when there was one.</summary>
    public string? FirstError { get; init; }

    /// <summary>A one-line name of the scenario.</summary>
    public string Scenario => string.Create(CultureInfo.InvariantCulture,
        $"{Mode.ToString().ToLowerInvariant()} readers={Readers} k={K} republish={Duration(RepublishSeconds)} poll={Duration(PollSeconds)} churn={Churn}");

    /// <summary>The summary table, one row per report.</summary>
    public static string Table(IEnumerable<ConsistencyReport> reports)
    {
        ArgumentNullException.ThrowIfNull(reports);
        var sb = new StringBuilder();
        sb.AppendLine("mode  readers k   republish poll  churn              converged  t50 p50  t99 p50/p99        stale p50/p99/max s   left  current mean/next  reads    stale  empty  stored/put wall s");
        foreach (var r in reports)
        {
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Mode.ToString().ToLowerInvariant(),-5} {r.Readers,-7} {r.K,-3} {Duration(r.RepublishSeconds),-9} {Duration(r.PollSeconds),-5} {r.Churn,-18} {r.UpdatesConverged,3}/{r.Updates,-6} {Seconds(r.Converge50P50),7} {Seconds(r.Converge99P50),7}/{Seconds(r.Converge99P99),-10} {Seconds(r.StalenessP50),6}/{Seconds(r.StalenessP99),6}/{Seconds(r.StalenessMax),-7} {r.LeftStale,5} {r.MeanFractionCurrent,7:P1}/{r.FractionCurrentAtNextUpdate,-8:P1} {r.Reads,-8} {Ratio(r.StaleReads, r.Reads),-6:P1} {Ratio(r.EmptyReads, r.Reads),-6:P1} {r.StoredPerPut,10:0.0} {r.WallSeconds,6:0.0}"));
        }

        return sb.ToString();
    }

    private static double Ratio(long a, long b) => b == 0 ? double.NaN : (double)a / b;

    private static string Seconds(double s) => double.IsPositiveInfinity(s) ? "never" : s.ToString("0.0", CultureInfo.InvariantCulture);

    private static string Duration(double s) =>
        double.IsPositiveInfinity(s) ? "off"
        : s >= 60 && s % 60 == 0 ? (s / 60).ToString("0", CultureInfo.InvariantCulture) + "m"
        : s.ToString("0.#", CultureInfo.InvariantCulture) + "s";
}
