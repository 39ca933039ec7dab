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
    private static readonly JsonSerializerOptions CaseInsensitive = new() { PropertyNameCaseInsensitive = true };

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
          return JSON.stringify({ results, pair: pair ? pair.state : 'none', offer: pc.localDescription.sdp, answer });
        }
        """;

    private sealed record ChannelResult(string Label, int Intact, bool Ordered, double SetupMs, string Closed);

    private sealed record PageResult(List<ChannelResult> Results, string Pair, string Offer, string Answer);

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
        return JsonSerializer.Deserialize<PageResult>(json, CaseInsensitive)!;
    }

    private static async Task<(ExternalProcess Listener, string Url)> StartListenerAsync(params string[] extra)
    {
        var port = FreePort.TcpAndUdp().ToString(CultureInfo.InvariantCulture);
        var listener = PeerwayCli.Start(["rtc", "listen", "--http", "127.0.0.1:" + port, "--echo", .. extra]);
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
        if (Environment.GetEnvironmentVariable("PEERWAY_CAPTURE_SDP") is { } dir)
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "chromium-offer.sdp"), page.Offer);
            await File.WriteAllTextAsync(Path.Combine(dir, "peerway-answer.sdp"), page.Answer);
        }

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

    /// <summary>
    /// The server case of ICE-lite (RFC 8445 §2.5): <c>rtc listen --ice-lite</c> answers with <c>a=ice-lite</c>, sends
    /// no checks of its own, and Chromium (a full agent, controlling) checks, nominates and gets every echo.
    /// </summary>
    [RequiresToolFact(Chromium)]
    public async Task Chromium_offers_to_an_ice_lite_listener_and_messages_are_echoed()
    {
        RequiredTool.Require(Chromium, "apt-get install chromium");
        var (listener, url) = await StartListenerAsync("--ice-lite");
        await using var _ = listener;
        int[] sizes = [1, 1000, 64 * 1024];
        var page = await RunPageAsync(url, [new { label = "lite", init = new { ordered = true }, sizes, text = false }]);
        var log = $"page: {JsonSerializer.Serialize(page)}\nstdout:\n{listener.Stdout}\nstderr:\n{listener.Stderr}";
        Assert.Contains("a=ice-lite\r\n", page.Answer, StringComparison.Ordinal);
        Assert.True(page.Results.Count == 1 && page.Results[0].Intact == sizes.Length, log);
        Assert.True(page.Results[0].Closed == "closed", log);
        await listener.WaitForStdoutAsync(l => l == "channel closed lite", Timeout);
    }

    // The page as answerer: it takes Peerway's offer, answers (a=setup:active, so Chromium is the DTLS client and
    // Peerway the server), echoes every message on every channel Peerway opens, and reports channels that closed.
    private const string AnswerScript = """
        async ({ offer }) => {
          const pc = new RTCPeerConnection();
          window.closedChannels = [];
          window.openedChannels = [];
          pc.ondatachannel = e => {
            const dc = e.channel;
            dc.binaryType = 'arraybuffer';
            window.openedChannels.push(dc.label + ' ' + dc.id + ' ' + (dc.ordered ? 'ordered' : 'unordered') + ' ' + dc.maxRetransmits);
            dc.onmessage = m => dc.send(m.data);
            dc.onclose = () => window.closedChannels.push(dc.label);
            if (dc.label === 'close-from-browser') setTimeout(() => dc.close(), 200);
          };
          await pc.setRemoteDescription({ type: 'offer', sdp: offer });
          await pc.setLocalDescription(await pc.createAnswer());
          await new Promise(resolve => {
            if (pc.iceGatheringState === 'complete') return resolve();
            pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
          });
          window.pc = pc;
          return pc.localDescription.sdp;
        }
        """;

    [RequiresToolFact(Chromium)]
    public async Task Chromium_answers_and_echoes_on_channels_Peerway_opens_and_closes_reach_both_sides()
    {
        RequiredTool.Require(Chromium, "apt-get install chromium");
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        var page = await browser.NewPageAsync();
        await using var pc = new Peerway.WebRtc.RtcPeerConnection(new Peerway.Net.UdpDatagramSocket(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0)), TimeProvider.System, new Peerway.WebRtc.RtcConfiguration());
        var offer = await pc.CreateOfferAsync();
        var answer = await page.EvaluateAsync<string>(AnswerScript, new { offer });
        if (Environment.GetEnvironmentVariable("PEERWAY_CAPTURE_SDP") is { } dir)
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "peerway-offer.sdp"), offer);
            await File.WriteAllTextAsync(Path.Combine(dir, "chromium-answer.sdp"), answer);
        }

        pc.SetAnswer(answer);
        await pc.Connected.WaitAsync(Timeout);

        // A reliable ordered channel: 1 MiB in 64 KiB messages, echoed intact and in order.
        var reliable = await pc.CreateDataChannelAsync("reliable");
        var data = System.Security.Cryptography.RandomNumberGenerator.GetBytes(1024 * 1024);
        var echoed = Task.Run(async () =>
        {
            using var received = new MemoryStream();
            while (received.Length < data.Length) received.Write((await reliable.ReceiveAsync())!.Value.Data.Span);
            return received.ToArray();
        });
        for (var i = 0; i < data.Length; i += 65536) await reliable.SendAsync(data.AsMemory(i, 65536));
        Assert.Equal(data, await echoed.WaitAsync(Timeout));

        // An unordered maxRetransmits 0 channel (loopback loses nothing, so every message comes back).
        var lossy = await pc.CreateDataChannelAsync("lossy", new Peerway.WebRtc.DataChannels.RtcDataChannelInit { Ordered = false, MaxRetransmits = 0 });
        for (var i = 0; i < 20; i++) await lossy.SendAsync($"m{i}");
        var texts = new HashSet<string>();
        while (texts.Count < 20) texts.Add((await lossy.ReceiveAsync().AsTask().WaitAsync(Timeout))!.Value.Text);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"m{i}").ToHashSet(), texts);

        // Closed from our side, then from the browser's: both reach "closed" on both sides.
        reliable.Close();
        var fromBrowser = await pc.CreateDataChannelAsync("close-from-browser");
        await Task.WhenAll(reliable.Closed, fromBrowser.Closed).WaitAsync(Timeout);
        var opened = await page.EvaluateAsync<string[]>("() => window.openedChannels");
        Assert.Contains(opened, o => o.StartsWith("lossy ", StringComparison.Ordinal) && o.EndsWith(" unordered 0", StringComparison.Ordinal));
        Assert.All(opened, o => Assert.Equal(1, int.Parse(o.Split(' ')[1], CultureInfo.InvariantCulture) % 2)); // DTLS server: odd ids
        await page.WaitForFunctionAsync("() => window.closedChannels.includes('reliable') && window.closedChannels.includes('close-from-browser')", null, new PageWaitForFunctionOptions { Timeout = (float)Timeout.TotalMilliseconds });
    }
}
