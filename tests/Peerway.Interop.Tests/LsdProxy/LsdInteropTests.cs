using Peerway.Interop.Tests.Infrastructure;
using Peerway.Interop.Tests.Torrent;
using Xunit.Abstractions;

namespace Peerway.Interop.Tests.LsdProxy;

/// <summary>
/// BEP 14 Local Service Discovery against libtorrent-rasterbar 2.0 (python3-libtorrent, enable_lsd on; DHT, trackers,
/// UPnP and NAT-PMP off), each on its own host of a bridged LAN in network namespaces: no peer, tracker or DHT is
/// given, so the only way the two meet is the multicast announce. Both directions; the SHA-256 of what arrived is
/// checked. Without `--lsd on` (the test suite's default is off) nothing finds anything: that is the fails-on-old-code
/// check.
/// </summary>
public sealed class LsdInteropTests(ITestOutputHelper output)
{
    private const int FileSize = 3 * 1024 * 1024 + 5;
    private const string PeerwayPort = "6000";
    private const string LibtorrentPort = "6881";
    private static readonly TimeSpan Lifetime = LibtorrentPeer.Deadline + TimeSpan.FromSeconds(30);

    private static string Tail(string s) => s.Length <= 6000 ? s : s[^6000..];

    [Fact]
    public async Task Peerway_finds_a_libtorrent_seeder_by_lsd_alone()
    {
        await using var lt = new LibtorrentPeer("lsd-get");
        await using var lan = BridgedNamespaces.Create(2);
        var seedDir = Path.Combine(lt.Env.Root, "seed");
        var sha = await TorrentInterop.RandomFileAsync(Path.Combine(seedDir, "lan.bin"), FileSize);
        var torrent = await lt.PeerwayCreateAsync(Path.Combine(seedDir, "lan.bin"));
        var dl = Path.Combine(lt.Env.Root, "dl");
        await using var get = lan.Start(0, lt.Env.Launcher, ["get", torrent, "-o", dl, "--bind", BridgedNamespaces.Address(0), "--port", PeerwayPort, "--lsd", "on", "--timeout", "120", "-v"], Lifetime, lt.Env.RepoRoot);
        // Peerway first, listening, then libtorrent: libtorrent announces when its torrent starts, so Peerway hears that
        // announce. The other order raced: Peerway's own announce reached libtorrent, which dialled in and finished the
        // download before its next announce (5 minutes later), and Peerway never heard one.
        await get.WaitForStderrAsync(l => l.StartsWith("fetching ", StringComparison.Ordinal), LibtorrentPeer.Deadline);
        await using var seeder = lan.Start(1, LibtorrentTool.Python, [LibtorrentTool.Require(), "run", "--listen", $"{BridgedNamespaces.Address(1)}:{LibtorrentPort}",
            "--torrent", torrent, "--save", seedDir, "--lsd", "--timeout", "140"], Lifetime);
        await seeder.WaitForStdoutAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), LibtorrentPeer.Deadline);

        var code = await get.WaitForExitAsync(LibtorrentPeer.Deadline);
        output.WriteLine(Tail(get.Stderr));
        Assert.True(code == 0, $"peerway get exited {code}\nlibtorrent: {seeder.Stdout}");
        Assert.Contains("LSD: peer " + BridgedNamespaces.Address(1) + ":" + LibtorrentPort, get.Stderr, StringComparison.Ordinal);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "lan.bin")));
    }

    [Fact]
    public async Task Libtorrent_finds_a_peerway_seeder_by_lsd_alone()
    {
        await using var lt = new LibtorrentPeer("lsd-share");
        await using var lan = BridgedNamespaces.Create(2);
        var seedDir = Path.Combine(lt.Env.Root, "seed");
        var sha = await TorrentInterop.RandomFileAsync(Path.Combine(seedDir, "lan.bin"), FileSize);
        var torrent = await lt.PeerwayCreateAsync(Path.Combine(seedDir, "lan.bin"));
        await using var share = lan.Start(0, lt.Env.Launcher, ["share", torrent, "--content", Path.Combine(seedDir, "lan.bin"), "--bind", BridgedNamespaces.Address(0), "--port", PeerwayPort, "--lsd", "on", "-v"], Lifetime, lt.Env.RepoRoot);
        await share.WaitForStdoutAsync(l => l.StartsWith("magnet:", StringComparison.Ordinal), LibtorrentPeer.Deadline);

        var dl = Path.Combine(lt.Env.Root, "lt");
        await using var leecher = lan.Start(1, LibtorrentTool.Python, [LibtorrentTool.Require(), "run", "--listen", $"{BridgedNamespaces.Address(1)}:{LibtorrentPort}",
            "--torrent", torrent, "--save", dl, "--lsd", "--exit-when-complete", "--timeout", "140"], Lifetime);
        var code = await leecher.WaitForExitAsync(LibtorrentPeer.Deadline);
        output.WriteLine(Tail(share.Stderr));
        Assert.True(code == 0, $"libtorrent did not complete (exit {code}):\n{leecher.Stdout}\n{leecher.Stderr}");
        Assert.Contains($"peer {BridgedNamespaces.Address(0)}:{PeerwayPort} ", leecher.Stdout, StringComparison.Ordinal);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "lan.bin")));
    }
}
