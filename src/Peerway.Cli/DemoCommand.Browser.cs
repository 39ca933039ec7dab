using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Peerway.Cli;

/// <summary>
/// <c>peerway demo --browser</c> (issue 16 item 5): a browser joins a local swarm of desktop peers. This CLI runs
/// <c>tracker</c>, <c>share</c> (the seeder) and <c>get --seed</c> (a second desktop peer that downloads over TCP and
/// re-seeds), each as a child process of its own on loopback; then headless Chromium opens a page served here that
/// runs the webtorrent 2.x bundle (npm <c>webtorrent</c>, from tests/interop-peers), downloads the magnet through the
/// WebSocket tracker over WebRTC data channels, and posts back what it got from whom. Exit 0 only when the browser's
/// copy has the seeder's SHA-256.
/// </summary>
internal static partial class DemoCommand
{
    private const string DefaultChromium = "/usr/bin/chromium";
    private static readonly string[] BundlePath = ["tests", "interop-peers", "node_modules", "webtorrent", "dist", "webtorrent.min.js"];

    private const string BrowserPage = """
        <!doctype html><meta charset=utf-8><title>peerway demo</title><script type=module>
        import WebTorrent from '/webtorrent.min.js';
        const post = r => fetch('/result', { method: 'POST', body: JSON.stringify(r) });
        try {
          const { magnet, tracker } = await (await fetch('/job')).json();
          const started = performance.now();
          const client = new WebTorrent();
          const torrent = client.add(magnet, { announce: [tracker] });
          let firstPiece = null;
          torrent.on('verified', () => { firstPiece ??= performance.now() - started; });
          await new Promise((resolve, reject) => { torrent.on('done', resolve); torrent.on('error', reject); client.on('error', reject); });
          const ms = performance.now() - started;
          const bytes = await torrent.files[0].arrayBuffer();
          const sha = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map(b => b.toString(16).padStart(2, '0')).join('');
          const peers = torrent.wires.map(w => ({ id: w.peerId, type: w.type, downloaded: w.downloaded }));
          await post({ sha256: sha, bytes: bytes.byteLength, ms, firstPieceMs: firstPiece ?? ms, peers });
          client.destroy();
        } catch (e) { await post({ error: String(e && e.message || e) }); }
        </script>
        """;

    internal sealed record BrowserPeer(string? Id, string? Type, long Downloaded);

    internal sealed record BrowserResult(string? Sha256, long Bytes, double Ms, double FirstPieceMs, List<BrowserPeer>? Peers, string? Error);

    /// <summary>The job the page is given.</summary>
    internal sealed record BrowserJob(string Magnet, string Tracker);

    private static async Task<int> RunBrowserDemoAsync(int sizeMib, int seconds, bool verbose, TextWriter output, CancellationToken ct)
    {
        if (sizeMib is < 1 or > 1024) throw new UsageException($"--size-mib {sizeMib} is not in 1..1024 for --browser");
        if (seconds is < 1 or > 3600) throw new UsageException($"--timeout {seconds} is not in 1..3600 seconds");
        var chromium = Environment.GetEnvironmentVariable("PEERWAY_CHROMIUM") is { Length: > 0 } c ? c : DefaultChromium;
        if (!File.Exists(chromium)) throw new UsageException($"demo --browser needs Chromium at {chromium} (apt-get install chromium)");
        var bundle = FindBundle() ?? throw new UsageException("demo --browser needs the webtorrent 2.x bundle (tests/interop-peers/node_modules; ./test.sh installs it)");

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
        var root = Directory.CreateTempSubdirectory("peerway-demo-browser-").FullName;
        var children = new List<Process>();
        try
        {
            var file = Path.Combine(root, "seed", "demo.bin");
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            var sha = await WriteRandomFileAsync(file, (long)sizeMib * 1024 * 1024, deadline.Token);
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"browser demo: {sizeMib} MiB, SHA-256 {Convert.ToHexStringLower(sha)[..16]}…"));

            var tracker = "ws://127.0.0.1:" + FreeTcpPort().ToString(CultureInfo.InvariantCulture);
            await StartSelfAsync(children, verbose, ["tracker", "--port", tracker[15..], "--bind", "127.0.0.1"], deadline.Token);
            var seedPort = FreeTcpPort().ToString(CultureInfo.InvariantCulture);
            var magnet = (await StartSelfAsync(children, verbose, ["share", file, "--tracker", tracker, "--port", seedPort, "--bind", "127.0.0.1"], deadline.Token)).Trim();
            await output.WriteLineAsync($"desktop seeder: peerway share on 127.0.0.1:{seedPort} (TCP, uTP) and WebRTC via {tracker}");
            var complete = await StartSelfAsync(children, verbose,
                ["get", magnet, "-o", Path.Combine(root, "desktop"), "--peer", "127.0.0.1:" + seedPort, "--tracker", tracker, "--bind", "127.0.0.1", "--seed"], deadline.Token);
            await output.WriteLineAsync("desktop peer: peerway get --seed, " + complete);

