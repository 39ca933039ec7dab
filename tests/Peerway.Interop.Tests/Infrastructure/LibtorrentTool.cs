using System.Diagnostics;

namespace Peerway.Interop.Tests.Infrastructure;

/// <summary>
/// libtorrent-rasterbar 2.0 through Debian's python3-libtorrent, driven by tests/interop-peers/lt-peer.py. It is a Python
/// module, not a program on PATH, so <see cref="RequiredTool"/> cannot find it: this probes `lt-peer.py probe` (an
/// `import libtorrent` under the system interpreter; pyenv's python3 earlier on PATH does not see Debian's modules).
/// </summary>
internal static class LibtorrentTool
{
    /// <summary>The system interpreter python3-libtorrent installs into.</summary>
    public const string Python = "/usr/bin/python3";

    private static readonly Lazy<string?> Version = new(Probe);

    public static string? DriverPath =>
        RepoRoot.TryFind() is { } root ? Path.Combine(root, "tests", "interop-peers", "lt-peer.py") : null;

    /// <summary>"libtorrent 2.0.8.0", or null when the module cannot be imported.</summary>
    public static string? InstalledVersion => Version.Value;

    /// <summary>The driver script; fails the test (CI) when python3-libtorrent is missing.</summary>
    public static string Require()
    {
        if (InstalledVersion is null)
        {
            Assert.Fail("python3-libtorrent is not installed (apt-get install python3-libtorrent); ./test.sh installs it.");
        }

        return DriverPath!;
    }

    private static string? Probe()
    {
        var driver = DriverPath;
        if (driver is null || !File.Exists(Python) || !File.Exists(driver)) return null;
        using var p = Process.Start(new ProcessStartInfo(Python, [driver, "probe"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        });
        if (p is null) return null;
        var stdout = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(30_000))
        {
            p.Kill(entireProcessTree: true);
            return null;
        }

#pragma warning disable VSTHRD002 // the process has exited, so its output has been read to the end
        return p.ExitCode == 0 ? stdout.Result.Trim() : null;
#pragma warning restore VSTHRD002
    }
}

/// <summary>A fact that needs python3-libtorrent: skipped when it is missing, unless CI=true (then it runs and fails).</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
internal sealed class RequiresLibtorrentFactAttribute : FactAttribute
{
    public RequiresLibtorrentFactAttribute()
    {
        if (!RequiredTool.IsCi && LibtorrentTool.InstalledVersion is null)
        {
            Skip = "not installed: python3-libtorrent (run ./test.sh; under CI=true this fails)";
        }
    }
}
