using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Peerway.Node;
using Peerway.Node.Daemon;

namespace Peerway.Cli;

/// <summary>
/// Issue 18 item 7: the demo's own <c>peerway node</c> (in process, every port picked by the system): its dashboard URL
/// is printed before the swarm starts, the demo torrent is added through its Transmission RPC (the 409 session-id
/// handshake, then <c>torrent-add</c>, as any RPC client), and its copy is checked against the file's SHA-256.
/// </summary>
internal sealed class DemoNode : IAsyncDisposable
{
    private readonly NodeDaemon _node;
    private readonly string _data;
    private readonly HttpClient _http = new();
    private NodeTorrent? _torrent;

    private DemoNode(NodeDaemon node, string data)
    {
        _node = node;
        _data = data;
    }

    public string DashboardUrl => _node.DashboardUrl;

    /// <summary>Null until the node's copy is checked; then whether its SHA-256 matches the source.</summary>
    public bool? Verified { get; private set; }

    public string? Name => _torrent?.Name;

    public static async Task<DemoNode> StartAsync(ILoggerFactory loggers, CancellationToken ct)
    {
        var data = Directory.CreateTempSubdirectory("peerway-demo-node-").FullName;
        var config = NodeConfig.Loopback(data);
        try
        {
            return new DemoNode(await NodeDaemon.StartAsync(config, loggers, ct).ConfigureAwait(false), data);
        }
        catch
        {
            Directory.Delete(data, recursive: true);
            throw;
        }
    }

    /// <summary>
    /// <see cref="LocalTorrentSwarmOptions.ExtraPeer"/>: joins the swarm's DHT, adds the magnet through the RPC (with the
    /// seeder as a BEP 9 x.pe peer address too), waits for every piece, then hashes the file.
    /// </summary>
    public async Task JoinAsync(LocalTorrentSwarmSeeding swarm, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(swarm);
        await _node.Dht.JoinAsync([swarm.DhtNode], ct).ConfigureAwait(false);
        var magnet = string.Create(CultureInfo.InvariantCulture, $"{swarm.Magnet}&x.pe={swarm.Seeder.Address}:{swarm.Seeder.Port}");
        var answer = await CallAsync(new JsonObject { ["method"] = "torrent-add", ["arguments"] = new JsonObject { ["filename"] = magnet } }, ct).ConfigureAwait(false);
        if ((string?)answer["result"] != "success") throw new InvalidOperationException($"the node refused the demo torrent: {answer["result"]}");
        var id = (int?)answer["arguments"]?["torrent-added"]?["id"] ?? throw new InvalidOperationException("torrent-add answered no id");
        _torrent = _node.Torrents.Find(id) ?? throw new InvalidOperationException($"torrent {id} is not in the node");
        await _torrent.Handle.Completed.WaitAsync(ct).ConfigureAwait(false);
        var file = Path.Combine(_torrent.DownloadDir, _torrent.Name);
        await using var stream = File.OpenRead(file);
        Verified = (await SHA256.HashDataAsync(stream, ct).ConfigureAwait(false)).AsSpan().SequenceEqual(swarm.Sha256.Span);
    }

    /// <summary>One Transmission RPC call over HTTP, with the session-id handshake (rpc-spec.md §2.3.1).</summary>
    private async Task<JsonObject> CallAsync(JsonObject request, CancellationToken ct)
    {
        var session = "";
        for (var attempt = 0; attempt < 2; attempt++)
        {
            using var message = new HttpRequestMessage(HttpMethod.Post, _node.RpcUrl) { Content = new StringContent(request.ToJsonString(), System.Text.Encoding.UTF8, "application/json") };
            message.Headers.Add(TransmissionRpc.SessionIdHeader, session);
            using var response = await _http.SendAsync(message, ct).ConfigureAwait(false);
            if (response.StatusCode == System.Net.HttpStatusCode.Conflict)
            {
                session = response.Headers.GetValues(TransmissionRpc.SessionIdHeader).First();
                continue;
            }

            response.EnsureSuccessStatusCode();
            return JsonNode.Parse(await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false)) as JsonObject ?? throw new InvalidOperationException("the node's RPC answered no JSON object");
        }

        throw new InvalidOperationException("the node's RPC kept answering 409");
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _node.DisposeAsync().ConfigureAwait(false);
        Directory.Delete(_data, recursive: true);
    }
}
