using System.Net;
using System.Net.Sockets;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Interop.Tests.Torrent;
using Xunit.Abstractions;

namespace Peerway.Interop.Tests.LsdProxy;

/// <summary>
/// `peerway get --proxy` through a real SOCKS5 server (Debian's microsocks, username/password) on a bridged LAN in
/// network namespaces: host 0 runs Peerway, and iptables there drops every packet it sends to anything but the proxy
/// (host 1), so only proxied connections can reach the seeders on host 2 — a libtorrent peer and a BEP 19 web seed.
/// A wrong password fails at once with a clear line and stores nothing; a proxy that refuses or lies (a fake one here)
/// is named in a warning.
/// </summary>
public sealed class ProxyInteropTests(ITestOutputHelper output)
{
    private const int FileSize = 3 * 1024 * 1024 + 11;
    private const string ProxyPort = "1080";
    private const string LibtorrentPort = "6881";
    private const string WebSeedPort = "8080";
    private static readonly TimeSpan Lifetime = LibtorrentPeer.Deadline + TimeSpan.FromSeconds(30);

    private static string Tail(string s) => s.Length <= 6000 ? s : s[^6000..];

    private static string ProxyUrl(string password) => $"socks5://peerway:{password}@{BridgedNamespaces.Address(1)}:{ProxyPort}";

    /// <summary>The LAN with microsocks on host 1 and host 0 cut off from everything but the proxy.</summary>
    private static async Task<(BridgedNamespaces Lan, ExternalProcess Proxy)> LanWithProxyAsync()
    {
        TorrentInterop.Require("microsocks");
        TorrentInterop.Require("iptables");
        var lan = BridgedNamespaces.Create(3);
        try
        {
            lan.Exec(0, "iptables", "-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT");
            lan.Exec(0, "iptables", "-A", "OUTPUT", "-d", BridgedNamespaces.Address(1), "-j", "ACCEPT");
            lan.Exec(0, "iptables", "-A", "OUTPUT", "-j", "DROP");
            var proxy = lan.Start(1, "microsocks", ["-i", BridgedNamespaces.Address(1), "-p", ProxyPort, "-u", "peerway", "-P", "s3cret"], Lifetime);
            await WaitForListenerAsync(lan, 1, ProxyPort);
            return (lan, proxy);
        }
        catch
        {
            await lan.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until a TCP listener is up on host <paramref name="host"/>'s port (microsocks prints nothing when ready): `ss` in the namespace, asked at most 100 times.</summary>
    private static async Task WaitForListenerAsync(BridgedNamespaces lan, int host, string port)
    {
        for (var i = 0; i < 100; i++)
        {
            await using var probe = lan.Start(host, "ss", ["-Hltn", $"sport = :{port}"], TimeSpan.FromSeconds(10));
            await probe.WaitForExitAsync(TimeSpan.FromSeconds(10));
            if (probe.StdoutLines.Count > 0) return;
            await Task.Yield();
        }

        Assert.Fail($"nothing listens on port {port} of {lan.Hosts[host]}");
    }

    /// <summary>A libtorrent seeder of a random file "far.bin" on host 2 (extra arguments to lt-peer.py run appended), once it listens.</summary>
    private static async Task<(ExternalProcess Seeder, string Torrent, byte[] Sha)> SeedAsync(LibtorrentPeer lt, BridgedNamespaces lan, int size, params string[] extra)
    {
        var seedDir = Path.Combine(lt.Env.Root, "seed");
        var sha = await TorrentInterop.RandomFileAsync(Path.Combine(seedDir, "far.bin"), size);
        var torrent = await lt.PeerwayCreateAsync(Path.Combine(seedDir, "far.bin"));
        var seeder = lan.Start(2, LibtorrentTool.Python, [LibtorrentTool.Require(), "run", "--listen", $"{BridgedNamespaces.Address(2)}:{LibtorrentPort}",
            "--torrent", torrent, "--save", seedDir, "--timeout", "140", .. extra], Lifetime);
        await seeder.WaitForStdoutAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), LibtorrentPeer.Deadline);
        return (seeder, torrent, sha);
    }

