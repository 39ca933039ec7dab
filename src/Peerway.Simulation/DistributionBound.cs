namespace Peerway.Simulation;

/// <summary>Upload and download capacity of one peer, in bytes per second (<see cref="double.PositiveInfinity"/>:
/// unlimited).</summary>
public readonly record struct PeerCapacity(double UploadBytesPerSecond, double DownloadBytesPerSecond);

/// <summary>Lower bounds on how fast a swarm can distribute a file, to compare a simulated run with.</summary>
public static class DistributionBound
{
    /// <summary>
    /// The minimum time for a seeder with upload <paramref name="seederUploadBytesPerSecond"/> to get a file of
    /// <paramref name="fileBytes"/> to every one of N leechers (R. Kumar and K. W. Ross, "Peer-Assisted File
    /// Distribution: The Minimum Distribution Time", IEEE HotWeb 2006, §3):
    /// T_min = max(F / u_s, F / d_min, N·F / (u_s + Σ u_i)) — the seeder must upload the file once, the slowest
    /// leecher must download it, and the N·F bytes received need N·F bytes of upload from everyone together. The
    /// paper shows a fluid schedule reaching the bound, so no protocol does better.
    /// </summary>
    /// <returns>The bound; zero when there is no leecher or the file is empty.</returns>
    public static TimeSpan MinimumDistributionTime(long fileBytes, double seederUploadBytesPerSecond, IReadOnlyCollection<PeerCapacity> leechers)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fileBytes);
        ArgumentNullException.ThrowIfNull(leechers);
        if (!(seederUploadBytesPerSecond > 0)) throw new ArgumentOutOfRangeException(nameof(seederUploadBytesPerSecond), seederUploadBytesPerSecond, "The seeder's upload must be positive.");
        if (leechers.Count == 0 || fileBytes == 0) return TimeSpan.Zero;
        var f = (double)fileBytes;
        var minDownload = double.PositiveInfinity;
        var totalUpload = seederUploadBytesPerSecond;
        foreach (var peer in leechers)
        {
            if (peer.UploadBytesPerSecond < 0 || double.IsNaN(peer.UploadBytesPerSecond)) throw new ArgumentOutOfRangeException(nameof(leechers), "A leecher's upload must not be negative.");
            if (!(peer.DownloadBytesPerSecond > 0)) throw new ArgumentOutOfRangeException(nameof(leechers), "A leecher's download must be positive.");
            minDownload = Math.Min(minDownload, peer.DownloadBytesPerSecond);
            totalUpload += peer.UploadBytesPerSecond;
        }

        var seconds = Math.Max(f / seederUploadBytesPerSecond, Math.Max(f / minDownload, leechers.Count * f / totalUpload));
        return TimeSpan.FromSeconds(seconds);
    }
}
