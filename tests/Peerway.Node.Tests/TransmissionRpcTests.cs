using System.Text;
using System.Text.Json.Nodes;
using FsCheck.Xunit;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Net;
using Peerway.Node.Daemon;
using Peerway.Torrent;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;

namespace Peerway.Node.Tests;

/// <summary>
/// The Transmission RPC handler on its own (no HTTP): bad input of any shape gets an error result and never throws
/// (fuzzed), and torrent-add/get/remove work over a client with in-memory storage and no listener.
/// </summary>
public sealed class TransmissionRpcTests
{
    private static readonly string[] Methods =
        ["session-get", "session-set", "session-stats", "torrent-get", "torrent-add", "torrent-start", "torrent-stop", "torrent-verify", "torrent-remove",
         "torrent-set", "free-space", "port-test", "nope"];

    [Property(MaxTest = 300)]
    public async Task Arbitrary_bytes_get_an_error_result_and_never_throw(byte[] body)
    {
        await using var rig = new Rig();
        var answer = await rig.Rpc.HandleAsync(body, CancellationToken.None);
        Assert.IsType<string>((string?)answer["result"]);
    }

    [Property(MaxTest = 100)]
    public async Task Arbitrary_arguments_of_every_method_never_throw(string? text, int number)
    {
        await using var rig = new Rig();
        var quoted = JsonValue.Create(text ?? "").ToJsonString();
        foreach (var method in Methods)
        {
            foreach (var args in new[]
            {
                $$"""{"ids":{{number}},"fields":["id","name"],"filename":{{quoted}}}""",
                $$"""{"ids":[{{quoted}}],"fields":[{{number}}],"metainfo":{{quoted}}}""",
                $$"""{"ids":"recently-active","download-dir":{{quoted}},"path":{{quoted}},"uploadLimit":{{number}}}""",
                $$"""{"fields":{"a":[[[]]]},"paused":"{{number}}","delete-local-data":[]}""",
            })
            {
                var body = Encoding.UTF8.GetBytes("{\"method\":\"" + method + "\",\"arguments\":" + args + ",\"tag\":" + number + "}");
                var answer = await rig.Rpc.HandleAsync(body, CancellationToken.None);
                Assert.IsType<string>((string?)answer["result"]);
                Assert.Equal(number, (int?)answer["tag"]);
            }
        }
    }

    [Fact]
    public async Task A_torrent_added_as_metainfo_is_listed_refused_twice_and_removed()
    {
        await using var rig = new Rig();
        var content = Path.Combine(rig.Dir, "payload.bin");
        await File.WriteAllBytesAsync(content, Enumerable.Range(0, 100_000).Select(i => (byte)i).ToArray());
        var torrent = await TorrentCreator.CreateAsync(content, new TorrentCreateOptions());
        var add = """{"method":"torrent-add","arguments":{"metainfo":"B64","paused":true}}""".Replace("B64", Convert.ToBase64String(torrent), StringComparison.Ordinal);

        var first = await rig.CallAsync(add);
        Assert.Equal("success", (string?)first["result"]);
        Assert.Equal(1, (int?)first["arguments"]!["torrent-added"]!["id"]);
        var again = await rig.CallAsync(add);
        Assert.Equal(1, (int?)again["arguments"]!["torrent-duplicate"]!["id"]);

        var table = await rig.CallAsync("""{"method":"torrent-get","arguments":{"format":"table","fields":["id","name","status","totalSize"]}}""");
        var rows = table["arguments"]!["torrents"]!.AsArray();
        Assert.Equal("""[["id","name","status","totalSize"],[1,"payload.bin",0,100000]]""", rows.ToJsonString());

        Assert.Equal("success", (string?)(await rig.CallAsync("""{"method":"torrent-remove","arguments":{"ids":[1]}}"""))["result"]);
        var after = await rig.CallAsync("""{"method":"torrent-get","arguments":{"fields":["id"]}}""");
        Assert.Empty(after["arguments"]!["torrents"]!.AsArray());
    }

    private sealed class Rig : IAsyncDisposable
    {
        private readonly NodeTorrents _torrents;

        public Rig()
        {
            Dir = Directory.CreateTempSubdirectory("pw-rpc-").FullName;
            var client = new TorrentClient([new TcpStreamTransport()], new TorrentClientOptions { ListenEndPoints = [] }, new MemoryStorageFactory(), TimeProvider.System);
            _torrents = new NodeTorrents(client, Dir, Path.Combine(Dir, "downloads"), [], null, TimeProvider.System, NullLoggerFactory.Instance);
            Rpc = new TransmissionRpc(_torrents, new NodeConfig { Data = Dir }, () => 0, TimeProvider.System, NullLogger<TransmissionRpc>.Instance);
        }

        public string Dir { get; }

        public TransmissionRpc Rpc { get; }

        public Task<JsonObject> CallAsync(string body) => Rpc.HandleAsync(Encoding.UTF8.GetBytes(body), CancellationToken.None);

        public async ValueTask DisposeAsync()
        {
            await _torrents.DisposeAsync();
            Directory.Delete(Dir, recursive: true);
        }
    }
}
