using Peerway.Interop.Tests.Infrastructure;
using System.Globalization;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// webtorrent-cli 4 (pinned in tests/interop-peers) and Peerway, both directions. WebTorrent's CLI always starts a DHT
/// that bootstraps from public routers, so every process of these tests runs in a network namespace holding only a
/// loopback interface: nothing can leave the machine. The SHA-256 of what arrived is checked.
/// </summary>
public sealed class WebTorrentInteropTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);
    private const int FileSize = 6 * 1024 * 1024 + 99;

    private static string WebTorrent(TorrentInterop env)
    {
        var path = Path.Combine(env.RepoRoot, "tests", "interop-peers", "node_modules", ".bin", "webtorrent");
        TorrentInterop.Require("node");
        Assert.True(File.Exists(path), $"webtorrent-cli is not installed at {path} (./test.sh installs the npm peers in tests/interop-peers)");
        return path;
    }

    private static string P(int port) => port.ToString(CultureInfo.InvariantCulture);

    [RequiresToolFact("node", "ip", NeedsNpmPeers = true)]
    public async Task WebTorrent_downloads_a_magnet_from_peerway_share()
    {
        await using var env = new TorrentInterop("wt-dl");
        var webtorrent = WebTorrent(env);
        await using var ns = NetworkNamespace.Create(env);
        var trackerPort = TorrentInterop.FreePort();
        await ns.StartPeerway(env, "tracker", "--port", P(trackerPort), "--interval", "2").FirstLineAsync(Deadline);
        var source = Path.Combine(env.Root, "src", "payload.bin");
        var sha = await TorrentInterop.RandomFileAsync(source, FileSize);
        var share = ns.StartPeerway(env, "share", source, "--port", P(TorrentInterop.FreePort()), "--tracker", $"http://127.0.0.1:{trackerPort}/announce");
        var magnet = await share.FirstLineAsync(Deadline);
        Assert.StartsWith("magnet:?xt=urn:btih:", magnet);
        var target = Path.Combine(env.Root, "wt");
        // A magnet: WebTorrent fetches the info dictionary from Peerway with ut_metadata (BEP 9), then the pieces.
        var wt = ns.Start(env, webtorrent, ["download", magnet, "-o", target, "--torrent-port", P(TorrentInterop.FreePort()), "-q"]);
        Assert.True(await wt.WaitForExitAsync(Deadline), "webtorrent did not finish");
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(target, "payload.bin")));
    }

    [RequiresToolFact("node", "ip", NeedsNpmPeers = true)]
    public async Task Peerway_downloads_from_webtorrent()
    {
        await using var env = new TorrentInterop("wt-up");
        var webtorrent = WebTorrent(env);
        await using var ns = NetworkNamespace.Create(env);
        var trackerPort = TorrentInterop.FreePort();
        await ns.StartPeerway(env, "tracker", "--port", P(trackerPort), "--interval", "2").FirstLineAsync(Deadline);
        var source = Path.Combine(env.Root, "src", "payload.bin");
        var sha = await TorrentInterop.RandomFileAsync(source, FileSize);
        var torrent = Path.Combine(env.Root, "payload.torrent");
        var (code, _, err) = await env.RunPeerwayAsync(Deadline, "create", source, "-o", torrent, "--tracker", $"http://127.0.0.1:{trackerPort}/announce");
        Assert.True(code == 0, err);
        // WebTorrent verifies the existing file against our .torrent and seeds it.
        ns.Start(env, webtorrent, ["download", torrent, "-o", Path.GetDirectoryName(source)!, "--torrent-port", P(TorrentInterop.FreePort()), "--keep-seeding", "-q"]);
        var dl = Path.Combine(env.Root, "dl");
        var get = ns.StartPeerway(env, "get", torrent, "-o", dl, "--timeout", "100");
        Assert.True(await get.WaitForExitAsync(Deadline), "peerway get did not finish");
        Assert.True(get.ExitCode == 0, get.Stderr);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "payload.bin")));
    }
}

/// <summary>A network namespace with only loopback up (`ip netns`, needs root); deleted on dispose.</summary>
internal sealed class NetworkNamespace : IAsyncDisposable
{
    private NetworkNamespace(string name) => Name = name;

    public string Name { get; }

    public static NetworkNamespace Create(TorrentInterop env)
    {
        var ip = TorrentInterop.Require("ip");
        // Creating a namespace needs root; the tests do not pretend to pass without one.
        Assert.True(Environment.UserName == "root", "these interop tests need root to create a network namespace (./test.sh runs as root in CI)");

        var name = "pw-bt-" + Guid.NewGuid().ToString("N")[..8];
        Run(ip, "netns", "add", name);
        Run(ip, "-n", name, "link", "set", "lo", "up");
        return new NetworkNamespace(name);
    }

    private static void Run(string file, params string[] args)
    {
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(file, args) { RedirectStandardError = true, UseShellExecute = false })!;
        if (!p.WaitForExit(10_000)) p.Kill(true);
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)} failed: {p.StandardError.ReadToEnd()}");
    }

    public RunningProcess Start(TorrentInterop env, string program, IEnumerable<string> args) =>
        env.Start("ip", ["netns", "exec", Name, program, .. args]);

    public RunningProcess StartPeerway(TorrentInterop env, params string[] args) => Start(env, env.Launcher, args);

    public ValueTask DisposeAsync()
    {
        Run("ip", "netns", "delete", Name);
        return ValueTask.CompletedTask;
    }
}
