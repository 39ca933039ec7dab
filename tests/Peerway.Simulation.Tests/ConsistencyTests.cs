using Xunit.Abstractions;

namespace Peerway.Simulation.Tests;

/// <summary>Eventual consistency of a BEP 44 mutable item and of a log's signed heads under churn (issue 17 item 7),
/// small and seeded. Assertions are on what converges and what is lost, never on wall time.</summary>
public sealed class ConsistencyTests(ITestOutputHelper output)
{
    private static ConsistencyOptions Small(ConsistencyMode mode) => new()
    {
        Mode = mode,
        Readers = 200,
        Routers = 4,
        Updates = 3,
        UpdateInterval = TimeSpan.FromMinutes(10),
        PollInterval = TimeSpan.FromMinutes(1),
        RepublishInterval = TimeSpan.FromMinutes(5),
        Churn = new ChurnModel(0.5, TimeSpan.FromMinutes(10)),
        Settle = TimeSpan.FromMinutes(5),
        Seed = 7,
    };

    private ConsistencyReport Run(ConsistencyOptions o)
    {
        var r = ConsistencySimulator.Run(o);
        output.WriteLine(ConsistencyReport.Table([r]));
        Assert.Equal(0, r.ThreadViolations);
        Assert.True(r.Errors == 0, r.FirstError);
        return r;
    }

    [Theory]
    [InlineData(ConsistencyMode.Item)]
    [InlineData(ConsistencyMode.Log)]
    public void Every_update_reaches_99_percent_of_live_readers_under_churn(ConsistencyMode mode)
    {
        var r = Run(Small(mode));
        Assert.Equal(3, r.Updates);
        Assert.Equal(3, r.UpdatesConverged);
        Assert.True(r.Departures > 20, $"departures {r.Departures}");
        // A reader sees an update at its next poll at the earliest: half a poll interval on average, and the slowest of
        // 200 readers nearly a whole one (plus the owner's put, or for a log the owner's own poll, and the read itself).
        Assert.InRange(r.Converge50P50, 1, 90);
        Assert.InRange(r.Converge99P50, 40, 300);
        Assert.True(r.Converge50P50 < r.Converge99P50);
        Assert.InRange(r.StalenessP50, 1, 120);
        Assert.True(r.StalenessP50 <= r.StalenessP99 && r.StalenessP99 <= r.StalenessMax);
        Assert.True(r.MeanFractionCurrent is > 0.5 and < 1, $"mean fraction current {r.MeanFractionCurrent}");
        Assert.True(r.FractionCurrentAtNextUpdate >= 0.95, $"fraction at the next update {r.FractionCurrentAtNextUpdate}");
        Assert.True(r.StoredPerPut >= 4, $"stored per put {r.StoredPerPut}");
        Assert.True(r.Reads >= 200 * 25, $"reads {r.Reads}");
        Assert.NotEmpty(r.FractionSeries);
    }

    [Fact]
    public void Same_seed_gives_an_identical_report_and_another_seed_a_different_one()
    {
        var o = Small(ConsistencyMode.Item) with { Readers = 100, Updates = 2 };
        var a = ConsistencySimulator.Run(o);
        var b = ConsistencySimulator.Run(o);
        Assert.Equal(a with { WallSeconds = 0, FractionSeries = [] }, b with { WallSeconds = 0, FractionSeries = [] });
        Assert.Equal(a.FractionSeries, b.FractionSeries);
        var c = ConsistencySimulator.Run(o with { Seed = 8 });
        Assert.NotEqual(a.Datagrams, c.Datagrams);
    }

    /// <summary>
    /// The mechanism, and that the measurement sees it: one update, then an hour of heavy churn (2-minute median
    /// sessions). With nobody putting the item again its holders all leave and the readers that join later find nothing;
    /// the owner republishing every 2 minutes keeps it. Fails if republishing did nothing, or if the measurement counted
    /// readers as current without their having read the item.
    /// </summary>
    [Fact]
    public void Without_republishing_an_item_is_lost_once_its_holders_churn_out()
    {
        var o = Small(ConsistencyMode.Item) with
        {
            Updates = 1,
            UpdateInterval = TimeSpan.FromMinutes(60),
            Churn = new ChurnModel(0.5, TimeSpan.FromMinutes(2)),
            Dht = new Peerway.Dht.DhtOptions { K = 4 },
        };
        var lost = Run(o with { RepublishInterval = null });
        var kept = Run(o with { RepublishInterval = TimeSpan.FromMinutes(2) });

        Assert.True(lost.FractionCurrentAtNextUpdate < 0.5, $"without republishing {lost.FractionCurrentAtNextUpdate} of the readers still hold it");
        Assert.True(lost.EmptyReads > lost.Reads / 4, $"empty reads {lost.EmptyReads} of {lost.Reads}");
        Assert.True(kept.FractionCurrentAtNextUpdate >= 0.9, $"with republishing {kept.FractionCurrentAtNextUpdate}");
        Assert.True(kept.EmptyReads < kept.Reads / 20, $"empty reads {kept.EmptyReads} of {kept.Reads}");
        Assert.True(kept.MeanFractionCurrent > lost.MeanFractionCurrent + 0.2);
        Assert.True(lost.StalenessMax > kept.StalenessMax);
    }

    /// <summary>A log's followers put the head they fetched (LogReplica does): with the owner never republishing, the
    /// head outlives the churn that loses a plain item.</summary>
    [Fact]
    public void Log_followers_keep_the_head_alive_without_the_owner_republishing()
    {
        var o = Small(ConsistencyMode.Log) with
        {
            Updates = 1,
            UpdateInterval = TimeSpan.FromMinutes(60),
            Churn = new ChurnModel(0.5, TimeSpan.FromMinutes(2)),
            Dht = new Peerway.Dht.DhtOptions { K = 4 },
            RepublishInterval = null,
        };
        var log = Run(o);
        Assert.Equal(1, log.UpdatesConverged);
        Assert.True(log.FractionCurrentAtNextUpdate >= 0.9, $"{log.FractionCurrentAtNextUpdate} of the followers hold the head");
        Assert.True(log.Puts > 200, $"puts {log.Puts}");
    }
}

public sealed class ConsistencyDiagTests(ITestOutputHelper output)
{
    [Fact]
    public void Diag()
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var r = ConsistencySimulator.Run(new ConsistencyOptions
        {
            Readers = 1000,
            Updates = 1,
            UpdateInterval = TimeSpan.FromMinutes(10),
            Progress = l => output.WriteLine($"{sw.Elapsed.TotalSeconds:0.0}s {l}"),
        });
        output.WriteLine(ConsistencyReport.Table([r]));
    }
}
