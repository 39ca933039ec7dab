using System.Text.RegularExpressions;
using Peerway.Interop.Tests.Infrastructure;
using static Peerway.Interop.Tests.Torrent.LibtorrentPeer;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// BEP 19 web seeds against real programs: torrents made by libtorrent (`add_url_seed`) and by `peerway create
/// --web-seed`, served by tests/interop-peers/range-server.py (python's http.server with keep-alive and Range: the
/// stock one answers 200 with the whole file), fetched by `peerway get` with no peer at all, by aria2 from the web seed
/// alone, and by `peerway get` from one libtorrent peer holding half the pieces and the web seed together.
/// </summary>
public sealed class WebSeedInteropTests
{
    /// <summary>range-server.py serving <paramref name="root"/> on a free port; returns the process and its base URL.</summary>
    private static async Task<(ExternalProcess Server, string Url)> ServeAsync(TorrentInterop env, string root)
    {
        var port = TorrentInterop.FreePort();
        var script = Path.Combine(env.RepoRoot, "tests", "interop-peers", "range-server.py");
        var server = ExternalProcess.Start(LibtorrentTool.Python, [script, root, "--port", P(port)], Deadline + TimeSpan.FromSeconds(30));
        await server.WaitForStdoutAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), Deadline);
        return (server, $"http://127.0.0.1:{P(port)}/");
    }

    [RequiresLibtorrentFact]
    public async Task Peerway_downloads_a_libtorrent_torrent_from_its_web_seed_with_no_peers()
    {
        await using var lt = new LibtorrentPeer("ws-only");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeAlbumAsync(src);
        var (server, url) = await ServeAsync(lt.Env, src);
        await using var _ = server;
        var torrent = Path.Combine(lt.Env.Root, "album.torrent");
        await lt.CreateAsync(Path.Combine(src, "album"), torrent, "--v1-only", "--web-seed", url);

        var (code, info, err) = await lt.Env.RunPeerwayAsync(Deadline, "info", torrent);
        Assert.True(code == 0, err);
        Assert.Contains("web seed:   " + url, info, StringComparison.Ordinal);

        var dl = Path.Combine(lt.Env.Root, "dl");
        await lt.GetAsync(torrent, "-o", dl);
        AssertSameFiles(files, Path.Combine(dl, "album"));
    }

    [RequiresToolFact("aria2c")]
    public async Task Aria2_downloads_a_peerway_torrent_from_its_web_seed()
    {
        var aria2 = TorrentInterop.Require("aria2c");
        await using var env = new TorrentInterop("ws-aria");
        var src = Path.Combine(env.Root, "src");
        var sha = await TorrentInterop.RandomFileAsync(Path.Combine(src, "payload.bin"), (3 * 1024 * 1024) + 7);
        var (server, url) = await ServeAsync(env, src);
        await using var _ = server;
        var torrent = Path.Combine(env.Root, "payload.torrent");
        var (code, _, err) = await env.RunPeerwayAsync(Deadline, "create", Path.Combine(src, "payload.bin"), "-o", torrent, "--web-seed", url);
        Assert.True(code == 0, err);

        var target = Path.Combine(env.Root, "aria2");
        var client = TrackerSwarmInteropTests.StartAria2(env, aria2, torrent, target, TorrentInterop.FreePort(), seed: false);
        Assert.True(await client.WaitForExitAsync(Deadline), "aria2c did not finish");
        Assert.True(client.ExitCode == 0, client.Stdout + client.Stderr);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(target, "payload.bin")));
    }

    [RequiresLibtorrentFact]
    public async Task Peerway_downloads_from_a_libtorrent_peer_and_a_web_seed_together()
    {
        await using var lt = new LibtorrentPeer("ws-mixed");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeFilesAsync(src, ("payload.bin", (4 * 1024 * 1024) + 3));
        var (server, url) = await ServeAsync(lt.Env, src);
        await using var _ = server;
        var torrent = Path.Combine(lt.Env.Root, "payload.torrent");
        await lt.CreateAsync(Path.Combine(src, "payload.bin"), torrent, "--v1-only", "--web-seed", url);
        // libtorrent holds only the first half (the rest zeroed: those pieces fail its check), so the web seed is needed.
        var partial = Path.Combine(lt.Env.Root, "partial");
        Directory.CreateDirectory(partial);
        var bytes = await File.ReadAllBytesAsync(Path.Combine(src, "payload.bin"));
        Array.Clear(bytes, bytes.Length / 2, bytes.Length - (bytes.Length / 2));
        await File.WriteAllBytesAsync(Path.Combine(partial, "payload.bin"), bytes);
        var port = TorrentInterop.FreePort();
        await lt.RunAsync(port, "--torrent", torrent, "--save", partial);

        var dl = Path.Combine(lt.Env.Root, "dl");
        var (code, _, err) = await lt.Env.RunPeerwayAsync(Deadline, "get", torrent, "-o", dl, "--peer", "127.0.0.1:" + P(port), "--timeout", "120", "--verbose");
        Assert.True(code == 0, err);
        AssertSameFiles(files, dl);
        // The web seed delivered (what the peer lacks at least); the bytes from the peer are reported apart.
        Assert.True(Regex.IsMatch(err, @"web seed http://127\.0\.0\.1:\d+/: [1-9]\d* bytes"), err);
        Assert.True(Regex.IsMatch(err, @"from peers: \d+ bytes"), err);
    }
}
