using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Peerway.Content.Blocks;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;
using Peerway.Node.Content;

namespace Peerway.Node.Daemon;

/// <summary>
/// A subset of kubo's RPC API (docs.ipfs.tech/reference/kubo/rpc, every call a POST under <c>/api/v0/</c>, arguments
/// in the query string, errors as <c>{"Message", "Code", "Type": "error"}</c> with status 500) over the node's content
/// repository: <c>version</c>, <c>id</c>, <c>add</c> (multipart; <c>cid-version</c>, <c>raw-leaves</c>,
/// <c>only-hash</c>: the same importer, so the same CIDs, as <c>peerway add</c>) and <c>cat</c>.
/// </summary>
public sealed class KuboApi
{
    private readonly ContentRepo _repo;
    private readonly DhtHost _dht;
    private readonly ILogger _log;

    public KuboApi(ContentRepo repo, DhtHost dht, ILogger<KuboApi> log)
    {
        _repo = repo;
        _dht = dht;
        _log = log;
    }

    public void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapPost("/api/v0/version", () => Results.Json(new JsonObject { ["Version"] = "0.1.0-peerway", ["Commit"] = "", ["Repo"] = "peerway", ["System"] = "amd64/linux", ["Golang"] = "" }));
        app.MapPost("/api/v0/id", () => Results.Json(new JsonObject
        {
            ["ID"] = _dht.Node.Id.ToString(),
            ["AgentVersion"] = "peerway/0.1.0",
            ["Addresses"] = new JsonArray(),
            ["Protocols"] = new JsonArray(),
        }));
        app.MapPost("/api/v0/add", (Delegate)AddAsync);
        app.MapPost("/api/v0/cat", CatAsync);
        app.MapFallback((HttpContext c) => Error($"command not found: {c.Request.Path}", StatusCodes.Status404NotFound));
    }

    private static IResult Error(string message, int status = StatusCodes.Status500InternalServerError) =>
        Results.Json(new JsonObject { ["Message"] = message, ["Code"] = 0, ["Type"] = "error" }, statusCode: status);

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

        if (!context.Request.HasFormContentType) return Error("add: a multipart/form-data body with a file is needed", StatusCodes.Status400BadRequest);
        var form = await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
        var onlyHash = q.TryGetValue("only-hash", out var oh) && Flag(oh);
        IBlockStore store = onlyHash ? new NullBlockStore() : _repo.Blocks;
        var importer = new UnixFsImporter(store, options);
        var lines = new List<string>();
        foreach (var file in form.Files)
        {
            var stream = file.OpenReadStream();
            await using (stream.ConfigureAwait(false))
            {
                var result = await importer.ImportFileAsync(stream, context.RequestAborted).ConfigureAwait(false);
                var name = Uri.UnescapeDataString(file.FileName ?? file.Name);
                if (!onlyHash) _repo.AddRoot(result.Cid);
                lines.Add(new JsonObject { ["Name"] = name, ["Hash"] = result.Cid.ToString(), ["Size"] = result.Tsize.ToString(System.Globalization.CultureInfo.InvariantCulture) }.ToJsonString());
            }
        }

        // kubo streams one JSON object per added entry, newline-delimited.
        return Results.Text(string.Join('\n', lines) + "\n", "application/json");
    }

    private async Task CatAsync(HttpContext context)
    {
        var arg = context.Request.Query["arg"].ToString();
        var path = arg.StartsWith("/ipfs/", StringComparison.Ordinal) ? arg[6..] : arg;
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length == 0 || Cid.TryParse(segments[0], out var root) != MultiformatError.None)
        {
            await Error($"invalid path \"{arg}\"").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        var exporter = new UnixFsExporter(_repo.Blocks);
        var resolved = exporter.TryResolvePath(root!, segments[1..], out var target);
        if (resolved != Peerway.Content.ContentError.None || !_repo.Blocks.Has(target!))
        {
            await Error($"block was not found locally (offline): {target ?? root}").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        context.Response.ContentType = "text/plain";
        var result = await exporter.ExportFileAsync(target!, context.Response.Body, context.RequestAborted).ConfigureAwait(false);
        if (!result.Ok)
        {
            _log.LogWarning("cat {Cid}: {Result}", target, result);
            context.Abort();
        }
    }

    private static bool Flag(Microsoft.Extensions.Primitives.StringValues value) =>
        value.Count == 0 || string.IsNullOrEmpty(value[0]) || value[0] is "true" or "1";
}
