using System.Globalization;
using Microsoft.Playwright;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// WebTorrent in a browser — npm <c>webtorrent</c> 2.x's <c>dist/webtorrent.min.js</c> in headless Chromium (Debian's,
/// driven by Playwright, nothing downloaded) — and Peerway in one swarm over WebRTC data channels, signalled through a
/// WebSocket tracker: <c>peerway tracker</c> and bittorrent-tracker's own server (npm). Both directions; the SHA-256 of
/// what arrived is checked. The page may reach loopback only (every other host name resolves to nothing).
/// </summary>
public sealed class WebTorrentBrowserTests
{
    internal const string Chromium = "/usr/bin/chromium";
    internal static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private const int FileSize = 3 * 1024 * 1024 + 77;

    internal static string P(int port) => port.ToString(CultureInfo.InvariantCulture);

    // Downloads a magnet through the given trackers only; returns the file's SHA-256 in hex.
    internal const string DownloadScript = """
        async ({ magnet, tracker }) => {
          const client = new WebTorrent();
          const torrent = client.add(magnet, { announce: [tracker] });
          await new Promise((resolve, reject) => { torrent.on('done', resolve); torrent.on('error', reject); client.on('error', reject); });
          const file = torrent.files[0];
          const bytes = await file.arrayBuffer();
          const digest = await crypto.subtle.digest('SHA-256', bytes);
          const hex = [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('');
          const peers = torrent.numPeers;
          client.destroy();
          return hex + ' ' + bytes.byteLength + ' ' + peers;
        }
        """;

    // Seeds the given bytes as payload.bin announced to the given tracker only; returns the magnet link.
    private const string SeedScript = """
        async ({ base64, tracker }) => {
          const bytes = Uint8Array.from(atob(base64), c => c.charCodeAt(0));
          const file = new File([bytes], 'payload.bin');
          window.client = new WebTorrent();
          const torrent = await new Promise(resolve => window.client.seed(file, { announce: [tracker], announceList: [[tracker]], name: 'payload.bin' }, resolve));
          return torrent.magnetURI;
        }
        """;

    private static string WebTorrentBundle()
    {
        var path = Path.Combine(RequiredTool.RequireNpmPeers(), "node_modules", "webtorrent", "dist", "webtorrent.min.js");
        Assert.True(File.Exists(path), $"the webtorrent 2.x browser bundle is not installed at {path} (./test.sh installs the npm peers)");
        return path;
    }

