using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.Playwright;
using Peerway.Net;
using Peerway.WebRtc;
using Peerway.WebRtc.DataChannels;

namespace Peerway.Benchmarks;

/// <summary>
/// The WebRTC data-channel benchmark (issue 13 item 10; bench/webrtc/throughput.sh): one reliable ordered channel on
/// loopback, in interleaved rounds, for every pair of Peerway (in this process), headless Chromium (Debian's
/// /usr/bin/chromium driven by Playwright; Chromium→Chromium is two RTCPeerConnections in one page) and werift (node,
/// tests/interop-peers/werift-bench.mjs). Per pair: bulk throughput (64 KiB messages), messages/s with 1 KiB
/// messages, and time from createOffer to an open channel; then memory per idle Peerway connection.
/// Every receiver times from its first message to its last (bytes after the first message / that time), so the
/// set-up and the first round trip are out of every figure, and the senders keep at most 4 MiB queued (werift 256 KiB: more stalls it).
/// </summary>
internal static class RtcBench
{
    private const string Usage = "usage: rtc-bench [--rounds N] [--mib M] [--small N] [--idle N] [--pairs p2p,c2c,...] [--werift PATH] [--chromium PATH]";
    private const long SendQueue = 4L << 20;
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(2);

    // The page's side; every function is awaited by Playwright. A sender waits on bufferedamountlow above 4 MiB.
    private const string PageScript = """
        () => {
          const gathered = pc => new Promise(r => {
            if (pc.iceGatheringState === 'complete') return r();
            pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') r(); });
          });
          const opened = dc => dc.readyState === 'open' ? Promise.resolve() : new Promise(r => dc.addEventListener('open', r, { once: true }));
          async function sendAll(dc, count, size) {
            const b = new Uint8Array(size);
            crypto.getRandomValues(b.subarray(0, Math.min(size, 65536)));
            dc.bufferedAmountLowThreshold = 1 << 20;
            for (let i = 0; i < count; i++) {
              if (dc.bufferedAmount > (4 << 20)) await new Promise(r => dc.addEventListener('bufferedamountlow', r, { once: true }));
              dc.send(b);
            }
          }
          function receiveAll(dc, count) {
            dc.binaryType = 'arraybuffer';
            return new Promise(resolve => {
              let n = 0, bytes = 0, first = 0, firstBytes = 0;
              dc.onmessage = e => {
                const now = performance.now();
                const len = e.data.byteLength;
                if (n === 0) { first = now; firstBytes = len; }
                n++; bytes += len;
                if (n === count) {
                  const ms = now - first;
                  resolve({ messages: n, bytes, ms, mbps: (bytes - firstBytes) / ms / 1000, messagesPerSecond: (n - 1) / ms * 1000 });
                }
              };
            });
          }
          window.bench = {
            async self(count, size) {
              const a = new RTCPeerConnection(), b = new RTCPeerConnection();
              const started = performance.now();
              const dc = a.createDataChannel('bench', { ordered: true });
              const remote = new Promise(r => b.ondatachannel = e => r(e.channel));
              await a.setLocalDescription(await a.createOffer());
              await gathered(a);
              await b.setRemoteDescription(a.localDescription);
              await b.setLocalDescription(await b.createAnswer());
              await gathered(b);
              await a.setRemoteDescription(b.localDescription);
              await opened(dc);
              const setupMs = performance.now() - started;
              const rx = await remote;
              const result = receiveAll(rx, count);
              await sendAll(dc, count, size);
              const r = await result;
              a.close(); b.close();
              return JSON.stringify({ ...r, setupMs });
            },
            async offer() {
              this.pc = new RTCPeerConnection();
              this.started = performance.now();
              this.dc = this.pc.createDataChannel('bench', { ordered: true });
              await this.pc.setLocalDescription(await this.pc.createOffer());
              await gathered(this.pc);
              return this.pc.localDescription.sdp;
            },
            async answer(sdp, receive) {
              // The receiver is in place before the channel opens: a message with no handler would be lost.
              this.rx = receive > 0 ? receiveAll(this.dc, receive) : null;
              await this.pc.setRemoteDescription({ type: 'answer', sdp });
              await opened(this.dc);
              return performance.now() - this.started;
            },
            send(count, size) { return sendAll(this.dc, count, size); },
            async receive() { return JSON.stringify(await this.rx); },
            close() { this.pc.close(); },
          };
        }
        """;

