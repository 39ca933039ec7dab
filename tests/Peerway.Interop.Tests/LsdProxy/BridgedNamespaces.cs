using System.Diagnostics;
using System.Globalization;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Interop.Tests.Torrent;

namespace Peerway.Interop.Tests.LsdProxy;

/// <summary>
/// A LAN in network namespaces: a bridge in namespace <c>lsd-proxy-TAG-br</c> and one namespace per host
/// (<c>lsd-proxy-TAG-h0</c>, <c>-h1</c>, ...) on it through a veth pair, addresses 10.78.14.(i+1)/24, loopback up, a
/// route for multicast (224.0.0.0/4) on the LAN interface and no other route: nothing reaches the machine's own
/// interfaces. Every namespace is deleted on dispose (which also destroys the veths and the bridge), including when
/// creation fails half-way.
/// </summary>
internal sealed class BridgedNamespaces : IAsyncDisposable
{
    private readonly List<string> _created = [];
    private readonly string _tag;

    private BridgedNamespaces(string tag) => _tag = tag;

    /// <summary>The hosts' namespace names, in order.</summary>
    public List<string> Hosts { get; } = [];

    /// <summary>The hosts' LAN interface names, in order.</summary>
    public List<string> Interfaces { get; } = [];

    public static string Address(int host) => string.Create(CultureInfo.InvariantCulture, $"10.78.14.{host + 1}");

    public static BridgedNamespaces Create(int hosts)
    {
        TorrentInterop.Require("ip");
        Assert.True(Environment.UserName == "root", "these interop tests need root to create network namespaces (./test.sh runs as root in CI)");
        var tag = Guid.NewGuid().ToString("N")[..6];
        var lan = new BridgedNamespaces(tag);
        try
        {
            var bridgeNs = $"lsd-proxy-{tag}-br";
            VethNamespaces.Run("netns", "add", bridgeNs);
            lan._created.Add(bridgeNs);
            VethNamespaces.Run("-n", bridgeNs, "link", "add", "br0", "type", "bridge");
            VethNamespaces.Run("-n", bridgeNs, "link", "set", "br0", "up");
            for (var i = 0; i < hosts; i++)
            {
                var ns = string.Create(CultureInfo.InvariantCulture, $"lsd-proxy-{tag}-h{i}");
                VethNamespaces.Run("netns", "add", ns);
                lan._created.Add(ns);
                // Interface names are limited to 15 characters (IFNAMSIZ - 1).
                var host = string.Create(CultureInfo.InvariantCulture, $"lp{tag}h{i}");
                var port = string.Create(CultureInfo.InvariantCulture, $"lp{tag}p{i}");
                VethNamespaces.Run("link", "add", host, "netns", ns, "type", "veth", "peer", "name", port, "netns", bridgeNs);
                VethNamespaces.Run("-n", bridgeNs, "link", "set", port, "master", "br0");
                VethNamespaces.Run("-n", bridgeNs, "link", "set", port, "up");
                VethNamespaces.Run("-n", ns, "addr", "add", Address(i) + "/24", "dev", host);
                VethNamespaces.Run("-n", ns, "link", "set", "lo", "up");
                VethNamespaces.Run("-n", ns, "link", "set", host, "up");
                // BEP 14 multicast leaves by this route (there is no default route).
                VethNamespaces.Run("-n", ns, "route", "add", "224.0.0.0/4", "dev", host);
                lan.Hosts.Add(ns);
                lan.Interfaces.Add(host);
            }

            return lan;
        }
        catch
        {
            lan.Delete();
            throw;
        }
    }

    /// <summary>Runs a command in host <paramref name="host"/>'s namespace and asserts it succeeds.</summary>
    public void Exec(int host, params string[] command) => VethNamespaces.Run(["netns", "exec", Hosts[host], .. command]);

    /// <summary>Starts <paramref name="program"/> in host <paramref name="host"/>'s namespace (`ip netns exec` execs it: the
    /// same process, killed with its children after <paramref name="lifetime"/> or on dispose).</summary>
    public ExternalProcess Start(int host, string program, IEnumerable<string> args, TimeSpan lifetime, string? workingDirectory = null) =>
        ExternalProcess.Start("ip", ["netns", "exec", Hosts[host], program, .. args], lifetime, workingDirectory);

    public override string ToString() => $"lsd-proxy-{_tag}-*";

    private void Delete()
    {
        foreach (var ns in Enumerable.Reverse(_created))
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
