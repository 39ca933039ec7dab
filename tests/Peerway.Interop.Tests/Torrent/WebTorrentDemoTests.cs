using Peerway.Interop.Tests.Infrastructure;
using static Peerway.Interop.Tests.Torrent.WebTorrentBrowserTests;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Issue 16 item 5: <c>peerway demo --browser</c> — headless Chromium running webtorrent joins a local swarm of desktop
/// Peerway peers and downloads the file over WebRTC; the summary says what it got and from whom, and the browser's
/// copy matches the seeder's SHA-256.
/// </summary>
public sealed class WebTorrentDemoTests
{
    [RequiresToolFact(Chromium, NeedsNpmPeers = true)]
    public async Task Demo_browser_downloads_from_the_desktop_peers_and_says_what_it_got()
    {
        await using var env = new TorrentInterop("wt-demo");
        var (code, stdout, stderr) = await env.RunPeerwayAsync(TimeSpan.FromSeconds(150), "demo", "--browser", "--size-mib", "4", "--timeout", "120");
        var log = $"stdout:\n{stdout}\nstderr:\n{stderr}";
        Assert.True(code == 0, log);
        Assert.Contains("browser (headless Chromium, webtorrent): 4194304 bytes", stdout, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^  -PW\d{4}-\s+webrtc\s+[1-9]\d* bytes$", stdout);
        Assert.Contains("browser copy: SHA-256 matches the seeder's", stdout, StringComparison.Ordinal);
    }
}