    private sealed record Result(double Mbps, double MessagesPerSecond, double SetupMs);

    private sealed record Measured(double Mbps, double MessagesPerSecond, double Ms);

    private sealed class Options
    {
        public int Rounds { get; set; } = 3;

        public int Mib { get; set; } = 16;

        public int Small { get; set; } = 3000;

        public int Idle { get; set; } = 100;

        public string Chromium { get; set; } = "/usr/bin/chromium";

        public string Werift { get; set; } = Path.GetFullPath("tests/interop-peers/werift-bench.mjs");

        public List<string> Pairs { get; set; } = ["c2c", "p2c", "c2p", "p2p", "w2w", "p2w", "w2p"];
    }

    public static async Task<int> RunAsync(string[] args)
    {
        var o = new Options();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException(Usage);
            switch (args[i])
            {
                case "--rounds": o.Rounds = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--mib": o.Mib = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--small": o.Small = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--idle": o.Idle = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--werift": o.Werift = Path.GetFullPath(Next()); break;
                case "--chromium": o.Chromium = Next(); break;
                case "--pairs": o.Pairs = [.. Next().Split(',')]; break;
                default:
                    Console.Error.WriteLine(Usage);
                    return 2;
            }
        }

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = o.Chromium,
            Headless = true,
            Args = ["--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        var bulk = (Count: o.Mib * 16, Size: 65536);
        var small = (Count: o.Small, Size: 1024);
        var results = new Dictionary<(string Pair, string Kind), List<Result>>();
        for (var round = 1; round <= o.Rounds; round++)
        {
            foreach (var pair in o.Pairs)
            {
                foreach (var (kind, (count, size)) in new[] { ("bulk", bulk), ("1KiB", small) })
                {
                    Result r;
                    try
                    {
                        r = await RunPairAsync(pair, browser, o, count, size).WaitAsync(RunTimeout);
                    }
                    catch (Exception ex) when (ex is TimeoutException or InvalidOperationException or PlaywrightException or IOException)
                    {
                        Console.Error.WriteLine($"round {round} {pair} {kind}: {ex.GetType().Name}: {ex.Message}");
                        r = new Result(double.NaN, double.NaN, double.NaN);
                    }

                    Console.Error.WriteLine(FormattableString.Invariant($"round {round} {pair,-4} {kind,-5} {r.Mbps,8:F1} MB/s {r.MessagesPerSecond,9:F0} msg/s setup {r.SetupMs,6:F0} ms"));
                    if (!results.TryGetValue((pair, kind), out var list)) results[(pair, kind)] = list = [];
                    list.Add(r);
                }
            }
        }

        Report(o, results);
        if (o.Idle > 0) await IdleMemoryAsync(o.Idle);
        return 0;
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Where(x => !double.IsNaN(x)).Order().ToArray();
        if (v.Length == 0) return double.NaN;
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[(v.Length / 2) - 1] + v[v.Length / 2]) / 2;
    }

    private static void Report(Options o, Dictionary<(string Pair, string Kind), List<Result>> results)
    {
        string Rounds(IEnumerable<double> v, string format) => string.Join(", ", v.Select(x => x.ToString(format, CultureInfo.InvariantCulture)));
        double MedianOf(string pair, string kind, Func<Result, double> f) => results.TryGetValue((pair, kind), out var l) ? Median(l.Select(f)) : double.NaN;
        var c2c = MedianOf("c2c", "bulk", r => r.Mbps);
        var w2w = MedianOf("w2w", "bulk", r => r.Mbps);
        Console.WriteLine(FormattableString.Invariant($"{o.Rounds} interleaved rounds, bulk {o.Mib} MiB in 64 KiB messages, {o.Small} messages of 1 KiB; medians (rounds)"));
        Console.WriteLine("| Pair | Bulk MB/s | vs Chromium→Chromium | vs werift→werift | 1 KiB messages/s | Offer → open (ms) |");
        Console.WriteLine("|------|-----------|----------------------|------------------|------------------|-------------------|");
        foreach (var pair in o.Pairs)
        {
            var b = results.GetValueOrDefault((pair, "bulk")) ?? [];
            var s = results.GetValueOrDefault((pair, "1KiB")) ?? [];
            var mbps = Median(b.Select(r => r.Mbps));
            Console.WriteLine(FormattableString.Invariant(
                $"| {Name(pair)} | **{mbps:F1}** ({Rounds(b.Select(r => r.Mbps), "F1")}) | {mbps / c2c:F2}× | {mbps / w2w:F2}× | {Median(s.Select(r => r.MessagesPerSecond)):F0} ({Rounds(s.Select(r => r.MessagesPerSecond), "F0")}) | {Median(b.Concat(s).Select(r => r.SetupMs)):F0} |"));
        }
    }

    private static string Name(string pair) => pair switch
    {
        "c2c" => "Chromium → Chromium (one page)",
        "p2c" => "Peerway → Chromium",
        "c2p" => "Chromium → Peerway",
        "p2p" => "Peerway → Peerway (one process)",
        "w2w" => "werift → werift (one process)",
        "p2w" => "Peerway → werift",
        "w2p" => "werift → Peerway",
        _ => pair,
    };

    private static RtcPeerConnection NewPeerway() =>
        new(new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), TimeProvider.System, new RtcConfiguration());

    private static Task<Result> RunPairAsync(string pair, IBrowser browser, Options o, int count, int size) => pair switch
    {
        "c2c" => ChromiumSelfAsync(browser, count, size),
        "p2c" => ChromiumPeerwayAsync(browser, count, size, peerwaySends: true),
        "c2p" => ChromiumPeerwayAsync(browser, count, size, peerwaySends: false),
        "p2p" => PeerwaySelfAsync(count, size),
        "w2w" => WeriftSelfAsync(o, count, size),
        "p2w" => WeriftPeerwayAsync(o, count, size, peerwaySends: true),
        "w2p" => WeriftPeerwayAsync(o, count, size, peerwaySends: false),
        _ => throw new InvalidOperationException("unknown pair " + pair),
    };

    private static Measured Parse(string json)
    {
        using var d = JsonDocument.Parse(json);
        var r = d.RootElement;
        return new Measured(r.GetProperty("mbps").GetDouble(), r.GetProperty("messagesPerSecond").GetDouble(), r.GetProperty("ms").GetDouble());
    }

    private static async Task<IPage> PageAsync(IBrowser browser)
    {
        var page = await browser.NewPageAsync();
        page.SetDefaultTimeout((float)RunTimeout.TotalMilliseconds);
        await page.EvaluateAsync(PageScript);
        return page;
    }

    private static async Task<Result> ChromiumSelfAsync(IBrowser browser, int count, int size)
    {
        var page = await PageAsync(browser);
        try
        {
            var json = await page.EvaluateAsync<string>("([c, s]) => window.bench.self(c, s)", new[] { count, size });
            var m = Parse(json);
            using var d = JsonDocument.Parse(json);
            return new Result(m.Mbps, m.MessagesPerSecond, d.RootElement.GetProperty("setupMs").GetDouble());
        }
        finally
        {
            await page.CloseAsync();
        }
    }

    private static async Task<Result> ChromiumPeerwayAsync(IBrowser browser, int count, int size, bool peerwaySends)
    {
        var page = await PageAsync(browser);
        await using var pc = NewPeerway();
        try
        {
            var offer = await page.EvaluateAsync<string>("() => window.bench.offer()");
            var answer = await pc.AcceptOfferAsync(offer);
            var channel = pc.AcceptDataChannelAsync();
            var setupMs = await page.EvaluateAsync<double>("([sdp, n]) => window.bench.answer(sdp, n)", new object[] { answer, peerwaySends ? count : 0 });
            var ch = await channel ?? throw new InvalidOperationException("no channel");
            Measured m;
            if (peerwaySends)
            {
                using var traced = new CancellationTokenSource();
                var trace = TraceAsync(pc, traced.Token);
                var rx = page.EvaluateAsync<string>("() => window.bench.receive()");
                await SendAllAsync(ch, count, size);
                m = Parse(await rx);
                await traced.CancelAsync();
                await trace;
            }
            else
            {
                var rx = ReceiveAllAsync(ch, count);
                await page.EvaluateAsync("([c, s]) => window.bench.send(c, s)", new[] { count, size });
                m = await rx;
                if (Environment.GetEnvironmentVariable("RTCB_TRACE") is not null && pc.Sctp is { } sctp)
                {
                    var r = sctp.ReceiveStats;
                    Console.Error.WriteLine(FormattableString.Invariant($"trace receiver: {r.Chunks} chunks, {r.Duplicates} duplicates, {r.Refused} refused, {r.Sacks} SACKs ({r.WindowUpdates} window updates) in {m.Ms:F0} ms"));
                }
            }

            await page.EvaluateAsync("() => window.bench.close()");
            return new Result(m.Mbps, m.MessagesPerSecond, setupMs);
        }
        finally
        {
            await page.CloseAsync();
        }
    }

    /// <summary>With RTCB_TRACE set, the sender's congestion state every 250 ms on stderr (where a run's time goes).</summary>
    private static async Task TraceAsync(RtcPeerConnection pc, CancellationToken cancellationToken)
    {
        if (Environment.GetEnvironmentVariable("RTCB_TRACE") is null) return;
        using var tick = new PeriodicTimer(TimeSpan.FromMilliseconds(250));
        try
        {
            while (await tick.WaitForNextTickAsync(cancellationToken))
            {
                if (pc.Sctp is not { } sctp) continue;
                var c = sctp.Congestion;
                var r = sctp.Retransmissions;
                Console.Error.WriteLine(FormattableString.Invariant(
                    $"trace cwnd {c.Cwnd} ssthresh {c.Ssthresh} flight {c.Flight} srtt {sctp.SmoothedRtt?.TotalMilliseconds:F1} ms rto {c.Rto.TotalMilliseconds} ms fast {r.FastRetransmits} timeouts {r.Timeouts} resent {r.RetransmittedChunks}"));
            }
        }
        catch (OperationCanceledException)
        {
            // The run ended.
        }
    }

    private static async Task<Result> PeerwaySelfAsync(int count, int size)
    {
        await using var a = NewPeerway();
        await using var b = NewPeerway();
        var started = Stopwatch.GetTimestamp();
        var offer = await a.CreateOfferAsync();
        var answer = await b.AcceptOfferAsync(offer);
        a.SetAnswer(answer);
        var tx = await a.CreateDataChannelAsync("bench");
        var rx = await b.AcceptDataChannelAsync() ?? throw new InvalidOperationException("no channel");
        var setupMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        var received = ReceiveAllAsync(rx, count);
        await SendAllAsync(tx, count, size);
        var m = await received;
        return new Result(m.Mbps, m.MessagesPerSecond, setupMs);
    }

    private static async Task SendAllAsync(RtcDataChannel channel, int count, int size)
    {
        var data = new byte[size];
        Random.Shared.NextBytes(data.AsSpan(0, Math.Min(size, 65536)));
        channel.BufferedAmountHighThreshold = SendQueue;
        for (var i = 0; i < count; i++) await channel.SendAsync(data);
    }

    private static async Task<Measured> ReceiveAllAsync(RtcDataChannel channel, int count)
    {
        long first = 0, bytes = 0, firstBytes = 0;
        for (var n = 0; n < count; n++)
        {
            var m = await channel.ReceiveAsync() ?? throw new InvalidOperationException($"the channel closed after {n} of {count} messages");
            if (n == 0)
            {
                first = Stopwatch.GetTimestamp();
                firstBytes = m.Data.Length;
            }

            bytes += m.Data.Length;
        }

        var ms = Stopwatch.GetElapsedTime(first).TotalMilliseconds;
        return new Measured((bytes - firstBytes) / ms / 1000, (count - 1) / ms * 1000, ms);
    }

    private static Process StartNode(Options o, params string[] args)
    {
        var psi = new ProcessStartInfo("node") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(o.Werift);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi) ?? throw new InvalidOperationException("node did not start");
    }

    private static async Task<string> LineAsync(Process p, string prefix)
    {
        while (await p.StandardOutput.ReadLineAsync() is { } line)
        {
            if (line.StartsWith(prefix, StringComparison.Ordinal)) return line[prefix.Length..];
        }

        throw new InvalidOperationException($"werift ended before `{prefix.Trim()}`");
    }

    private static async Task<Result> WeriftSelfAsync(Options o, int count, int size)
    {
        using var p = StartNode(o, "self", count.ToString(CultureInfo.InvariantCulture), size.ToString(CultureInfo.InvariantCulture));
        try
        {
            var json = await LineAsync(p, "result ");
            var m = Parse(json);
            using var d = JsonDocument.Parse(json);
            return new Result(m.Mbps, m.MessagesPerSecond, d.RootElement.GetProperty("setupMs").GetDouble());
        }
        finally
        {
            if (!p.HasExited) p.Kill();
            await p.WaitForExitAsync();
        }
    }

    private static async Task<Result> WeriftPeerwayAsync(Options o, int count, int size, bool peerwaySends)
    {
        using var p = StartNode(o, "offer", peerwaySends ? "recv" : "send", count.ToString(CultureInfo.InvariantCulture), size.ToString(CultureInfo.InvariantCulture));
        await using var pc = NewPeerway();
        try
        {
            var offer = JsonSerializer.Deserialize<string>(await LineAsync(p, "offer ")) ?? "";
            var channel = pc.AcceptDataChannelAsync();
            await p.StandardInput.WriteLineAsync("answer " + JsonSerializer.Serialize(await pc.AcceptOfferAsync(offer)));
            await p.StandardInput.FlushAsync();
            var setupMs = double.Parse(await LineAsync(p, "open "), CultureInfo.InvariantCulture);
            var ch = await channel ?? throw new InvalidOperationException("no channel");
            Measured m;
            if (peerwaySends)
            {
                await SendAllAsync(ch, count, size);
                m = Parse(await LineAsync(p, "result "));
            }
            else
            {
                m = await ReceiveAllAsync(ch, count);
            }

            return new Result(m.Mbps, m.MessagesPerSecond, setupMs);
        }
        finally
        {
            p.StandardInput.Close();
            if (!await ExitedAsync(p, TimeSpan.FromSeconds(5))) p.Kill();
            await p.WaitForExitAsync();
        }
    }

    private static async Task<bool> ExitedAsync(Process p, TimeSpan within)
    {
        try
        {
            await p.WaitForExitAsync().WaitAsync(within);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>Memory per idle connection: N Peerway↔Peerway pairs in this process, each with one open channel.</summary>
    private static async Task IdleMemoryAsync(int pairs)
    {
        using var self = Process.GetCurrentProcess();
        long Managed() => GC.GetTotalMemory(forceFullCollection: true);
        self.Refresh();
        var (managed0, resident0, private0, threads0) = (Managed(), self.WorkingSet64, self.PrivateMemorySize64, self.Threads.Count);
        var all = new List<RtcPeerConnection>();
        var channels = new List<RtcDataChannel>();
        try
        {
            for (var i = 0; i < pairs; i++)
            {
                var a = NewPeerway();
                var b = NewPeerway();
                all.Add(a);
                all.Add(b);
                a.SetAnswer(await b.AcceptOfferAsync(await a.CreateOfferAsync()));
                channels.Add(await a.CreateDataChannelAsync("idle"));
                channels.Add(await b.AcceptDataChannelAsync() ?? throw new InvalidOperationException("no channel"));
            }

            self.Refresh();
            var (managed1, resident1, private1, threads1) = (Managed(), self.WorkingSet64, self.PrivateMemorySize64, self.Threads.Count);
            var n = 2.0 * pairs;
            Console.WriteLine(FormattableString.Invariant(
                $"idle: {pairs} Peerway↔Peerway pairs ({n} connections, one open channel each): managed heap {(managed1 - managed0) / n / 1024:F1} KiB per connection, resident {(resident1 - resident0) / n / 1024:F1} KiB, private (reserved) bytes {(private1 - private0) / n / 1024:F1} KiB, threads {(threads1 - threads0) / n:F1} per connection"));
        }
        finally
        {
            foreach (var pc in all) await pc.DisposeAsync();
        }
    }
}
