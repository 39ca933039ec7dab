using System.Text;
using Peerway.Content.Blocks;
using Peerway.Content.Car;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;

namespace Peerway.Content.Gateway;

/// <summary>An HTTP request as the gateway sees it (the transport is the host's business).</summary>
public sealed record GatewayRequest(string Method, string Path, string? Query, string? Accept, string? IfNoneMatch);

/// <summary>A response: status, headers, and a body writer (null for no body).</summary>
public sealed class GatewayResponse
{
    /// <summary>The HTTP status code (200, 304, 400, 404, 405, 500 or 502).</summary>
    public required int Status { get; init; }

    /// <summary>The Content-Type header value.</summary>
    public required string ContentType { get; init; }

    /// <summary>Further response headers (ETag, Cache-Control, X-Ipfs-Roots, …); empty by default.</summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();

    /// <summary>Known body length, when known in advance.</summary>
    public long? ContentLength { get; init; }

    /// <summary>Writes the body to the response stream; null: no body.</summary>
    public Func<Stream, CancellationToken, Task>? WriteBody { get; init; }
}

/// <summary>
/// The IPFS trustless gateway (specs: "Trustless Gateway", "Path Gateway"): <c>GET /ipfs/{cid}[/path]</c> answered with
/// one raw block (<c>application/vnd.ipld.raw</c> or <c>?format=raw</c>), a CARv1 of the DAG
/// (<c>application/vnd.ipld.car</c> or <c>?format=car</c>), or — without either — the file's bytes. Invalid CIDs and
/// paths are 400, absent content 404. Immutable responses carry an ETag and long-lived Cache-Control.
/// </summary>
public sealed class TrustlessGateway
{
    /// <summary>Media type of a single raw block (Trustless Gateway spec).</summary>
    public const string RawType = "application/vnd.ipld.raw";
    /// <summary>Media type of a CAR (Trustless Gateway spec); a request may add parameters, a response states them (<see cref="CarResponseType"/>).</summary>
    public const string CarType = "application/vnd.ipld.car";

    /// <summary>Trustless Gateway spec: a CAR response states version, order and duplicates.</summary>
    public const string CarResponseType = "application/vnd.ipld.car; version=1; order=dfs; dups=n";

    private const string Immutable = "public, max-age=29030400, immutable";

    private readonly IBlockStore _store;
    private readonly UnixFsExporter _exporter;

    /// <summary>A gateway serving the blocks of <paramref name="store"/> (read and verified on each request).</summary>
    public TrustlessGateway(IBlockStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _exporter = new UnixFsExporter(store);
    }

    /// <summary>Answers <paramref name="request"/>: 405 unless GET or HEAD, 404 outside /ipfs/ or for absent content, 400 for an
    /// invalid CID, path or format, 502 when the path cannot be resolved in the stored DAG, 500 when a stored block fails
    /// verification or decoding, 304 when If-None-Match holds the ETag.</summary>
    public GatewayResponse Handle(GatewayRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Method is not ("GET" or "HEAD"))
        {
            return Error(405, "only GET and HEAD are supported");
        }

        var path = request.Path;
        if (!path.StartsWith("/ipfs/", StringComparison.Ordinal))
        {
            return Error(404, "not found: only /ipfs/{cid} is served");
        }

