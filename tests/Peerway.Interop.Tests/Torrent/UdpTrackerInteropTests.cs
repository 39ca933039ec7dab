using Peerway.Interop.Tests.Infrastructure;
using System.Globalization;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// `peerway tracker`'s UDP side (BEP 15) with real clients: aria2 and transmission announce to a udp:// tracker URL and
/// exchange a file with Peerway, whose own UDP tracker client announces there too. The SHA-256 of what arrived is checked.
/// </summary>
public sealed class UdpTrackerInteropTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);
    private const int FileSize = 3 * 1024 * 1024 + 11;

    private static string P(int port) => port.ToString(CultureInfo.InvariantCulture);

    /// <summary>A tracker (2 s interval), a file and its .torrent announcing only to the tracker's udp:// URL.</summary>
    private static async Task<(string Torrent, string Source, byte[] Sha)> SetUpAsync(TorrentInterop env, Func<string[], RunningProcess> startPeerway)
    {
        var port = TorrentInterop.FreePort();
        await startPeerway(["tracker", "--port", P(port), "--interval", "2"]).FirstLineAsync(Deadline);
        var source = Path.Combine(env.Root, "src", "payload.bin");
        var sha = await TorrentInterop.RandomFileAsync(source, FileSize);
        var torrent = Path.Combine(env.Root, "payload.torrent");
        var (code, _, err) = await env.RunPeerwayAsync(Deadline, "create", source, "-o", torrent, "--tracker", $"udp://127.0.0.1:{P(port)}/announce");
        Assert.True(code == 0, err);
        return (torrent, source, sha);
    }

    /// <summary>
    /// aria2 speaks BEP 15 only through its DHT socket, so its DHT is on (no entry point, a fresh routing table file):
    /// these tests run in a loopback-only namespace, so it cannot reach anything else.
    /// </summary>
    private static List<string> Aria2(TorrentInterop env, string dir) =>
    [
        "--enable-dht=true", "--dht-listen-port=" + P(TorrentInterop.FreePort()), "--dht-file-path=" + Path.Combine(env.Root, $"dht-{Guid.NewGuid():N}.dat"),
        "--enable-dht6=false", "--bt-enable-lpd=false", "--listen-port=" + P(TorrentInterop.FreePort()), "--bt-tracker-interval=2",
        "--summary-interval=0", "--console-log-level=warn", "--dir=" + dir,
    ];

    [RequiresToolFact("aria2c", "ip")]
    public async Task Aria2_downloads_from_peerway_through_a_udp_tracker()
    {
        var aria2 = TorrentInterop.Require("aria2c");
        await using var env = new TorrentInterop("udp-aria-dl");
        await using var ns = NetworkNamespace.Create(env);
        var (torrent, source, sha) = await SetUpAsync(env, args => ns.StartPeerway(env, args));
        await ns.StartPeerway(env, "share", torrent, "--content", source, "--port", P(TorrentInterop.FreePort())).FirstLineAsync(Deadline);
        var target = Path.Combine(env.Root, "aria2");
        var client = ns.Start(env, aria2, [.. Aria2(env, target), "--seed-time=0", torrent]);
        Assert.True(await client.WaitForExitAsync(Deadline), "aria2c did not finish");
        Assert.True(client.ExitCode == 0, client.Stdout + client.Stderr);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(target, "payload.bin")));
    }

    [RequiresToolFact("aria2c", "ip")]
    public async Task Peerway_downloads_from_aria2_through_a_udp_tracker()
    {
        var aria2 = TorrentInterop.Require("aria2c");
        await using var env = new TorrentInterop("udp-aria-up");
        await using var ns = NetworkNamespace.Create(env);
        var (torrent, source, sha) = await SetUpAsync(env, args => ns.StartPeerway(env, args));
        ns.Start(env, aria2, [.. Aria2(env, Path.GetDirectoryName(source)!), "-V", "--seed-ratio=0.0", "--seed-time=100", torrent]);
        var dl = Path.Combine(env.Root, "dl");
        var get = ns.StartPeerway(env, "get", torrent, "-o", dl, "--timeout", "100");
        Assert.True(await get.WaitForExitAsync(Deadline), "peerway get did not finish");
        Assert.True(get.ExitCode == 0, get.Stderr);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "payload.bin")));
    }

    [RequiresToolFact("transmission-cli")]
    public async Task Transmission_downloads_from_peerway_through_a_udp_tracker()
    {
        var cli = TorrentInterop.Require("transmission-cli");
        await using var env = new TorrentInterop("udp-tr-dl");
        var (torrent, source, sha) = await SetUpAsync(env, env.StartPeerway);
        var share = env.StartPeerway("share", torrent, "--content", source, "--port", P(TorrentInterop.FreePort()));
        await share.FirstLineAsync(Deadline);
        var target = Path.Combine(env.Root, "transmission");
        var config = Path.Combine(env.Root, "transmission-config");
        Directory.CreateDirectory(config);
        await File.WriteAllTextAsync(Path.Combine(config, "settings.json"),
            """{"dht-enabled": false, "lpd-enabled": false, "utp-enabled": false, "port-forwarding-enabled": false, "encryption": 0}""");
        // transmission announces over UDP; it ignores the 127/8 peer it gets back, but Peerway learns of it and dials it.
        var tr = env.Start(cli, ["-w", target, "-g", config, "-p", P(TorrentInterop.FreePort()), torrent]);
        Assert.True(await TorrentInterop.WaitForFileAsync(Path.Combine(target, "payload.bin"), sha, Deadline, tr),
            $"transmission did not receive the file.\npeerway: {share.Stderr}\ntransmission: {tr.Stderr}");
    }
}
