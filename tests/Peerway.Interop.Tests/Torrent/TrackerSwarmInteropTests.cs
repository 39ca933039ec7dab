using Peerway.Interop.Tests.Infrastructure;
namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Peerway and real BitTorrent clients (transmission 3, aria2) exchange a file through `peerway tracker`, in both
/// directions; the SHA-256 of what arrived is checked.
/// </summary>
public sealed class TrackerSwarmInteropTests
{
    private const int FileSize = 8 * 1024 * 1024 + 4321;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    /// <summary>A tracker with a 2 s interval (so every client soon learns every other), a file and its .torrent.</summary>
    internal static async Task<(string Torrent, string Source, byte[] Sha)> SetUpAsync(TorrentInterop env, int trackerPort, int fileSize = FileSize)
    {
        var tracker = env.StartPeerway("tracker", "--port", trackerPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--interval", "2");
        await tracker.FirstLineAsync(Deadline);
        var source = Path.Combine(env.Root, "src", "payload.bin");
        var sha = await TorrentInterop.RandomFileAsync(source, fileSize);
        var torrent = Path.Combine(env.Root, "payload.torrent");
        var (code, _, err) = await env.RunPeerwayAsync(Deadline, "create", source, "-o", torrent, "--tracker", $"http://127.0.0.1:{trackerPort}/announce");
        Assert.True(code == 0, err);
        return (torrent, source, sha);
    }

    /// <summary>
    /// transmission-cli with DHT, LPD, uTP (unless <paramref name="utp"/>) and port mapping off (nothing leaves the
    /// machine) and, by default, plaintext preferred (<paramref name="encryption"/>: 0 prefer plaintext, 1 prefer
    /// encryption, 2 require it).
    /// </summary>
    internal static RunningProcess StartTransmission(TorrentInterop env, string cli, string torrent, string downloadDir, int port, int encryption = 0, bool utp = false)
    {
        var config = Path.Combine(env.Root, $"transmission-{port}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(config);
        Directory.CreateDirectory(downloadDir);
        File.WriteAllText(Path.Combine(config, "settings.json"),
            "{\"dht-enabled\": false, \"lpd-enabled\": false, \"utp-enabled\": " + (utp ? "true" : "false") + ", \"port-forwarding-enabled\": false, \"encryption\": "
            + encryption.ToString(System.Globalization.CultureInfo.InvariantCulture) + ", \"message-level\": 2}");
        return env.Start(cli, ["-w", downloadDir, "-g", config, "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-M", torrent]);
    }

    internal static RunningProcess StartAria2(TorrentInterop env, string aria2, string torrent, string dir, int port, bool seed, params string[] extra)
    {
        var args = new List<string>
        {
            "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--listen-port=" + port, "--dir=" + dir,
            "--summary-interval=0", "--console-log-level=warn", "--check-certificate=false", "--bt-tracker-interval=2",
        };
        args.AddRange(seed ? ["-V", "--seed-ratio=0.0", "--seed-time=60"] : ["--seed-time=0"]);
        args.AddRange(extra);
        args.Add(torrent);
        return env.Start(aria2, args);
    }

    [RequiresToolFact("transmission-cli")]
    public async Task Transmission_downloads_from_peerway_share()
    {
        var cli = TorrentInterop.Require("transmission-cli");
        await using var env = new TorrentInterop("tr-dl");
        var (torrent, source, sha) = await SetUpAsync(env, TorrentInterop.FreePort());
        var share = env.StartPeerway("share", torrent, "--content", source, "--port", TorrentInterop.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.StartsWith("magnet:?xt=urn:btih:", await share.FirstLineAsync(Deadline));
        var target = Path.Combine(env.Root, "transmission");
        var tr = StartTransmission(env, cli, torrent, target, TorrentInterop.FreePort());
        Assert.True(await TorrentInterop.WaitForFileAsync(Path.Combine(target, "payload.bin"), sha, Deadline, tr),
            $"transmission did not receive the file.\npeerway: {share.Stderr}\ntransmission: {tr.Stderr}");
    }

    [RequiresToolFact("transmission-cli")]
    public async Task Peerway_downloads_from_transmission()
    {
        var cli = TorrentInterop.Require("transmission-cli");
        await using var env = new TorrentInterop("tr-up");
        var (torrent, source, sha) = await SetUpAsync(env, TorrentInterop.FreePort());
        StartTransmission(env, cli, torrent, Path.GetDirectoryName(source)!, TorrentInterop.FreePort());
        var dl = Path.Combine(env.Root, "dl");
        var (code, stdout, stderr) = await env.RunPeerwayAsync(Deadline, "get", torrent, "-o", dl, "--timeout", "100");
        Assert.True(code == 0, stderr);
        Assert.Contains("complete:", stdout, StringComparison.Ordinal);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "payload.bin")));
    }

    [RequiresToolFact("aria2c")]
    public async Task Aria2_downloads_from_peerway_share()
    {
        var aria2 = TorrentInterop.Require("aria2c");
        await using var env = new TorrentInterop("aria-dl");
        var (torrent, source, sha) = await SetUpAsync(env, TorrentInterop.FreePort());
        var share = env.StartPeerway("share", torrent, "--content", source, "--port", TorrentInterop.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture));
        await share.FirstLineAsync(Deadline);
        var target = Path.Combine(env.Root, "aria2");
        var client = StartAria2(env, aria2, torrent, target, TorrentInterop.FreePort(), seed: false);
        Assert.True(await client.WaitForExitAsync(Deadline), "aria2c did not finish");
        Assert.True(client.ExitCode == 0, client.Stdout + client.Stderr);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(target, "payload.bin")));
    }

    [RequiresToolFact("aria2c")]
    public async Task Peerway_downloads_from_aria2()
    {
        var aria2 = TorrentInterop.Require("aria2c");
        await using var env = new TorrentInterop("aria-up");
        var (torrent, source, sha) = await SetUpAsync(env, TorrentInterop.FreePort());
        StartAria2(env, aria2, torrent, Path.GetDirectoryName(source)!, TorrentInterop.FreePort(), seed: true);
        var dl = Path.Combine(env.Root, "dl");
        var (code, _, stderr) = await env.RunPeerwayAsync(Deadline, "get", torrent, "-o", dl, "--timeout", "100");
        Assert.True(code == 0, stderr);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "payload.bin")));
    }
}
