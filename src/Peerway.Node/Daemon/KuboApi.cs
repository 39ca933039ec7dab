using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;
using Microsoft.Extensions.Logging;
using Peerway.Content.Blocks;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;
using Peerway.Node.Content;
using Peerway.Node.Ipfs;

namespace Peerway.Node.Daemon;

/// <summary>
/// A subset of kubo's RPC API (docs.ipfs.tech/reference/kubo/rpc, every call a POST under <c>/api/v0/</c>, arguments
/// in the query string, errors as <c>{"Message", "Code", "Type": "error"}</c> with status 500) over the node's content
/// repository: <c>version</c>, <c>id</c>, <c>add</c> (multipart; <c>cid-version</c>, <c>raw-leaves</c>,
/// <c>only-hash</c>: the same importer, so the same CIDs, as <c>peerway add</c>), <c>cat</c>, <c>block/get</c>,
/// <c>block/put</c>, <c>dag/export</c> and <c>dag/import</c> (CAR v1), <c>pin/add|ls|rm</c> (saved in the node's state),
/// <c>repo/stat</c>, <c>get</c> (a tar stream, as kubo returns it), and through the node's libp2p/IPFS peer
/// (<see cref="IpfsPeer"/>): <c>id</c>, <c>routing/findprovs</c> (a Kad lookup), <c>swarm/peers</c> and <c>swarm/connect</c>.
/// </summary>
public sealed partial class KuboApi
{
    private readonly ContentRepo _repo;
    private readonly IpfsPeer _ipfs;
    private readonly Action<Cid> _provide;
    private readonly Task _joined;
    private readonly ILogger _log;

    private readonly NodeTorrents _state;
    private readonly Lock _pinGate = new();

    /// <param name="provide">Called with each root that <c>add</c>, <c>pin/add</c> or <c>dag/import</c> pins: the node announces it in the IPFS DHT.</param>
    /// <param name="joined">Completes when the peer has joined the IPFS DHT; lookups wait for it.</param>
    public KuboApi(ContentRepo repo, NodeTorrents state, IpfsPeer ipfs, ILogger<KuboApi> log, Action<Cid>? provide = null, Task? joined = null)
    {
        _joined = joined ?? Task.CompletedTask;
        _repo = repo;
        _state = state;
        _ipfs = ipfs;
        _log = log;
        _provide = provide ?? (_ => { });
    }