            var result = await RunBrowserAsync(chromium, bundle, magnet, tracker, root, children, deadline.Token);
            if (result.Error is not null) throw new RuntimeFailureException("the browser failed: " + result.Error);
            var peers = result.Peers ?? [];
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"browser (headless Chromium, webtorrent): {result.Bytes} bytes in {result.Ms / 1000:0.0} s, first piece after {result.FirstPieceMs:0} ms, from {peers.Count} peer(s) over WebRTC:"));
            foreach (var p in peers)
            {
                var id = p.Id is { Length: >= 16 } hex ? Encoding.ASCII.GetString(Convert.FromHexString(hex[..16])) : "?";
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  {id,-8} {p.Type,-8} {p.Downloaded,12} bytes"));
            }

            var ok = string.Equals(result.Sha256, Convert.ToHexStringLower(sha), StringComparison.Ordinal) && result.Bytes == (long)sizeMib * 1024 * 1024;
            await output.WriteLineAsync(ok ? "browser copy: SHA-256 matches the seeder's" : $"browser copy: SHA-256 {result.Sha256} does NOT match");
            return ok ? 0 : throw new RuntimeFailureException("the browser's copy does not match the seeder's");
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new RuntimeFailureException($"the browser demo did not finish within {seconds} s");
        }
        finally
        {
            foreach (var p in children)
            {
                StopChild(p);
                p.Dispose();
            }

            TryDelete(root);
        }
    }

    private static string? FindBundle()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine([dir.FullName, .. BundlePath]);
            if (File.Exists(path)) return path;
        }

        return null;
    }

    private static int FreeTcpPort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static async Task<byte[]> WriteRandomFileAsync(string path, long size, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var block = new byte[1024 * 1024];
        await using var f = File.Create(path);
        for (long left = size; left > 0; left -= block.Length)
        {
            RandomNumberGenerator.Fill(block);
            var n = (int)Math.Min(block.Length, left);
            hash.AppendData(block, 0, n);
            await f.WriteAsync(block.AsMemory(0, n), ct);
        }

        return hash.GetHashAndReset();
    }

    /// <summary>Starts this CLI with <paramref name="args"/> as a child; returns its first stdout line.</summary>
    private static async Task<string> StartSelfAsync(List<Process> children, bool verbose, string[] args, CancellationToken ct)
    {
        var host = Environment.ProcessPath ?? throw new RuntimeFailureException("cannot find this program's path");
        var psi = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        // Run as `dotnet peerway.dll …` (the launcher) or as the apphost.
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, typeof(DemoCommand).Assembly.GetName().Name + ".dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        return await StartChildAsync(children, psi, verbose, args[0], ct);
    }

    private static async Task<string> StartChildAsync(List<Process> children, ProcessStartInfo psi, bool verbose, string name, CancellationToken ct)
    {
        var process = new Process { StartInfo = psi };
        children.Add(process);
        var first = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) first.TrySetException(new RuntimeFailureException($"{name} exited before it was ready"));
            else first.TrySetResult(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (verbose && e.Data is not null) Console.Error.WriteLine($"[{name}] {e.Data}");
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return await first.Task.WaitAsync(ct);
    }

    private static void StopChild(Process p)
    {
        try
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            Console.Error.WriteLine("demo: could not stop a child process: " + ex.Message);
        }
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"demo: {dir} left behind: {ex.Message}");
        }
    }

    /// <summary>Serves the page, the bundle and the job on 127.0.0.1 (a secure context that may reach the loopback tracker), runs Chromium on it, returns what the page posted.</summary>
    private static async Task<BrowserResult> RunBrowserAsync(string chromium, string bundle, string magnet, string tracker, string root, List<Process> children, CancellationToken ct)
    {
        var port = FreeTcpPort().ToString(CultureInfo.InvariantCulture);
        using var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        var job = JsonSerializer.Serialize(new BrowserJob(magnet, tracker), DemoJson.Default.BrowserJob);
        var psi = new ProcessStartInfo(chromium) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--user-data-dir=" + Path.Combine(root, "chromium"), $"http://127.0.0.1:{port}/"]) psi.ArgumentList.Add(a);
        var browser = new Process { StartInfo = psi };
        children.Add(browser);
        browser.OutputDataReceived += (_, _) => { };
        browser.ErrorDataReceived += (_, _) => { };
        browser.Start();
        browser.BeginOutputReadLine();
        browser.BeginErrorReadLine();
        using var stop = ct.Register(listener.Stop);
        while (true)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync().WaitAsync(ct);
            }
            catch (HttpListenerException) when (ct.IsCancellationRequested)
            {
                throw new OperationCanceledException(ct);
            }

            var path = context.Request.Url?.AbsolutePath ?? "/";
            var response = context.Response;
            if (path == "/result" && context.Request.HttpMethod == "POST")
            {
                using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
                var body = await reader.ReadToEndAsync(ct);
                response.StatusCode = 204;
                response.Close();
                return JsonSerializer.Deserialize(body, DemoJson.Default.BrowserResult) ?? new BrowserResult(null, 0, 0, 0, null, "empty result");
            }

            var (type, bytes) = path switch
            {
                "/" => ("text/html", Encoding.UTF8.GetBytes(BrowserPage)),
                "/webtorrent.min.js" => ("text/javascript", await File.ReadAllBytesAsync(bundle, ct)),
                "/job" => ("application/json", Encoding.UTF8.GetBytes(job)),
                _ => ("text/plain", []),
            };
            response.StatusCode = bytes.Length == 0 ? 404 : 200;
            response.ContentType = type;
            await response.OutputStream.WriteAsync(bytes, ct);
            response.Close();
        }
    }
}
