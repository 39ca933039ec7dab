using Peerway.Core.IO;

namespace Peerway.Node;

/// <summary>Reads and atomically replaces small state files (the DHT routing table snapshot).</summary>
public static class StateFile
{
    /// <summary>Largest state file read (a routing table of 160 buckets × 8 contacts is a few kilobytes).</summary>
    public const int MaxBytes = 4 * 1024 * 1024;

    /// <summary>The file's bytes, or null when it does not exist. Throws <see cref="InvalidDataException"/> when too large.</summary>
    public static byte[]? TryRead(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var info = new FileInfo(path);
        if (!info.Exists) return null;
        if (info.Length > MaxBytes)
        {
            throw new InvalidDataException($"state file {path} is {info.Length} bytes, more than the {MaxBytes} allowed");
        }

        return File.ReadAllBytes(path);
    }

    /// <summary>fsync(2) of files written with <c>durable: false</c> (those still there), then of their directory.</summary>
    public static void Sync(string directory, IEnumerable<string> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        foreach (var file in files)
        {
            try
            {
                using var fs = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
                fs.Flush(flushToDisk: true);
            }
            catch (FileNotFoundException)
            {
                // Deleted since: the directory sync below makes that durable.
            }
        }

        OutputDirectory.Sync(directory);
    }

    /// <summary>
    /// Replaces <paramref name="path"/> with <paramref name="data"/> so a crash leaves either the old or the new file,
    /// never a torn one: write a temporary file in the same directory, fsync it, rename it over the target, then fsync
    /// the directory so the rename itself is durable (fsync(2)) before the caller acknowledges the change.
    /// </summary>
    /// <param name="durable">
    /// False: write and rename without the fsyncs — still atomic for every reader and across a killed process (the
    /// kernel holds the data), durable against a power loss only once the caller syncs it (<see cref="Sync"/>).
    /// </param>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> data, bool durable = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(data);
                fs.Flush(flushToDisk: durable); // fsync before the rename, so the rename never exposes unwritten data
            }

            File.Move(temp, full, overwrite: true); // rename(2): atomic on POSIX file systems
            if (durable) OutputDirectory.Sync(dir);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
