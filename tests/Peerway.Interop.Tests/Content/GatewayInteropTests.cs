using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Content;

/// <summary>
/// Issue 3 §5 and §8: `peerway gateway` is an IPFS trustless gateway that Helia (@helia/verified-fetch, with our gateway
/// as its only block source) fetches and verifies content from; raw/CAR/plain responses, ETag, 400/404; and the
/// verifying client (`peerway fetch --gateway`) rejects forged blocks.
/// </summary>
public sealed class GatewayInteropTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-gw");

    public void Dispose() => _temp.Dispose();

    internal static async Task<(ExternalProcess Process, string Url)> StartGatewayAsync(string repo)
    {
        var port = FreePort.Tcp();
        var gateway = PeerwayCli.Start("gateway", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--repo", repo);
        await gateway.WaitForStdoutAsync(l => l.StartsWith("gateway listening on", StringComparison.Ordinal), TimeSpan.FromMinutes(3));
        return (gateway, $"http://127.0.0.1:{port}");
    }

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Helia_verified_fetch_gets_and_verifies_files_served_by_peerway()
    {
        ContentPeers.Require();
        var repo = Path.Combine(_temp.Path, "repo");
        var file = ContentPeers.WriteRandomFile(_temp.Path, "data", (2L * 262_144) + 99, seed: 11);
        var v0 = await ContentPeers.PeerwayAsync("add", file, "--repo", repo);
        var v1 = await ContentPeers.PeerwayAsync("add", file, "--cid-version", "1", "--repo", repo);
        var (gateway, url) = await StartGatewayAsync(repo);
        await using (gateway)
        {
            foreach (var cid in new[] { v0, v1 })
            {
                var result = await ContentPeers.RunJsonAsync("verified-fetch.mjs", url, cid);

                Assert.Equal(200, result.GetProperty("status").GetInt32());
                Assert.Equal(ContentPeers.Sha256Hex(file), result.GetProperty("sha256").GetString());
            }
        }
    }

    [RequiresToolFact("node", NeedsNpmPeers = true)]
    public async Task Helia_verified_fetch_resolves_a_path_inside_a_directory_served_by_peerway()
    {
        ContentPeers.Require();
        var repo = Path.Combine(_temp.Path, "repo");
        var tree = Path.Combine(_temp.Path, "tree");
        Directory.CreateDirectory(Path.Combine(tree, "docs"));
        var file = ContentPeers.WriteRandomFile(Path.Combine(tree, "docs"), "paper.bin", 300_000, seed: 12);
        var root = await ContentPeers.PeerwayAsync("add", tree, "--cid-version", "1", "--repo", repo);
        var (gateway, url) = await StartGatewayAsync(repo);
        await using (gateway)
        {
            var result = await ContentPeers.RunJsonAsync("verified-fetch.mjs", url, $"{root}/docs/paper.bin");

            Assert.Equal(200, result.GetProperty("status").GetInt32());
            Assert.Equal(ContentPeers.Sha256Hex(file), result.GetProperty("sha256").GetString());
        }
    }

    [RequiresToolFact]
    public async Task Gateway_answers_raw_car_and_plain_requests_with_types_etags_and_errors()
    {
        var repo = Path.Combine(_temp.Path, "repo");
        var file = ContentPeers.WriteRandomFile(_temp.Path, "data", 262_145, seed: 13);
        var cid = await ContentPeers.PeerwayAsync("add", file, "--repo", repo);
        var (gateway, url) = await StartGatewayAsync(repo);
        await using (gateway)
        {
            using var http = new HttpClient { BaseAddress = new Uri(url) };

            using var raw = new HttpRequestMessage(HttpMethod.Get, $"/ipfs/{cid}");
            raw.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.ipld.raw"));
            using var rawResponse = await http.SendAsync(raw);
            var block = await rawResponse.Content.ReadAsByteArrayAsync();
            Assert.Equal(HttpStatusCode.OK, rawResponse.StatusCode);
            Assert.Equal("application/vnd.ipld.raw", rawResponse.Content.Headers.ContentType?.MediaType);
            Assert.Equal($"\"{cid}.raw\"", rawResponse.Headers.ETag?.Tag);
            // The block is the root: its sha2-256 is the CIDv0's digest.
            Assert.Equal(Peerway.Core.Multiformats.Cid.Parse(cid).Multihash.Digest.ToArray(), SHA256.HashData(block));

            using var car = new HttpRequestMessage(HttpMethod.Get, $"/ipfs/{cid}");
            car.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.ipld.car"));
            using var carResponse = await http.SendAsync(car);
            Assert.Equal(HttpStatusCode.OK, carResponse.StatusCode);
            Assert.Equal("application/vnd.ipld.car", carResponse.Content.Headers.ContentType?.MediaType);
            Assert.Contains(carResponse.Content.Headers.ContentType!.Parameters, p => p.Name == "version" && p.Value == "1");
            var carBytes = await carResponse.Content.ReadAsByteArrayAsync();
            using (var stream = new MemoryStream(carBytes))
            {
                var (result, header) = await Peerway.Content.Car.CarWriter.ImportAsync(stream, new Peerway.Content.Blocks.MemoryBlockStore(), CancellationToken.None);
                Assert.True(result.Ok, result.ToString());
                Assert.Equal(cid, header!.Roots.Single().ToString());
                Assert.Equal(3UL, result.Bytes); // root + 2 leaves
            }

            var plain = await http.GetByteArrayAsync($"/ipfs/{cid}");
            Assert.Equal(await File.ReadAllBytesAsync(file), plain);

            using var cached = new HttpRequestMessage(HttpMethod.Get, $"/ipfs/{cid}?format=raw");
            cached.Headers.IfNoneMatch.Add(new EntityTagHeaderValue($"\"{cid}.raw\""));
            using var notModified = await http.SendAsync(cached);
            Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);

            using var bad = await http.GetAsync("/ipfs/not-a-cid");
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            using var missing = await http.GetAsync("/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy?format=raw");
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }
    }

    [RequiresToolFact]
    public async Task Peerway_fetch_rejects_forged_blocks_and_uses_an_honest_gateway()
    {
        var source = Path.Combine(_temp.Path, "source");
        var file = ContentPeers.WriteRandomFile(_temp.Path, "data", 600_000, seed: 14);
        var cid = await ContentPeers.PeerwayAsync("add", file, "--cid-version", "1", "--repo", source);
        var (gateway, honest) = await StartGatewayAsync(source);
        await using (gateway)
        await using (var forger = ForgingGateway.Start(FreePort.Tcp()))
        {
            var onlyForged = await PeerwayCli.RunAsync("fetch", cid, "-o", Path.Combine(_temp.Path, "bad"), "--gateway", forger.Url,
                "--repo", Path.Combine(_temp.Path, "r1"));
            Assert.Equal(1, onlyForged.ExitCode);
            Assert.Contains("forged", onlyForged.Stderr, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(_temp.Path, "bad")));

            var output = Path.Combine(_temp.Path, "good");
            await ContentPeers.PeerwayAsync("fetch", cid, "-o", output, "--gateway", forger.Url, "--gateway", honest,
                "--repo", Path.Combine(_temp.Path, "r2"));
            Assert.Equal(ContentPeers.Sha256Hex(file), ContentPeers.Sha256Hex(output));
            Assert.True(forger.Requests > 0);
        }
    }

    /// <summary>A gateway that answers every block request with bytes that do not match the CID.</summary>
    private sealed class ForgingGateway : IAsyncDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly Task _loop;
        private int _requests;

        private ForgingGateway(int port)
        {
            Url = $"http://127.0.0.1:{port}";
            _listener.Prefixes.Add(Url + "/");
            _listener.Start();
            _loop = LoopAsync();
        }

        public string Url { get; }

        public int Requests => Volatile.Read(ref _requests);

        public static ForgingGateway Start(int port) => new(port);

        private async Task LoopAsync()
        {
            while (true)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                Interlocked.Increment(ref _requests);
                var forged = "forged block"u8.ToArray();
                context.Response.ContentType = "application/vnd.ipld.raw";
                context.Response.ContentLength64 = forged.Length;
                await context.Response.OutputStream.WriteAsync(forged);
                context.Response.Close();
            }
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Close();
            await _loop;
        }
    }
}
