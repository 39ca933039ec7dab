using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Peerway.Torrent.Storage;

/// <summary>
/// Linux O_DIRECT for verified-piece writes: the bytes go from our buffer to the device without first being copied into
/// freshly allocated page-cache pages (on a VM whose free pages are handed back to the host, filling new page-cache
/// pages costs more than the disk write itself). .NET has no O_DIRECT open flag on Unix, so the flag is added with
/// fcntl(F_SETFL) (fcntl(2): O_DIRECT can be changed after open). O_DIRECT needs the buffer address, the file offset
/// and the length aligned to the device's logical block size; <see cref="Alignment"/> is a safe upper bound.
/// </summary>
internal static partial class DirectIo
{
    /// <summary>open(2): "typically 4096 bytes" suffices for every Linux filesystem's logical block size.</summary>
    public const int Alignment = 4096;

    private const int GetFlags = 3; // F_GETFL
    private const int SetFlags = 4; // F_SETFL

    /// <summary>O_DIRECT's value differs by architecture (asm-generic: 0x4000; arm/arm64: 0x10000).</summary>
    private static int DirectFlag => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x10000 : 0x4000;

    /// <summary>
    /// Opens a second, write-only handle with O_DIRECT on the file <paramref name="file"/> is open on; null where
    /// unsupported. It is reopened through /proc/self/fd (proc(5)), not by path: the same file, whatever its path now is.
    /// </summary>
    public static SafeFileHandle? TryOpenForDirectWrites(SafeFileHandle file)
    {
        if (!OperatingSystem.IsLinux()) return null;
        SafeFileHandle? handle = null;
        try
        {
            handle = File.OpenHandle(string.Create(CultureInfo.InvariantCulture, $"/proc/self/fd/{file.DangerousGetHandle()}"), FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
            var flags = Fcntl(handle, GetFlags, 0);
            if (flags < 0 || Fcntl(handle, SetFlags, flags | DirectFlag) < 0) // EINVAL: the filesystem has no O_DIRECT.
            {
                handle.Dispose();
                return null;
            }

            return handle;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException)
        {
            handle?.Dispose();
            return null;
        }
    }

    [SuppressMessage("Interoperability", "CA2101", Justification = "No string parameters.")]
    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Fcntl(SafeFileHandle fd, int cmd, int arg);
}
