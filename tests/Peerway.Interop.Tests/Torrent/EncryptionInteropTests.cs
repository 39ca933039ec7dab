using Peerway.Interop.Tests.Infrastructure;
using static Peerway.Interop.Tests.Torrent.LibtorrentPeer;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// MSE/PE (Message Stream Encryption) with every real client here that speaks it, both directions, each side
/// requiring RC4: libtorrent 2.0.8 with pe_forced in and out and allowed_enc_level rc4, transmission 3.00 with
/// "encryption": 2 (required), aria2 with --bt-require-crypto=true, and Peerway with --encryption require. A client
/// that requires encryption cannot exchange a byte with a peer that does not speak it, so completion with the SHA-256
/// checked proves the handshake and the RC4 streams; libtorrent also reports the connection's flags.
/// </summary>
public sealed class EncryptionInteropTests
{
    private const int FileSize = 4 * 1024 * 1024 + 77;
    private static readonly string[] Forced = ["--enc", "forced", "--enc-level", "rc4"];

    [RequiresLibtorrentFact]
    public async Task Libtorrent_forcing_rc4_downloads_from_peerway_share_requiring_encryption()
    {
        await using var lt = new LibtorrentPeer("mse-dl");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeFilesAsync(src, ("payload.bin", FileSize));
        var (_, magnet, port) = await lt.ShareAsync(Path.Combine(src, "payload.bin"), "--encryption", "require");
        var dl = Path.Combine(lt.Env.Root, "lt");
        var session = await lt.RunAsync(TorrentInterop.FreePort(), [.. Forced, "--magnet", magnet, "--save", dl, "--peer", "127.0.0.1:" + P(port), "--exit-when-complete"]);
        var line = await HandshakenPeerAsync(session, port);
        Assert.Contains("rc4_encrypted", line, StringComparison.Ordinal);
        await CompletedAsync(session);
        AssertSameFiles(files, dl);
    }

    [RequiresLibtorrentFact]
    public async Task Libtorrent_forcing_rc4_downloads_from_peerway_share_with_the_default_policy()
    {
        await using var lt = new LibtorrentPeer("mse-dl-prefer");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeFilesAsync(src, ("payload.bin", FileSize));
        var (_, magnet, port) = await lt.ShareAsync(Path.Combine(src, "payload.bin"));
        var dl = Path.Combine(lt.Env.Root, "lt");
        var session = await lt.RunAsync(TorrentInterop.FreePort(), [.. Forced, "--magnet", magnet, "--save", dl, "--peer", "127.0.0.1:" + P(port), "--exit-when-complete"]);
        Assert.Contains("rc4_encrypted", await HandshakenPeerAsync(session, port), StringComparison.Ordinal);
        await CompletedAsync(session);
        AssertSameFiles(files, dl);
    }

    [RequiresLibtorrentFact]
    public async Task Peerway_requiring_encryption_downloads_from_libtorrent_forcing_rc4()
    {
        await using var lt = new LibtorrentPeer("mse-up");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeFilesAsync(src, ("payload.bin", FileSize));
        var torrent = Path.Combine(lt.Env.Root, "payload.torrent");
        await lt.CreateAsync(Path.Combine(src, "payload.bin"), torrent);
        var port = TorrentInterop.FreePort();
        var session = await lt.RunAsync(port, [.. Forced, "--torrent", torrent, "--save", src]);
        var dl = Path.Combine(lt.Env.Root, "dl");
        await lt.GetAsync(torrent, "-o", dl, "--peer", "127.0.0.1:" + P(port), "--encryption", "require");
        AssertSameFiles(files, dl);
        // libtorrent's log of the incoming Peerway connection: the handshake settled on RC4.
        await session.WaitForStdoutAsync(l => l.StartsWith("mse-select ", StringComparison.Ordinal) && l.EndsWith(" rc4", StringComparison.Ordinal), Deadline);
    }

