using System.Collections.Concurrent;
using System.Reflection;
using Xunit.Sdk;

namespace Peerway.TestSupport;

/// <summary>
/// Fails a test that leaves a socket open (STYLE.md §9: each test disposes what it starts). Before the test it notes
/// the process's open sockets (the <c>socket:[inode]</c> links in <c>/proc/self/fd</c>); after it, every socket the
/// test opened must be closed. Put it on the assembly (<c>[assembly: NoLeakedSockets]</c>) together with
/// <c>[assembly: CollectionBehavior(DisableTestParallelization = true)]</c>: the count is per process, so a test
/// running in parallel would be blamed for another's sockets.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly | AttributeTargets.Class | AttributeTargets.Method, AllowMultiple = false)]
public sealed class NoLeakedSocketsAttribute : BeforeAfterTestAttribute
{
    // A socket closed by Dispose while another thread is still inside a call on it is released when that call
    // returns: give such stragglers this long to go before calling the socket leaked. A leak never goes, so a long
    // grace costs only the leaking test; 5 s was too short on a machine at load 60–90 (a child process's exit, a
    // Kestrel shutdown and the finaliser thread all wait for CPU).
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(30);

    // One attribute instance serves every test of the assembly; tests do not run in parallel (see above).
    private readonly ConcurrentDictionary<MethodInfo, HashSet<string>> _before = new();

    public override void Before(MethodInfo methodUnderTest)
    {
        ArgumentNullException.ThrowIfNull(methodUnderTest);
        _before[methodUnderTest] = OpenSockets.Snapshot();
    }

    public override void After(MethodInfo methodUnderTest)
    {
        ArgumentNullException.ThrowIfNull(methodUnderTest);
        if (!_before.TryRemove(methodUnderTest, out var before)) return;
        var leaked = OpenSockets.OpenedSince(before, Grace);
        if (leaked.Count > 0)
        {
            throw new InvalidOperationException($"{methodUnderTest.DeclaringType?.Name}.{methodUnderTest.Name} left {leaked.Count} socket(s) open: {string.Join(", ", leaked)}");
        }
    }
}

/// <summary>The sockets this process has open, as <c>/proc/self/fd</c> lists them (Linux).</summary>
public static class OpenSockets
{
    /// <summary>The <c>socket:[inode]</c> targets of this process's file descriptors now.</summary>
    public static HashSet<string> Snapshot()
    {
        var sockets = new HashSet<string>(StringComparer.Ordinal);
        foreach (var fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            string? target;
            try
            {
                target = new FileInfo(fd).LinkTarget;
            }
            catch (IOException)
            {
                continue; // closed between the listing and the read
            }

            if (target is not null && target.StartsWith("socket:", StringComparison.Ordinal)) sockets.Add(target);
        }

        return sockets;
    }

    /// <summary>
    /// The sockets open now that were not in <paramref name="before"/>, waiting up to <paramref name="grace"/> (real
    /// time; the kernel's state is what is observed) for ones being closed to go.
    /// </summary>
    public static IReadOnlyList<string> OpenedSince(HashSet<string> before, TimeSpan grace)
    {
        ArgumentNullException.ThrowIfNull(before);
        var deadline = DateTime.UtcNow + grace;
        while (true)
        {
            var opened = Snapshot().Where(s => !before.Contains(s)).Order(StringComparer.Ordinal).ToList();
            if (opened.Count == 0 || DateTime.UtcNow > deadline) return opened;
            // Polling the kernel's table (nothing to wait on): a short pause, not a spin that takes a core from the
            // very threads that are closing the sockets.
            Thread.Sleep(20);
        }
    }
}
