using Peerway.Interop.Tests.Infrastructure;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Multi-file torrents (BEP 3 "files" list, nested directories, a file that ends mid-piece, a zero-length file) and
/// .torrent files made by another program: `transmission-create` output read by `peerway info`, Peerway's directory
/// torrents fetched by aria2 and transmission, and a transmission-made torrent fetched by Peerway. Every file's
/// SHA-256 is checked.
/// </summary>
public sealed partial class MultiFileInteropTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    private static string P(int port) => port.ToString(CultureInfo.InvariantCulture);

    /// <summary>album/{a.bin (3,000,001 B), c.bin (1 MiB), sub/b.txt (17 B), sub/zero.dat (0 B)}; returns relative path → SHA-256.</summary>
    /// <summary>The album torrent made by `peerway create`, announced to a `peerway tracker` and seeded by `peerway share`.</summary>
    private static async Task<(Dictionary<string, byte[]> Files, string Torrent, RunningProcess Share)> ShareAlbumAsync(TorrentInterop env)
    {
        var files = await MakeAlbumAsync(Path.Combine(env.Root, "src"));
        var tracker = await StartTrackerAsync(env);
        var torrent = Path.Combine(env.Root, "album.torrent");
        var (code, _, err) = await env.RunPeerwayAsync(Deadline, "create", Path.Combine(env.Root, "src", "album"), "-o", torrent, "--tracker", $"http://127.0.0.1:{P(tracker)}/announce");
        Assert.True(code == 0, err);
        var share = env.StartPeerway("share", torrent, "--content", Path.Combine(env.Root, "src", "album"), "--port", P(TorrentInterop.FreePort()));
        await share.FirstLineAsync(Deadline);
        return (files, torrent, share);
    }

    private static async Task<Dictionary<string, byte[]>> MakeAlbumAsync(string root)
    {
        var files = new Dictionary<string, byte[]>();
        foreach (var (name, size) in new[] { ("a.bin", 3_000_001), ("c.bin", 1 << 20), ("sub/b.txt", 17), ("sub/zero.dat", 0) })
        {
            files[name] = await TorrentInterop.RandomFileAsync(Path.Combine(root, "album", name), size);
        }

        return files;
    }

    private static void AssertSameFiles(Dictionary<string, byte[]> expected, string dir, params string[] except)
    {
        foreach (var (name, sha) in expected)
        {
            if (except.Contains(name)) continue;
            Assert.True(sha.AsSpan().SequenceEqual(TorrentInterop.Sha256OfFile(Path.Combine(dir, name)) ?? []), $"{name} in {dir} differs or is missing");
        }
    }

    private static async Task<int> StartTrackerAsync(TorrentInterop env)
    {
        var port = TorrentInterop.FreePort();
        await env.StartPeerway("tracker", "--port", P(port), "--interval", "2").FirstLineAsync(Deadline);
        return port;
    }

    [GeneratedRegex(@"Hash:\s*([0-9a-f]{40})")]
    private static partial Regex TransmissionHash();

    [RequiresToolFact("transmission-create", "transmission-show")]
    public async Task Peerway_info_reads_torrents_made_by_transmission_create()
    {
        var create = TorrentInterop.Require("transmission-create");
        var show = TorrentInterop.Require("transmission-show");
        await using var env = new TorrentInterop("mf-info");
        await MakeAlbumAsync(env.Root);
        foreach (var (source, isPrivate) in new[] { ("album", false), ("album/a.bin", true) })
        {
            var torrent = Path.Combine(env.Root, $"t{(isPrivate ? 1 : 0)}.torrent");
            List<string> args = ["-o", torrent, "-t", "http://127.0.0.1:1/announce"];
            if (isPrivate) args.Add("-p");
            args.Add(Path.Combine(env.Root, source));
            var made = env.Start(create, args);
            Assert.True(await made.WaitForExitAsync(Deadline) && made.ExitCode == 0, made.Stderr);
            var shown = env.Start(show, [torrent]);
            Assert.True(await shown.WaitForExitAsync(Deadline) && shown.ExitCode == 0, shown.Stderr);
            var hash = TransmissionHash().Match(shown.Stdout).Groups[1].Value;

            var (code, info, err) = await env.RunPeerwayAsync(Deadline, "info", torrent);
            Assert.True(code == 0, err);
            Assert.Matches(@"info-hash:\s*" + hash, info);
            Assert.Matches(@"private:\s*" + (isPrivate ? "yes" : "no"), info);
            if (!isPrivate)
            {
                // transmission-create leaves zero-length files out of the torrent.
                Assert.Matches(@"files:\s*3\b", info);
                Assert.Contains("album/sub/b.txt", info, StringComparison.Ordinal);
            }
        }
    }

    [RequiresToolFact("aria2c")]
    public async Task Aria2_downloads_a_directory_torrent_from_peerway()
    {
        var aria2 = TorrentInterop.Require("aria2c");
        await using var env = new TorrentInterop("mf-aria-dl");
        var (files, torrent, share) = await ShareAlbumAsync(env);
        var target = Path.Combine(env.Root, "aria2");
        var client = env.Start(aria2, ["--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--listen-port=" + P(TorrentInterop.FreePort()),
            "--seed-time=0", "--summary-interval=0", "--console-log-level=warn", "--bt-tracker-interval=2", "--dir=" + target, torrent]);
        Assert.True(await client.WaitForExitAsync(Deadline), "aria2c did not finish: " + share.Stderr);
        Assert.True(client.ExitCode == 0, client.Stdout + client.Stderr);
        AssertSameFiles(files, Path.Combine(target, "album"));
    }

    [RequiresToolFact("transmission-cli")]
    public async Task Transmission_downloads_a_directory_torrent_from_peerway()
    {
        var cli = TorrentInterop.Require("transmission-cli");
        await using var env = new TorrentInterop("mf-tr-dl");
        var (files, torrent, share) = await ShareAlbumAsync(env);
        var target = Path.Combine(env.Root, "transmission");
        var config = Path.Combine(env.Root, "transmission-config");
        Directory.CreateDirectory(config);
        await File.WriteAllTextAsync(Path.Combine(config, "settings.json"),
            """{"dht-enabled": false, "lpd-enabled": false, "utp-enabled": false, "port-forwarding-enabled": false, "encryption": 0}""");
        // transmission ignores 127/8 peers from the tracker, but accepts Peerway's connection (Peerway learns of it there).
        var tr = env.Start(cli, ["-w", target, "-g", config, "-p", P(TorrentInterop.FreePort()), torrent]);
        // transmission 3.00 does not create zero-length files; the last file to complete is one of the others.
        foreach (var (name, sha) in files.Where(f => f.Key != "sub/zero.dat"))
        {
            Assert.True(await TorrentInterop.WaitForFileAsync(Path.Combine(target, "album", name), sha, Deadline, tr),
                $"transmission did not receive {name}.\npeerway: {share.Stderr}\ntransmission: {tr.Stderr}");
        }
    }

    [RequiresToolFact("aria2c", "transmission-create")]
    public async Task Peerway_downloads_a_transmission_made_directory_torrent_from_aria2()
    {
        var aria2 = TorrentInterop.Require("aria2c");
        var create = TorrentInterop.Require("transmission-create");
        await using var env = new TorrentInterop("mf-aria-up");
        var files = await MakeAlbumAsync(Path.Combine(env.Root, "src"));
        var tracker = await StartTrackerAsync(env);
        var torrent = Path.Combine(env.Root, "album.torrent");
        var made = env.Start(create, ["-o", torrent, "-t", $"http://127.0.0.1:{P(tracker)}/announce", Path.Combine(env.Root, "src", "album")]);
        Assert.True(await made.WaitForExitAsync(Deadline) && made.ExitCode == 0, made.Stderr);
        env.Start(aria2, ["--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--listen-port=" + P(TorrentInterop.FreePort()),
            "-V", "--seed-ratio=0.0", "--seed-time=100", "--summary-interval=0", "--console-log-level=warn", "--bt-tracker-interval=2",
            "--dir=" + Path.Combine(env.Root, "src"), torrent]);
        var dl = Path.Combine(env.Root, "dl");
        var (code, _, err) = await env.RunPeerwayAsync(Deadline, "get", torrent, "-o", dl, "--timeout", "100");
        Assert.True(code == 0, err);
        AssertSameFiles(files, Path.Combine(dl, "album"), except: "sub/zero.dat");
        Assert.False(File.Exists(Path.Combine(dl, "album", "sub", "zero.dat")), "a file that is not in the torrent was written");
    }
}
