using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using FsCheck.Xunit;
using Peerway.Net;
using Peerway.Node.Streaming;
using Peerway.Torrent;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;

namespace Peerway.Node.Tests;

/// <summary>The Range parser (RFC 9110 §14) and <see cref="StreamServer"/> over a torrent that downloads from a local seeder.</summary>
public sealed class StreamServerTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-streamsrv-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Theory]
    [InlineData(null, HttpRangeKind.Whole, 0, -1)]
    [InlineData("bytes=0-99", HttpRangeKind.Partial, 0, 99)]
    [InlineData("bytes=100-", HttpRangeKind.Partial, 100, 999)]
    [InlineData("bytes=-10", HttpRangeKind.Partial, 990, 999)]
    [InlineData("bytes=-5000", HttpRangeKind.Partial, 0, 999)]
    [InlineData("bytes=900-5000", HttpRangeKind.Partial, 900, 999)]
    [InlineData("BYTES = 1-1", HttpRangeKind.Partial, 1, 1)]
    [InlineData("bytes=0-1,5-6", HttpRangeKind.Whole, 0, -1)]
    [InlineData("items=0-1", HttpRangeKind.Whole, 0, -1)]
    [InlineData("bytes=1000-", HttpRangeKind.Unsatisfiable, 0, -1)]
    [InlineData("bytes=99999999999999999999-", HttpRangeKind.Unsatisfiable, 0, -1)]
    [InlineData("bytes=5-3", HttpRangeKind.Unsatisfiable, 0, -1)]
    [InlineData("bytes=-0", HttpRangeKind.Unsatisfiable, 0, -1)]
    [InlineData("bytes=abc", HttpRangeKind.Unsatisfiable, 0, -1)]
    [InlineData("bytes=-1-2", HttpRangeKind.Unsatisfiable, 0, -1)]
    [InlineData("bytes=", HttpRangeKind.Unsatisfiable, 0, -1)]
    [InlineData("bytes=+1-2", HttpRangeKind.Unsatisfiable, 0, -1)]
    [InlineData("0-1", HttpRangeKind.Unsatisfiable, 0, -1)]
    public void Range_headers_are_read_as_RFC_9110_says(string? header, HttpRangeKind kind, long first, long last)
    {
        var r = HttpRange.Parse(header, 1000);
        Assert.Equal(kind, r.Kind);
        if (kind == HttpRangeKind.Partial) Assert.Equal((first, last), (r.First, r.Last));
        if (kind == HttpRangeKind.Unsatisfiable) Assert.NotNull(r.Reason);
    }

    [Fact]
    public void Too_many_or_too_long_ranges_are_refused()
    {
        Assert.Equal(HttpRangeKind.Unsatisfiable, HttpRange.Parse("bytes=" + string.Join(',', Enumerable.Range(0, 17).Select(i => $"{i}-{i}")), 1000).Kind);
        Assert.Equal(HttpRangeKind.Unsatisfiable, HttpRange.Parse("bytes=0-" + new string('1', 2000), 1000).Kind);
        Assert.Equal(HttpRangeKind.Unsatisfiable, HttpRange.Parse("bytes=0-", 0).Kind);
    }

    [Property(MaxTest = 2000)]
    public bool Any_header_parses_without_throwing_and_a_partial_range_lies_within_the_length(string? header, long length)
    {
        length = Math.Abs(length % 1_000_000_000_000);
        var r = HttpRange.Parse(header, length);
        return r.Kind != HttpRangeKind.Partial || (r.First >= 0 && r.First <= r.Last && r.Last < length);
    }

    /// <summary>A two-file torrent "set" made in <paramref name="dir"/> and a loopback seeder of it capped at <paramref name="rate"/> bytes/s.</summary>
    internal static async Task<(TorrentClient Seeder, TorrentMetainfo Meta)> SeedAsync(string dir, (string Name, byte[] Data) first, (string Name, byte[] Data) second, long rate)
    {
        var src = Path.Combine(dir, "src", "set");
        Directory.CreateDirectory(src);
        await File.WriteAllBytesAsync(Path.Combine(src, first.Name), first.Data);
        await File.WriteAllBytesAsync(Path.Combine(src, second.Name), second.Data);
        Assert.True(MetainfoParser.TryParse(await TorrentCreator.CreateAsync(src, new TorrentCreateOptions { PieceLength = 16384 }), out var meta, out _));
        var store = new MemoryStorageFactory();
        store.Add(meta!.Info, [.. first.Data, .. second.Data]);
        var listen = new TorrentClientOptions { ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, 0)], UploadRateLimit = rate };
        var seeder = new TorrentClient([new TcpStreamTransport()], listen, store, TimeProvider.System);
        await seeder.StartAsync(CancellationToken.None);
        await seeder.AddAsync(meta.Info, "seed", new TorrentAddOptions { SeedOnly = true });
        return (seeder, meta);
    }

    [Fact]
    public async Task Files_are_served_with_ranges_HEAD_types_and_416_while_the_torrent_downloads()
    {
        var video = RandomNumberGenerator.GetBytes(2_000_000);
        var notes = RandomNumberGenerator.GetBytes(10_000);
        var (seeder, meta) = await SeedAsync(_dir, ("clip one.mp4", video), ("notes.xyz", notes), 1024 * 1024);
        await using var seeding = seeder;
        var info = meta.Info;
        var listen = new TorrentClientOptions { ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, 0)] };
        await using var leecher = new TorrentClient([new TcpStreamTransport()], listen, new MemoryStorageFactory(), TimeProvider.System);
        await leecher.StartAsync(CancellationToken.None);
        var handle = await leecher.AddAsync(info, "dl", new TorrentAddOptions { Peers = [new IPEndPoint(IPAddress.Loopback, seeder.Port)] });

        await using var server = new StreamServer(handle, new IPEndPoint(IPAddress.Loopback, 0));
        await server.StartAsync(CancellationToken.None);
        Assert.Matches(@"^http://127\.0\.0\.1:\d+/0/clip%20one\.mp4$", server.UrlOf(0));
        using var http = new HttpClient { Timeout = Deadline };

        using (var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, server.UrlOf(0))))
        {
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Equal("video/mp4", head.Content.Headers.ContentType!.MediaType);
            Assert.Equal(2_000_000, head.Content.Headers.ContentLength);
            Assert.Contains("bytes", head.Headers.AcceptRanges);
        }

        var tail = new HttpRequestMessage(HttpMethod.Get, server.UrlOf(0));
        tail.Headers.Range = new RangeHeaderValue(1_990_000, null);
        using (var partial = await http.SendAsync(tail))
        {
            Assert.Equal(HttpStatusCode.PartialContent, partial.StatusCode);
            Assert.Equal("bytes 1990000-1999999/2000000", partial.Content.Headers.ContentRange!.ToString());
            Assert.Equal(video.AsSpan(1_990_000).ToArray(), await partial.Content.ReadAsByteArrayAsync());
        }

        var absurd = new HttpRequestMessage(HttpMethod.Get, server.UrlOf(1));
        absurd.Headers.TryAddWithoutValidation("Range", "bytes=99999999999-");
        using (var refused = await http.SendAsync(absurd))
        {
            Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, refused.StatusCode);
            Assert.Equal("bytes */10000", refused.Content.Headers.ContentRange!.ToString());
        }

        using (var whole = await http.GetAsync(server.UrlOf(1)))
        {
            Assert.Equal("application/octet-stream", whole.Content.Headers.ContentType!.MediaType);
            Assert.Equal(notes, await whole.Content.ReadAsByteArrayAsync());
        }

        var several = new HttpRequestMessage(HttpMethod.Get, server.UrlOf(1));
        several.Headers.TryAddWithoutValidation("Range", "bytes=0-1,5-6");
        using (var ignored = await http.SendAsync(several))
        {
            Assert.Equal(HttpStatusCode.OK, ignored.StatusCode);
            Assert.Equal(notes, await ignored.Content.ReadAsByteArrayAsync());
        }

        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"http://{EndPointParser.Format(server.EndPoint)}/2/x")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"http://{EndPointParser.Format(server.EndPoint)}/-1/x")).StatusCode);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await http.PostAsync(server.UrlOf(0), new ByteArrayContent([]))).StatusCode);
        Assert.Equal(video, await http.GetByteArrayAsync(server.UrlOf(0)));
    }
}
