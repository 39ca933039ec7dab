using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Peerway.Node.Content;
using Peerway.Node.Streaming;
using Peerway.Torrent;
using Peerway.Torrent.Metainfo;

namespace Peerway.Node.Daemon.Dashboard;

/// <summary>One torrent row of the dashboard; <see cref="Files"/> is empty until the metadata is known.</summary>
internal sealed record DashboardTorrent(int Id, string Name, string Hash, string State, double Done, long Size, long RateDown, long RateUp, int Peers, string Error,
    IReadOnlyList<DashboardFile> Files);

/// <summary>One content file of a torrent and the path that streams it while it downloads.</summary>
internal sealed record DashboardFile(int Index, string Path, long Length, string Stream);

/// <summary>One content root: its CID and where the gateway serves it.</summary>
internal sealed record DashboardContent(string Cid, bool Pinned, string Gateway);

/// <summary>The DHT at a glance: routing-table size, lookups started by this node, KRPC queries each way.</summary>
internal sealed record DashboardDht(int RoutingTable, long Lookups, long QueriesIn, long QueriesOut, int StoredInfoHashes);

/// <summary>The node's IPFS peer: its PeerId, swarm address, IPFS DHT routing table and the libp2p peers connected now.</summary>
internal sealed record DashboardIpfs(string PeerId, string Swarm, int RoutingTable, IReadOnlyList<string> Peers);

/// <summary>What the dashboard shows, pushed every period as one server-sent event.</summary>
internal sealed record DashboardSnapshot(
    IReadOnlyList<DashboardTorrent> Torrents,
    IReadOnlyList<DashboardContent> Content,
    DashboardDht Dht,
    int? TurnAllocations,
    string RpcPath,
    string GatewayUrl,
    DashboardIpfs Ipfs);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(DashboardSnapshot))]
internal sealed partial class DashboardJson : JsonSerializerContext;

