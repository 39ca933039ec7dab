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

    /// <summary>
    /// torrent-get answers from a shared snapshot (issue 18 §8): only the fields and ids asked for, a field asked twice
    /// once, and a change the node made (torrent-start) seen by the next call, not a second later.
    /// </summary>
    [Fact]
    public async Task Torrent_get_answers_the_asked_fields_and_ids_and_sees_a_change_at_once()
    {
        await using var rig = new Rig();
        string? secondHash = null;
        foreach (var name in new[] { "a.bin", "b.bin" })
        {
            var content = Path.Combine(rig.Dir, name);
            await File.WriteAllBytesAsync(content, Encoding.UTF8.GetBytes(name + new string('z', 50_000)));
            var torrent = await TorrentCreator.CreateAsync(content, new TorrentCreateOptions());
            var added = await rig.CallAsync("""{"method":"torrent-add","arguments":{"metainfo":"B64","paused":true}}""".Replace("B64", Convert.ToBase64String(torrent), StringComparison.Ordinal));
            secondHash = (string?)added["arguments"]!["torrent-added"]!["hashString"];
        }

        const string Get = """{"method":"torrent-get","arguments":{"ids":[2],"fields":["id","status","id"]},"tag":5}""";
        const string Bad = """{"method":"torrent-get","arguments":{"ids":[2],"fields":["id","bogusless"]},"tag":5}""";
        var before = await rig.CallAsync(Get);
        Assert.Equal("""{"arguments":{"torrents":[{"id":2,"status":0}]},"result":"success","tag":5}""", before.ToJsonString());
        Assert.Equal("success", (string?)(await rig.CallAsync("""{"method":"torrent-start","arguments":{"ids":[2]}}"""))["result"]);
        var after = await rig.CallAsync(Get);
        Assert.NotEqual(0, (int?)after["arguments"]!["torrents"]![0]!["status"]);
        Assert.StartsWith("unknown field", (string?)(await rig.CallAsync(Bad))["result"], StringComparison.Ordinal);

        var byHash = await rig.CallAsync("""{"method":"torrent-get","arguments":{"ids":["HASH"],"fields":["name"]}}""".Replace("HASH", secondHash, StringComparison.Ordinal));
        Assert.Equal("""[{"name":"b.bin"}]""", byHash["arguments"]!["torrents"]!.ToJsonString());
        var recent = await rig.CallAsync("""{"method":"torrent-get","arguments":{"ids":"recently-active","fields":["id"]}}""");
        Assert.Equal("[]", recent["arguments"]!["removed"]!.ToJsonString());
        var all = await rig.CallAsync("""{"method":"torrent-get","arguments":{"fields":["id","queuePosition"]}}""");
        Assert.Equal("""[{"id":1,"queuePosition":0},{"id":2,"queuePosition":1}]""", all["arguments"]!["torrents"]!.ToJsonString());
    }

    /// <summary>
    /// Issue 18 §8, the pollers' fast path: a torrent-get body asked again within a snapshot is answered from the cache,
    /// byte for byte what the full path answered (and what <see cref="TransmissionRpc.HandleAsync"/> answers), behind a
    /// Content-Length; another tag, a change the node made, an error or another method is not served from it.
    /// </summary>
    [Fact]
    public async Task A_repeated_torrent_get_is_answered_from_the_cache_with_the_same_bytes_until_the_node_changes()
    {
        await using var rig = new Rig();
        var content = Path.Combine(rig.Dir, "a.bin");
        await File.WriteAllBytesAsync(content, new byte[70_000]);
        var torrent = await TorrentCreator.CreateAsync(content, new TorrentCreateOptions());
        await rig.CallAsync("""{"method":"torrent-add","arguments":{"metainfo":"B64","paused":true}}""".Replace("B64", Convert.ToBase64String(torrent), StringComparison.Ordinal));

        const string Get = """{"method":"torrent-get","arguments":{"fields":["id","name","status","percentDone"]},"tag":7}""";
        var (first, firstLength) = await ServeAsync(rig, Get);
        Assert.Equal(first.Length, firstLength);
        Assert.Equal((await rig.CallAsync(Get)).ToJsonString(), JsonNode.Parse(first)!.ToJsonString());
        Assert.Equal("""{"arguments":{"torrents":[{"id":1,"name":"a.bin","status":0,"percentDone":0}]},"result":"success","tag":7}""", Encoding.UTF8.GetString(first));
        var fromCache = rig.Rpc.AnsweredFromCache;

        var (again, againLength) = await ServeAsync(rig, Get);
        Assert.Equal(fromCache + 1, rig.Rpc.AnsweredFromCache);
        Assert.Equal(first, again);
        Assert.Equal(again.Length, againLength);

        var (otherTag, _) = await ServeAsync(rig, Get.Replace("\"tag\":7", "\"tag\":8", StringComparison.Ordinal));
        Assert.Equal(fromCache + 1, rig.Rpc.AnsweredFromCache);
        Assert.Equal(8, (int?)JsonNode.Parse(otherTag)!["tag"]);

        foreach (var uncached in new[] { """{"method":"torrent-get","arguments":{"fields":["bogusless"]}}""", """{"method":"session-stats"}""" })
        {
            var (a, _) = await ServeAsync(rig, uncached);
            var (b, _) = await ServeAsync(rig, uncached);
            Assert.Equal(fromCache + 1, rig.Rpc.AnsweredFromCache);
            Assert.Equal(JsonNode.Parse(a)!["result"]!.ToJsonString(), JsonNode.Parse(b)!["result"]!.ToJsonString());
        }

        Assert.Equal("success", (string?)(await rig.CallAsync("""{"method":"torrent-start","arguments":{"ids":[1]}}"""))["result"]);
        var (started, _) = await ServeAsync(rig, Get);
        Assert.Equal(fromCache + 1, rig.Rpc.AnsweredFromCache);
        Assert.NotEqual(0, (int?)JsonNode.Parse(started)!["arguments"]!["torrents"]![0]!["status"]);
    }

    /// <summary>One request through <see cref="TransmissionRpc.ServeAsync"/> as Kestrel hands it over (Content-Length, the session id): the body and its Content-Length.</summary>
    private static async Task<(byte[] Body, long? ContentLength)> ServeAsync(Rig rig, string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Request.Method = "POST";
        context.Request.Headers[TransmissionRpc.SessionIdHeader] = rig.Rpc.SessionId;
        context.Request.ContentLength = bytes.Length;
        context.Request.Body = new MemoryStream(bytes);
        var output = new MemoryStream();
        context.Response.Body = output;
        await rig.Rpc.ServeAsync(context);
        Assert.Equal(200, context.Response.StatusCode);
        Assert.StartsWith("application/json", context.Response.ContentType, StringComparison.Ordinal);
        return (output.ToArray(), context.Response.ContentLength);
    }

    /// <summary>
    /// Issue 18 §8: a client off this host (192.0.2.7, TEST-NET-1: the address is only written into the request, no
    /// packet is sent) is refused with 403 unless rpc-username/rpc-password are set, and then it still needs them.
    /// </summary>
    [Theory]
    [InlineData("192.0.2.7", false, null, 403)]
    [InlineData("2001:db8::7", false, null, 403)]
    [InlineData("127.0.0.1", false, null, 409)]
    [InlineData("::1", false, null, 409)]
    [InlineData("192.0.2.7", true, null, 401)]
    [InlineData("192.0.2.7", true, "alice:wrong", 401)]
    [InlineData("192.0.2.7", true, "alice:s3cret", 409)]
    public async Task Clients_off_this_host_need_auth_to_be_set_and_given(string remote, bool auth, string? credentials, int status)
    {
        var config = auth ? new NodeConfig { RpcUsername = "alice", RpcPassword = "s3cret" } : new NodeConfig();
        await using var rig = new Rig(config);
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Connection.RemoteIpAddress = System.Net.IPAddress.Parse(remote);
        context.Request.Method = "POST";
        context.Request.Body = new MemoryStream(Encoding.UTF8.GetBytes("""{"method":"session-get"}"""));
        if (credentials is not null) context.Request.Headers.Authorization = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials));
        context.Response.Body = new MemoryStream();
        await rig.Rpc.ServeAsync(context);
        Assert.Equal(status, context.Response.StatusCode);
    }

    /// <summary>Issue 18 §8: a download-dir from RPC must be absolute and inside an allowed root, after ".." is resolved.</summary>
    [Fact]
    public async Task Download_dirs_outside_the_allowed_roots_are_refused()
    {
        await using var rig = new Rig();
        var root = Path.Combine(rig.Dir, "downloads");
        foreach (var bad in new[] { "/etc", "downloads", "", "   ", root + "/../../etc", root + "-evil", root + "/../downloads-evil/x", rig.Dir })
        {
            var quoted = JsonValue.Create(bad).ToJsonString();
            var answer = await rig.CallAsync("""{"method":"torrent-add","arguments":{"filename":"magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567","download-dir":""" + quoted + "}}");
            Assert.Contains("download-dir", (string?)answer["result"], StringComparison.Ordinal);
            Assert.False(Directory.Exists(root + "-evil"), "a refused download-dir was created");
        }

        foreach (var good in new[] { root, root + "/sub/dir", root + "/x/../y" })
        {
            Assert.StartsWith(root, rig.Torrents.ConfineDownloadDir(good), StringComparison.Ordinal);
        }
    }

    private sealed class Rig : IAsyncDisposable
    {
        private readonly NodeTorrents _torrents;

        public Rig(NodeConfig? config = null)
        {
            Dir = Directory.CreateTempSubdirectory("pw-rpc-").FullName;
            var client = new TorrentClient([new TcpStreamTransport()], new TorrentClientOptions { ListenEndPoints = [] }, new MemoryStorageFactory(), TimeProvider.System);
            _torrents = new NodeTorrents(client, Dir, Path.Combine(Dir, "downloads"), [], null, TimeProvider.System, NullLoggerFactory.Instance);
            Rpc = new TransmissionRpc(_torrents, (config ?? new NodeConfig()) with { Data = Dir }, () => 0, TimeProvider.System, NullLogger<TransmissionRpc>.Instance);
        }

        public string Dir { get; }

        public NodeTorrents Torrents => _torrents;

        public TransmissionRpc Rpc { get; }

        public Task<JsonObject> CallAsync(string body) => Rpc.HandleAsync(Encoding.UTF8.GetBytes(body), CancellationToken.None);

        public async ValueTask DisposeAsync()
        {
            Rpc.Dispose();
            await _torrents.DisposeAsync();
            Directory.Delete(Dir, recursive: true);
        }
    }
}
