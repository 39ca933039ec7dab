using Peerway.Dht;
using Xunit.Abstractions;

namespace Peerway.Simulation.Tests;

/// <summary>Eventual consistency of a BEP 44 mutable item and of a log's signed heads under churn (issue 17 item 7),
/// small and seeded. Assertions are on what converges and what is lost, never on wall time.</summary>
public sealed class ConsistencyTests(ITestOutputHelper output)
{
    private static ConsistencyOptions Small(ConsistencyMode mode) => new()
    {
        Mode = mode,
        Readers = 100,
        Routers = 4,
        Updates = 2,
        UpdateInterval = TimeSpan.FromMinutes(5),
        PollInterval = TimeSpan.FromMinutes(1),
        RepublishInterval = TimeSpan.FromMinutes(5),
        Churn = new ChurnModel(0.5, TimeSpan.FromMinutes(10)),
        Settle = TimeSpan.FromMinutes(3),
        Seed = 7,
    };

    /// <summary>Few nodes and short memoryless sessions (exponential, median 2 min): the k = 4 nodes an item is put on
    /// have all left within minutes, and over the 30-minute horizon the readers turn over about fifteen times. One
    /// router, so that a node that never leaves is rarely among the closest.</summary>
    private static ConsistencyOptions Losing(TimeSpan? republish) => new()
    {
        Mode = ConsistencyMode.Item,
        Readers = 60,
        Routers = 1,
        Updates = 1,
        UpdateInterval = TimeSpan.FromMinutes(30),
        PollInterval = TimeSpan.FromMinutes(1),
        RepublishInterval = republish,
        Churn = new ChurnModel(1, TimeSpan.FromMinutes(2)),
        Settle = TimeSpan.FromMinutes(2),
        Dht = new DhtOptions { K = 4 },
        Seed = 3,
    };

    private ConsistencyReport Run(ConsistencyOptions o)
    {
        var r = ConsistencySimulator.Run(o);
        output.WriteLine(ConsistencyReport.Table([r]));
        output.WriteLine(string.Join(" ", r.FractionSeries.Select(s => $"{s.Seconds / 60:0}m:{s.Fraction:0.00}/{s.Storing}")));
        Assert.Equal(0, r.ThreadViolations);
        Assert.True(r.Errors == 0, r.FirstError);
        return r;
    }

    [Fact]
    public void Same_seed_gives_an_identical_report_and_another_seed_a_different_one()
    {
        var o = Small(ConsistencyMode.Item) with { Readers = 50, Updates = 1, UpdateInterval = TimeSpan.FromMinutes(3) };
        var a = Run(o);
        var b = ConsistencySimulator.Run(o);
        Assert.Equal(a with { WallSeconds = 0, FractionSeries = [] }, b with { WallSeconds = 0, FractionSeries = [] });
        Assert.Equal(a.FractionSeries, b.FractionSeries);
        var c = ConsistencySimulator.Run(o with { Seed = 8 });
        Assert.NotEqual(a.Datagrams, c.Datagrams);
    }

    [Theory]
    [InlineData(ConsistencyMode.Item)]
    [InlineData(ConsistencyMode.Log)]
    public void With_republishing_every_update_reaches_99_percent_of_live_readers(ConsistencyMode mode)
    {
        // Republishing (2 min) several times between updates (10 min), under 10-minute median sessions.
        var r = Run(Small(mode) with { UpdateInterval = TimeSpan.FromMinutes(10), RepublishInterval = TimeSpan.FromMinutes(2) });
        Assert.Equal(r.Updates, r.UpdatesConverged);
        Assert.True(double.IsFinite(r.Converge99P99), "every update reached 99 % of live readers");
        Assert.True(r.StoringAtEnd > 0, "the item is still stored at the end");
        Assert.True(r.FractionCurrentAtNextUpdate >= 0.95, $"live readers holding an update before the next: {r.FractionCurrentAtNextUpdate:P1}");
        Assert.True(r.Reads > 0 && r.Puts > r.Updates, $"{r.Reads} reads, {r.Puts} puts");
    }

