using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Peerway.Core.IO;

public sealed partial class OutputDirectory
{
    /// <summary>
    /// Makes the directory's entries durable: fsync(2) on the directory itself. fsync(2): "Calling fsync() does not
    /// necessarily ensure that the entry in the directory containing the file has also reached disk. For that an
    /// explicit fsync() on a file descriptor for the directory is also needed." So a write-temp, fsync, rename(2)
    /// replacement is durable only once the directory is synced too. Outside Linux, and on a file system that cannot
    /// sync a directory (EINVAL), this does nothing.
    /// </summary>
    public static void Sync(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!Native.IsSupported) return;
        var full = System.IO.Path.GetFullPath(directory);
        using var fd = Native.OpenAt(Native.CurrentDirectory, full, Native.ReadOnly | Native.Directory | Native.CloseOnExec, 0);
        if (fd.IsInvalid) throw Native.Error(full, Marshal.GetLastPInvokeError());
        if (FSync(fd) != 0 && Marshal.GetLastPInvokeError() is var errno && errno != EINVAL) throw Native.Error(full, errno);
    }

    private const int EINVAL = 22;

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int FSync(SafeFileHandle fd);
}