        var segments = path["/ipfs/".Length..].Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length == 0)
        {
            return Error(400, "missing CID");
        }

        string[] decoded;
        try
        {
            decoded = segments.Select(Uri.UnescapeDataString).ToArray();
        }
        catch (UriFormatException)
        {
            return Error(400, "invalid path encoding");
        }

        var cidError = Cid.TryParse(decoded[0], out var root);
        if (cidError != MultiformatError.None)
        {
            return Error(400, $"invalid CID '{decoded[0]}': {cidError}");
        }

        var format = ChooseFormat(request.Query, request.Accept);
        if (format is null)
        {
            return Error(400, "unsupported format (use raw or car)");
        }

        var resolveError = _exporter.TryResolvePath(root!, decoded[1..], out var target);
        if (resolveError != ContentError.None)
        {
            return resolveError == ContentError.NotFound
                ? Error(404, $"not found: {path}")
                : Error(502, $"cannot resolve {path}: {resolveError}");
        }

        return format switch
        {
            "raw" => RawBlock(target!, request),
            "car" => CarDag(target!, request, IsBlockScope(request.Query)),
            _ => Deserialized(target!, request),
        };
    }

    /// <summary>"raw", "car", "" (deserialized) or null (a format this gateway does not serve).</summary>
    private static string? ChooseFormat(string? query, string? accept)
    {
        if (!string.IsNullOrEmpty(query))
        {
            foreach (var pair in query.TrimStart('?').Split('&'))
            {
                if (pair.StartsWith("format=", StringComparison.Ordinal))
                {
                    return pair["format=".Length..] switch
                    {
                        "raw" => "raw",
                        "car" => "car",
                        _ => null,
                    };
                }
            }
        }

        if (!string.IsNullOrEmpty(accept))
        {
            // The first recognised media type in Accept order wins.
            foreach (var part in accept.Split(','))
            {
                var media = part.Split(';')[0].Trim();
                if (media.Equals(RawType, StringComparison.OrdinalIgnoreCase))
                {
                    return "raw";
                }

                if (media.Equals(CarType, StringComparison.OrdinalIgnoreCase))
                {
                    return "car";
                }
            }
        }

        return string.Empty;
    }

    private GatewayResponse RawBlock(Cid cid, GatewayRequest request)
    {
        var etag = $"\"{cid}.raw\"";
        var error = UnixFsExporter.TryGetBlock(_store, cid, out var block);
        if (error != ContentError.None)
        {
            return error == ContentError.NotFound ? Error(404, $"block {cid} not found") : Error(500, $"block {cid}: {error}");
        }

        if (request.IfNoneMatch == etag)
        {
            return NotModified(etag);
        }

        return new GatewayResponse
        {
            Status = 200,
            ContentType = RawType,
            ContentLength = block!.Length,
            Headers = CacheHeaders(etag, cid, "bin"),
            WriteBody = (s, ct) => s.WriteAsync(block, ct).AsTask(),
        };
    }

    /// <summary>Trustless Gateway spec, <c>dag-scope</c>: <c>block</c> = only the root block; <c>entity</c>/<c>all</c> = the DAG.</summary>
    private static bool IsBlockScope(string? query) =>
        !string.IsNullOrEmpty(query) && query.TrimStart('?').Split('&').Contains("dag-scope=block", StringComparer.Ordinal);

    private GatewayResponse CarDag(Cid cid, GatewayRequest request, bool blockOnly)
    {
        if (blockOnly)
        {
            return RootBlockCar(cid, request);
        }

        var etag = $"\"{cid}.car\"";
        // Check the whole DAG is present before committing to a 200 (a half CAR would be a broken response).
#pragma warning disable VSTHRD002 // the gateway answers synchronously; a walk over the local block store completes without waiting on I/O
        var check = DagWalker.WalkAsync(_store, cid, static (_, _, _) => ValueTask.CompletedTask, CancellationToken.None)
            .GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
        if (!check.Ok)
        {
            return check.Error == ContentError.NotFound ? Error(404, $"block {check.At} not found") : Error(500, $"{check}");
        }

        if (request.IfNoneMatch == etag)
        {
            return NotModified(etag);
        }

        return new GatewayResponse
        {
            Status = 200,
            ContentType = CarResponseType,
            Headers = CacheHeaders(etag, cid, "car"),
            WriteBody = async (s, ct) => await CarWriter.ExportDagAsync(_store, cid, s, ct).ConfigureAwait(false),
        };
    }

    private GatewayResponse RootBlockCar(Cid cid, GatewayRequest request)
    {
        var etag = $"\"{cid}.block.car\"";
        var error = UnixFsExporter.TryGetBlock(_store, cid, out var block);
        if (error != ContentError.None)
        {
            return error == ContentError.NotFound ? Error(404, $"block {cid} not found") : Error(500, $"block {cid}: {error}");
        }

        if (request.IfNoneMatch == etag)
        {
            return NotModified(etag);
        }

        var header = CarCodec.EncodeHeader([cid]);
        var section = new byte[Varint.MaxLength + cid.Length];
        var n = CarCodec.WriteSectionHeader(cid, block!.Length, section);
        return new GatewayResponse
        {
            Status = 200,
            ContentType = CarResponseType,
            ContentLength = header.Length + n + block.Length,
            Headers = CacheHeaders(etag, cid, "car"),
            WriteBody = async (s, ct) =>
            {
                await s.WriteAsync(header, ct).ConfigureAwait(false);
                await s.WriteAsync(section.AsMemory(0, n), ct).ConfigureAwait(false);
                await s.WriteAsync(block, ct).ConfigureAwait(false);
            },
        };
    }

    private GatewayResponse Deserialized(Cid cid, GatewayRequest request)
    {
        var etag = $"\"{cid}\"";
        var error = _exporter.TryLoad(cid, out var node);
        if (error != ContentError.None)
        {
            return error == ContentError.NotFound ? Error(404, $"block {cid} not found") : Error(500, $"{cid}: {error}");
        }

        if (request.IfNoneMatch == etag)
        {
            return NotModified(etag);
        }

        var headers = new Dictionary<string, string>
        {
            ["ETag"] = etag,
            ["Cache-Control"] = Immutable,
            ["X-Ipfs-Path"] = request.Path,
            ["X-Content-Type-Options"] = "nosniff",
        };
        if (node!.IsDirectory)
        {
            // A plain listing, "name<TAB>CID" per entry; a HAMT directory lists its entries, not its shard links.
            error = _exporter.TryListDirectory(node, out var entries, requireSafeNames: false);
            if (error != ContentError.None)
            {
                return error == ContentError.NotFound ? Error(404, $"a shard of {cid} is missing") : Error(500, $"{cid}: {error}");
            }

            var listing = new StringBuilder();
            foreach (var entry in entries!)
            {
                listing.Append(entry.Name).Append('\t').Append(entry.Cid).Append('\n');
            }

            var bytes = Encoding.UTF8.GetBytes(listing.ToString());
            return new GatewayResponse
            {
                Status = 200,
                ContentType = "text/plain; charset=utf-8",
                ContentLength = bytes.Length,
                Headers = headers,
                WriteBody = (s, ct) => s.WriteAsync(bytes, ct).AsTask(),
            };
        }

        long? length = node.IsRaw ? node.Block.Length : (long?)node.Data!.FileSize;
        return new GatewayResponse
        {
            Status = 200,
            ContentType = ContentTypeFor(request.Path),
            ContentLength = length,
            Headers = headers,
            WriteBody = async (s, ct) =>
            {
                var result = await _exporter.ExportFileAsync(cid, s, ct).ConfigureAwait(false);
                if (!result.Ok)
                {
                    // Headers are gone; abort the body so the client sees a truncated, not a wrong, response.
                    throw new IOException($"content {cid} is incomplete: {result}");
                }
            },
        };
    }

    private static readonly Dictionary<string, string> ContentTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        [".txt"] = "text/plain; charset=utf-8",
        [".html"] = "text/html; charset=utf-8",
        [".htm"] = "text/html; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".json"] = "application/json",
        [".svg"] = "image/svg+xml",
        [".png"] = "image/png",
        [".jpg"] = "image/jpeg",
        [".jpeg"] = "image/jpeg",
        [".gif"] = "image/gif",
        [".webp"] = "image/webp",
        [".pdf"] = "application/pdf",
        [".mp4"] = "video/mp4",
        [".wasm"] = "application/wasm",
    };

    /// <summary>Path Gateway spec: the Content-Type of a deserialized file comes from its name when the path has one.</summary>
    internal static string ContentTypeFor(string path)
    {
        var name = path[(path.LastIndexOf('/') + 1)..];
        var dot = name.LastIndexOf('.');
        return dot > 0 && ContentTypes.TryGetValue(name[dot..], out var type) ? type : "application/octet-stream";
    }

    private static Dictionary<string, string> CacheHeaders(string etag, Cid cid, string extension) => new()
    {
        ["ETag"] = etag,
        ["Cache-Control"] = Immutable,
        ["X-Content-Type-Options"] = "nosniff",
        ["Content-Disposition"] = $"attachment; filename=\"{cid}.{extension}\"",
        ["X-Ipfs-Roots"] = cid.ToString(),
    };

    private static GatewayResponse NotModified(string etag) => new()
    {
        Status = 304,
        ContentType = "text/plain; charset=utf-8",
        Headers = new Dictionary<string, string> { ["ETag"] = etag },
    };

    private static GatewayResponse Error(int status, string message)
    {
        var bytes = Encoding.UTF8.GetBytes(message + "\n");
        return new GatewayResponse
        {
            Status = status,
            ContentType = "text/plain; charset=utf-8",
            ContentLength = bytes.Length,
            WriteBody = (s, ct) => s.WriteAsync(bytes, ct).AsTask(),
        };
    }
}
