using Peerway.Interop.Tests.Infrastructure;
using Xunit.Abstractions;
using static Peerway.Interop.Tests.Torrent.LibtorrentPeer;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Issue 22: libtorrent with default settings failed to download from `peerway share` in about 2 runs of 5. Its peer
/// log showed why:
/// <code>
/// 0.52  OUTGOING_CONNECTION type: uTP            (Peerway had no uTP: the SYN went unanswered)
/// 3.53  CONNECTION FAILED: Connection timed out
/// 4.53  OUTGOING_CONNECTION type: TCP, ENCRYPTION initiating encrypted handshake, sent DH key
/// 5.03  ON_RECEIVE_DATA: End of file             (Peerway closed on the MSE handshake)
/// 5.53  OUTGOING_CONNECTION type: uTP            (failing runs: uTP again; passing runs: plaintext TCP here)
/// 8.53  CONNECTION FAILED: Connection timed out
///       ... no further attempt: the peer's fail count puts it into libtorrent's reconnect back-off (minutes)
/// </code>
/// Each failed attempt counted against the peer, and whether the third attempt was plaintext TCP (works) or uTP (fails,
/// back-off) was a coin toss. The first fix answered the uTP SYN with ST_RESET (TCP at once) and accepted the MSE
/// handshake; now Peerway listens for uTP on the same port number (issue 15), so libtorrent's first attempt, uTP,
/// connects and carries the torrent, as it does between libtorrent peers. These tests run the scenario 10 times in
/// a row, a fresh client each time on the same ports (as a script would), and require all 10 to complete; and the same
/// with transmission 3.00 and aria2 leeching. Files are 4 MiB to keep the 40 runs short.
/// </summary>
public sealed class DefaultSettingsRegressionTests(ITestOutputHelper output)
{
    private const int Runs = 10;

    /// <summary>How long a libtorrent session may take to check a 4 MiB file it holds and start seeding.</summary>
    private const int FileSize = 4 * 1024 * 1024;

    [RequiresLibtorrentFact]
    public async Task Libtorrent_with_default_settings_downloads_from_peerway_share_ten_times_in_a_row()
    {
        await using var lt = new LibtorrentPeer("default-10-dl");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeFilesAsync(src, ("payload.bin", FileSize));
        int sharePort = TorrentInterop.FreePort(), ltPort = TorrentInterop.FreePort();
        var peerway = "127.0.0.1:" + P(sharePort);
        var utpRuns = 0;
        for (var run = 1; run <= Runs; run++)
        {
            var share = lt.Env.StartPeerway("share", Path.Combine(src, "payload.bin"), "--port", P(sharePort));
            var magnet = (await share.FirstLineAsync(Deadline)).Trim();
            var dl = Path.Combine(lt.Env.Root, $"lt{run}");
            // libtorrent's defaults except what keeps it on this machine; connect_peer again every 10 s as in the issue.
            var session = await lt.RunAsync(ltPort, "--defaults", "--magnet", magnet, "--save", dl, "--peer", peerway, "--reconnect", "10", "--exit-when-complete");
            await CompletedAsync(session);
            AssertSameFiles(files, dl);
            // No attempt on Peerway failed (before: "Connection timed out", then resets), and the connection was uTP.
            Assert.DoesNotContain(session.StdoutLines, l => l.StartsWith($"connect-failed {peerway} ", StringComparison.Ordinal));
            Assert.Equal($"connect {peerway} uTP", session.StdoutLines.First(l => l.StartsWith($"connect {peerway} ", StringComparison.Ordinal)));
            if (session.StdoutLines.Any(l => l.StartsWith($"peer {peerway} ", StringComparison.Ordinal) && l.Contains("utp_socket", StringComparison.Ordinal))) utpRuns++;
            share.Kill();
            Assert.True(await share.WaitForExitAsync(Deadline), $"run {run}: peerway share did not stop");
        }

        // libtorrent tries uTP first by default, and Peerway answers it: every run's connection was a uTP socket.
        Assert.Equal(Runs, utpRuns);
    }

