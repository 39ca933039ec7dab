using FsCheck;
using FsCheck.Fluent;

namespace Peerway.Simulation.Tests;

public sealed class ModelTests
{
    [Fact]
    public void Latency_is_log_normal_with_the_configured_median_symmetric_and_fixed_per_pair()
    {
        var model = new LatencyModel();
        var samples = new List<double>();
        for (var i = 0; i < 20_000; i++)
        {
            var d = model.DelayTicks(i, i * 7 + 1, seed: 5);
            Assert.Equal(d, model.DelayTicks(i * 7 + 1, i, seed: 5));
            Assert.Equal(d, model.DelayTicks(i, i * 7 + 1, seed: 5));
            samples.Add(TimeSpan.FromTicks(d).TotalMilliseconds);
        }

        samples.Sort();
        Assert.InRange(samples[samples.Count / 2], 47, 53);
        // σ = 0.6: p90 = 50·e^(1.2816·0.6) ≈ 108 ms.
        Assert.InRange(samples[samples.Count * 9 / 10], 100, 116);
        Assert.True(samples[0] >= 1);
    }

    [Fact]
    public void Weibull_sessions_have_the_configured_median()
    {
        var model = new ChurnModel(0.5, TimeSpan.FromMinutes(30));
        var random = new Random(1);
        var samples = Enumerable.Range(0, 20_000).Select(_ => model.NextSession(random).TotalMinutes).Order().ToList();
        Assert.InRange(samples[samples.Count / 2], 28, 32);
        // Shape < 1: heavy tail, the mean is well above the median (mean/median = Γ(3)/(ln 2)^2 ≈ 4.16).
        Assert.InRange(samples.Average() / 30, 3.5, 4.8);
    }

    [Theory]
    [InlineData("weibull:0.5,30m", 0.5, 1800)]
    [InlineData("weibull:0.3,2h", 0.3, 7200)]
    [InlineData("WEIBULL:0.6,600", 0.6, 600)]
    [InlineData("weibull:1,45s", 1, 45)]
    public void Churn_spec_parses(string text, double shape, double seconds)
    {
        Assert.True(ChurnModel.TryParse(text, out var m, out _));
        Assert.Equal(shape, m!.Shape);
        Assert.Equal(seconds, m.Median.TotalSeconds);
    }

    [Theory]
    [InlineData("")]
    [InlineData("exp:1,2")]
    [InlineData("weibull:0.5")]
    [InlineData("weibull:-1,30m")]
    [InlineData("weibull:0.5,0")]
    [InlineData("weibull:0.5,xm")]
    [InlineData("weibull:NaN,30m")]
    public void Bad_churn_spec_is_refused_with_a_message(string text)
    {
        Assert.False(ChurnModel.TryParse(text, out var m, out var error));
        Assert.Null(m);
        Assert.StartsWith("--churn", error);
    }

    [FsCheck.Xunit.Property]
    public Property Churn_parser_never_throws(string text) =>
        Prop.ToProperty(ChurnModel.TryParse(text ?? "", out var m, out var e) == (m is not null) && (m is not null || e.Length > 0));

    [Fact]
    public void Percentiles_use_nearest_rank()
    {
        var p = new Percentiles();
        foreach (var v in Enumerable.Range(1, 100).Reverse()) p.Add(v);
        Assert.Equal(50, p.Percentile(50));
        Assert.Equal(90, p.Percentile(90));
        Assert.Equal(99, p.Percentile(99));
        Assert.Equal(100, p.Percentile(100));
        Assert.Equal(50.5, p.Mean);
        Assert.True(double.IsNaN(new Percentiles().Percentile(50)));
    }
}