    [Fact]
    public void Without_republishing_the_item_is_lost_once_its_holders_have_left_and_readers_do_not_converge()
    {
        var r = Run(Losing(republish: null));

        // Every node it was put on has left, and nobody puts it again: from the sample where no live node stores it,
        // none does until the end.
        Assert.Equal(0, r.StoringAtEnd);
        var series = r.FractionSeries.ToList();
        var stored = series.FindIndex(s => s.Storing > 0);
        Assert.True(stored >= 0, "the put stored the item");
        var lost = series.FindIndex(stored, s => s.Storing == 0);
        Assert.True(lost >= 0, "no sample without a holder");
        Assert.All(r.FractionSeries.Skip(lost), s => Assert.Equal(0, s.Storing));

        // From then on no reader gains the update (a get that started before the loss may still finish: one poll and
        // a lookup later), so the fraction only falls as the readers that had it leave.
        var settled = r.FractionSeries.Skip(lost + 2).ToList();
        for (var i = 1; i < settled.Count; i++)
        {
            Assert.True(settled[i].Fraction <= settled[i - 1].Fraction, $"a reader gained the lost update at {settled[i].Seconds} s");
        }

        Assert.Equal(0, r.UpdatesConverged);
        Assert.True(r.FractionCurrentAtNextUpdate <= 0.05, $"live readers holding it at the end: {r.FractionCurrentAtNextUpdate:P1}");
        Assert.True(r.EmptyReads > 0, "reads found nothing once it was lost");
    }

    [Fact]
    public void With_republishing_the_same_churn_does_not_lose_the_item()
    {
        // The control of the test above: the same network and churn, the owner putting the item again every minute.
        var r = Run(Losing(republish: TimeSpan.FromMinutes(1)));
        Assert.True(r.StoringAtEnd > 0, "the item is stored at the end");
        Assert.True(r.FractionCurrentAtNextUpdate >= 0.8, $"live readers holding it at the end: {r.FractionCurrentAtNextUpdate:P1}");
        Assert.True(r.MeanFractionCurrent >= 0.8, $"time-averaged: {r.MeanFractionCurrent:P1}");
    }

    [Fact]
    public void A_sweep_run_in_parallel_gives_the_reports_of_one_run_at_a_time_and_one_csv_row_each()
    {
        var o = new ConsistencyOptions
        {
            Readers = 10,
            Routers = 2,
            Updates = 1,
            UpdateInterval = TimeSpan.FromMinutes(1),
            Settle = TimeSpan.FromSeconds(30),
            Churn = new ChurnModel(0.5, TimeSpan.FromMinutes(10)),
            Seed = 5,
        };
        static ConsistencyReport Virtual(ConsistencyReport r) => r with { WallSeconds = 0, FractionSeries = [] };
        var serial = ConsistencySweeps.Run(o, parallelism: 1);
        var parallel = ConsistencySweeps.Run(o, parallelism: 2);
        Assert.Equal(serial.AllReports().Select(Virtual), parallel.AllReports().Select(Virtual));
        Assert.Equal(ConsistencySweeps.Ks.Length * 2, serial.ByK.Count);
        Assert.Equal(ConsistencySweeps.RepublishMinutes.Length * 2, serial.ByRepublish.Count);
        Assert.All(parallel.AllReports(), r => Assert.Equal(0, r.ThreadViolations));

        // Both modes × (3 k + the 2 republish intervals the k sweep did not run): 10 runs, one row each plus the header.
        var csv = ConsistencySweeps.Csv(parallel.AllReports()).TrimEnd().Split('\n');
        Assert.Equal(11, csv.Length);
        Assert.StartsWith("mode,readers,k,republish_min,", csv[0], StringComparison.Ordinal);
        Assert.Equal(csv[0].Split(',').Length, csv[1].Replace("\"weibull:0.5,10m\"", "churn", StringComparison.Ordinal).Split(',').Length);
    }
}
