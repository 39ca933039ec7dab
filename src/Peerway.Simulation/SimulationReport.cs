using System.Globalization;
using System.Text;

namespace Peerway.Simulation;

/// <summary>What one simulated scenario measured. Times are virtual unless named Wall.</summary>
public sealed record SimulationReport
{
    /// <summary>Nodes in the run, honest and adversarial.</summary>
    public required int Nodes { get; init; }
    /// <summary>Nodes running the production DhtNode.</summary>
    public required int HonestNodes { get; init; }
    /// <summary>Adversarial nodes (AdversaryNode).</summary>
    public required int Adversaries { get; init; }
    /// <summary>The seed of the run's single random source.</summary>
    public required int Seed { get; init; }
    /// <summary>The churn model (ChurnModel.ToString), or "none".</summary>
    public required string Churn { get; init; }
    /// <summary>The fraction of nodes that are adversaries.</summary>
    public required double AdversaryFraction { get; init; }
    /// <summary>Whether honest nodes enforced BEP 42 node ids.</summary>
    public required bool EnforceBep42 { get; init; }
    /// <summary>S/Kademlia disjoint lookup paths d.</summary>
    public required int DisjointPaths { get; init; }

    /// <summary>Lookups started, and those that completed (a lookup whose node left mid-way is not counted).</summary>
    public required int Lookups { get; init; }
    /// <summary>Lookups that completed.</summary>
    public required int LookupsCompleted { get; init; }

    /// <summary>Fraction of completed lookups that succeeded: find_node returned the closest live honest node,
    /// get_peers returned a peer that had announced.</summary>
    public required double SuccessRate { get; init; }
    /// <summary>Success rate of the find_node lookups alone.</summary>
    public required double FindNodeSuccessRate { get; init; }
    /// <summary>Success rate of the get_peers lookups alone.</summary>
    public required double GetPeersSuccessRate { get; init; }

    /// <summary>Mean fraction of the true k closest live honest nodes present in a find_node result.</summary>
    public required double ClosestOverlap { get; init; }

    /// <summary>Mean lookup rounds.</summary>
    public required double RoundsMean { get; init; }
    /// <summary>Median lookup rounds.</summary>
    public required double RoundsP50 { get; init; }
    /// <summary>90th percentile of lookup rounds.</summary>
    public required double RoundsP90 { get; init; }
    /// <summary>Mean queries sent per lookup.</summary>
    public required double MessagesMean { get; init; }
    /// <summary>Median queries sent per lookup.</summary>
    public required double MessagesP50 { get; init; }
    /// <summary>99th percentile of queries sent per lookup.</summary>
    public required double MessagesP99 { get; init; }
    /// <summary>Median lookup time, virtual milliseconds.</summary>
    public required double LatencyP50Ms { get; init; }
    /// <summary>90th percentile of lookup time, virtual milliseconds.</summary>
    public required double LatencyP90Ms { get; init; }
    /// <summary>99th percentile of lookup time, virtual milliseconds.</summary>
    public required double LatencyP99Ms { get; init; }

    /// <summary>Mean routing table size of sampled honest nodes.</summary>
    public required double RoutingTableMean { get; init; }

    /// <summary>Fraction of routing-table entries (sampled honest nodes) that point at a node that is alive with that id.</summary>
    public required double RoutingTableFreshness { get; init; }

    /// <summary>Fraction of routing-table entries that are adversaries.</summary>
    public required double RoutingTableAdversaries { get; init; }

    /// <summary>Bytes sent per honest node per second over the maintenance window (no lookups running).</summary>
    public required double MaintenanceBytesPerNodePerSecond { get; init; }

    /// <summary>Nodes that left during the run (churn).</summary>
    public required long Departures { get; init; }
    /// <summary>Datagrams sent on the simulated network.</summary>
    public required long Datagrams { get; init; }
    /// <summary>Events the scheduler ran.</summary>
    public required long Events { get; init; }
    /// <summary>Virtual time simulated, seconds.</summary>
    public required double VirtualSeconds { get; init; }
    /// <summary>Wall-clock time of the run, seconds.</summary>
    public required double WallSeconds { get; init; }
    /// <summary>Peak working set of the process, MB.</summary>
    public required double PeakWorkingSetMegabytes { get; init; }

    /// <summary>Calls from threads other than the simulator's (an engine escaping its scheduler). Zero in a
    /// deterministic run.</summary>
    public required long ThreadViolations { get; init; }

    /// <summary>Lookups whose task failed with an exception (an engine bug), and the first such error.</summary>
    public required int LookupErrors { get; init; }

    /// <summary>The first lookup exception's text, when there was one.</summary>
    public string? FirstLookupError { get; init; }

    /// <summary>A one-line name of the scenario (size, churn, adversaries, BEP 42, d).</summary>
    public string Scenario =>
        string.Create(CultureInfo.InvariantCulture, $"N={Nodes} churn={Churn} f={AdversaryFraction:0.##} bep42={(EnforceBep42 ? "on" : "off")} d={DisjointPaths}");

    /// <summary>The summary table, one row per report.</summary>
    public static string Table(IEnumerable<SimulationReport> reports)
    {
        ArgumentNullException.ThrowIfNull(reports);
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        sb.AppendLine("nodes    churn                f     bep42 d   lookups  success  find   peers  overlap rounds(p50/p90) msgs(mean/p99)  latency ms p50/p90/p99  rt-size fresh  adv-in-rt maint B/node/s wall s");
        foreach (var r in reports)
        {
            sb.AppendLine(string.Create(ci,
                $"{r.Nodes,-8} {r.Churn,-20} {r.AdversaryFraction,-5:0.00} {(r.EnforceBep42 ? "on" : "off"),-5} {r.DisjointPaths,-3} {r.LookupsCompleted,-8} {r.SuccessRate,-8:P1} {r.FindNodeSuccessRate,-6:P0} {r.GetPeersSuccessRate,-6:P0} {r.ClosestOverlap,-7:P0} {r.RoundsP50,4:0}/{r.RoundsP90,-10:0} {r.MessagesMean,6:0.0}/{r.MessagesP99,-7:0} {r.LatencyP50Ms,7:0}/{r.LatencyP90Ms,5:0}/{r.LatencyP99Ms,-9:0} {r.RoutingTableMean,7:0.0} {r.RoutingTableFreshness,-6:P0} {r.RoutingTableAdversaries,-9:P1} {r.MaintenanceBytesPerNodePerSecond,14:0.0} {r.WallSeconds,6:0.0}"));
        }

        return sb.ToString();
    }
}
