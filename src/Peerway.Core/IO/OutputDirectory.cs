using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Peerway.Core.IO;

/// <summary>
/// A directory we write downloads into, and the only way files below it are opened: one path component at a time with
/// openat(2) and O_NOFOLLOW (directories with O_DIRECTORY, missing ones made with mkdirat(2)), each file checked with
/// fstat(2) to be a regular file. A symbolic link planted anywhere in the output tree is therefore never followed (a
/// write cannot land outside the directory, nor truncate what the link points to), and a FIFO, socket or device is
/// refused instead of opened. The directory itself is the user's choice and may be reached through links. Linux
/// (x64, arm64, riscv64, loongarch64); elsewhere each component is inspected before it is opened (links are refused
/// as found, but a link swapped in between is not caught, and FIFOs are not recognised).
/// </summary>
public sealed partial class OutputDirectory : IDisposable
{
    private readonly SafeFileHandle? _handle;

    private OutputDirectory(string path, SafeFileHandle? handle)
    {
        Path = path;
        _handle = handle;
    }

    /// <summary>The directory's full path (used for messages and for the fallback outside Linux).</summary>
    public string Path { get; }

    /// <summary>Opens <paramref name="path"/> (created first, with its parents, when <paramref name="create"/>).</summary>
    public static OutputDirectory Open(string path, bool create)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = System.IO.Path.GetFullPath(path);
        if (create) Directory.CreateDirectory(full);
        if (!Native.IsSupported) return Directory.Exists(full) ? new OutputDirectory(full, null) : throw new DirectoryNotFoundException($"no such directory: {full}");
        var fd = Native.OpenAt(Native.CurrentDirectory, full, Native.ReadOnly | Native.Directory | Native.CloseOnExec, 0);
        if (fd.IsInvalid) throw Native.Error(full, Marshal.GetLastPInvokeError());
        return new OutputDirectory(full, fd);
    }

    /// <summary>The full path of <paramref name="components"/> below this directory (for messages).</summary>
    public string Describe(IReadOnlyList<string> components) => System.IO.Path.Combine([Path, .. components]);

    /// <summary>
    /// Opens the regular file at <paramref name="components"/> (relative, no "." or "..") for reading, and for writing
    /// when <paramref name="writable"/>; null when it, or a directory on the way, does not exist. Throws
    /// <see cref="OutputConflictException"/> for a symbolic link, a non-directory on the way, or a non-regular file.
    /// </summary>
    public SafeFileHandle? OpenExistingFile(IReadOnlyList<string> components, bool writable)
    {
        ArgumentNullException.ThrowIfNull(components);
        if (_handle is null) return Fallback.OpenExistingFile(this, components, writable);
        SafeFileHandle? parent = null;
        try
        {
            parent = WalkDirectories(components, create: false);
            if (parent is null) return null;
            var name = components[^1];
            var flags = (writable ? Native.ReadWrite : Native.ReadOnly) | Native.NoFollow | Native.NonBlocking | Native.CloseOnExec | Native.NoControllingTty;
            var fd = Native.OpenAt(parent, name, flags, 0);
            if (fd.IsInvalid)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Native.ENOENT) return null;
                throw Classify(parent, name, components, errno);
            }

            if (!Native.IsRegularFile(fd))
            {
                fd.Dispose();
                throw OutputConflictException.For(Describe(components), OutputConflict.NotRegularFile);
            }

            return fd;
        }
        finally
        {
            if (!ReferenceEquals(parent, _handle)) parent?.Dispose();
        }
    }

    /// <summary>
    /// Creates the regular file at <paramref name="components"/>, which must not exist (O_EXCL), and each missing
    /// directory on the way; opened for reading and writing. Throws <see cref="OutputConflictException"/> when anything
    /// is in the way (a link, a non-directory, or an entry that appeared since it was found absent).
    /// </summary>
    public SafeFileHandle CreateFile(IReadOnlyList<string> components)
    {
        ArgumentNullException.ThrowIfNull(components);
        if (_handle is null) return Fallback.CreateFile(this, components);
        SafeFileHandle? parent = null;
        try
        {
            parent = WalkDirectories(components, create: true)!;
            var name = components[^1];
            var fd = Native.OpenAt(parent, name, Native.ReadWrite | Native.Create | Native.Exclusive | Native.NoFollow | Native.CloseOnExec | Native.NoControllingTty, Native.FileMode);
            if (fd.IsInvalid) throw Classify(parent, name, components, Marshal.GetLastPInvokeError());
            return fd;
        }
        finally
        {
            if (!ReferenceEquals(parent, _handle)) parent?.Dispose();
        }
    }

    /// <summary>Opens each directory before the last component; null when one is missing and not to be created.</summary>
    private SafeFileHandle? WalkDirectories(IReadOnlyList<string> components, bool create)
    {
        if (components.Count == 0) throw new ArgumentException("no path below the output directory", nameof(components));
        var current = _handle!;
        try
        {
            for (var i = 0; i < components.Count - 1; i++)
            {
                var name = components[i];
                var prefix = components.Take(i + 1).ToArray();
                var next = Native.OpenAt(current, name, Native.ReadOnly | Native.Directory | Native.NoFollow | Native.CloseOnExec, 0);
                if (next.IsInvalid && Marshal.GetLastPInvokeError() == Native.ENOENT)
                {
                    if (!create) return DisposeUnlessRoot(current, null);
                    // EEXIST: created by someone else in between; whatever it is, the open below checks it.
                    if (Native.MkdirAt(current, Native.Encode(name), Native.DirectoryMode) != 0)
                    {
                        var errno = Marshal.GetLastPInvokeError();
                        if (errno != Native.EEXIST) throw Native.Error(Describe(prefix), errno);
                    }

                    next = Native.OpenAt(current, name, Native.ReadOnly | Native.Directory | Native.NoFollow | Native.CloseOnExec, 0);
                }

                if (next.IsInvalid) throw Classify(current, name, prefix, Marshal.GetLastPInvokeError());
                DisposeUnlessRoot(current, null);
                current = next;
            }

            return current;
        }
        catch
        {
            DisposeUnlessRoot(current, null);
            throw;
        }
    }

    private SafeFileHandle? DisposeUnlessRoot(SafeFileHandle handle, SafeFileHandle? result)
    {
        if (!ReferenceEquals(handle, _handle)) handle.Dispose();
        return result;
    }

    /// <summary>Turns a failed openat of <paramref name="name"/> into the conflict it reveals, or the I/O error it is.</summary>
    private Exception Classify(SafeFileHandle parent, string name, IReadOnlyList<string> components, int errno)
    {
        var shown = Describe(components);
        // O_NOFOLLOW on a link fails with ELOOP (ENOTDIR with O_DIRECTORY on some kernels): readlinkat tells for sure.
        if (Native.IsSymbolicLink(parent, name)) return OutputConflictException.For(shown, OutputConflict.SymbolicLink);
        return errno switch
        {
            Native.ENOTDIR => OutputConflictException.For(shown, OutputConflict.NotDirectory),
            Native.EISDIR or Native.ENXIO or Native.ELOOP => OutputConflictException.For(shown, OutputConflict.NotRegularFile),
            Native.EEXIST => OutputConflictException.For(shown, OutputConflict.Exists),
            _ => Native.Error(shown, errno),
        };
    }

    /// <summary>Closes the directory handle (there is none on the fallback path outside Linux). Idempotent.</summary>
    public void Dispose() => _handle?.Dispose();

    /// <summary>Outside Linux: inspect each component (lstat-like) before opening it by path.</summary>
    private static class Fallback
    {
        public static SafeFileHandle? OpenExistingFile(OutputDirectory root, IReadOnlyList<string> components, bool writable)
        {
            var path = Check(root, components, create: false);
            if (path is null || !File.Exists(path)) return null;
            return File.OpenHandle(path, FileMode.Open, writable ? FileAccess.ReadWrite : FileAccess.Read, FileShare.ReadWrite);
        }

        public static SafeFileHandle CreateFile(OutputDirectory root, IReadOnlyList<string> components)
        {
            var path = Check(root, components, create: true)!;
            return File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite);
        }

        private static string? Check(OutputDirectory root, IReadOnlyList<string> components, bool create)
        {
            var path = root.Path;
            for (var i = 0; i < components.Count; i++)
            {
                path = System.IO.Path.Combine(path, components[i]);
                var last = i == components.Count - 1;
                FileSystemInfo entry = new FileInfo(path);
                if (entry.LinkTarget is not null) throw OutputConflictException.For(path, OutputConflict.SymbolicLink);
                if (last)
                {
                    if (Directory.Exists(path)) throw OutputConflictException.For(path, OutputConflict.NotRegularFile);
                    return path;
                }

                if (File.Exists(path)) throw OutputConflictException.For(path, OutputConflict.NotDirectory);
                if (!Directory.Exists(path))
                {
                    if (!create) return null;
                    Directory.CreateDirectory(path);
                }
            }

            return path;
        }
    }

    /// <summary>The Linux system calls, with each architecture's flag values and struct stat layout.</summary>
    private static class Native
    {
        public const int ENOENT = 2;
        public const int ENXIO = 6;
        public const int EACCES = 13;
        public const int EEXIST = 17;
        public const int ENOTDIR = 20;
        public const int EISDIR = 21;
        public const int ELOOP = 40;

        public const int ReadOnly = 0;
        public const int ReadWrite = 2;
        public const int Create = 0x40;
        public const int Exclusive = 0x80;
        public const int NoControllingTty = 0x100;
        public const int NonBlocking = 0x800;
        public const int CloseOnExec = 0x80000;
        public const int FileMode = 0x1B6; // 0666, less the umask, as .NET creates files
        public const uint DirectoryMode = 0x1FF; // 0777, less the umask

        private const int TypeMask = 0xF000; // S_IFMT
        private const int RegularType = 0x8000; // S_IFREG

        /// <summary>x86-64 has its own O_DIRECTORY/O_NOFOLLOW values and stat layout; arm64, riscv64 and loongarch64 use asm-generic's.</summary>
        private static readonly bool X64 = RuntimeInformation.ProcessArchitecture == Architecture.X64;

        public static bool IsSupported { get; } = OperatingSystem.IsLinux()
            && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64 or Architecture.RiscV64 or Architecture.LoongArch64;

        public static int Directory => X64 ? 0x10000 : 0x4000;

        public static int NoFollow => X64 ? 0x20000 : 0x8000;

        /// <summary>Offset of st_mode in struct stat (x86-64: after st_dev, st_ino, st_nlink; generic: after st_dev, st_ino).</summary>
        private static int ModeOffset => X64 ? 24 : 16;

        public static SafeFileHandle CurrentDirectory { get; } = new(-100, ownsHandle: false); // AT_FDCWD

        public static byte[] Encode(string name) => Encoding.UTF8.GetBytes(name + "\0");

        public static SafeFileHandle OpenAt(SafeFileHandle directory, string name, int flags, int mode)
        {
            var fd = OpenAtNative(directory, Encode(name), flags, mode);
            return new SafeFileHandle((IntPtr)fd, ownsHandle: true);
        }

        public static bool IsRegularFile(SafeFileHandle fd)
        {
            var stat = new byte[256];
            int rc;
            try
            {
                rc = FStat(fd, stat);
            }
            catch (EntryPointNotFoundException)
            {
                // glibc before 2.33 exports only the versioned __fxstat (_STAT_VER: 1 on x86-64, 0 on generic).
                rc = FxStat(X64 ? 1 : 0, fd, stat);
            }

            if (rc != 0) throw Error("fstat", Marshal.GetLastPInvokeError());
            return (BitConverter.ToInt32(stat, ModeOffset) & TypeMask) == RegularType;
        }

        public static bool IsSymbolicLink(SafeFileHandle directory, string name) => ReadLinkAt(directory, Encode(name), new byte[1], 1) >= 0;

        public static Exception Error(string path, int errno) => errno == EACCES
            ? new UnauthorizedAccessException($"access to {path} is denied")
            : new IOException($"{path}: {Marshal.GetPInvokeErrorMessage(errno)}");

        [DllImport("libc", EntryPoint = "openat", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        private static extern int OpenAtNative(SafeFileHandle directory, byte[] path, int flags, int mode);

        [DllImport("libc", EntryPoint = "mkdirat", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int MkdirAt(SafeFileHandle directory, byte[] path, uint mode);

        [DllImport("libc", EntryPoint = "readlinkat", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        private static extern nint ReadLinkAt(SafeFileHandle directory, byte[] path, byte[] buffer, nuint size);

        [DllImport("libc", EntryPoint = "fstat", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        private static extern int FStat(SafeFileHandle fd, byte[] stat);

        [DllImport("libc", EntryPoint = "__fxstat", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        private static extern int FxStat(int version, SafeFileHandle fd, byte[] stat);
    }
}
