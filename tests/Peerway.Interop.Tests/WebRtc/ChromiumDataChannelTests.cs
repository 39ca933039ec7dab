using System.Globalization;
using System.Text.Json;
using Microsoft.Playwright;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.WebRtc;

/// <summary>
/// Headless Chromium (Debian's <c>/usr/bin/chromium</c>, driven by Playwright .NET, nothing downloaded) as the WebRTC
/// offerer against <c>peerway rtc listen --echo</c>: the page POSTs its complete offer to /rtc (a CORS request from
/// another origin), applies the answer, opens data channels and checks every echo byte for byte.
/// </summary>
public sealed class ChromiumDataChannelTests
{
    private const string Chromium = "/usr/bin/chromium";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    // The page's side: offer, POST, answer, then per channel a list of messages to send and compare on echo.
    private const string Script = """
        async ({ url, channels }) => {
          const pc = new RTCPeerConnection();
          const opened = channels.map(c => {
            const dc = pc.createDataChannel(c.label, c.init);
            dc.binaryType = 'arraybuffer';
            return dc;
          });
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise(resolve => {
            if (pc.iceGatheringState === 'complete') return resolve();
            pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
          });
          const started = performance.now();
          const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
          const answer = await res.text();
          if (res.status !== 201) throw new Error('POST /rtc answered ' + res.status + ': ' + answer);
          await pc.setRemoteDescription({ type: 'answer', sdp: answer });
          const results = [];
          for (let k = 0; k < channels.length; k++) {
            const dc = opened[k];
            if (dc.readyState !== 'open') await new Promise((resolve, reject) => { dc.onopen = resolve; dc.onerror = e => reject(new Error('channel error')); });
            const setupMs = performance.now() - started;
            const sizes = channels[k].sizes;
            const sent = sizes.map((n, i) => {
              const b = new Uint8Array(n);
              for (let j = 0; j < n; j += 65536) crypto.getRandomValues(b.subarray(j, Math.min(n, j + 65536)));
              if (n >= 4) new DataView(b.buffer).setUint32(0, i);
              return b;
            });
            const text = channels[k].text;
            const got = new Map();
            const done = new Promise(resolve => {
              dc.onmessage = e => {
                if (text) { got.set(got.size, e.data); }
                else { const v = new Uint8Array(e.data); got.set(v.length >= 4 ? new DataView(e.data).getUint32(0) : got.size, v); }
                if (got.size === sizes.length) resolve();
              };
            });
            for (const b of sent) dc.send(text ? 'x'.repeat(b.length) : b);
            await Promise.race([done, new Promise(r => setTimeout(r, 60000))]);
            let intact = 0;
            for (let i = 0; i < sent.length; i++) {
              const e = got.get(i);
              if (e === undefined) continue;
              if (text ? e === 'x'.repeat(sent[i].length) : (e.length === sent[i].length && e.every((v, j) => v === sent[i][j]))) intact++;
            }
            const closedHere = new Promise(r => { dc.onclose = () => r(dc.readyState); });
            dc.close();
            results.push({ label: channels[k].label, intact, ordered: dc.ordered, setupMs, closed: await Promise.race([closedHere, new Promise(r => setTimeout(() => r('timeout'), 20000))]) });
          }
          const pair = (await pc.getStats()).values().find(s => s.type === 'candidate-pair' && s.nominated);
          pc.close();
          return JSON.stringify({ results, pair: pair ? pair.state : 'none' });
        }
        """;

    private sealed record ChannelResult(string Label, int Intact, bool Ordered, double SetupMs, string Closed);

    private sealed record PageResult(List<ChannelResult> Results, string Pair);

    private static async Task<PageResult> RunPageAsync(string url, object[] channels)
    {
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        var page = await browser.NewPageAsync();
        page.SetDefaultTimeout((float)Timeout.TotalMilliseconds);
        var json = await page.EvaluateAsync<string>(Script, new { url, channels });
        return JsonSerializer.Deserialize<PageResult>(json, new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
    }

    private static async Task<(ExternalProcess Listener, string Url)> StartListenerAsync()
    {
        var port = FreePort.TcpAndUdp().ToString(CultureInfo.InvariantCulture);
        var listener = PeerwayCli.Start("rtc", "listen", "--http", "127.0.0.1:" + port, "--echo");
        var first = await listener.WaitForStdoutAsync(_ => true, Timeout);
        Assert.Equal($"rtc: listening on http://127.0.0.1:{port}/rtc", first);
        return (listener, $"http://127.0.0.1:{port}/rtc");
    }

    [RequiresToolFact(Chromium)]
    public async Task Chromium_offers_and_every_message_size_is_echoed_intact()
    {
        RequiredTool.Require(Chromium, "apt-get install chromium");
        var (listener, url) = await StartListenerAsync();
        await using var _ = listener;
        int[] sizes = [1, 16 * 1024, 64 * 1024, 256 * 1024];
        var page = await RunPageAsync(url,
        [
            new { label = "sizes", init = new { ordered = true }, sizes, text = false },
            new { label = "mebibyte", init = new { ordered = true }, sizes = Enumerable.Repeat(64 * 1024, 16).ToArray(), text = false },
            new { label = "text", init = new { ordered = true }, sizes = new[] { 1, 1000, 70000 }, text = true },
        ]);
        var log = $"page: {JsonSerializer.Serialize(page)}\nstdout:\n{listener.Stdout}\nstderr:\n{listener.Stderr}";
        Assert.True(page.Results.Count == 3, log);
        Assert.True(page.Results[0].Intact == sizes.Length, log);
        Assert.True(page.Results[1].Intact == 16, log);
        Assert.True(page.Results[2].Intact == 3, log);
        Assert.All(page.Results, r => Assert.True(r.Closed == "closed", log));
        foreach (var label in new[] { "sizes", "mebibyte", "text" })
        {
            await listener.WaitForStdoutAsync(l => l.StartsWith($"channel open {label} id ", StringComparison.Ordinal) && l.EndsWith(" ordered", StringComparison.Ordinal), Timeout);
            await listener.WaitForStdoutAsync(l => l == $"channel closed {label}", Timeout);
        }
    }
}
