namespace Peerway.Simulation;

/// <summary>Collects samples and reports exact percentiles (nearest-rank). Samples are few enough (one per lookup) to
/// keep them all.</summary>
internal sealed class Percentiles
{
    private readonly List<double> _samples = [];
    private bool _sorted = true;

    public int Count => _samples.Count;

    public void Add(double value)
    {
        _samples.Add(value);
        _sorted = false;
    }

    public double Mean => _samples.Count == 0 ? double.NaN : _samples.Average();

    /// <summary>Nearest-rank percentile, <paramref name="p"/> in [0, 100]; NaN when empty.</summary>
    public double Percentile(double p)
    {
        if (_samples.Count == 0) return double.NaN;
        if (!_sorted)
        {
            _samples.Sort();
            _sorted = true;
        }

        var rank = (int)Math.Ceiling(p / 100 * _samples.Count);
        return _samples[Math.Clamp(rank - 1, 0, _samples.Count - 1)];
    }
}
