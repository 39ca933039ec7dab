using System.Globalization;
using Microsoft.Playwright;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Interop.Tests.Torrent;
using Xunit.Abstractions;

namespace Peerway.Interop.Tests.Node;

/// <summary>
/// Issue 18 item 4: the node's web dashboard in headless Chromium (Debian's, driven by Playwright .NET, nothing
/// downloaded). The page adds a magnet (seeded by <c>peerway share</c> on loopback, reached through x.pe), shows it reach
/// 100 % from the node's server-sent events, pauses and removes it with its own buttons (through the Transmission RPC
/// and its session-id token), then uploads a .torrent of the same file (checked on disk: 100 %); a screenshot is written and its path printed.
/// </summary>
public sealed class DashboardBrowserTests(ITestOutputHelper output)
{
    private const string Chromium = "/usr/bin/chromium";
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [RequiresToolFact(Chromium)]
    public async Task Dashboard_adds_a_magnet_shows_it_reach_100_percent_pauses_and_removes_it()
    {
        RequiredTool.Require(Chromium, "apt-get install chromium");
        await using var env = new TorrentInterop("node-dash");
        var file = Path.Combine(env.Root, "seed", "gamma.bin");
        var sha = await TorrentInterop.RandomFileAsync(file, 5 * 1024 * 1024 + 321);
        var port = TorrentInterop.FreePort();
        var share = env.StartPeerway("share", file, "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1");
        var magnet = (await share.FirstLineAsync(TimeSpan.FromMinutes(4))).Trim();
        Assert.StartsWith("magnet:?", magnet);
        magnet += $"&x.pe=127.0.0.1:{port}";

        var data = Path.Combine(env.Root, "node");
        // Item 6's log config too: the node's own category at Information, as JSON lines on stderr.
        var config = Path.Combine(env.Root, "node.json");
        await File.WriteAllTextAsync(config, """{"log-level": "Warning", "logging": {"Peerway.Node.Daemon": "Information"}, "log-format": "json"}""");
        var node = await RunningNode.StartAsync(env, data, "--config", config);
        var dashboard = node.RpcUrl[..^"transmission/rpc".Length];

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1200, Height = 720 } });
        page.SetDefaultTimeout((float)Timeout.TotalMilliseconds);
        var failures = new List<string>();
        page.PageError += (_, e) => failures.Add(e);
        page.RequestFailed += (_, r) => failures.Add($"{r.Url}: {r.Failure}");
        await page.GotoAsync(dashboard);
        string Log() => $"page errors: {string.Join("; ", failures)}\n--- node stderr ---\n{node.Process.Stderr}";

        // The event stream is open (the badge turns "live" on EventSource's open event).
        await page.Locator("#live").GetByText("live", new() { Exact = true }).WaitForAsync();
        Assert.Equal(0, await page.Locator("#torrents tbody tr").CountAsync());

        await page.FillAsync("#magnet", magnet);
        await page.ClickAsync("#add-magnet button");
        var row = page.Locator("#torrents tbody tr").First;
        await row.WaitForAsync();
        // 100 % as the page shows it: the row's bar label, from the node's pushed state.
        await page.WaitForFunctionAsync("() => { const r = document.querySelector('#torrents tbody tr'); return r && r.dataset.done === '1' && r.querySelector('.bar em').textContent === '100.0 %'; }",
            null, new() { Timeout = (float)Timeout.TotalMilliseconds });
        Assert.Contains("gamma.bin", await row.Locator("td.name").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(data, "downloads", "gamma.bin")));
        // Issue 21 item 3: the file's "stream" link, followed by the browser itself (same origin, same access rule).
        var stream = row.Locator("a.stream").First;
        Assert.Equal("stream", await stream.InnerTextAsync());
        var href = await stream.GetAttributeAsync("href");
        Assert.Matches(@"^/stream/[0-9a-f]{40}/0/gamma\.bin$", href);
        var streamed = await page.EvaluateAsync<int>("async u => (await (await fetch(u, { headers: { Range: 'bytes=0-99' } })).arrayBuffer()).byteLength", href);
        Assert.Equal(100, streamed);
        Assert.Equal("live", await page.Locator("#live").InnerTextAsync());
        Assert.Matches(@"^\d+$", await page.Locator("#dht-table").InnerTextAsync());

        // Item 6: the download moved the engines' counters, as a Prometheus scrape sees them.
        using (var http = new HttpClient())
        {
            var metrics = await PrometheusScrape.GetAsync(http, dashboard + "metrics");
            Assert.True(PrometheusScrape.Sum(metrics, "peerway_torrent_transferred_bytes_total", "direction=\"down\"") >= 5 * 1024 * 1024 + 321, metrics);
            Assert.True(PrometheusScrape.Sum(metrics, "peerway_torrent_pieces_verified_total", "") > 0, metrics);
            Assert.Equal(0, PrometheusScrape.Sum(metrics, "peerway_torrent_pieces_failed_total", ""));
            Assert.True(PrometheusScrape.Sum(metrics, "peerway_rpc_requests_total", "method=\"torrent-add\"") == 1, metrics);
        }

        // The node's Information line (its banner) came out as JSON under its category; the Warning default held elsewhere.
        Assert.Contains(node.Process.Stderr.Split('\n'), l => l.StartsWith('{') && l.Contains("\"Category\":\"Peerway.Node.Daemon.NodeDaemon\"", StringComparison.Ordinal) && l.Contains("\"Banner\"", StringComparison.Ordinal));

        var shots = Environment.GetEnvironmentVariable("PEERWAY_SCREENSHOT_DIR") is { Length: > 0 } dir ? Directory.CreateDirectory(dir).FullName : env.Root;
        var shot = Path.Combine(shots, "dashboard.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot, FullPage = true });
        output.WriteLine($"dashboard screenshot: {shot}");
        Assert.True(new FileInfo(shot).Length > 0, Log());

        await row.GetByRole(AriaRole.Button, new() { Name = "Pause" }).ClickAsync();
        await page.Locator("#torrents tbody tr[data-state=paused]").WaitForAsync();
        Assert.Equal("paused #1", await page.Locator("#message").InnerTextAsync());

        await page.Locator("#torrents tbody tr").First.GetByRole(AriaRole.Button, new() { Name = "Remove" }).ClickAsync();
        await page.Locator("#no-torrents").WaitForAsync(new() { State = WaitForSelectorState.Visible });
        Assert.Equal(0, await page.Locator("#torrents tbody tr").CountAsync());
        // Removed without delete-local-data: the download stays.
        Assert.True(File.Exists(Path.Combine(data, "downloads", "gamma.bin")), Log());

        // A .torrent uploaded from the page (base64 metainfo through torrent-add): the same file, whose data the node
        // still has, so it checks the pieces on disk and shows 100 % without a peer.
        var torrent = Path.Combine(env.Root, "gamma.torrent");
        var (created, _, createErr) = await env.RunPeerwayAsync(TimeSpan.FromMinutes(2), "create", file, "-o", torrent);
        Assert.True(created == 0, createErr);
        await page.SetInputFilesAsync("#torrent-file", torrent);
        await page.ClickAsync("#add-file button");
        await page.WaitForFunctionAsync("() => { const r = document.querySelector('#torrents tbody tr'); return r && r.dataset.done === '1'; }",
            null, new() { Timeout = (float)Timeout.TotalMilliseconds });
        Assert.Equal("added gamma.torrent", await page.Locator("#message").InnerTextAsync());
        Assert.Contains("gamma.bin", await page.Locator("#torrents tbody tr td.name").InnerTextAsync(), StringComparison.Ordinal);
        Assert.True(failures.Count == 0, Log());
    }
}
