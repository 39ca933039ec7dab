using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Interop.Tests.Torrent;

namespace Peerway.Interop.Tests.Node;

/// <summary>
/// Issue 18 item 2: <c>peerway node</c> driven by the real <c>transmission-remote</c> (Debian transmission-cli): a
/// magnet (seeded by <c>peerway share</c>, found through x.pe) and a .torrent (seeded by another <c>peerway share</c>,
/// found through <c>peerway tracker</c>), listed, both at 100 % with the right bytes, stopped, started, removed with
/// their data.
/// </summary>
public sealed class TransmissionRpcInteropTests
{
    [RequiresToolFact("transmission-remote")]
    public async Task Transmission_remote_adds_a_magnet_and_a_torrent_lists_stops_starts_and_removes_with_data()
    {
        await using var env = new TorrentInterop("node-rpc");
        var a = Path.Combine(env.Root, "seed-a", "alpha.bin");
        var b = Path.Combine(env.Root, "seed-b", "beta.bin");
        var shaA = await TorrentInterop.RandomFileAsync(a, 3 * 1024 * 1024 + 123);
        var shaB = await TorrentInterop.RandomFileAsync(b, 2 * 1024 * 1024 + 77);

        // The magnet's seeder, reached through the magnet's x.pe.
        var portA = TorrentInterop.FreePort();
        var shareA = env.StartPeerway("share", a, "--port", portA.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1");
        var magnet = (await shareA.FirstLineAsync(TimeSpan.FromMinutes(4))).Trim();
        Assert.StartsWith("magnet:?", magnet);
        magnet += $"&x.pe=127.0.0.1:{portA}";

        // The .torrent's seeder, reached through a tracker named in the .torrent.
        var tracker = env.StartPeerway("tracker", "--port", "0", "--bind", "127.0.0.1", "--interval", "2");
        var announce = (await tracker.FirstLineAsync(TimeSpan.FromMinutes(1))).Trim();
        var torrent = Path.Combine(env.Root, "beta.torrent");
        var (created, _, createErr) = await env.RunPeerwayAsync(TimeSpan.FromMinutes(2), "create", b, "-o", torrent, "--tracker", announce);
        Assert.True(created == 0, createErr);
        var shareB = env.StartPeerway("share", torrent, "--content", b, "--port", "0", "--bind", "127.0.0.1");
        await shareB.FirstLineAsync(TimeSpan.FromMinutes(1));

        var data = Path.Combine(env.Root, "node");
        var node = await RunningNode.StartAsync(env, data);
        var downloads = Path.Combine(data, "downloads");

        var (code, stdout, stderr) = await TransmissionRemote.RunAsync(env, node, "-a", magnet);
        Assert.True(code == 0 && stdout.Contains("success", StringComparison.Ordinal), stdout + stderr);
        (code, stdout, stderr) = await TransmissionRemote.RunAsync(env, node, "-a", torrent);
        Assert.True(code == 0 && stdout.Contains("success", StringComparison.Ordinal), stdout + stderr);

        var rows = await TransmissionRemote.WaitForListAsync(env, node,
            r => r.Count == 2 && r.Values.All(l => l.Contains("100%", StringComparison.Ordinal)), TimeSpan.FromMinutes(3));
        Assert.Contains("alpha.bin", rows[1], StringComparison.Ordinal);
        Assert.Contains("beta.bin", rows[2], StringComparison.Ordinal);
        Assert.Equal(shaA, TorrentInterop.Sha256OfFile(Path.Combine(downloads, "alpha.bin")));
        Assert.Equal(shaB, TorrentInterop.Sha256OfFile(Path.Combine(downloads, "beta.bin")));

        (code, _, stderr) = await TransmissionRemote.RunAsync(env, node, "-t", "1", "-S");
        Assert.True(code == 0, stderr);
        rows = await TransmissionRemote.ListAsync(env, node);
        Assert.Contains("Stopped", rows[1], StringComparison.Ordinal);
        Assert.DoesNotContain("Stopped", rows[2], StringComparison.Ordinal);

        (code, _, stderr) = await TransmissionRemote.RunAsync(env, node, "-t", "1", "-s");
        Assert.True(code == 0, stderr);
        rows = await TransmissionRemote.ListAsync(env, node);
        Assert.DoesNotContain("Stopped", rows[1], StringComparison.Ordinal);
        Assert.Contains("100%", rows[1], StringComparison.Ordinal);

        (code, _, stderr) = await TransmissionRemote.RunAsync(env, node, "-t", "2", "--remove-and-delete");
        Assert.True(code == 0, stderr);
        rows = await TransmissionRemote.ListAsync(env, node);
        Assert.Equal([1], rows.Keys);
        Assert.False(File.Exists(Path.Combine(downloads, "beta.bin")), "torrent-remove with delete-local-data left the file");
        Assert.True(File.Exists(Path.Combine(downloads, "alpha.bin")), "removing one torrent deleted another's data");
    }

    [RequiresToolFact("transmission-remote")]
    public async Task Rpc_answers_the_session_id_handshake_auth_and_bad_requests_as_the_spec_says()
    {
        await using var env = new TorrentInterop("node-rpc-errors");
        var config = Path.Combine(env.Root, "node.json");
        await File.WriteAllTextAsync(config, """{ "rpc-username": "alice", "rpc-password": "s3cret", "rpc-max-body": 4096 }""");
        var node = await RunningNode.StartAsync(env, Path.Combine(env.Root, "node"), "--config", config);
        using var http = new HttpClient();

        // Spec §2.3.2: without credentials, 401; transmission-remote with --auth gets through the 409 handshake itself.
        var anonymous = await http.PostAsync(node.RpcUrl, Json("""{"method":"session-get"}"""));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        var (code, stdout, stderr) = await TransmissionRemote.RunAsync(env, node, "--auth", "alice:s3cret", "-si");
        Assert.True(code == 0 && stdout.Contains("RPC version: 17", StringComparison.Ordinal), stdout + stderr);
        (code, _, _) = await TransmissionRemote.RunAsync(env, node, "--auth", "alice:wrong", "-l");
        Assert.NotEqual(0, code);

        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:s3cret")));
        // Spec §2.3.1: no session id, 409 with the id to use.
        var conflict = await http.PostAsync(node.RpcUrl, Json("""{"method":"session-get"}"""));
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        var id = Assert.Single(conflict.Headers.GetValues("X-Transmission-Session-Id"));
        http.DefaultRequestHeaders.Add("X-Transmission-Session-Id", id);

        async Task<JsonObject> CallAsync(string body)
        {
            var response = await http.PostAsync(node.RpcUrl, Json(body));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
        }

        var unknown = await CallAsync("""{"method":"torrent-frobnicate","tag":7}""");
        Assert.Equal("method name not recognized: torrent-frobnicate", (string?)unknown["result"]);
        Assert.Equal(7, (int?)unknown["tag"]);
        Assert.Equal("JSON parse error", (string?)(await CallAsync("""{"method": "session-get", """))["result"]);
        Assert.Equal("unknown field: nosuchfield", (string?)(await CallAsync("""{"method":"torrent-get","arguments":{"fields":["id","nosuchfield"]}}"""))["result"]);
        var outside = await CallAsync("""{"method":"torrent-add","arguments":{"filename":"magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567","download-dir":"/etc"}}""");
        Assert.StartsWith("download-dir '/etc' is outside the allowed roots", (string?)outside["result"], StringComparison.Ordinal);
        Assert.Equal("success", (string?)(await CallAsync("""{"method":"session-stats"}"""))["result"]);

        // A body over rpc-max-body is refused by the server (413), and the node keeps answering.
        var pad = new string('x', 8192);
        var big = await http.PostAsync(node.RpcUrl, Json("{\"method\":\"session-get\",\"arguments\":{\"pad\":\"" + pad + "\"}}"));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, big.StatusCode);
        Assert.Equal("success", (string?)(await CallAsync("""{"method":"session-get","arguments":{"fields":["version"]}}"""))["result"]);
        Assert.False(node.Process.HasExited);
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");
}
