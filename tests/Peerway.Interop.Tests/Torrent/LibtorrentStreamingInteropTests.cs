using System.Globalization;
using Peerway.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Issue 23: a streaming libtorrent 2.0 client (tests/interop-peers/lt-deadline.py: set_piece_deadline on the next 8
/// missing pieces every 0.2 s, as video players do, which makes libtorrent cancel and re-request late blocks) downloads
/// 4 MiB from `peerway share` on 127.0.0.1, with `--upload-limit 256` and without a cap. It must complete; the achieved
/// rate against the cap, the time to the first piece and to piece 0, and libtorrent's CANCEL count are reported, never
/// asserted (wall time on a shared machine). Against the seeder before the fix the capped run stalled.
/// </summary>
public sealed class LibtorrentStreamingInteropTests(ITestOutputHelper output)
{
    private const int FileSize = 4 << 20;

    /// <summary>The driver's own limit: at 256 KiB/s the file needs 16 s; this leaves room for a loaded machine.</summary>
    private const int DriverTimeoutSeconds = 150;

    [RequiresLibtorrentFact]
    public Task Streaming_libtorrent_completes_from_a_seeder_capped_at_256_KiB_per_s() => RunAsync(256);

    [RequiresLibtorrentFact]
    public Task Streaming_libtorrent_completes_from_an_uncapped_seeder() => RunAsync(0);

    private async Task RunAsync(int limitKib)
    {
        LibtorrentTool.Require();
        var root = RepoRoot.Find();
        var driver = Path.Combine(root, "tests", "interop-peers", "lt-deadline.py");
        var port = TorrentInterop.FreePort().ToString(CultureInfo.InvariantCulture);
        var limit = limitKib.ToString(CultureInfo.InvariantCulture);
        // The first ./peerway may build the CLI before it prints the magnet link (the driver's clock starts after that).
        var lifetime = PeerwayCli.DefaultLifetime + TimeSpan.FromSeconds(DriverTimeoutSeconds);
        // python3-libtorrent 2.0.8 itself sometimes dies of SIGSEGV when a deadline set just before the download completes
        // reaches a torrent that has already dropped its piece picker (arvidn/libtorrent#2084-like, seen on the uncapped
        // run, within a second). That is the peer crashing, not Peerway failing to serve: such a run is reported and run
        // again, at most twice; any other outcome — a result that did not complete included — counts.
        const int SegmentationFault = 128 + 11;
        ExternalProcess lt;
        int code;
        for (var attempt = 1; ; attempt++)
        {
            lt = ExternalProcess.Start(LibtorrentTool.Python,
                [driver, port, limit, "deadline", DriverTimeoutSeconds.ToString(CultureInfo.InvariantCulture)], lifetime, root,
                new Dictionary<string, string> { ["PEERWAY"] = PeerwayCli.Launcher });
            code = await lt.WaitForExitAsync(lifetime);
            if (code != SegmentationFault || attempt == 3 || lt.StdoutLines.Any(l => l.StartsWith("result ", StringComparison.Ordinal))) break;
            output.WriteLine($"attempt {attempt}: python3-libtorrent crashed (SIGSEGV) before reporting; running again\n{lt.Stderr}");
            await lt.DisposeAsync();
            port = TorrentInterop.FreePort().ToString(CultureInfo.InvariantCulture);
        }

        await using var ltOwned = lt;
        var line = lt.StdoutLines.FirstOrDefault(l => l.StartsWith("result ", StringComparison.Ordinal));
        Assert.True(line is not null, $"lt-deadline.py exited {code} without a result\n{lt.Stdout}\n{lt.Stderr}");
        var result = line["result ".Length..].Split(' ').Select(kv => kv.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
        var seconds = double.Parse(result["seconds"], CultureInfo.InvariantCulture);
        var rate = long.Parse(result["bytes"], CultureInfo.InvariantCulture) / 1024.0 / seconds;
        output.WriteLine(line);
        output.WriteLine($"load {(await File.ReadAllTextAsync("/proc/loadavg")).Trim()}");
        output.WriteLine(limitKib == 0
            ? $"uncapped: {rate:0} KiB/s over {seconds:0.0} s"
            : $"achieved {rate:0} KiB/s against a cap of {limitKib} KiB/s ({rate / limitKib:P0}) over {seconds:0.0} s");
        string After(string key) => result[key] == "none" || result["metadata"] == "none"
            ? "none"
            : (double.Parse(result[key], CultureInfo.InvariantCulture) - double.Parse(result["metadata"], CultureInfo.InvariantCulture)).ToString("0.00 s", CultureInfo.InvariantCulture);
        output.WriteLine($"after the metadata (the first deadlines): first piece {After("first_piece")}, piece 0 {After("piece0")}; " +
                         $"pieces completed in ascending order {result["in_order"]}; libtorrent sent {result["cancels"]} CANCEL");
        Assert.True(code == 0 && result["done"] == "1", $"the streaming client did not complete: {line}\n{lt.Stderr}");
        Assert.Equal(FileSize.ToString(CultureInfo.InvariantCulture), result["bytes"]);
    }
}
