using System.Globalization;

namespace Peerway.Simulation;

/// <summary>The same line charts as <see cref="SvgPlot"/>, rendered to PNG with ScottPlot (SkiaSharp).</summary>
internal static class PngPlot
{
    /// <summary>Writes the chart as <paramref name="name"/>.svg (<see cref="SvgPlot"/>) and .png into
    /// <paramref name="directory"/>; returns both paths.</summary>
    public static string[] WriteBoth(string directory, string name, string title, string xLabel, string yLabel, IReadOnlyList<PlotSeries> series, bool logX, double? yMin, double? yMax)
    {
        var svg = Path.Combine(directory, name + ".svg");
        File.WriteAllText(svg, SvgPlot.Line(title, xLabel, yLabel, series, logX, yMin, yMax));
        var png = Path.Combine(directory, name + ".png");
        Line(png, title, xLabel, yLabel, series, logX, yMin, yMax);
        return [svg, png];
    }

    public static void Line(string path, string title, string xLabel, string yLabel, IReadOnlyList<PlotSeries> series, bool logX = false, double? yMin = null, double? yMax = null)
    {
        ArgumentNullException.ThrowIfNull(series);
        var plot = new ScottPlot.Plot();
        plot.Title(title);
        plot.XLabel(logX ? xLabel + " (log scale)" : xLabel);
        plot.YLabel(yLabel);
        foreach (var s in series)
        {
            var points = s.Points.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y) && (!logX || p.X > 0)).OrderBy(p => p.X).ToArray();
            if (points.Length == 0) continue;
            var xs = points.Select(p => logX ? Math.Log10(p.X) : p.X).ToArray();
            var scatter = plot.Add.Scatter(xs, points.Select(p => p.Y).ToArray());
            scatter.LegendText = s.Name;
        }

        if (logX)
        {
            // Plot log10(x) and label the ticks with x itself.
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                LabelFormatter = v => Math.Pow(10, v).ToString("#,0.##", CultureInfo.InvariantCulture),
                MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                IntegerTicksOnly = true,
            };
        }

        if (yMin is { } lo && yMax is { } hi) plot.Axes.SetLimitsY(lo, hi);
        plot.ShowLegend(ScottPlot.Alignment.LowerLeft);
        plot.SavePng(path, 720, 440);
    }
}