    [RequiresLibtorrentFact]
    public async Task Peerway_get_downloads_from_libtorrent_with_default_settings_ten_times_in_a_row()
    {
        await using var lt = new LibtorrentPeer("default-10-up", output);
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeFilesAsync(src, ("payload.bin", FileSize));
        var torrent = Path.Combine(lt.Env.Root, "payload.torrent");
        var (code, _, err) = await lt.Env.RunPeerwayAsync(Deadline, "create", Path.Combine(src, "payload.bin"), "-o", torrent);
        Assert.True(code == 0, err);
        int getPort = TorrentInterop.FreePort(), ltPort = TorrentInterop.FreePort();
        var crashes = 0;
        for (var run = 1; run <= Runs; run++)
        {
            var session = await lt.SeedAsync(ltPort, "--defaults", "--torrent", torrent, "--save", src);
            var dl = Path.Combine(lt.Env.Root, $"dl{run}-{crashes}");
            try
            {
                await lt.GetAsync(torrent, "-o", dl, "--peer", "127.0.0.1:" + P(ltPort), "--port", P(getPort), "--verbose");
            }
            catch (Xunit.Sdk.XunitException ex) when (session.HasExited && crashes < 2)
            {
                // The seeder itself died mid-upload (python3-libtorrent 2.0.8 crashes now and then, see
                // LibtorrentStreamingInteropTests; once in CI: its uTP socket went silent and its TCP port refused):
                // no seeder, no download. The run is repeated with a new libtorrent, at most twice, and said.
                crashes++;
                output.WriteLine($"run {run}: the libtorrent seeder exited during the download; running it again\n{ex.Message}");
                await session.DisposeAsync();
                run--;
                continue;
            }

            AssertSameFiles(files, dl);
            await session.DisposeAsync();
        }
    }

    [RequiresToolFact("transmission-cli")]
    public async Task Transmission_downloads_from_peerway_share_ten_times_in_a_row()
    {
        var cli = TorrentInterop.Require("transmission-cli");
        await using var env = new TorrentInterop("tr-10");
        var (torrent, source, sha) = await TrackerSwarmInteropTests.SetUpAsync(env, TorrentInterop.FreePort(), FileSize);
        int sharePort = TorrentInterop.FreePort(), trPort = TorrentInterop.FreePort();
        for (var run = 1; run <= Runs; run++)
        {
            var share = env.StartPeerway("share", torrent, "--content", source, "--port", P(sharePort));
            await share.FirstLineAsync(Deadline);
            var target = Path.Combine(env.Root, $"transmission{run}");
            // transmission's own defaults for encryption ("preferred"); it ignores 127/8 tracker peers, Peerway dials it.
            var tr = TrackerSwarmInteropTests.StartTransmission(env, cli, torrent, target, trPort, encryption: 1);
            Assert.True(await TorrentInterop.WaitForFileAsync(Path.Combine(target, "payload.bin"), sha, Deadline, tr),
                $"run {run}: transmission did not receive the file.\npeerway: {share.Stderr}\ntransmission: {tr.Stderr}");
            await StopAsync(run, tr, share);
        }
    }

    [RequiresToolFact("aria2c")]
    public async Task Aria2_downloads_from_peerway_share_ten_times_in_a_row()
    {
        var aria2 = TorrentInterop.Require("aria2c");
        await using var env = new TorrentInterop("aria-10");
        var (torrent, source, sha) = await TrackerSwarmInteropTests.SetUpAsync(env, TorrentInterop.FreePort(), FileSize);
        int sharePort = TorrentInterop.FreePort(), ariaPort = TorrentInterop.FreePort();
        for (var run = 1; run <= Runs; run++)
        {
            var share = env.StartPeerway("share", torrent, "--content", source, "--port", P(sharePort));
            await share.FirstLineAsync(Deadline);
            var target = Path.Combine(env.Root, $"aria2-{run}");
            var client = TrackerSwarmInteropTests.StartAria2(env, aria2, torrent, target, ariaPort, seed: false);
            Assert.True(await client.WaitForExitAsync(Deadline), $"run {run}: aria2c did not finish.\npeerway: {share.Stderr}");
            Assert.True(client.ExitCode == 0, $"run {run}: {client.Stdout}{client.Stderr}");
            Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(target, "payload.bin")));
            await StopAsync(run, share);
        }
    }

    /// <summary>Kills the run's processes and waits for them, so the next run gets the same ports.</summary>
    private static async Task StopAsync(int run, params RunningProcess[] processes)
    {
        foreach (var p in processes)
        {
            p.Kill();
            Assert.True(await p.WaitForExitAsync(Deadline), $"run {run}: a process did not stop");
        }
    }
}