    internal static async Task<(IPlaywright Playwright, IBrowser Browser, IPage Page)> OpenPageAsync()
    {
        RequiredTool.Require(Chromium, "apt-get install chromium");
        var bundle = WebTorrentBundle();
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                // Chromium's defaults otherwise, mDNS (.local) host candidates included: Peerway learns the browser's
                // address from its checks (peer-reflexive). Local Network Access checks are off: the page is served by the
                // router below, not from an address, and Chromium (156 here) blocks its ws://127.0.0.1 tracker socket as a
                // "public" page reaching loopback (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS; ICE then never
                // started: Peerway's own offers expired unanswered). No host but loopback is reachable by name.
                "--disable-features=LocalNetworkAccessChecks", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"],
        });
        var page = await browser.NewPageAsync();
        page.SetDefaultTimeout((float)Deadline.TotalMilliseconds);
        // The bundle is an ES module; a page on http://localhost (a secure context: WebRTC, crypto.subtle) imports it.
        // Both are served by Playwright's router from here: nothing listens on localhost:80.
        await page.RouteAsync("http://localhost/**", route => route.Request.Url.EndsWith("/webtorrent.min.js", StringComparison.Ordinal)
            ? route.FulfillAsync(new RouteFulfillOptions { Path = bundle, ContentType = "text/javascript" })
            : route.FulfillAsync(new RouteFulfillOptions
            {
                ContentType = "text/html",
                Body = "<!doctype html><script type=module>import WebTorrent from '/webtorrent.min.js'; window.WebTorrent = WebTorrent;</script>",
            }));
        await page.GotoAsync("http://localhost/");
        await page.WaitForFunctionAsync("() => window.WebTorrent !== undefined");
        return (playwright, browser, page);
    }

    /// <summary>Starts a WebSocket tracker: ours (owned by <paramref name="env"/>), or bittorrent-tracker's server (returned
    /// for the caller to dispose). Returns its ws:// URL.</summary>
    internal static async Task<(IAsyncDisposable? Process, string Url)> StartTrackerAsync(TorrentInterop env, string kind)
    {
        var port = TorrentInterop.FreePort();
        if (kind == "peerway")
        {
            var tracker = env.StartPeerway("tracker", "--port", P(port), "--bind", "127.0.0.1");
            await tracker.FirstLineAsync(Deadline);
            return (null, $"ws://127.0.0.1:{port}");
        }

        var node = TorrentInterop.Require("node");
        var script = Path.Combine(RequiredTool.RequireNpmPeers(), "bt-tracker-server.mjs");
        var server = ExternalProcess.Start(node, [script, P(port)], Deadline, redirectStdin: true);
        await server.WaitForStdoutAsync(l => l.StartsWith("listening", StringComparison.Ordinal), Deadline);
        return (server, $"ws://127.0.0.1:{port}");
    }

    [RequiresToolFact(Chromium, "node", NeedsNpmPeers = true)]
    public Task Browser_downloads_from_peerway_share_through_peerway_tracker() => BrowserDownloadsAsync("peerway");

    [RequiresToolFact(Chromium, "node", NeedsNpmPeers = true)]
    public Task Browser_downloads_from_peerway_share_through_bittorrent_tracker() => BrowserDownloadsAsync("bittorrent-tracker");

    [RequiresToolFact(Chromium, "node", NeedsNpmPeers = true)]
    public Task Peerway_get_downloads_from_a_browser_through_peerway_tracker() => BrowserSeedsAsync("peerway");

    [RequiresToolFact(Chromium, "node", NeedsNpmPeers = true)]
    public Task Peerway_get_downloads_from_a_browser_through_bittorrent_tracker() => BrowserSeedsAsync("bittorrent-tracker");

    private static async Task BrowserDownloadsAsync(string trackerKind)
    {
        await using var env = new TorrentInterop("wt-browser-dl");
        var (trackerProcess, tracker) = await StartTrackerAsync(env, trackerKind);
        await using var _ = trackerProcess;
        var source = Path.Combine(env.Root, "src", "payload.bin");
        var sha = await TorrentInterop.RandomFileAsync(source, FileSize);
        var share = env.StartPeerway("share", source, "--tracker", tracker, "-v");
        var magnet = await share.FirstLineAsync(Deadline);

        var (playwright, browser, page) = await OpenPageAsync();
        using var __ = playwright;
        await using var ___ = browser;
        page.Console += (_, m) => Console.Error.WriteLine("page: " + m.Text);
        string[] result;
        try
        {
            result = (await page.EvaluateAsync<string>(DownloadScript, new { magnet, tracker }).WaitAsync(Deadline)).Split(' ');
        }
        catch (TimeoutException)
        {
            Assert.Fail("the browser did not finish; peerway share said:\n" + share.Stderr[^Math.Min(share.Stderr.Length, 6000)..]);
            throw;
        }

        Assert.Equal(Convert.ToHexStringLower(sha), result[0]);
        Assert.Equal(P(FileSize), result[1]);
    }

    private static async Task BrowserSeedsAsync(string trackerKind)
    {
        await using var env = new TorrentInterop("wt-browser-up");
        var (trackerProcess, tracker) = await StartTrackerAsync(env, trackerKind);
        await using var _ = trackerProcess;
        var data = System.Security.Cryptography.RandomNumberGenerator.GetBytes(FileSize);
        var (playwright, browser, page) = await OpenPageAsync();
        using var __ = playwright;
        await using var ___ = browser;
        var magnet = await page.EvaluateAsync<string>(SeedScript, new { base64 = Convert.ToBase64String(data), tracker }).WaitAsync(Deadline);
        Assert.StartsWith("magnet:?xt=urn:btih:", magnet);

        // A magnet: Peerway fetches the info dictionary from the browser (ut_metadata over the data channel), then the pieces.
        var dl = Path.Combine(env.Root, "dl");
        var get = env.StartPeerway("get", magnet, "-o", dl, "--timeout", "120");
        Assert.True(await get.WaitForExitAsync(Deadline), "peerway get did not finish");
        Assert.True(get.ExitCode == 0, get.Stderr);
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(data), TorrentInterop.Sha256OfFile(Path.Combine(dl, "payload.bin")));
    }
}
