namespace Peerway.Simulation;

/// <summary>
/// One-way latency between two hosts: log-normal across pairs (median <see cref="Median"/>, shape
/// <see cref="Sigma"/>), fixed for a given pair and seed, the same in both directions. Drawn from a hash, so nothing is
/// stored per pair (10^6 hosts would have 10^12 pairs).
/// </summary>
public sealed record LatencyModel
{
    /// <summary>Median one-way delay (wide-area measurements put it around tens of milliseconds).</summary>
    public TimeSpan Median { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>σ of ln(delay); 0.6 gives p10 ≈ 23 ms and p99 ≈ 200 ms for a 50 ms median.</summary>
    public double Sigma { get; init; } = 0.6;

    /// <summary>Floor on any delay (the speed of light still applies).</summary>
    public TimeSpan Minimum { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>Throws when a parameter is out of range.</summary>
    public void Validate()
    {
        if (Median <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Median), Median, "The median latency must be positive.");
        if (Sigma is < 0 or > 4 || double.IsNaN(Sigma)) throw new ArgumentOutOfRangeException(nameof(Sigma), Sigma, "Sigma must be in [0, 4].");
        if (Minimum < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Minimum), Minimum, "The minimum latency must be non-negative.");
    }

    /// <summary>The delay between hosts <paramref name="a"/> and <paramref name="b"/> (symmetric) in ticks.</summary>
    public long DelayTicks(long a, long b, int seed)
    {
        var lo = Math.Min(a, b);
        var hi = Math.Max(a, b);
        var h1 = Hash.Mix((ulong)lo * 0x9E3779B97F4A7C15UL ^ (ulong)hi ^ ((ulong)(uint)seed << 32));
        var h2 = Hash.Mix(h1 ^ 0xD1B54A32D192ED03UL);
        // Box–Muller on two uniforms in (0, 1].
        var u1 = ((h1 >> 11) + 1) * (1.0 / (1UL << 53));
        var u2 = (h2 >> 11) * (1.0 / (1UL << 53));
        var z = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        var ticks = (long)(Median.Ticks * Math.Exp(Sigma * z));
        return Math.Max(ticks, Minimum.Ticks);
    }
}

/// <summary>SplitMix64 finaliser: a cheap, well-mixed 64-bit hash.</summary>
internal static class Hash
{
    public static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
