using Peerway.Interop.Tests.Infrastructure;
using static Peerway.Interop.Tests.Torrent.LibtorrentPeer;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// `peerway share`/`get` over uTP (BEP 29, issue 15 items 3 and 5) against real clients, both directions, the file's
/// SHA-256 checked each time. Peerway runs with <c>--transport utp</c>: no TCP listener and no TCP dial, so a completed
/// transfer crossed uTP (libtorrent also reports its connection's <c>utp_socket</c> flag). libtorrent 2.0.8 runs with
/// TCP off and forced RC4 encryption (MSE/PE above the uTP stream); transmission 3.00 with uTP on.
/// </summary>
public sealed class UtpSwarmInteropTests
{
    private const int FileSize = 6 * 1024 * 1024 + 777;
    private static readonly string[] LtForced = ["--utp-only", "--enc", "forced", "--enc-level", "rc4"];

    [RequiresLibtorrentFact]
    public async Task Libtorrent_utp_only_with_forced_encryption_downloads_from_peerway_share()
    {
        await using var lt = new LibtorrentPeer("utp-enc-dl");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeFilesAsync(src, ("payload.bin", FileSize));
        var (_, magnet, port) = await lt.ShareAsync(Path.Combine(src, "payload.bin"), "--transport", "utp", "--encryption", "require");
        var dl = Path.Combine(lt.Env.Root, "lt");
        var session = await lt.RunAsync(TorrentInterop.FreePort(), [.. LtForced, "--magnet", magnet, "--save", dl, "--peer", "127.0.0.1:" + P(port), "--exit-when-complete"]);
        var peer = await HandshakenPeerAsync(session, port);
        await CompletedAsync(session);
        AssertSameFiles(files, dl);
        Assert.Contains("utp_socket", peer, StringComparison.Ordinal);
        Assert.Contains("rc4_encrypted", peer, StringComparison.Ordinal);
    }

    [RequiresLibtorrentFact]
    public async Task Peerway_get_downloads_from_libtorrent_utp_only_with_forced_encryption()
    {
        await using var lt = new LibtorrentPeer("utp-enc-up");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeFilesAsync(src, ("payload.bin", FileSize));
        var torrent = await lt.PeerwayCreateAsync(Path.Combine(src, "payload.bin"));
        var ltPort = TorrentInterop.FreePort();
        var seed = await lt.SeedAsync(ltPort, [.. LtForced, "--torrent", torrent, "--save", src]);
        var dl = Path.Combine(lt.Env.Root, "dl");
        await lt.GetAsync(torrent, "-o", dl, "--peer", "127.0.0.1:" + P(ltPort), "--transport", "utp", "--encryption", "require");
        AssertSameFiles(files, dl);
        // lt-peer.py lists its peers every 0.5 s, and at once only when it receives a block; this seed only sends, so a
        // fast download can start and end between two polls. Then libtorrent's own log says what the connection was:
        // the MSE handshake settled on RC4, and the disconnect (Peerway, complete, leaves) names the socket uTP.
        var peer = seed.StdoutLines.FirstOrDefault(l => l.StartsWith("peer 127.0.0.1:", StringComparison.Ordinal) && !l.EndsWith("client=", StringComparison.Ordinal));
        if (peer is not null)
        {
            Assert.Contains("utp_socket", peer, StringComparison.Ordinal);
            Assert.Contains("rc4_encrypted", peer, StringComparison.Ordinal);
        }
        else
        {
            Assert.Contains(seed.StdoutLines, l => l.StartsWith("mse-select 127.0.0.1:", StringComparison.Ordinal) && l.EndsWith(" rc4", StringComparison.Ordinal));
            await seed.WaitForStderrAsync(l => l.Contains("disconnecting (uTP)", StringComparison.Ordinal), Deadline);
        }
    }

    [RequiresToolFact("transmission-cli")]
    public async Task Transmission_downloads_from_peerway_share_over_utp()
    {
        var cli = TorrentInterop.Require("transmission-cli");
        await using var env = new TorrentInterop("tr-utp-dl");
        var (torrent, source, sha) = await TrackerSwarmInteropTests.SetUpAsync(env, TorrentInterop.FreePort(), FileSize);
        var share = env.StartPeerway("share", torrent, "--content", source, "--port", P(TorrentInterop.FreePort()), "--transport", "utp", "--verbose");
        await share.FirstLineAsync(Deadline);
        var target = Path.Combine(env.Root, "transmission");
        // transmission ignores 127/8 peers from the tracker; Peerway dials it, over uTP only.
        var tr = TrackerSwarmInteropTests.StartTransmission(env, cli, torrent, target, TorrentInterop.FreePort(), utp: true);
        Assert.True(await TorrentInterop.WaitForFileAsync(Path.Combine(target, "payload.bin"), sha, Deadline, tr),
            $"transmission did not receive the file over uTP.\npeerway: {Tail(share.Stderr)}\ntransmission: {Tail(tr.Stderr)}");
    }

    [RequiresToolFact("transmission-cli")]
    public async Task Peerway_get_downloads_from_transmission_over_utp()
    {
        var cli = TorrentInterop.Require("transmission-cli");
        await using var env = new TorrentInterop("tr-utp-up");
        var (torrent, source, sha) = await TrackerSwarmInteropTests.SetUpAsync(env, TorrentInterop.FreePort(), FileSize);
        var trPort = TorrentInterop.FreePort();
        TrackerSwarmInteropTests.StartTransmission(env, cli, torrent, Path.GetDirectoryName(source)!, trPort, utp: true);
        var dl = Path.Combine(env.Root, "dl");
        var (code, stdout, stderr) = await env.RunPeerwayAsync(Deadline, "get", torrent, "-o", dl, "--transport", "utp", "--peer", "127.0.0.1:" + P(trPort), "--timeout", "120");
        Assert.True(code == 0, stderr);
        Assert.Contains("complete:", stdout, StringComparison.Ordinal);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "payload.bin")));
    }

    private static string Tail(string text) => text.Length <= 4000 ? text : text[^4000..];
}
