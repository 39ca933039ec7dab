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

    private ConsistencyReport Run(ConsistencyOptions o)
    {
        var r = ConsistencySimulator.Run(o);
        output.WriteLine(ConsistencyReport.Table([r]));
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
}
