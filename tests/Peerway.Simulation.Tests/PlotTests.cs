using System.Xml.Linq;

namespace Peerway.Simulation.Tests;

public sealed class PlotTests
{
    [Fact]
    public void Svg_is_well_formed_with_one_line_per_series_and_a_log_axis()
    {
        var svg = SvgPlot.Line("t <&> title", "nodes", "rounds",
            [
                new PlotSeries("p50", [(100, 2), (1_000, 3), (10_000, 4)]),
                new PlotSeries("p90", [(100, 3), (1_000, 4), (10_000, double.NaN)]),
            ], logX: true);
        var doc = XDocument.Parse(svg);
        XNamespace ns = "http://www.w3.org/2000/svg";
        Assert.Equal(2, doc.Descendants(ns + "polyline").Count());
        Assert.Equal(5, doc.Descendants(ns + "circle").Count()); // the NaN point is left out
        var labels = doc.Descendants(ns + "text").Select(t => t.Value).ToList();
        Assert.Contains("t <&> title", labels);
        Assert.Contains("1,000", labels);
        Assert.Contains("10,000", labels);
        Assert.Contains("p90", labels);
        Assert.Equal(svg, SvgPlot.Line("t <&> title", "nodes", "rounds",
            [
                new PlotSeries("p50", [(100, 2), (1_000, 3), (10_000, 4)]),
                new PlotSeries("p90", [(100, 3), (1_000, 4), (10_000, double.NaN)]),
            ], logX: true));
    }

    [Fact]
    public void Empty_plot_still_renders()
    {
        var doc = XDocument.Parse(SvgPlot.Line("empty", "x", "y", []));
        Assert.NotNull(doc.Root);
    }

    [Fact]
    public void Png_is_rendered_with_a_log_axis()
    {
        var path = Path.Combine(Path.GetTempPath(), $"peerway-plot-{Guid.NewGuid():N}.png");
        try
        {
            PngPlot.Line(path, "rounds", "nodes", "rounds", [new PlotSeries("p50", [(100, 2), (1_000, 3), (100_000, 4)])], logX: true);
            var bytes = File.ReadAllBytes(path);
            Assert.True(bytes.Length > 2_000, $"{bytes.Length} bytes");
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
