using Peerway.Interop.Tests.Infrastructure;
using System.Globalization;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Magnet links with no tracker, peers found only through the Mainline DHT: aria2 (via --dht-entry-point) and Peerway,
/// both directions, around a `peerway dht serve` bootstrap node. Everything runs in a loopback-only network namespace.
/// </summary>
public sealed class DhtMagnetInteropTests
{
    // Transmission through the DHT: TransmissionDhtInteropTests (it needs non-loopback addresses and ≥ 9 DHT nodes).

    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(150);
    private const int FileSize = 4 * 1024 * 1024 + 1;

    private static string P(int port) => port.ToString(CultureInfo.InvariantCulture);

    private static List<string> Aria2Dht(TorrentInterop env, int bootstrapPort) =>
    [
        "--enable-dht=true", "--dht-entry-point=127.0.0.1:" + P(bootstrapPort), "--dht-listen-port=" + P(TorrentInterop.FreePort()),
        "--dht-file-path=" + Path.Combine(env.Root, $"dht-{Guid.NewGuid():N}.dat"), "--bt-enable-lpd=false",
        "--listen-port=" + P(TorrentInterop.FreePort()), "--summary-interval=0", "--console-log-level=warn",
    ];

    private static async Task<int> StartBootstrapAsync(TorrentInterop env, NetworkNamespace ns)
    {
        var port = TorrentInterop.FreePort();
        var node = ns.StartPeerway(env, "dht", "serve", "--bind", "127.0.0.1", "--port", P(port));
        Assert.Contains("listening", await node.FirstLineAsync(Deadline), StringComparison.Ordinal);
        return port;
    }

    [RequiresToolFact("aria2c", "ip")]
    public async Task Aria2_fetches_a_magnet_from_peerway_through_the_dht()
    {
        var aria2 = TorrentInterop.Require("aria2c");
        await using var env = new TorrentInterop("dht-aria-dl");
        await using var ns = NetworkNamespace.Create(env);
        var bootstrap = await StartBootstrapAsync(env, ns);
        var source = Path.Combine(env.Root, "src", "payload.bin");
        var sha = await TorrentInterop.RandomFileAsync(source, FileSize);
        var share = ns.StartPeerway(env, "share", source, "--dht-bootstrap", "127.0.0.1:" + P(bootstrap));
        var magnet = await share.FirstLineAsync(Deadline);
        Assert.DoesNotContain("tr=", magnet, StringComparison.Ordinal);
        var target = Path.Combine(env.Root, "aria2");
        var args = Aria2Dht(env, bootstrap);
        args.AddRange(["--seed-time=0", "--dir=" + target, magnet]);
        var client = ns.Start(env, aria2, args);
        Assert.True(await client.WaitForExitAsync(Deadline), "aria2c did not finish: " + share.Stderr);
        Assert.True(client.ExitCode == 0, client.Stdout + client.Stderr);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(target, "payload.bin")));
    }

    [RequiresToolFact("aria2c", "ip")]
    public async Task Peerway_fetches_a_magnet_from_aria2_through_the_dht()
    {
        var aria2 = TorrentInterop.Require("aria2c");
        await using var env = new TorrentInterop("dht-aria-up");
        await using var ns = NetworkNamespace.Create(env);
        var bootstrap = await StartBootstrapAsync(env, ns);
        var source = Path.Combine(env.Root, "src", "payload.bin");
        var sha = await TorrentInterop.RandomFileAsync(source, FileSize);
        var torrent = Path.Combine(env.Root, "payload.torrent");
        var (code, magnet, err) = await env.RunPeerwayAsync(Deadline, "create", source, "-o", torrent);
        Assert.True(code == 0, err);
        // aria2 seeds the file and announces itself to the DHT; Peerway has only the magnet link and the bootstrap node.
        var args = Aria2Dht(env, bootstrap);
        args.AddRange(["-V", "--seed-ratio=0.0", "--seed-time=100", "--dir=" + Path.GetDirectoryName(source)!, torrent]);
        ns.Start(env, aria2, args);
        var dl = Path.Combine(env.Root, "dl");
        var get = ns.StartPeerway(env, "get", magnet.Trim(), "-o", dl, "--dht-bootstrap", "127.0.0.1:" + P(bootstrap), "--timeout", "120");
        Assert.True(await get.WaitForExitAsync(Deadline), "peerway get did not finish");
        Assert.True(get.ExitCode == 0, get.Stderr);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "payload.bin")));
    }
}
