using System.Diagnostics;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Two network namespaces joined by a veth pair, <see cref="AddressA"/> on one side and <see cref="AddressB"/> on the
/// other, each also with its loopback up and no other interface or route: nothing can leave the machine. Programs that
/// ignore 127/8 peers and DHT nodes as "martian" (transmission) talk over the veth. Both namespaces are deleted on
/// dispose (which also destroys the veth pair), including when creation fails half-way.
/// </summary>
internal sealed class VethNamespaces : IAsyncDisposable
{
    public const string AddressA = "10.77.1.1";
    public const string AddressB = "10.77.1.2";

    private readonly List<string> _created = [];

    private VethNamespaces(string tag)
    {
        NameA = $"tint-{tag}-a";
        NameB = $"tint-{tag}-b";
    }

    public string NameA { get; }

    public string NameB { get; }

    /// <param name="mtu">The veth MTU; null keeps the kernel default (1500).</param>
    public static VethNamespaces Create(int? mtu = null)
    {
        TorrentInterop.Require("ip");
        Assert.True(Environment.UserName == "root", "these interop tests need root to create network namespaces (./test.sh runs as root in CI)");
        var tag = Guid.NewGuid().ToString("N")[..8];
        var pair = new VethNamespaces(tag);
        try
        {
            // Interface names are limited to 15 characters (IFNAMSIZ - 1).
            string vethA = $"tint{tag}a", vethB = $"tint{tag}b";
            foreach (var ns in new[] { pair.NameA, pair.NameB })
            {
                Run("netns", "add", ns);
                pair._created.Add(ns);
            }

            // Both ends are created directly inside their namespaces: nothing appears in the root namespace.
            Run("link", "add", vethA, "netns", pair.NameA, "type", "veth", "peer", "name", vethB, "netns", pair.NameB);
            foreach (var (ns, veth, address) in new[] { (pair.NameA, vethA, AddressA), (pair.NameB, vethB, AddressB) })
            {
                Run("-n", ns, "addr", "add", address + "/24", "dev", veth);
                if (mtu is { } m) Run("-n", ns, "link", "set", veth, "mtu", m.ToString(System.Globalization.CultureInfo.InvariantCulture));
                Run("-n", ns, "link", "set", "lo", "up");
                Run("-n", ns, "link", "set", veth, "up");
            }

            return pair;
        }
        catch
        {
            pair.Delete();
            throw;
        }
    }

    internal static void Run(params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo("ip", args) { RedirectStandardError = true, UseShellExecute = false })!;
        var err = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(10_000)) p.Kill(true);
        p.WaitForExit();
#pragma warning disable VSTHRD002 // the process has exited, so its error output has been read to the end
        Assert.True(p.ExitCode == 0, $"ip {string.Join(' ', args)} failed: {err.Result}");
#pragma warning restore VSTHRD002
    }

    /// <summary>Starts <paramref name="program"/> inside namespace A (<c>ip netns exec</c> execs it: same pid, killed on dispose).</summary>
    public RunningProcess StartInA(TorrentInterop env, string program, IEnumerable<string> args) =>
        env.Start("ip", ["netns", "exec", NameA, program, .. args]);

    public RunningProcess StartInB(TorrentInterop env, string program, IEnumerable<string> args) =>
        env.Start("ip", ["netns", "exec", NameB, program, .. args]);

    public RunningProcess StartPeerwayInA(TorrentInterop env, params string[] args) => StartInA(env, env.Launcher, args);

    private void Delete()
    {
        foreach (var ns in _created)
        {
            using var p = Process.Start(new ProcessStartInfo("ip", ["netns", "delete", ns]) { RedirectStandardError = true, UseShellExecute = false })!;
            if (!p.WaitForExit(10_000)) p.Kill(true);
        }

        _created.Clear();
    }

    public ValueTask DisposeAsync()
    {
        Delete();
        return ValueTask.CompletedTask;
    }
}
