using System.Net;
using System.Security.Cryptography;
using Peerway.Net;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.WebSeeds;
using Peerway.Torrent.Tests.Swarm;

namespace Peerway.Torrent.Tests.WebSeeds;

/// <summary>BEP 19 web seeds: URL mapping, url-list parsing and creation, downloads from HTTP alone and with a peer, and servers that misbehave.</summary>
public sealed class WebSeedTests : IAsyncLifetime, IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-webseed-").FullName;
    private readonly List<IAsyncDisposable> _disposables = [];
    private readonly HttpClient _http;

    public WebSeedTests() => _http = new HttpClient(new SocketsHttpHandler { MaxAutomaticRedirections = 5 }) { Timeout = Timeout.InfiniteTimeSpan };

    /// <summary>Fast back-off for tests: a failure waits 20 ms, a seed is dropped after 3 in a row, a request times out after 2 s.</summary>
    private static readonly WebSeedOptions Quick = new() { Backoff = TimeSpan.FromMilliseconds(20), MaxBackoff = TimeSpan.FromMilliseconds(100), MaxFailures = 3, RequestTimeout = TimeSpan.FromSeconds(2), RequestBytes = 64 * 1024 };

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--) await _disposables[i].DisposeAsync();
        Directory.Delete(_dir, true);
    }

    public void Dispose() => _http.Dispose();

    /// <summary>set/{a 100,000 B, d/b 70,000 B} with 16 KiB pieces and the given url-list; and what a server serves for a root URL "/ws/".</summary>
    private async Task<(TorrentMetainfo Meta, byte[] Content, Dictionary<string, byte[]> Served)> MultiFileAsync(params string[] webSeeds)
    {
        var src = Path.Combine(_dir, "src", "set");
        Directory.CreateDirectory(Path.Combine(src, "d"));
        var a = RandomNumberGenerator.GetBytes(100_000);
        var b = RandomNumberGenerator.GetBytes(70_000);
        await File.WriteAllBytesAsync(Path.Combine(src, "a"), a);
        await File.WriteAllBytesAsync(Path.Combine(src, "d", "b"), b);
        var bytes = await TorrentCreator.CreateAsync(src, new TorrentCreateOptions { PieceLength = 16384, WebSeeds = webSeeds });
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        return (meta!, [.. a, .. b], new() { ["/ws/set/a"] = a, ["/ws/set/d/b"] = b });
    }

    private async Task<TorrentClient> ClientAsync(ITorrentStorageFactory storage)
    {
        var client = new TorrentClient([new TcpStreamTransport()], new TorrentClientOptions { ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, 0)] }, storage, TimeProvider.System)
        {
            WebSeedHttp = _http,
        };
        _disposables.Add(client);
        await client.StartAsync(CancellationToken.None);
        return client;
    }

    private RangeServer Server(Dictionary<string, byte[]> files, ServerMode mode = ServerMode.Good)
    {
        var server = new RangeServer(files, mode);
        _disposables.Add(server);
        return server;
    }

    [Fact]
    public async Task Urls_follow_bep_19_for_single_and_multi_file_torrents()
    {
        var (meta, _, _) = await MultiFileAsync();
        var b = meta.Info.Files[1];
        Assert.Equal("http://h/ws/set/d/b", WebSeedUrl.FileUrl(new Uri("http://h/ws/"), meta.Info, b).ToString());
        Assert.Equal("http://h/ws/set/d/b", WebSeedUrl.FileUrl(new Uri("http://h/ws"), meta.Info, b).ToString());
        // A run across the file boundary: two ranges, each in its own file's coordinates.
        var ranges = WebSeedUrl.Ranges(new Uri("http://h/ws/"), meta.Info, 98_304, 16_384);
        Assert.Equal([(98_304L, 1_696), (0L, 14_688)], ranges.Select(r => (r.FileOffset, r.Length)));

        var single = Path.Combine(_dir, "one file.bin");
        await File.WriteAllBytesAsync(single, new byte[20_000]);
        Assert.True(MetainfoParser.TryParse(await TorrentCreator.CreateAsync(single, new TorrentCreateOptions()), out var one, out _));
        Assert.Equal("http://h/x/one%20file.bin", WebSeedUrl.FileUrl(new Uri("http://h/x/"), one!.Info, one.Info.Files[0]).AbsoluteUri);
        Assert.Equal("http://h/mirror.bin", WebSeedUrl.FileUrl(new Uri("http://h/mirror.bin"), one.Info, one.Info.Files[0]).AbsoluteUri);
    }

    [Fact]
    public async Task Url_list_is_written_and_read_as_a_string_or_a_list_and_httpseeds_listed_apart()
    {
        var (meta, _, _) = await MultiFileAsync("http://a/ws/", "https://b/x");
        Assert.Equal(["http://a/ws/", "https://b/x"], meta.WebSeeds);
        Assert.Throws<ArgumentException>(() => new TorrentCreateOptions { WebSeeds = ["ftp://a/"] }.Validate());

        var info = meta.Info.RawInfo.ToArray();
        byte[] Torrent(string before, string after) => [.. "d"u8, .. System.Text.Encoding.ASCII.GetBytes(before), .. "4:info"u8, .. info, .. System.Text.Encoding.ASCII.GetBytes(after), .. "e"u8];
        Assert.True(MetainfoParser.TryParse(Torrent("9:httpseedsl11:http://h/s/e", "8:url-list10:http://m/y"), out var parsed, out var error), error.ToString());
        Assert.Equal(["http://m/y"], parsed!.WebSeeds);
        Assert.Equal(["http://h/s/"], parsed.HttpSeeds);
        // Junk entries (an empty string, a number, another scheme) are ignored, as libtorrent does; the torrent still parses.
        Assert.True(MetainfoParser.TryParse(Torrent("", "8:url-listl0:i5e6:ftp://10:http://m/ye"), out parsed, out _));
        Assert.Equal(["http://m/y"], parsed!.WebSeeds);
    }

    [Fact]
    public async Task A_multi_file_torrent_downloads_from_a_web_seed_alone()
    {
        var (meta, content, served) = await MultiFileAsync();
        var server = Server(served);
        var meta2 = meta;
        var store = new MemoryStorageFactory();
        var client = await ClientAsync(store);
        var handle = await client.AddAsync(meta2, "dl", new TorrentAddOptions { WebSeeds = [new Uri(server.Url("/ws/"))], WebSeedOptions = Quick });
        await handle.Completed.WaitAsync(Deadline);
        Assert.Equal(content, store.Get(meta.InfoHash)!.ToArray());
        Assert.Equal(0, handle.GetStats().Connections);
        Assert.Equal(content.Length, Assert.Single(handle.Session!.WebSeedStats()).Downloaded);
    }

    [Theory]
    [InlineData(ServerMode.IgnoresRange)]
    [InlineData(ServerMode.ShortBody)]
    [InlineData(ServerMode.RedirectLoop)]
    [InlineData(ServerMode.SlowDrip)]
    [InlineData(ServerMode.BadData)]
    public async Task A_misbehaving_web_seed_is_dropped_and_a_good_one_completes_the_torrent(ServerMode mode)
    {
        var (meta, content, served) = await MultiFileAsync();
        var bad = Server(served, mode);
        var store = new MemoryStorageFactory();
        var client = await ClientAsync(store);
        var dropped = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var handle = await client.AddAsync(meta, "dl", new TorrentAddOptions { WebSeedOptions = Quick });
        handle.Session!.WebSeedDropped += url => dropped.TrySetResult(url);
        handle.Session.AddWebSeeds([new Uri(bad.Url("/ws/"))], _http, Quick);
        // The bad seed alone: it is dropped (no seed left in use), nothing bad is stored.
        Assert.Equal(bad.Url("/ws/"), (await dropped.Task.WaitAsync(Deadline)).ToString());
        Assert.Empty(handle.Session.WebSeedStats());
        Assert.Equal(0, store.Get(meta.InfoHash)!.VerifiedCount);
        Assert.False(handle.Completed.IsCompleted);

        // A good seed added later completes the torrent, every byte verified.
        var good = Server(served);
        handle.Session.AddWebSeeds([new Uri(good.Url("/ws/"))], _http, Quick);
        await handle.Completed.WaitAsync(Deadline);
        Assert.Equal(content, store.Get(meta.InfoHash)!.ToArray());
    }

    [Fact]
    public async Task A_peer_and_a_web_seed_both_serve_one_download()
    {
        var (meta, content, served) = await MultiFileAsync();
        var server = Server(served);
        var seedStore = new MemoryStorageFactory();
        seedStore.Add(meta.Info, content);
        var seeder = await ClientAsync(seedStore);
        await seeder.AddAsync(meta, "seed", new TorrentAddOptions { SeedOnly = true });

        var store = new MemoryStorageFactory();
        var leecher = await ClientAsync(store);
        var handle = await leecher.AddAsync(meta, "dl", new TorrentAddOptions
        {
            Peers = [new IPEndPoint(IPAddress.Loopback, seeder.Port)],
            WebSeeds = [new Uri(server.Url("/ws/"))],
            WebSeedOptions = Quick with { RequestBytes = 16 * 1024, ConcurrentRequests = 1 },
        });
        await handle.Completed.WaitAsync(Deadline);
        Assert.Equal(content, store.Get(meta.InfoHash)!.ToArray());
        Assert.True(server.Requests > 0, "the web seed was never asked");
    }
}
