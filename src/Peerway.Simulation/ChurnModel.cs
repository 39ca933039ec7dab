using System.Globalization;

namespace Peerway.Simulation;

/// <summary>
/// Session times drawn from a Weibull distribution, the shape measured for P2P networks (Stutzbach and Rejaie,
/// "Understanding churn in peer-to-peer networks", IMC 2006: shapes 0.3–0.6, i.e. many short sessions and a long tail).
/// When a session ends the node leaves silently and a fresh node (new address, new id) joins, so the population stays
/// at N.
/// </summary>
public sealed record ChurnModel(double Shape, TimeSpan Median)
{
    /// <summary>Throws when the shape is not in (0, 10] or the median is not positive.</summary>
    public void Validate()
    {
        if (Shape is <= 0 or > 10 || double.IsNaN(Shape)) throw new ArgumentOutOfRangeException(nameof(Shape), Shape, "The Weibull shape must be in (0, 10].");
        if (Median <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Median), Median, "The median session time must be positive.");
    }

    /// <summary>Weibull scale λ for the median: median = λ (ln 2)^(1/k).</summary>
    public double ScaleSeconds => Median.TotalSeconds / Math.Pow(Math.Log(2), 1 / Shape);

    /// <summary>A session length: inverse CDF, λ (−ln U)^(1/k).</summary>
    public TimeSpan NextSession(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var u = 1 - random.NextDouble(); // (0, 1]
        var seconds = ScaleSeconds * Math.Pow(-Math.Log(u), 1 / Shape);
        return TimeSpan.FromSeconds(Math.Min(seconds, TimeSpan.MaxValue.TotalSeconds / 4));
    }

    /// <summary>Parses <c>weibull:SHAPE,MEDIAN</c>; MEDIAN is seconds, or a number with s, m or h (e.g. <c>30m</c>).</summary>
    public static bool TryParse(string text, out ChurnModel? model, out string error)
    {
        model = null;
        error = "";
        const string prefix = "weibull:";
        if (text is null || !text.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
        {
            error = "--churn must look like weibull:SHAPE,MEDIAN (e.g. weibull:0.5,30m)";
            return false;
        }

        var parts = text[prefix.Length..].Split(',');
        if (parts.Length != 2
            || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var shape)
            || !TryParseDuration(parts[1], out var median))
        {
            error = "--churn must look like weibull:SHAPE,MEDIAN (e.g. weibull:0.5,30m)";
            return false;
        }

        if (shape is <= 0 or > 10 || double.IsNaN(shape))
        {
            error = "--churn shape must be in (0, 10]";
            return false;
        }

        if (median <= TimeSpan.Zero)
        {
            error = "--churn median must be positive";
            return false;
        }

        model = new ChurnModel(shape, median);
        return true;
    }

    /// <summary>Parses a positive duration: seconds, or a number with s, m or h.</summary>
    public static bool TryParseDuration(string text, out TimeSpan value)
    {
        value = default;
        ArgumentNullException.ThrowIfNull(text);
        text = text.Trim();
        if (text.Length == 0) return false;
        var unit = 1.0;
        var last = char.ToLowerInvariant(text[^1]);
        if (last is 's' or 'm' or 'h')
        {
            unit = last switch { 's' => 1, 'm' => 60, _ => 3600 };
            text = text[..^1];
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || double.IsNaN(n) || n <= 0 || n * unit > 1e9) return false;
        value = TimeSpan.FromSeconds(n * unit);
        return true;
    }

    /// <summary>"weibull:SHAPE,MEDIANm", as the CLI's --churn reads it.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"weibull:{Shape:0.###},{Median.TotalMinutes:0.###}m");
}
