using System.Security.Cryptography;
using Peerway.Interop.Tests.Infrastructure;
using static Peerway.Interop.Tests.Torrent.WebTorrentBrowserTests;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Issue 16 item 4, one swarm of desktop and browser peers: libtorrent (TCP only) seeds a torrent; <c>peerway get
/// --seed</c> downloads it from libtorrent and re-seeds it, announcing to <c>peerway tracker</c>'s WebSocket endpoint;
/// webtorrent in headless Chromium, which can reach nobody but WebRTC peers, downloads it from Peerway. Every copy's
/// SHA-256 is checked.
/// </summary>
public sealed class WebTorrentMixedSwarmTests
{
    private const int FileSize = (4 * 1024 * 1024) + 333;

    [RequiresBrowserAndLibtorrentFact]
    public async Task Libtorrent_seeds_peerway_downloads_and_reseeds_and_a_browser_downloads_from_peerway()
    {
        await using var lt = new LibtorrentPeer("mixed-webrtc");
        var env = lt.Env;
        var (trackerProcess, tracker) = await StartTrackerAsync(env, "peerway");
        await using var _ = trackerProcess;

        // libtorrent seeds a v1 torrent (WebTorrent speaks v1 only) on TCP; it knows no WebSocket tracker.
        var src = Path.Combine(env.Root, "src");
        var sha = await TorrentInterop.RandomFileAsync(Path.Combine(src, "payload.bin"), FileSize);
        var torrent = Path.Combine(env.Root, "payload.torrent");
        var (v1, _) = await lt.CreateAsync(Path.Combine(src, "payload.bin"), torrent, "--v1-only");
        Assert.NotNull(v1);
        var ltPort = TorrentInterop.FreePort();
        await lt.RunAsync(ltPort, "--torrent", torrent, "--save", src);

        // Peerway downloads from libtorrent over TCP, then keeps seeding, to the browser among others.
        var dl = Path.Combine(env.Root, "peerway");
        var get = env.StartPeerway("get", torrent, "-o", dl, "--peer", "127.0.0.1:" + P(ltPort), "--tracker", tracker, "--transport", "tcp", "--seed", "-v");
        var complete = await get.FirstLineAsync(LibtorrentPeer.Deadline);
        Assert.StartsWith("complete: payload.bin", complete);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "payload.bin")));

        // The browser is given the info-hash only: the info dictionary (ut_metadata) and the pieces come from Peerway.
        var (playwright, browser, page) = await OpenPageAsync();
        using var __ = playwright;
        await using var ___ = browser;
        string[] result;
        try
        {
            result = (await page.EvaluateAsync<string>(DownloadScript, new { magnet = "magnet:?xt=urn:btih:" + v1, tracker }).WaitAsync(Deadline)).Split(' ');
        }
        catch (TimeoutException)
        {
            Assert.Fail("the browser did not finish; peerway get --seed said:\n" + get.Stderr[^Math.Min(get.Stderr.Length, 6000)..]);
            throw;
        }

        Assert.Equal(Convert.ToHexStringLower(sha), result[0]);
        Assert.Equal(P(FileSize), result[1]);
        Assert.Equal(sha, SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(src, "payload.bin"))));
        Assert.Contains("WebRTC peer", get.Stderr, StringComparison.Ordinal);
    }
}

/// <summary>Chromium, node with the npm peers, and python3-libtorrent: skipped without one of them, failed under CI=true.</summary>
internal sealed class RequiresBrowserAndLibtorrentFactAttribute : FactAttribute
{
    public RequiresBrowserAndLibtorrentFactAttribute()
    {
        var reason = RequiredTool.SkipReason([Chromium, "node"], needsNpmPeers: true);
        if (reason is null && !RequiredTool.IsCi && LibtorrentTool.InstalledVersion is null) reason = "not installed: python3-libtorrent (run ./test.sh; under CI=true this fails)";
        if (reason is not null) Skip = reason;
    }
}