/// <summary>
/// Issue 18 item 4: the node's web dashboard at <c>/</c> on the rpc listener. The page, its script and its style sheet
/// are embedded in the assembly (nothing fetched at run time); <c>/dashboard/events</c> pushes a
/// <see cref="DashboardSnapshot"/> as a server-sent event (WHATWG HTML §9.2) every second. The page changes nothing
/// itself: it adds, stops, starts and removes through the Transmission RPC, so the RPC's rules hold — loopback only
/// unless auth is set, basic auth, and the <c>X-Transmission-Session-Id</c> token on every state-changing call.
/// Issue 21 item 3: <c>/stream/HASH/N/NAME</c> serves content file N of a torrent with HTTP ranges while it downloads
/// (<see cref="StreamServer.ServeFileAsync"/>), under the same access rule; the page links to it for each file.
/// </summary>
internal sealed class NodeDashboard
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(1);

    private static readonly Dictionary<string, (string Resource, string ContentType)> Assets = new(StringComparer.Ordinal)
    {
        ["/"] = ("index.html", "text/html; charset=utf-8"),
        ["/dashboard/app.js"] = ("app.js", "text/javascript; charset=utf-8"),
        ["/dashboard/style.css"] = ("style.css", "text/css; charset=utf-8"),
    };

    private readonly NodeDaemon _node;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly StreamServerOptions _stream = new();

    public NodeDashboard(NodeDaemon node, TimeProvider time, ILogger<NodeDashboard> log)
    {
        _node = node;
        _time = time;
        _log = log;
    }

    public void Map(IEndpointRouteBuilder app)
    {
        foreach (var (path, (resource, type)) in Assets)
        {
            var bytes = ReadAsset(resource);
            app.MapGet(path, async context =>
            {
                if (!await _node.Rpc.AdmitAsync(context).ConfigureAwait(false)) return;
                context.Response.ContentType = type;
                context.Response.Headers.CacheControl = "no-cache";
                // The page is never framed by another site (clickjacking) and runs only its own script.
                context.Response.Headers["X-Frame-Options"] = "DENY";
                context.Response.Headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";
                await context.Response.Body.WriteAsync(bytes, context.RequestAborted).ConfigureAwait(false);
            });
        }

        app.MapGet("/dashboard/events", ServeEventsAsync);
        app.MapMethods("/stream/{hash}/{index}/{**name}", [HttpMethods.Get, HttpMethods.Head], ServeStreamAsync);
    }

    /// <summary>The path that streams content file <paramref name="index"/> (its name only to help players and downloads).</summary>
    internal static string StreamPath(string hash, int index, TorrentFileEntry file) =>
        string.Create(CultureInfo.InvariantCulture, $"/stream/{hash}/{index}/{Uri.EscapeDataString(file.Path[^1])}");

    private async Task ServeStreamAsync(HttpContext context)
    {
        if (!await _node.Rpc.AdmitAsync(context).ConfigureAwait(false)) return;
        var hash = context.Request.RouteValues["hash"] as string;
        var torrent = _node.Torrents.All.FirstOrDefault(t => string.Equals(t.Handle.InfoHash.ToString(), hash, StringComparison.OrdinalIgnoreCase))?.Handle;
        var count = torrent?.Info?.ContentFiles.Count() ?? 0;
        if (torrent is null || !int.TryParse(context.Request.RouteValues["index"] as string, NumberStyles.None, CultureInfo.InvariantCulture, out var index) || index >= count)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        await StreamServer.ServeFileAsync(context, torrent, index, _stream, _log).ConfigureAwait(false);
    }

    private static byte[] ReadAsset(string name)
    {
        using var stream = typeof(NodeDashboard).Assembly.GetManifestResourceStream($"Peerway.Node.Dashboard.{name}")
            ?? throw new InvalidOperationException($"dashboard asset {name} is not embedded");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>Server-sent events: one <c>data:</c> line of JSON per period until the client leaves or the node stops.</summary>
    private async Task ServeEventsAsync(HttpContext context)
    {
        if (!await _node.Rpc.AdmitAsync(context).ConfigureAwait(false)) return;
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _node.Stopping);
        var ct = stop.Token;
        using var timer = new PeriodicTimer(Period, _time);
        try
        {
            do
            {
                var json = JsonSerializer.Serialize(Snapshot(), DashboardJson.Default.DashboardSnapshot);
                await response.WriteAsync($"data: {json}\n\n", ct).ConfigureAwait(false);
                await response.Body.FlushAsync(ct).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
            // The page was closed or the node is stopping.
        }
    }

    internal DashboardSnapshot Snapshot()
    {
        var torrents = new List<DashboardTorrent>();
        foreach (var t in _node.Torrents.All)
        {
            var h = t.Handle;
            var s = h.GetStats();
            var state = h.State;
            var done = state == TorrentState.Seeding ? 1.0 : s.PieceCount == 0 ? 0.0 : (double)s.VerifiedPieces / s.PieceCount;
            var hash = h.InfoHash.ToString();
            var files = h.Info is { } info
                ? info.ContentFiles.Select((f, i) => new DashboardFile(i, f.RelativePath, f.Length, StreamPath(hash, i, f))).ToList()
                : [];
            torrents.Add(new DashboardTorrent(t.Id, t.Name, hash, StateName(state), done, h.Info?.TotalLength ?? 0,
                t.RateDownload, t.RateUpload, s.Connections, h.Error?.Message ?? "", files));
        }

        var gateway = _node.GatewayUrl;
        var pins = _node.Torrents.Pins;
        var content = new List<DashboardContent>();
        foreach (var cid in pins.Concat(_node.Repo.Roots().Select(c => c.ToString())).Distinct(StringComparer.Ordinal))
        {
            // The trustless gateway answers with a CAR of the whole DAG (IPIP-402 ?format=car).
            content.Add(new DashboardContent(cid, pins.Contains(cid), $"{gateway}/ipfs/{cid}?format=car"));
        }

        var d = _node.Dht.Node.Stats;
        var dht = new DashboardDht(d.RoutingTableSize, d.LookupsStarted, d.QueriesReceived, d.QueriesSent, d.StoredInfoHashes);
        // Without "turn" in the config the node runs no TURN server: null, and the page says so.
        var host = _node.Ipfs.Host;
        var ipfs = new DashboardIpfs(host.PeerId.ToString(), _node.SwarmAddress, _node.Ipfs.Dht.RoutingTableSize,
            [.. host.Connections.Select(c => $"{c.RemotePeer} {c.RemoteAddress}").Order(StringComparer.Ordinal)]);
        return new DashboardSnapshot(torrents, content, dht, _node.Turn?.Server.AllocationCount, "/transmission/rpc", gateway, ipfs);
    }

    private static string StateName(TorrentState state) => state switch
    {
        TorrentState.FetchingMetadata => "metadata",
        TorrentState.Downloading => "downloading",
        TorrentState.Seeding => "seeding",
        TorrentState.Paused => "paused",
        TorrentState.Failed => "failed",
        _ => "removed",
    };
}
