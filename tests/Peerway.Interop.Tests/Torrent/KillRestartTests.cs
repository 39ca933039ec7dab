using System.Globalization;
using System.Text.RegularExpressions;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Crash safety: `peerway get` is killed with SIGKILL at random moments 20 times in a row and restarted each time; it
/// must finish with the right bytes, and every restart must keep every piece the previous run had reported verified
/// (only pieces in flight — in memory, not yet verified — may be fetched again).
/// </summary>
public sealed partial class KillRestartTests
{
    private const int Kills = 20;
    private const int FileSize = 48 * 1024 * 1024;

    [GeneratedRegex(@"progress [0-9.]+% (\d+)/(\d+) pieces")]
    private static partial Regex Progress();

    [GeneratedRegex(@"resume: (\d+) pieces kept, (\d+) rechecked")]
    private static partial Regex Resume();

    [Fact]
    public async Task Downloader_killed_20_times_completes_and_never_loses_verified_pieces()
    {
        await using var env = new TorrentInterop("kill9");
        var source = Path.Combine(env.Root, "src", "payload.bin");
        var sha = await TorrentInterop.RandomFileAsync(source, FileSize);
        var torrent = Path.Combine(env.Root, "payload.torrent");
        var (code, _, err) = await env.RunPeerwayAsync(TimeSpan.FromSeconds(120), "create", source, "-o", torrent, "--piece-size", "65536");
        Assert.True(code == 0, err);
        var seedPort = TorrentInterop.FreePort();
        // The seeder is capped (2 MiB/s) so that 20 kills happen before the download can finish.
        var seeder = env.StartPeerway("share", torrent, "--content", source, "--port", seedPort.ToString(CultureInfo.InvariantCulture), "--upload-limit", "2048");
        await seeder.FirstLineAsync(TimeSpan.FromSeconds(120));
        var dl = Path.Combine(env.Root, "dl");
        var random = new Random(4242);
        var reportedBefore = 0;
        var log = new List<string>();
        string[] getArgs = ["get", torrent, "-o", dl, "--peer", $"127.0.0.1:{seedPort}", "--timeout", "300"];
        for (var round = 0; round < Kills; round++)
        {
            var get = env.StartPeerway(getArgs);
            await WaitForAsync(() => get.Stderr.Contains("fetching", StringComparison.Ordinal) || get.HasExited, TimeSpan.FromSeconds(120));
            Assert.False(get.HasExited, $"round {round}: the download finished before {Kills} kills (raise FileSize): {get.Stderr}");
            var kept = int.Parse(Resume().Match(get.Stderr).Groups[1].Value, CultureInfo.InvariantCulture);
            // Every piece an earlier run reported verified is still there after the kill (nothing verified is lost).
            Assert.True(kept >= reportedBefore, $"round {round}: kept {kept} pieces but {reportedBefore} had been reported verified");
            await Task.Delay(random.Next(300, 1500));
            get.Kill();
            Assert.True(await get.WaitForExitAsync(TimeSpan.FromSeconds(10)));
            var progress = Progress().Matches(get.Stderr);
            reportedBefore = progress.Count > 0 ? int.Parse(progress[^1].Groups[1].Value, CultureInfo.InvariantCulture) : kept;
            log.Add($"round {round}: kept {kept}, reported {reportedBefore}");
        }

        var final = env.StartPeerway(getArgs);
        Assert.True(await final.WaitForExitAsync(TimeSpan.FromSeconds(280)), "the last run did not finish");
        Assert.True(final.ExitCode == 0, final.Stderr);
        var lastKept = int.Parse(Resume().Match(final.Stderr).Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(lastKept >= reportedBefore, string.Join('\n', log));
        Assert.True(lastKept > 0, "no progress survived the kills: " + string.Join('\n', log));
        Assert.Equal(sha, TorrentInterop.Sha256OfFile(Path.Combine(dl, "payload.bin")));
    }

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the process");
            await Task.Delay(20);
        }
    }
}