    public void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.Use(async (context, next) =>
        {
            try
            {
                await next(context).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException or InvalidOperationException or ArgumentException)
            {
                // One bad request fails alone, with kubo's error shape.
                _log.LogWarning("api {Path}: {Message}", context.Request.Path, ex.Message);
                if (!context.Response.HasStarted) await Error(ex.Message).ExecuteAsync(context).ConfigureAwait(false);
            }
        });
        app.MapPost("/api/v0/version", () => KuboResult(new JsonObject { ["Version"] = "0.1.0-peerway", ["Commit"] = "", ["Repo"] = "peerway", ["System"] = "amd64/linux", ["Golang"] = "" }));
        app.MapPost("/api/v0/id", Id);
        app.MapPost("/api/v0/add", (Delegate)AddAsync);
        app.MapPost("/api/v0/cat", CatAsync);
        app.MapPost("/api/v0/block/get", BlockGetAsync);
        app.MapPost("/api/v0/block/put", (Delegate)BlockPutAsync);
        app.MapPost("/api/v0/dag/export", DagExportAsync);
        app.MapPost("/api/v0/dag/import", (Delegate)DagImportAsync);
        app.MapPost("/api/v0/pin/add", (HttpContext c) => PinChange(c, add: true));
        app.MapPost("/api/v0/pin/rm", (HttpContext c) => PinChange(c, add: false));
        app.MapPost("/api/v0/pin/ls", PinList);
        app.MapPost("/api/v0/repo/stat", RepoStat);
        app.MapPost("/api/v0/get", GetAsync);
        app.MapPost("/api/v0/routing/findprovs", FindProvidersAsync);
        app.MapPost("/api/v0/swarm/peers", SwarmPeers);
        app.MapPost("/api/v0/swarm/connect", SwarmConnectAsync);
        app.MapFallback((HttpContext c) => Error($"command not found: {c.Request.Path}", StatusCodes.Status404NotFound));
    }

    /// <summary>A JSON answer written by generated code (<see cref="KuboJson"/>; no run-time reflection under Native AOT).</summary>
    private static IResult KuboResult(JsonObject body, int? statusCode = null) =>
        Results.Json(body, KuboJson.Default.JsonObject, statusCode: statusCode);

    private static IResult Error(string message, int status = StatusCodes.Status500InternalServerError) =>
        KuboResult(new JsonObject { ["Message"] = message, ["Code"] = 0, ["Type"] = "error" }, statusCode: status);

    private async Task<IResult> AddAsync(HttpContext context)
    {
        var q = context.Request.Query;
        var options = new ImportOptions
        {
            CidVersion = q.TryGetValue("cid-version", out var v) && int.TryParse(v, out var cv) ? cv : 0,
            RawLeaves = q.TryGetValue("raw-leaves", out var r) ? Flag(r) : null,
        };
        try
        {
            options.Validate();
        }
        catch (ArgumentOutOfRangeException ex)
        {
            return Error(ex.Message.Split('\n')[0]);
        }

        var onlyHash = q.TryGetValue("only-hash", out var oh) && Flag(oh);
        IBlockStore store = onlyHash ? new NullBlockStore() : _repo.Blocks;
        var importer = new UnixFsImporter(store, options);
        var lines = new List<string>();
        var error = await ForEachPartAsync(context, async (name, body) =>
        {
            var result = await importer.ImportFileAsync(body, context.RequestAborted).ConfigureAwait(false);
            if (!onlyHash)
            {
                _repo.AddRoot(result.Cid);
                Pin(result.Cid.ToString(), add: true); // kubo pins what it adds (pin=true by default)
            }

            lines.Add(new JsonObject { ["Name"] = name, ["Hash"] = result.Cid.ToString(), ["Size"] = result.Tsize.ToString(System.Globalization.CultureInfo.InvariantCulture) }.ToJsonString());
        }).ConfigureAwait(false);
        if (error is not null) return Error($"add: {error}", StatusCodes.Status400BadRequest);

        // kubo streams one JSON object per added entry, newline-delimited.
        return Results.Text(string.Join('\n', lines) + "\n", "application/json");
    }

    private async Task CatAsync(HttpContext context)
    {
        var exporter = new UnixFsExporter(_repo.Blocks);
        if (await ResolveArgAsync(context, exporter).ConfigureAwait(false) is not { } resolved) return;
        var target = resolved.Target;
        if (!_repo.Blocks.Has(target))
        {
            await Error($"block was not found locally (offline): {target}").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        context.Response.ContentType = "text/plain";
        var result = await exporter.ExportFileAsync(target, context.Response.Body, context.RequestAborted).ConfigureAwait(false);
        if (!result.Ok)
        {
            _log.LogWarning("cat {Cid}: {Result}", target, result);
            context.Abort();
        }
    }

    /// <summary>
    /// Resolves <c>arg</c> (a CID, <c>CID/path</c> or <c>/ipfs/CID/path</c>) to the CID it names and the last name in
    /// it (the CID for a bare CID); null, with kubo's error sent, when it is not a path or does not resolve here.
    /// </summary>
    private static async Task<(Cid Target, string Name)?> ResolveArgAsync(HttpContext context, UnixFsExporter exporter)
    {
        var arg = context.Request.Query["arg"].ToString();
        var path = arg.StartsWith("/ipfs/", StringComparison.Ordinal) ? arg[6..] : arg;
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length == 0 || Cid.TryParse(segments[0], out var root) != MultiformatError.None)
        {
            await Error($"invalid path \"{arg}\"").ExecuteAsync(context).ConfigureAwait(false);
            return null;
        }

        if (exporter.TryResolvePath(root!, segments[1..], out var target) != Peerway.Content.ContentError.None)
        {
            await Error($"block was not found locally (offline): {target ?? root}").ExecuteAsync(context).ConfigureAwait(false);
            return null;
        }

        return (target!, segments[^1]);
    }

    /// <summary>
    /// Runs <paramref name="part"/> on each file part of a multipart/form-data body (kubo-rpc-client sends
    /// <c>filename=""</c> for unnamed content, which ASP.NET's form reader would take for a text field, so the body is
    /// read section by section). Returns an error message, or null.
    /// </summary>
    private static async Task<string?> ForEachPartAsync(HttpContext context, Func<string, Stream, Task> part)
    {
        if (!MediaTypeHeaderValue.TryParse(context.Request.ContentType, out var type) || !type.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(type.Boundary).Value is not { Length: > 0 and <= 200 } boundary)
            return "a multipart/form-data body is needed";
        var reader = new MultipartReader(boundary, context.Request.Body);
        var count = 0;
        try
        {
            while (await reader.ReadNextSectionAsync(context.RequestAborted).ConfigureAwait(false) is { } section)
            {
                if (section.ContentType is "application/x-directory") return "directories are not supported; add files one by one";
                var name = section.GetContentDispositionHeader() is { } d ? Uri.UnescapeDataString(HeaderUtilities.RemoveQuotes(d.FileName).Value ?? d.Name.Value ?? "") : "";
                // The importer and the CAR reader read synchronously in places, which Kestrel's request body refuses:
                // each part is buffered first (a body is at most rpc-max-body bytes).
                using var buffer = new MemoryStream();
                await section.Body.CopyToAsync(buffer, context.RequestAborted).ConfigureAwait(false);
                buffer.Position = 0;
                await part(name, buffer).ConfigureAwait(false);
                count++;
            }
        }
        catch (InvalidDataException ex)
        {
            return ex.Message;
        }

        return count == 0 ? "no file in the body" : null;
    }

    private static bool TryArg(HttpContext context, out Cid? cid)
    {
        var arg = context.Request.Query["arg"].ToString();
        var text = arg.StartsWith("/ipfs/", StringComparison.Ordinal) ? arg[6..] : arg;
        return Cid.TryParse(text.Split('/')[0], out cid) == MultiformatError.None;
    }

    private async Task BlockGetAsync(HttpContext context)
    {
        if (!TryArg(context, out var cid))
        {
            await Error("invalid CID").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        if (_repo.Blocks.TryGet(cid!, out var block) != Peerway.Content.ContentError.None)
        {
            await Error($"block was not found locally (offline): {cid}").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        context.Response.ContentType = "application/octet-stream";
        await context.Response.Body.WriteAsync(block, context.RequestAborted).ConfigureAwait(false);
    }

    private async Task<IResult> BlockPutAsync(HttpContext context)
    {
        var q = context.Request.Query;
        var codecName = q.TryGetValue("cid-codec", out var c) ? c.ToString() : q.TryGetValue("format", out var f) ? f.ToString() : "raw";
        ulong codec = codecName switch
        {
            "raw" => Cid.RawCodec,
            "dag-pb" or "protobuf" or "v0" => Cid.DagPbCodec,
            "dag-cbor" or "cbor" => Cid.DagCborCodec,
            _ => 0,
        };
        if (codec == 0) return Error($"block/put: codec {codecName} is not supported (raw, dag-pb, dag-cbor)");
        if (q.TryGetValue("mhtype", out var mh) && mh.ToString() is not ("sha2-256" or "")) return Error($"block/put: only sha2-256 hashes, not {mh}");
        var lines = new List<string>();
        var error = await ForEachPartAsync(context, async (_, body) =>
        {
            using var buffer = new MemoryStream();
            await body.CopyToAsync(buffer, context.RequestAborted).ConfigureAwait(false);
            if (buffer.Length > Peerway.Content.Car.CarCodec.MaxSectionLength) throw new InvalidDataException($"a block of {buffer.Length} bytes is larger than allowed");
            var bytes = buffer.ToArray();
            var cid = Cid.V1(codec, Multihash.Sha256(bytes));
            _repo.Blocks.Put(cid, bytes);
            if (q.TryGetValue("pin", out var pin) && Flag(pin)) Pin(cid.ToString(), add: true);
            lines.Add(new JsonObject { ["Key"] = cid.ToString(), ["Size"] = bytes.Length }.ToJsonString());
        }).ConfigureAwait(false);
        if (error is not null) return Error($"block/put: {error}", StatusCodes.Status400BadRequest);
        return Results.Text(string.Join('\n', lines) + "\n", "application/json");
    }

    private async Task DagExportAsync(HttpContext context)
    {
        if (!TryArg(context, out var cid) || !_repo.Blocks.Has(cid!))
        {
            await Error($"block was not found locally (offline): {context.Request.Query["arg"]}").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        context.Response.ContentType = "application/vnd.ipld.car";
        var result = await Peerway.Content.Car.CarWriter.ExportDagAsync(_repo.Blocks, cid!, context.Response.Body, context.RequestAborted).ConfigureAwait(false);
        if (!result.Ok)
        {
            _log.LogWarning("dag/export {Cid}: {Result}", cid, result);
            context.Abort();
        }
    }

    private async Task<IResult> DagImportAsync(HttpContext context)
    {
        var pinRoots = !context.Request.Query.TryGetValue("pin-roots", out var pr) || Flag(pr);
        var lines = new List<string>();
        var error = await ForEachPartAsync(context, async (_, body) =>
        {
            var (result, header) = await Peerway.Content.Car.CarWriter.ImportAsync(body, _repo.Blocks, context.RequestAborted).ConfigureAwait(false);
            if (!result.Ok || header is null) throw new InvalidDataException(result.ToString());
            foreach (var root in header.Roots)
            {
                if (pinRoots) Pin(root.ToString(), add: true);
                lines.Add(new JsonObject { ["Root"] = new JsonObject { ["Cid"] = new JsonObject { ["/"] = root.ToString() }, ["PinErrorMsg"] = "" } }.ToJsonString());
            }
        }).ConfigureAwait(false);
        if (error is not null) return Error($"dag/import: {error}", StatusCodes.Status400BadRequest);
        return Results.Text(string.Join('\n', lines) + "\n", "application/json");
    }

    private IResult PinChange(HttpContext context, bool add)
    {
        if (!TryArg(context, out var cid)) return Error("invalid CID");
        if (add && !_repo.Blocks.Has(cid!)) return Error($"pin: block was not found locally (offline): {cid}");
        if (!Pin(cid!.ToString(), add) && !add) return Error("not pinned or pinned indirectly");
        return KuboResult(new JsonObject { ["Pins"] = new JsonArray(cid.ToString()) });
    }

    private IResult PinList(HttpContext context)
    {
        var keys = new JsonObject();
        var only = TryArg(context, out var cid) ? cid!.ToString() : null;
        foreach (var p in _state.Pins)
        {
            if (only is null || p == only) keys[p] = new JsonObject { ["Type"] = "recursive" };
        }

        if (only is not null && keys.Count == 0) return Error($"path '{only}' is not pinned");
        return KuboResult(new JsonObject { ["Keys"] = keys });
    }

    /// <summary>Adds or removes a pin in the saved state (a new pin is provided in the IPFS DHT); false when nothing changed.</summary>
    private bool Pin(string cid, bool add)
    {
        lock (_pinGate)
        {
            var pins = _state.Pins;
            if (add == pins.Contains(cid)) return false;
            _state.SetPins(add ? [.. pins, cid] : [.. pins.Where(p => p != cid)]);
        }

        if (add && Cid.TryParse(cid, out var parsed) == MultiformatError.None) _provide(parsed!);
        return true;
    }

    private IResult RepoStat()
    {
        // RepoSize: every file of the repository; NumObjects: the blocks (kubo counts blocks), a file of its own or a
        // pack record each.
        long size = 0, count = 0;
        var blocks = Path.GetFullPath(Path.Combine(_repo.Directory, "blocks"));
        foreach (var f in new DirectoryInfo(_repo.Directory).EnumerateFiles("*", SearchOption.AllDirectories))
        {
            size += f.Length;
            if (f.FullName.StartsWith(blocks + Path.DirectorySeparatorChar, StringComparison.Ordinal) && !f.Name.EndsWith(".tmp", StringComparison.Ordinal)) count++;
        }

        count += _repo.Blocks.Packs.Count;

        return KuboResult(new JsonObject
        {
            ["RepoSize"] = size,
            ["StorageMax"] = new DriveInfo(_repo.Directory).TotalSize,
            ["NumObjects"] = count,
            ["RepoPath"] = _repo.Directory,
            ["Version"] = "fs-repo@peerway",
        });
    }

    private static bool Flag(Microsoft.Extensions.Primitives.StringValues value) =>
        value.Count == 0 || string.IsNullOrEmpty(value[0]) || value[0] is "true" or "1";
}
