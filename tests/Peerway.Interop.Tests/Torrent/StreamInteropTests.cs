using System.Globalization;
using Peerway.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Issue 21 item 3: ffprobe and ffmpeg (Debian's ffmpeg 5) read a test video from `peerway stream`'s URL while it
/// downloads from `peerway share --upload-limit 512` (a 12 s, ~30 MiB MP4 made here with ffmpeg's testsrc and noise,
/// `+faststart`), and the decoded frames are the original's (`-f framemd5`); a seek near the end decodes while most of
/// the pieces (the middle among them) are not there yet. The pieces there are counted in the downloaded file (each
/// verified piece is written whole; a piece not yet verified is still zeros in the sparse file; noise video has no
/// 32 KiB run of zeros).
/// </summary>
public sealed class StreamInteropTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Step = TimeSpan.FromSeconds(120);

    [RequiresToolFact("ffmpeg", "ffprobe")]
    public async Task Ffmpeg_decodes_the_stream_of_a_video_still_downloading_and_seeks_to_its_end_without_the_middle()
    {
        var ffmpeg = TorrentInterop.Require("ffmpeg");
        var ffprobe = TorrentInterop.Require("ffprobe");
        await using var env = new TorrentInterop("stream");
        var video = Path.Combine(env.Root, "src", "test clip.mp4");
        Directory.CreateDirectory(Path.GetDirectoryName(video)!);
        await RunAsync(ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-t", "12",
            "-vf", "noise=alls=30:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25",
            "-movflags", "+faststart", video);
        var torrent = Path.Combine(env.Root, "clip.torrent");
        var (code, _, err) = await env.RunPeerwayAsync(Step, "create", video, "-o", torrent, "--piece-size", "32768");
        Assert.True(code == 0, err);

        var port = TorrentInterop.FreePort().ToString(CultureInfo.InvariantCulture);
        var seeder = env.StartPeerway("share", torrent, "--content", video, "--port", port, "--bind", "127.0.0.1", "--transport", "tcp", "--upload-limit", "512");
        await seeder.FirstLineAsync(Step);
        var dl = Path.Combine(env.Root, "dl");
        var stream = env.StartPeerway("stream", torrent, "--peer", "127.0.0.1:" + port, "--bind", "127.0.0.1", "--transport", "tcp",
            "--http", "127.0.0.1:0", "-o", dl, "--read-ahead", "2", "--verbose");
        var line = await stream.FirstLineAsync(Step);
        Assert.Matches(@"^stream 0 http://127\.0\.0\.1:\d+/0/test%20clip\.mp4$", line);
        var url = line.Split(' ')[2];

        var probe = await RunAsync(ffprobe, "-v", "error", "-show_entries", "format=format_name,duration", "-of", "default=nw=1", url);
        Assert.Contains("format_name=mov,mp4", probe, StringComparison.Ordinal);
        Assert.Contains("duration=12.0", probe, StringComparison.Ordinal);
        var fromStream = Frames(await RunAsync(ffmpeg, "-v", "error", "-i", url, "-frames:v", "50", "-f", "framemd5", "-"));
        var pieces = PiecesThere(Path.Combine(dl, "test clip.mp4"), new FileInfo(video).Length);
        output.WriteLine($"after ffprobe and the first 50 frames: {pieces.There}/{pieces.Total} pieces");
        Assert.Equal(Frames(await RunAsync(ffmpeg, "-v", "error", "-i", video, "-frames:v", "50", "-f", "framemd5", "-")), fromStream);
        Assert.Equal(50, fromStream.Count);
        Assert.True(pieces.There < pieces.Total / 2, $"{pieces.There}/{pieces.Total} pieces were there: not streaming");

        // Near the end: ffmpeg reads the index at the start (faststart) and then jumps.
        var endFrames = Frames(await RunAsync(ffmpeg, "-v", "error", "-ss", "11", "-i", url, "-frames:v", "10", "-f", "framemd5", "-"));
        var atEnd = PiecesThere(Path.Combine(dl, "test clip.mp4"), new FileInfo(video).Length);
        output.WriteLine($"after the seek to 11 s: {atEnd.There}/{atEnd.Total} pieces, middle piece there: {atEnd.Middle}");
        output.WriteLine($"load {(await File.ReadAllTextAsync("/proc/loadavg")).Trim()}");
        Assert.Equal(Frames(await RunAsync(ffmpeg, "-v", "error", "-ss", "11", "-i", video, "-frames:v", "10", "-f", "framemd5", "-")), endFrames);
        Assert.Equal(10, endFrames.Count);
        Assert.True(atEnd.There < atEnd.Total * 3 / 4, $"{atEnd.There}/{atEnd.Total} pieces were there at the seek");
        Assert.DoesNotContain("download complete", stream.Stderr, StringComparison.Ordinal);

        // A stream client asking for an absurd range gets 416 and the server goes on.
        using var http = new HttpClient { Timeout = Step };
        var absurd = new HttpRequestMessage(HttpMethod.Get, url);
        absurd.Headers.TryAddWithoutValidation("Range", "bytes=99999999999999999999-");
        using (var refused = await http.SendAsync(absurd)) Assert.Equal(System.Net.HttpStatusCode.RequestedRangeNotSatisfiable, refused.StatusCode);
        Assert.Equal(Frames(await RunAsync(ffmpeg, "-v", "error", "-i", video, "-frames:v", "5", "-f", "framemd5", "-")),
            Frames(await RunAsync(ffmpeg, "-v", "error", "-i", url, "-frames:v", "5", "-f", "framemd5", "-")));
    }

    /// <summary>The per-frame lines of framemd5 output (the header lines start with '#').</summary>
    private static List<string> Frames(string framemd5) =>
        [.. framemd5.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => !l.StartsWith('#'))];

    /// <summary>How many 32 KiB pieces of the downloaded file hold a non-zero byte, of how many; whether the middle one does.</summary>
    private static (int There, int Total, bool Middle) PiecesThere(string path, long length)
    {
        const int PieceLength = 32768;
        var total = (int)((length + PieceLength - 1) / PieceLength);
        if (!File.Exists(path)) return (0, total, false);
        var bytes = File.ReadAllBytes(path);
        var there = new bool[total];
        for (var p = 0; p < total; p++)
        {
            var span = bytes.AsSpan(p * PieceLength, (int)Math.Min(PieceLength, bytes.Length - ((long)p * PieceLength)));
            there[p] = span.ContainsAnyExcept((byte)0);
        }

        return (there.Count(t => t), total, there[total / 2]);
    }

    private async Task<string> RunAsync(string program, params string[] args)
    {
        await using var p = ExternalProcess.Start(program, args, Step);
        var code = await p.WaitForExitAsync(Step);
        Assert.True(code == 0, $"{program} {string.Join(' ', args)} exited {code}: {p.Stderr}");
        output.WriteLine($"{Path.GetFileName(program)} {string.Join(' ', args.Take(6))}… ok");
        return p.Stdout;
    }
}
