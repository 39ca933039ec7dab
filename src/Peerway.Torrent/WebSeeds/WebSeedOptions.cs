namespace Peerway.Torrent.WebSeeds;

/// <summary>How a torrent uses its BEP 19 web seeds.</summary>
public sealed record WebSeedOptions
{
    /// <summary>HTTP requests in flight per web seed (each on its own keep-alive connection of the HttpClient's pool).</summary>
    public int ConcurrentRequests { get; init; } = 4;

    /// <summary>Bytes asked for in one round of a request worker (whole blocks; split per file for a multi-file torrent).</summary>
    public int RequestBytes { get; init; } = 1024 * 1024;

    /// <summary>A request whose whole body has not arrived in this time fails (a slow drip counts as an error).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>After a failure the seed waits this long, doubling per consecutive failure, up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan Backoff { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Longest wait between attempts after failures.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Consecutive failures (errors, or pieces that fail their hash) after which the seed is dropped for good.</summary>
    public int MaxFailures { get; init; } = 5;

    /// <summary>Throws <see cref="ArgumentException"/> for a setting out of range.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(ConcurrentRequests, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(RequestBytes, Metainfo.TorrentLimits.BlockLength);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(RequestTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(Backoff, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxBackoff, Backoff);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxFailures, 1);
    }
}
