using Peerway.Net;
using System.Globalization;
using System.Net;
using System.Text;
using Peerway.Node;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;
using Xunit.Abstractions;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Crash safety (issue 4, fault test 9): `peerway get` is killed with SIGKILL at random moments 20 times in a row and
/// restarted each time; it must finish with the right bytes, re-downloading no more than the pieces in flight at each
/// kill. The seeder runs in-process and counts the bytes it serves per piece in each round; after each kill the test
/// hashes every piece of the partial file itself, so "in flight at the kill" (sent to the downloader, not verified on
/// disk) and "re-downloaded" (sent again in a later round) are measured, not taken from the downloader's word.
/// </summary>
public sealed class KillRestartTests(ITestOutputHelper output)
{
    private const int Kills = 20;
    private const int FileSize = 48 * 1024 * 1024;
    private const int PieceSize = 64 * 1024;

    /// <summary>The seeder's cap (2 MiB/s), so that 20 kills happen before the download can finish.</summary>
    private const long SeederRate = 2 * 1024 * 1024;

    [Fact]
    public async Task Downloader_killed_20_times_completes_re_downloading_only_pieces_in_flight()
    {
        await using var env = new TorrentInterop("kill9");
        var source = Path.Combine(env.Root, "src", "payload.bin");
        var sha = await TorrentInterop.RandomFileAsync(source, FileSize);
        var torrent = Path.Combine(env.Root, "payload.torrent");
        var (code, _, err) = await env.RunPeerwayAsync(TimeSpan.FromSeconds(120), "create", source, "-o", torrent, "--piece-size", PieceSize.ToString(CultureInfo.InvariantCulture));
        Assert.True(code == 0, err);
        Assert.True(MetainfoParser.TryParse(await File.ReadAllBytesAsync(torrent), out var meta, out _));
        var info = meta!.Info;

        var gate = new Lock();
        var servedThisRound = new long[info.PieceCount];
        var live = 0;
        var idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var seeder = new TorrentSession(meta.InfoHash, info, new FileStorageFactory(new FileStorageOptions(), TimeProvider.System),
            Path.GetDirectoryName(Path.GetFullPath(source))!, seedOnly: true, new TorrentSessionOptions { ListenAddress = IPAddress.Loopback, UploadRateLimit = SeederRate },
            new TcpStreamTransport(), TimeProvider.System);
        seeder.BlockUploaded += (_, block) =>
        {
            lock (gate) servedThisRound[block.Piece] += block.Length;
        };
        seeder.PeerConnected += _ =>
        {
            lock (gate) live++;
        };
        seeder.PeerDisconnected += _ =>
        {
            lock (gate)
            {
                if (--live == 0) idle.TrySetResult();
            }
        };
        await seeder.StartAsync(CancellationToken.None);

        var dl = Path.Combine(env.Root, "dl");
        var file = Path.Combine(dl, info.Name);
        var random = new Random(4242);
        var everServed = new bool[info.PieceCount];
        var durable = new bool[info.PieceCount];
        long totalServed = 0, totalInFlight = 0;
        var log = new StringBuilder();
        string[] getArgs = ["get", torrent, "-o", dl, "--peer", $"127.0.0.1:{seeder.ListenPort}", "--timeout", "300"];
        for (var round = 0; round <= Kills; round++)
        {
            lock (gate)
            {
                Array.Clear(servedThisRound);
                idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            var get = env.StartPeerway(getArgs);
            if (round < Kills)
            {
                await WaitForAsync(() => get.Stderr.Contains("fetching", StringComparison.Ordinal) || get.HasExited, TimeSpan.FromSeconds(120));
                Assert.False(get.HasExited, $"round {round}: the download finished before {Kills} kills (raise FileSize): {get.Stderr}");
                // The random moment of the kill (not a synchronisation: any moment must be safe).
                await Task.Delay(random.Next(300, 1500));
                get.Kill();
                Assert.True(await get.WaitForExitAsync(TimeSpan.FromSeconds(10)));
            }
            else
            {
                Assert.True(await get.WaitForExitAsync(TimeSpan.FromSeconds(280)), "the last run did not finish");
                Assert.True(get.ExitCode == 0, get.Stderr);
            }

            // Wait until the seeder has seen the connection end, so every block it served in this round is counted.
            lock (gate)
            {
                if (live == 0) idle.TrySetResult();
            }

            await idle.Task.WaitAsync(TimeSpan.FromSeconds(30));
            long[] served;
            lock (gate) served = [.. servedThisRound];
            var now = DurablePieces(file, info);
            long reDownloaded = 0, roundServed = 0;
            var reDownloadedPieces = 0;
            for (var p = 0; p < info.PieceCount; p++)
            {
                roundServed += served[p];
                Assert.False(durable[p] && !now[p], $"round {round}: piece {p} was verified on disk and is gone\n{log}");
                Assert.False(durable[p] && served[p] > 0, $"round {round}: piece {p} was verified on disk before this run and was downloaded again\n{log}");
                Assert.True(served[p] <= info.PieceSize(p), $"round {round}: piece {p} was sent {served[p]} bytes in one run (size {info.PieceSize(p)})\n{log}");
                if (served[p] > 0 && everServed[p])
                {
                    reDownloaded += served[p];
                    reDownloadedPieces++;
                }
            }

            // Re-downloaded ≤ in flight at the previous kill (pieces sent to the downloader and not verified on disk).
            var inFlightBefore = InFlightBytes(everServed, durable, info);
            Assert.True(reDownloaded <= inFlightBefore, $"round {round}: re-downloaded {reDownloaded} B but only {inFlightBefore} B were in flight\n{log}");
            for (var p = 0; p < info.PieceCount; p++) everServed[p] |= served[p] > 0;
            durable = now;
            var inFlight = InFlightBytes(everServed, durable, info);
            totalServed += roundServed;
            if (round < Kills) totalInFlight += inFlight;
            log.AppendLine(CultureInfo.InvariantCulture, $"round {round}: served {roundServed / 1024} KiB, re-downloaded {reDownloadedPieces} pieces ({reDownloaded / 1024} KiB), verified on disk {durable.Count(d => d)}, in flight at the kill {inFlight / 1024} KiB");
        }

        output.WriteLine(log.ToString());
        Assert.True(durable.All(d => d), "not every piece is on disk\n" + log);
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(file));
        // Everything the seeder sent beyond one copy is accounted for by what was in flight at the kills.
        Assert.True(totalServed <= info.TotalLength + totalInFlight, $"served {totalServed} B for a {info.TotalLength} B file with {totalInFlight} B in flight at kills\n{log}");
    }

    /// <summary>Bytes of pieces the downloader was sent but that are not verified on disk: lost by a kill.</summary>
    private static long InFlightBytes(bool[] everServed, bool[] durable, TorrentInfo info)
    {
        long bytes = 0;
        for (var p = 0; p < everServed.Length; p++)
        {
            if (everServed[p] && !durable[p]) bytes += info.PieceSize(p);
        }

        return bytes;
    }

    /// <summary>Which pieces of the (partial) download are on disk and hash correctly, checked by the test itself.</summary>
    internal static bool[] DurablePieces(string path, TorrentInfo info)
    {
        var result = new bool[info.PieceCount];
        if (!File.Exists(path)) return result;
        var buffer = new byte[info.PieceLength];
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        for (var p = 0; p < info.PieceCount; p++)
        {
            var span = buffer.AsSpan(0, info.PieceSize(p));
            f.Position = (long)p * info.PieceLength;
            if (f.Length < f.Position + span.Length) break;
            f.ReadExactly(span);
            result[p] = TorrentStorage.VerifyPiece(info, p, span);
        }

        return result;
    }

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan timeout)
    {
        // Polls an external process's output (with a deadline): the one kind of polling the test rules allow.
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the process");
            await Task.Delay(20);
        }
    }
}
