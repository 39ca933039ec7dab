namespace Peerway.Torrent.Storage;

/// <summary>
/// The kernel's id of the current boot (Linux: <c>/proc/sys/kernel/random/boot_id</c>, a random UUID drawn at every
/// boot; proc(5)). Bytes written to a file are in the page cache until writeback: a process's crash keeps them, only a
/// kernel crash or a power loss loses them, and either means a new boot. So a resume record written in this boot may
/// trust pieces that were never fsynced; one from another boot may not.
/// </summary>
internal static class BootId
{
    private static readonly Lazy<string?> CurrentId = new(Read);

    /// <summary>This boot's id; null where the system has none (then the data is fsynced at every resume save).</summary>
    public static string? Current => CurrentId.Value;

    private static string? Read()
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            var id = File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
            return id.Length is > 0 and <= 64 ? id : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // /proc not mounted (a container without it): no boot id, so every save fsyncs, as before.
            return null;
        }
    }
}