    [Fact]
    public async Task Peerway_downloads_from_libtorrent_through_socks5_and_not_without_it()
    {
        await using var lt = new LibtorrentPeer("proxy-peer");
        var (lan, proxy) = await LanWithProxyAsync();
        await using var _ = lan;
        await using var __ = proxy;
        var (seeder, torrent, sha) = await SeedAsync(lt, lan, FileSize);
        await using var ___ = seeder;
        var peer = $"{BridgedNamespaces.Address(2)}:{LibtorrentPort}";

        // Direct: every packet to the seeder is dropped.
        var direct = Path.Combine(lt.Env.Root, "direct");
        await using (var get = lan.Start(0, lt.Env.Launcher, ["get", torrent, "-o", direct, "--peer", peer, "--timeout", "8"], Lifetime, lt.Env.RepoRoot))
        {
            Assert.Equal(1, await get.WaitForExitAsync(LibtorrentPeer.Deadline));
        }

        var dl = Path.Combine(lt.Env.Root, "dl");
        await using (var get = lan.Start(0, lt.Env.Launcher, ["get", torrent, "-o", dl, "--peer", peer, "--proxy", ProxyUrl("s3cret"), "--timeout", "120", "-v"], Lifetime, lt.Env.RepoRoot))
        {
            var code = await get.WaitForExitAsync(LibtorrentPeer.Deadline);
            output.WriteLine(Tail(get.Stderr));
            Assert.True(code == 0, $"peerway get through the proxy exited {code}\nlibtorrent: {seeder.Stdout}");
        }

        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "far.bin")));
        // libtorrent saw the connection come from the proxy's address, not ours (its "incoming" event; the periodic
        // "peer" lines may not come before a quick download ends).
        Assert.Contains($"incoming {BridgedNamespaces.Address(1)}:", seeder.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Peerway_downloads_from_a_web_seed_through_socks5()
    {
        await using var lt = new LibtorrentPeer("proxy-webseed");
        var (lan, proxy) = await LanWithProxyAsync();
        await using var _ = lan;
        await using var __ = proxy;
        var seedDir = Path.Combine(lt.Env.Root, "seed");
        var sha = await TorrentInterop.RandomFileAsync(Path.Combine(seedDir, "far.bin"), FileSize);
        var torrent = Path.Combine(lt.Env.Root, "far.torrent");
        var (created, _, err) = await lt.Env.RunPeerwayAsync(LibtorrentPeer.Deadline, "create", Path.Combine(seedDir, "far.bin"), "-o", torrent,
            "--web-seed", $"http://{BridgedNamespaces.Address(2)}:{WebSeedPort}/far.bin");
        Assert.True(created == 0, err);
        var server = Path.Combine(lt.Env.RepoRoot, "tests", "interop-peers", "range-server.py");
        await using var web = lan.Start(2, "/usr/bin/python3", [server, seedDir, "--port", WebSeedPort, "--bind", BridgedNamespaces.Address(2)], Lifetime);
        await web.WaitForStdoutAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), LibtorrentPeer.Deadline);

        var dl = Path.Combine(lt.Env.Root, "dl");
        await using var get = lan.Start(0, lt.Env.Launcher, ["get", torrent, "-o", dl, "--proxy", ProxyUrl("s3cret"), "--timeout", "120"], Lifetime, lt.Env.RepoRoot);
        var code = await get.WaitForExitAsync(LibtorrentPeer.Deadline);
        output.WriteLine(Tail(get.Stderr));
        Assert.True(code == 0, $"peerway get from the web seed through the proxy exited {code}");
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "far.bin")));
        Assert.Contains($"web seed http://{BridgedNamespaces.Address(2)}:{WebSeedPort}/far.bin: {FileSize} bytes", get.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_password_is_a_clear_error_and_nothing_is_stored()
    {
        await using var lt = new LibtorrentPeer("proxy-password");
        var (lan, proxy) = await LanWithProxyAsync();
        await using var _ = lan;
        await using var __ = proxy;
        var seedDir = Path.Combine(lt.Env.Root, "seed");
        await TorrentInterop.RandomFileAsync(Path.Combine(seedDir, "far.bin"), 100_000);
        var torrent = await lt.PeerwayCreateAsync(Path.Combine(seedDir, "far.bin"));
        var dl = Path.Combine(lt.Env.Root, "dl");
        await using var get = lan.Start(0, lt.Env.Launcher, ["get", torrent, "-o", dl, "--peer", $"{BridgedNamespaces.Address(2)}:{LibtorrentPort}", "--proxy", ProxyUrl("wrong"), "--timeout", "60"], Lifetime, lt.Env.RepoRoot);
        Assert.Equal(1, await get.WaitForExitAsync(LibtorrentPeer.Deadline));
        var line = Assert.Single(get.StderrLines, l => l.Length > 0);
        Assert.Contains($"refused the username/password for 'peerway'", line, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dl), "the download directory was created");
    }

    /// <summary>
    /// The LAN with dante (Debian's danted) on host 1 granting CONNECT and UDP ASSOCIATE without authentication, and
    /// host 0 cut off from everything but the proxy (TCP and UDP alike).
    /// </summary>
    private static async Task<(BridgedNamespaces Lan, ExternalProcess Proxy)> LanWithDanteAsync(string root)
    {
        TorrentInterop.Require("danted");
        TorrentInterop.Require("iptables");
        var config = Path.Combine(root, "danted.conf");
        Directory.CreateDirectory(root);
        await File.WriteAllTextAsync(config, $$"""
            logoutput: stderr
            internal: {{BridgedNamespaces.Address(1)}} port = {{ProxyPort}}
            external: {{BridgedNamespaces.Address(1)}}
            clientmethod: none
            socksmethod: none
            user.privileged: root
            user.unprivileged: nobody
            client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }
            socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 command: connect udpassociate }
            socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 command: udpreply }

            """);
        var lan = BridgedNamespaces.Create(3);
        try
        {
            lan.Exec(0, "iptables", "-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT");
            lan.Exec(0, "iptables", "-A", "OUTPUT", "-d", BridgedNamespaces.Address(1), "-j", "ACCEPT");
            lan.Exec(0, "iptables", "-A", "OUTPUT", "-j", "DROP");
            var proxy = lan.Start(1, "danted", ["-f", config, "-N", "1"], Lifetime);
            await WaitForListenerAsync(lan, 1, ProxyPort);
            return (lan, proxy);
        }
        catch
        {
            await lan.DisposeAsync();
            throw;
        }
    }

    private static string DanteUrl => $"socks5://{BridgedNamespaces.Address(1)}:{ProxyPort}";

    [Fact]
    public async Task Peerway_downloads_from_a_utp_only_libtorrent_through_dante_udp_associate()
    {
        await using var lt = new LibtorrentPeer("proxy-utp");
        var (lan, proxy) = await LanWithDanteAsync(Path.Combine(lt.Env.Root, "dante"));
        await using var _ = lan;
        await using var __ = proxy;
        var (seeder, torrent, sha) = await SeedAsync(lt, lan, FileSize, "--utp-only");
        await using var ___ = seeder;

        var dl = Path.Combine(lt.Env.Root, "dl");
        await using (var get = lan.Start(0, lt.Env.Launcher, ["get", torrent, "-o", dl, "--peer", $"{BridgedNamespaces.Address(2)}:{LibtorrentPort}",
            "--proxy", DanteUrl, "--transport", "utp", "--timeout", "120", "-v"], Lifetime, lt.Env.RepoRoot))
        {
            var code = await get.WaitForExitAsync(LibtorrentPeer.Deadline);
            output.WriteLine(Tail(get.Stderr));
            Assert.True(code == 0, $"peerway get over uTP through dante exited {code}\nlibtorrent: {seeder.Stdout}\ndante: {Tail(proxy.Stderr)}");
            Assert.Contains("relays our UDP", get.Stderr, StringComparison.Ordinal);
        }

        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "far.bin")));
        // The uTP connection came from dante's relay, not from host 0.
        Assert.Contains($"incoming {BridgedNamespaces.Address(1)}:", seeder.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Peerway_bootstraps_the_dht_through_dante_and_finds_the_seeder_there()
    {
        await using var env = new TorrentInterop("proxy-dht");
        var (lan, proxy) = await LanWithDanteAsync(Path.Combine(env.Root, "dante"));
        await using var _ = lan;
        await using var __ = proxy;
        const string DhtPort = "6999";
        var bootstrap = $"{BridgedNamespaces.Address(2)}:{DhtPort}";
        await using var node = lan.Start(2, env.Launcher, ["dht", "serve", "--bind", BridgedNamespaces.Address(2), "--port", DhtPort], Lifetime, env.RepoRoot);
        await node.WaitForStdoutAsync(l => l.Contains("listening", StringComparison.Ordinal), LibtorrentPeer.Deadline);
        // The seeder on host 2 announces itself into the DHT directly; it speaks uTP only. No --peer for the download:
        // the only way to the seeder is the DHT, reached through dante's UDP relay, then uTP through it.
        var stderr = await ShareAndGetThroughDanteAsync(env, lan, proxy, ["--dht-bootstrap", bootstrap]);
        Assert.DoesNotContain("the DHT bootstrap nodes did not answer", stderr, StringComparison.Ordinal);
    }

    /// <summary>
    /// `peerway share` of a random file on host 2 (uTP only) and `peerway get` of its magnet on host 0 through dante,
    /// both given <paramref name="peerSource"/> (how the downloader finds the seeder); asserts the download and
    /// returns the downloader's stderr.
    /// </summary>
    private async Task<string> ShareAndGetThroughDanteAsync(TorrentInterop env, BridgedNamespaces lan, ExternalProcess proxy, string[] peerSource)
    {
        var sha = await TorrentInterop.RandomFileAsync(Path.Combine(env.Root, "seed", "far.bin"), FileSize);
        await using var seeder = lan.Start(2, env.Launcher, ["share", Path.Combine(env.Root, "seed", "far.bin"), "--bind", BridgedNamespaces.Address(2), "--port", LibtorrentPort,
            "--transport", "utp", .. peerSource], Lifetime, env.RepoRoot);
        var magnet = await seeder.WaitForStdoutAsync(l => l.StartsWith("magnet:", StringComparison.Ordinal), LibtorrentPeer.Deadline);
        var dl = Path.Combine(env.Root, "dl");
        await using var get = lan.Start(0, env.Launcher, ["get", magnet.Trim(), "-o", dl, "--proxy", DanteUrl, "--transport", "utp", "--timeout", "120", "-v", .. peerSource],
            Lifetime, env.RepoRoot);
        var code = await get.WaitForExitAsync(LibtorrentPeer.Deadline);
        output.WriteLine(Tail(get.Stderr));
        Assert.True(code == 0, $"peerway get through dante exited {code}\nseeder: {Tail(seeder.Stderr)}\ndante: {Tail(proxy.Stderr)}");
        Assert.Contains("relays our UDP", get.Stderr, StringComparison.Ordinal);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "far.bin")));
        return get.Stderr;
    }

    [Fact]
    public async Task Peerway_announces_to_a_udp_tracker_through_dante_and_finds_the_seeder_there()
    {
        await using var env = new TorrentInterop("proxy-udptr");
        var (lan, proxy) = await LanWithDanteAsync(Path.Combine(env.Root, "dante"));
        await using var _ = lan;
        await using var __ = proxy;
        var tracker = $"udp://{BridgedNamespaces.Address(2)}:6969/announce";
        await using var server = lan.Start(2, env.Launcher, ["tracker", "--bind", BridgedNamespaces.Address(2), "--port", "6969"], Lifetime, env.RepoRoot);
        await server.WaitForStdoutAsync(l => l.Length > 0, LibtorrentPeer.Deadline);
        // No --peer, no DHT: the only way to the seeder is the UDP tracker, reached through dante's relay.
        var stderr = await ShareAndGetThroughDanteAsync(env, lan, proxy, ["--tracker", tracker]);
        Assert.DoesNotContain("UDP trackers are not used", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Microsocks_refuses_udp_associate_and_peerway_says_so_in_one_warning_and_stays_on_tcp()
    {
        await using var lt = new LibtorrentPeer("proxy-noudp");
        var (lan, proxy) = await LanWithProxyAsync();
        await using var _ = lan;
        await using var __ = proxy;
        var (seeder, torrent, sha) = await SeedAsync(lt, lan, 200_000);
        await using var ___ = seeder;
        var dl = Path.Combine(lt.Env.Root, "dl");
        await using var get = lan.Start(0, lt.Env.Launcher, ["get", torrent, "-o", dl, "--peer", $"{BridgedNamespaces.Address(2)}:{LibtorrentPort}",
            "--proxy", ProxyUrl("s3cret"), "--timeout", "120"], Lifetime, lt.Env.RepoRoot);
        var code = await get.WaitForExitAsync(LibtorrentPeer.Deadline);
        output.WriteLine(Tail(get.Stderr));
        Assert.True(code == 0, $"peerway get through microsocks exited {code}");
        Assert.Single(get.StderrLines, l => l.StartsWith("warning: ", StringComparison.Ordinal) && l.Contains("UDP ASSOCIATE", StringComparison.Ordinal) && l.Contains("over TCP", StringComparison.Ordinal));
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "far.bin")));
    }

    /// <summary>A fake SOCKS5 server on loopback that accepts the greeting, then answers CONNECT with <paramref name="reply"/>.</summary>
    private static async Task FakeProxyAsync(TcpListener listener, byte[] reply, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            using var client = await listener.AcceptTcpClientAsync(ct);
            var s = client.GetStream();
            try
            {
                var greeting = new byte[3];
                await s.ReadExactlyAsync(greeting, ct);
                await s.WriteAsync(new byte[] { 5, 0 }, ct);
                var request = new byte[10];
                await s.ReadExactlyAsync(request, ct);
                await s.WriteAsync(reply, ct);
            }
            catch (EndOfStreamException)
            {
                // The CLI's check: greeting only, then closed.
            }
        }
    }

    [Theory]
    [InlineData(new byte[] { 5, 5, 0, 1, 0, 0, 0, 0, 0, 0 }, "could not connect to 127.0.0.1:9: connection refused")]
    [InlineData(new byte[] { 5, 0, 0, 9, 1, 2, 3, 4 }, "answered CONNECT with address type 9, which RFC 1928 does not define")]
    [InlineData(new byte[] { 4, 90, 0, 0 }, "answered CONNECT with a malformed reply (version 4, reserved 0)")]
    public async Task A_proxy_that_refuses_or_lies_is_named_in_a_warning(byte[] reply, string expected)
    {
        await using var env = new TorrentInterop("proxy-fake");
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var stop = new CancellationTokenSource();
        var fake = Task.Run(() => FakeProxyAsync(listener, reply, stop.Token));
        var file = Path.Combine(env.Root, "x.bin");
        await TorrentInterop.RandomFileAsync(file, 50_000);
        var torrent = Path.Combine(env.Root, "x.torrent");
        var (created, _, err) = await env.RunPeerwayAsync(LibtorrentPeer.Deadline, "create", file, "-o", torrent);
        Assert.True(created == 0, err);
        var (code, _, stderr) = await env.RunPeerwayAsync(LibtorrentPeer.Deadline, "get", torrent, "-o", Path.Combine(env.Root, "dl"), "--peer", "127.0.0.1:9",
            "--proxy", $"socks5://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}", "--timeout", "6");
        await stop.CancelAsync();
        listener.Stop();
        try
        {
            await fake;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException or IOException)
        {
            // Stopped.
        }

        output.WriteLine(stderr);
        Assert.Equal(1, code);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
    }
}
