using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Peerway.TestSupport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Node.Daemon;
using Peerway.Torrent.Metainfo;

namespace Peerway.Node.Tests;

/// <summary>
/// Issue 18 items 4 and 6 over HTTP, in process: the dashboard's embedded page and its server-sent events, <c>/metrics</c>
/// in Prometheus text format with counters that move, all under the RPC's access rule; and the config's log levels.
/// </summary>
public sealed class NodeDashboardTests
{
    private static NodeConfig Config(string dir) => NodeConfig.Loopback(dir);

    [Fact]
    public async Task The_page_its_assets_and_the_event_stream_are_served_from_the_binary()
    {
        var dir = Directory.CreateTempSubdirectory("pw-dash-").FullName;
        await using (var node = await NodeDaemon.StartAsync(Config(dir), NullLoggerFactory.Instance, CancellationToken.None))
        {
            using var http = new HttpClient();
            using var page = await http.GetAsync(node.DashboardUrl);
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
            var html = await page.Content.ReadAsStringAsync();
            Assert.Contains("<title>Peerway node</title>", html, StringComparison.Ordinal);
            // Nothing from another origin: the page's only script and style sheet are the node's own.
            Assert.DoesNotContain("http", Regex.Replace(html, "href=\"/metrics\"", ""), StringComparison.Ordinal);
            Assert.Contains("default-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
            foreach (var (path, type) in new[] { ("dashboard/app.js", "text/javascript"), ("dashboard/style.css", "text/css") })
            {
                using var asset = await http.GetAsync(node.DashboardUrl + path);
                Assert.Equal(HttpStatusCode.OK, asset.StatusCode);
                Assert.Equal(type, asset.Content.Headers.ContentType?.MediaType);
                Assert.True((await asset.Content.ReadAsByteArrayAsync()).Length > 500);
            }

            var snapshot = await FirstEventAsync(http, node.DashboardUrl + "dashboard/events", null);
            Assert.Empty(snapshot["torrents"]!.AsArray());
            Assert.NotNull(snapshot["dht"]?["routingTable"]);
            Assert.Equal("/transmission/rpc", (string?)snapshot["rpcPath"]);
            Assert.Null(snapshot["turnAllocations"]);
            // The IPFS peer the node hosts: its PeerId (persisted in repo/libp2p.key) and the banner's swarm address.
            Assert.Equal(node.Ipfs.Host.PeerId.ToString(), (string?)snapshot["ipfs"]?["peerId"]);
            Assert.StartsWith("12D3KooW", (string?)snapshot["ipfs"]?["peerId"], StringComparison.Ordinal);
            Assert.Equal(node.SwarmAddress, (string?)snapshot["ipfs"]?["swarm"]);
            Assert.EndsWith($" swarm {node.SwarmAddress}", node.Banner, StringComparison.Ordinal);
            Assert.Empty(snapshot["ipfs"]!["peers"]!.AsArray());
        }

        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task Each_file_links_to_a_stream_that_serves_ranges_while_the_torrent_downloads()
    {
        var dir = Directory.CreateTempSubdirectory("pw-dash-stream-").FullName;
        var video = RandomNumberGenerator.GetBytes(8_000_000);
        var notes = RandomNumberGenerator.GetBytes(10_000);
        // A slow seeder (512 KiB/s, 15 s for the whole): the ranges below are served while most of the torrent is still missing.
        var (seeder, meta) = await StreamServerTests.SeedAsync(dir, ("clip one.mp4", video), ("notes.txt", notes), 512 * 1024);
        await using var seeding = seeder;

        await using (var node = await NodeDaemon.StartAsync(Config(dir) with { RpcUsername = "ann", RpcPassword = "s3cret" }, NullLoggerFactory.Instance, CancellationToken.None))
        {
            Assert.True(MagnetLink.TryParse($"magnet:?xt=urn:btih:{meta.InfoHash}&x.pe=127.0.0.1:{seeder.Port}", out var magnet, out _));
            var (added, _) = await node.Torrents.AddAsync(new NodeAddRequest(magnet, meta, null, Paused: false), CancellationToken.None);
            var hash = meta.InfoHash.ToString();
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(120) };
            var auth = Basic("ann", "s3cret");

            var snapshot = await FirstEventAsync(http, node.DashboardUrl + "dashboard/events", auth);
            var files = snapshot["torrents"]![0]!["files"]!.AsArray();
            Assert.Equal(2, files.Count);
            Assert.Equal($"/stream/{hash}/0/clip%20one.mp4", (string?)files[0]!["stream"]);
            Assert.Equal("notes.txt", (string?)files[1]!["path"]);
            Assert.Equal(10_000, (long)files[1]!["length"]!);
            using (var script = new HttpRequestMessage(HttpMethod.Get, node.DashboardUrl + "dashboard/app.js"))
            {
                script.Headers.Authorization = auth;
                using var js = await http.SendAsync(script);
                // The page renders the link from the snapshot's "stream" path.
                Assert.Contains("href: f.stream", await js.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }

            var url = node.DashboardUrl + (((string?)files[0]!["stream"])!).TrimStart('/');
            // The same access rule as the dashboard.
            using (var anonymous = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            }

            using var tail = new HttpRequestMessage(HttpMethod.Get, url);
            tail.Headers.Authorization = auth;
            tail.Headers.Range = new RangeHeaderValue(7_990_000, null);
            using (var partial = await http.SendAsync(tail))
            {
                Assert.Equal(HttpStatusCode.PartialContent, partial.StatusCode);
                Assert.Equal("video/mp4", partial.Content.Headers.ContentType!.MediaType);
                Assert.Equal("bytes 7990000-7999999/8000000", partial.Content.Headers.ContentRange!.ToString());
                Assert.Equal(video.AsSpan(7_990_000).ToArray(), await partial.Content.ReadAsByteArrayAsync());
            }

            // Served before the download ended: the torrent was still downloading.
            Assert.False(added.Handle.Completed.IsCompleted);

            foreach (var missing in new[] { $"stream/{hash}/2/x", $"stream/{new string('0', 40)}/0/x", $"stream/{hash}/-1/x" })
            {
                using var bad = new HttpRequestMessage(HttpMethod.Get, node.DashboardUrl + missing);
                bad.Headers.Authorization = auth;
                using var notFound = await http.SendAsync(bad);
                Assert.Equal(HttpStatusCode.NotFound, notFound.StatusCode);
            }

            using var whole = new HttpRequestMessage(HttpMethod.Get, node.DashboardUrl + (((string?)files[1]!["stream"])!).TrimStart('/'));
            whole.Headers.Authorization = auth;
            using var all = await http.SendAsync(whole);
            Assert.Equal(notes, await all.Content.ReadAsByteArrayAsync());
        }

        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task With_auth_set_the_page_events_and_metrics_need_the_rpc_credentials()
    {
        var dir = Directory.CreateTempSubdirectory("pw-dash-auth-").FullName;
        await using (var node = await NodeDaemon.StartAsync(Config(dir) with { RpcUsername = "ann", RpcPassword = "s3cret" }, NullLoggerFactory.Instance, CancellationToken.None))
        {
            using var http = new HttpClient();
            foreach (var path in new[] { "", "dashboard/app.js", "dashboard/events", "metrics" })
            {
                using var anonymous = await http.GetAsync(node.DashboardUrl + path, HttpCompletionOption.ResponseHeadersRead);
                Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
                using var wrong = new HttpRequestMessage(HttpMethod.Get, node.DashboardUrl + path);
                wrong.Headers.Authorization = Basic("ann", "guess");
                using var refused = await http.SendAsync(wrong, HttpCompletionOption.ResponseHeadersRead);
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            }

            using var page = new HttpRequestMessage(HttpMethod.Get, node.DashboardUrl);
            page.Headers.Authorization = Basic("ann", "s3cret");
            using var ok = await http.SendAsync(page);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            var snapshot = await FirstEventAsync(http, node.DashboardUrl + "dashboard/events", Basic("ann", "s3cret"));
            Assert.NotNull(snapshot["torrents"]);
        }

        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task Metrics_are_prometheus_text_from_every_engine_meter_and_rpc_calls_are_counted()
    {
        var dir = Directory.CreateTempSubdirectory("pw-metrics-").FullName;
        await using (var node = await NodeDaemon.StartAsync(Config(dir), NullLoggerFactory.Instance, CancellationToken.None))
        {
            using var http = new HttpClient();
            var before = await ScrapeAsync(http, node.DashboardUrl + "metrics");
            Assert.Equal(0, Sample(before, "peerway_rpc_requests_total", "method=\"session-get\""));

            // Two RPC calls: the 409 handshake is not a call; session-get twice is.
            using var handshake = await http.PostAsync(node.RpcUrl, new StringContent("{}"));
            Assert.Equal(HttpStatusCode.Conflict, handshake.StatusCode);
            var session = handshake.Headers.GetValues(TransmissionRpc.SessionIdHeader).Single();
            for (var i = 0; i < 2; i++)
            {
                using var call = new HttpRequestMessage(HttpMethod.Post, node.RpcUrl) { Content = new StringContent("""{"method":"session-get"}""") };
                call.Headers.Add(TransmissionRpc.SessionIdHeader, session);
                using var answer = await http.SendAsync(call);
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            }

            using var gateway = await http.GetAsync(node.GatewayUrl + "/ipfs/bafkqaaa?format=raw");
            var text = await ScrapeAsync(http, node.DashboardUrl + "metrics");
            Assert.True(Sample(text, "peerway_rpc_requests_total", "method=\"session-get\"") == 2, text);
            Assert.Equal(1, Sample(text, "peerway_gateway_requests_total", $"status=\"{(int)gateway.StatusCode}\""));
            // Every engine's meter is there, read at the scrape.
            Assert.Equal(0, Sample(text, "peerway_torrent_peers", ""));
            Assert.Equal(0, Sample(text, "peerway_torrent_transferred_bytes_total", "direction=\"down\""));
            Assert.Equal(0, Sample(text, "peerway_torrent_pieces_failed_total", ""));
            Assert.True(Sample(text, "peerway_dht_queries_total", "direction=\"out\"") >= 0);
            Assert.Equal(0, Sample(text, "peerway_dht_routing_table_nodes", ""));
        }

        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void The_config_sets_log_levels_by_category()
    {
        var dir = Directory.CreateTempSubdirectory("pw-logcfg-").FullName;
        var file = Path.Combine(dir, "node.json");
        File.WriteAllText(file, """{"log-level": "Warning", "logging": {"Peerway.Torrent": "Debug", "Peerway.Dht.DhtNode": "None"}, "log-format": "json"}""");
        var config = NodeConfig.Load(file);
        config.Validate();
        using var loggers = LoggerFactory.Create(config.ConfigureLogging);
        Assert.True(loggers.CreateLogger("Peerway.Torrent.TorrentClient").IsEnabled(LogLevel.Debug));
        Assert.False(loggers.CreateLogger("Peerway.Torrent.TorrentClient").IsEnabled(LogLevel.Trace));
        Assert.False(loggers.CreateLogger("Peerway.Dht.DhtNode").IsEnabled(LogLevel.Critical));
        Assert.False(loggers.CreateLogger("Peerway.Node.Daemon.NodeDaemon").IsEnabled(LogLevel.Information));
        Assert.True(loggers.CreateLogger("Peerway.Node.Daemon.NodeDaemon").IsEnabled(LogLevel.Warning));

        File.WriteAllText(file, """{"logging": {"Peerway.Torrent": "Loud"}}""");
        Assert.Throws<ArgumentException>(() => NodeConfig.Load(file));
        Assert.Throws<ArgumentException>(() => (config with { LogFormat = "xml" }).Validate());
        Directory.Delete(dir, recursive: true);
    }

    internal static AuthenticationHeaderValue Basic(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));

    private static async Task<JsonObject> FirstEventAsync(HttpClient http, string url, AuthenticationHeaderValue? auth)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Authorization = auth;
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal)) return JsonNode.Parse(line[6..])!.AsObject();
        }

        throw new InvalidOperationException("the event stream ended before its first event");
    }

    private static Task<string> ScrapeAsync(HttpClient http, string url) => PrometheusScrape.GetAsync(http, url);

    private static double Sample(string text, string name, string label) => PrometheusScrape.Sum(text, name, label);
}
