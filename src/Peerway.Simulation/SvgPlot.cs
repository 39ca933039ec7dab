using System.Globalization;
using System.Security;
using System.Text;

namespace Peerway.Simulation;

/// <summary>A named line of (x, y) points.</summary>
internal sealed record PlotSeries(string Name, IReadOnlyList<(double X, double Y)> Points);

/// <summary>Line charts as standalone SVG, written by hand: no dependency, no native library, byte-identical output
/// for identical input.</summary>
internal static class SvgPlot
{
    private const int Width = 720;
    private const int Height = 440;
    private const int Left = 70;
    private const int Right = 190;
    private const int Top = 40;
    private const int Bottom = 60;
    private static readonly string[] Colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"];

    public static string Line(string title, string xLabel, string yLabel, IReadOnlyList<PlotSeries> series, bool logX = false, double? yMin = null, double? yMax = null)
    {
        ArgumentNullException.ThrowIfNull(series);
        var points = series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y) && (!logX || p.X > 0)).ToList();
        double x0 = 0, x1 = 1, y0 = yMin ?? 0, y1 = yMax ?? 1;
        if (points.Count > 0)
        {
            x0 = points.Min(p => p.X);
            x1 = points.Max(p => p.X);
            y0 = yMin ?? Math.Min(0, points.Min(p => p.Y));
            y1 = yMax ?? points.Max(p => p.Y) * 1.1;
        }

        if (logX)
        {
            x0 = Math.Pow(10, Math.Floor(Math.Log10(x0)));
            x1 = Math.Pow(10, Math.Ceiling(Math.Log10(x1)));
        }

        if (x1 <= x0) x1 = x0 + 1;
        if (y1 <= y0) y1 = y0 + 1;
        var plotW = Width - Left - Right;
        var plotH = Height - Top - Bottom;
        double Sx(double x) => Left + plotW * (logX ? (Math.Log10(x) - Math.Log10(x0)) / (Math.Log10(x1) - Math.Log10(x0)) : (x - x0) / (x1 - x0));
        double Sy(double y) => Top + plotH * (1 - (y - y0) / (y1 - y0));

        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(ci, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" font-family=\"sans-serif\" font-size=\"12\">");
        sb.AppendLine(ci, $"<rect width=\"{Width}\" height=\"{Height}\" fill=\"white\"/>");
        sb.AppendLine(ci, $"<text x=\"{Width / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{Esc(title)}</text>");

        // Grid and ticks.
        foreach (var x in logX ? LogTicks(x0, x1) : NiceTicks(x0, x1))
        {
            var px = Sx(x);
            sb.AppendLine(ci, $"<line x1=\"{px:0.#}\" y1=\"{Top}\" x2=\"{px:0.#}\" y2=\"{Top + plotH}\" stroke=\"#ddd\"/>");
            sb.AppendLine(ci, $"<text x=\"{px:0.#}\" y=\"{Top + plotH + 16}\" text-anchor=\"middle\">{Esc(Format(x))}</text>");
        }

        foreach (var y in NiceTicks(y0, y1))
        {
            var py = Sy(y);
            sb.AppendLine(ci, $"<line x1=\"{Left}\" y1=\"{py:0.#}\" x2=\"{Left + plotW}\" y2=\"{py:0.#}\" stroke=\"#ddd\"/>");
            sb.AppendLine(ci, $"<text x=\"{Left - 6}\" y=\"{py + 4:0.#}\" text-anchor=\"end\">{Esc(Format(y))}</text>");
        }

        sb.AppendLine(ci, $"<rect x=\"{Left}\" y=\"{Top}\" width=\"{plotW}\" height=\"{plotH}\" fill=\"none\" stroke=\"black\"/>");
        sb.AppendLine(ci, $"<text x=\"{Left + plotW / 2}\" y=\"{Height - 18}\" text-anchor=\"middle\">{Esc(xLabel)}{(logX ? " (log scale)" : "")}</text>");
        sb.AppendLine(ci, $"<text x=\"18\" y=\"{Top + plotH / 2}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {Top + plotH / 2})\">{Esc(yLabel)}</text>");

        for (var i = 0; i < series.Count; i++)
        {
            var color = Colors[i % Colors.Length];
            var pts = series[i].Points.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y) && (!logX || p.X > 0)).OrderBy(p => p.X).ToList();
            if (pts.Count > 1)
            {
                sb.Append(ci, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"");
                sb.AppendJoin(' ', pts.Select(p => string.Create(ci, $"{Sx(p.X):0.#},{Sy(p.Y):0.#}")));
                sb.AppendLine("\"/>");
            }

            foreach (var p in pts) sb.AppendLine(ci, $"<circle cx=\"{Sx(p.X):0.#}\" cy=\"{Sy(p.Y):0.#}\" r=\"3.5\" fill=\"{color}\"/>");
            var ly = Top + 10 + i * 20;
            sb.AppendLine(ci, $"<line x1=\"{Width - Right + 15}\" y1=\"{ly}\" x2=\"{Width - Right + 40}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"/>");
            sb.AppendLine(ci, $"<text x=\"{Width - Right + 46}\" y=\"{ly + 4}\">{Esc(series[i].Name)}</text>");
        }

        sb.AppendLine("</svg>");
        return sb.ToString();
    }

    private static string Esc(string s) => SecurityElement.Escape(s) ?? "";

    private static string Format(double v) =>
        Math.Abs(v) >= 1000 ? v.ToString("#,0", CultureInfo.InvariantCulture) : v.ToString("0.##", CultureInfo.InvariantCulture);

    private static IEnumerable<double> LogTicks(double lo, double hi)
    {
        for (var decade = lo; decade <= hi * 1.0001; decade *= 10)
        {
            foreach (var m in new[] { 1.0, 2, 5 })
            {
                var v = decade * m;
                if (v >= lo * 0.9999 && v <= hi * 1.0001) yield return v;
            }
        }
    }

    private static IEnumerable<double> NiceTicks(double lo, double hi)
    {
        var raw = (hi - lo) / 6;
        var mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        var step = new[] { 1.0, 2, 2.5, 5, 10 }.Select(m => m * mag).First(s => s >= raw);
        for (var v = Math.Ceiling(lo / step) * step; v <= hi + step * 1e-9; v += step) yield return Math.Round(v, 10);
    }
}