    [RequiresToolFact("transmission-cli")]
    public async Task Transmission_requiring_encryption_downloads_from_peerway_share_requiring_it()
    {
        var cli = TorrentInterop.Require("transmission-cli");
        await using var env = new TorrentInterop("mse-tr-dl");
        var (torrent, source, sha) = await TrackerSwarmInteropTests.SetUpAsync(env, TorrentInterop.FreePort(), FileSize);
        var share = env.StartPeerway("share", torrent, "--content", source, "--port", P(TorrentInterop.FreePort()), "--encryption", "require");
        await share.FirstLineAsync(Deadline);
        var target = Path.Combine(env.Root, "transmission");
        var tr = TrackerSwarmInteropTests.StartTransmission(env, cli, torrent, target, TorrentInterop.FreePort(), encryption: 2);
        Assert.True(await TorrentInterop.WaitForFileAsync(Path.Combine(target, "payload.bin"), sha, Deadline, tr),
            $"transmission did not receive the file.\npeerway: {share.Stderr}\ntransmission: {tr.Stderr}");
    }

    [RequiresToolFact("transmission-cli")]
    public async Task Peerway_requiring_encryption_downloads_from_transmission_requiring_it()
    {
        var cli = TorrentInterop.Require("transmission-cli");
        await using var env = new TorrentInterop("mse-tr-up");
        var (torrent, source, sha) = await TrackerSwarmInteropTests.SetUpAsync(env, TorrentInterop.FreePort(), FileSize);
        TrackerSwarmInteropTests.StartTransmission(env, cli, torrent, Path.GetDirectoryName(source)!, TorrentInterop.FreePort(), encryption: 2);
        var dl = Path.Combine(env.Root, "dl");
        var (code, _, stderr) = await env.RunPeerwayAsync(Deadline, "get", torrent, "-o", dl, "--timeout", "100", "--encryption", "require", "-v");
        Assert.True(code == 0, stderr);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "payload.bin")));
    }

    [RequiresToolFact("aria2c")]
    public async Task Aria2_requiring_encryption_downloads_from_peerway_share_requiring_it()
    {
        var aria2 = TorrentInterop.Require("aria2c");
        await using var env = new TorrentInterop("mse-aria-dl");
        var (torrent, source, sha) = await TrackerSwarmInteropTests.SetUpAsync(env, TorrentInterop.FreePort(), FileSize);
        var share = env.StartPeerway("share", torrent, "--content", source, "--port", P(TorrentInterop.FreePort()), "--encryption", "require");
        await share.FirstLineAsync(Deadline);
        var target = Path.Combine(env.Root, "aria2");
        var client = TrackerSwarmInteropTests.StartAria2(env, aria2, torrent, target, TorrentInterop.FreePort(), seed: false, "--bt-require-crypto=true");
        Assert.True(await client.WaitForExitAsync(Deadline), "aria2c did not finish: " + share.Stderr);
        Assert.True(client.ExitCode == 0, client.Stdout + client.Stderr);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(target, "payload.bin")));
    }

    [RequiresToolFact("aria2c")]
    public async Task Peerway_requiring_encryption_downloads_from_aria2_requiring_it()
    {
        var aria2 = TorrentInterop.Require("aria2c");
        await using var env = new TorrentInterop("mse-aria-up");
        var (torrent, source, sha) = await TrackerSwarmInteropTests.SetUpAsync(env, TorrentInterop.FreePort(), FileSize);
        TrackerSwarmInteropTests.StartAria2(env, aria2, torrent, Path.GetDirectoryName(source)!, TorrentInterop.FreePort(), seed: true, "--bt-require-crypto=true");
        var dl = Path.Combine(env.Root, "dl");
        var (code, _, stderr) = await env.RunPeerwayAsync(Deadline, "get", torrent, "-o", dl, "--timeout", "100", "--encryption", "require", "-v");
        Assert.True(code == 0, stderr);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "payload.bin")));
    }
}
