using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Torrent;

namespace Peerway.Node.Streaming;

/// <summary>Settings of a <see cref="StreamServer"/>.</summary>
public sealed record StreamServerOptions
{
    /// <summary>Time to receive a request's headers (Kestrel's RequestHeadersTimeout).</summary>
    public TimeSpan HeadersTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Connections open at once (Kestrel's MaxConcurrentConnections).</summary>
    public int MaxConnections { get; init; } = 100;

    /// <summary>How far ahead of each reader pieces are fetched first (see <see cref="TorrentReadOptions.ReadAhead"/>).</summary>
    public TorrentReadOptions Read { get; init; } = new();

    /// <summary>Bytes read from the torrent and written to the client at a time.</summary>
    public int ChunkSize { get; init; } = 64 * 1024;

    public void Validate()
    {
        if (HeadersTimeout <= TimeSpan.Zero) throw new ArgumentException("HeadersTimeout must be positive.");
        if (MaxConnections < 1) throw new ArgumentException("MaxConnections must be at least 1.");
        if (ChunkSize < 1024) throw new ArgumentException("ChunkSize must be at least 1024.");
        Read.Validate();
    }
}

/// <summary>
/// Serves the files of one torrent over HTTP/1.1 (Kestrel) while it downloads: <c>GET</c>/<c>HEAD</c>
/// <c>/N/NAME</c> for content file N, with single byte ranges (RFC 9110 §14: 206 and Content-Range; 416 for a
/// malformed or unsatisfiable range; several ranges are ignored and the whole file sent, as §14.2 allows),
/// <c>Accept-Ranges: bytes</c> and a Content-Type from the file's extension. Each response reads through a
/// <see cref="TorrentFileStream"/>, so the pieces it needs are fetched first and it waits for them to verify.
/// </summary>
public sealed class StreamServer : IAsyncDisposable
{
    private static readonly Dictionary<string, string> ContentTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        [".mp4"] = "video/mp4",
        [".m4v"] = "video/mp4",
        [".mkv"] = "video/x-matroska",
        [".webm"] = "video/webm",
        [".mov"] = "video/quicktime",
        [".avi"] = "video/x-msvideo",
        [".ts"] = "video/mp2t",
        [".ogv"] = "video/ogg",
        [".mp3"] = "audio/mpeg",
        [".m4a"] = "audio/mp4",
        [".ogg"] = "audio/ogg",
        [".opus"] = "audio/ogg",
        [".flac"] = "audio/flac",
        [".wav"] = "audio/wav",
        [".txt"] = "text/plain; charset=utf-8",
        [".srt"] = "application/x-subrip",
        [".vtt"] = "text/vtt",
        [".html"] = "text/html; charset=utf-8",
        [".json"] = "application/json",
        [".pdf"] = "application/pdf",
        [".png"] = "image/png",
        [".jpg"] = "image/jpeg",
        [".jpeg"] = "image/jpeg",
        [".gif"] = "image/gif",
        [".zip"] = "application/zip",
        [".iso"] = "application/octet-stream",
    };

    private readonly TorrentHandle _torrent;
    private readonly StreamServerOptions _options;
    private readonly ILogger _log;
    private readonly WebApplication _app;
    private readonly IReadOnlySet<int>? _files;

    /// <param name="torrent">The torrent served (its info dictionary must be known).</param>
    /// <param name="endPoint">Where to listen (port 0: any free port; see <see cref="EndPoint"/> once started).</param>
    /// <param name="files">The content files served (null: all).</param>
    public StreamServer(TorrentHandle torrent, IPEndPoint endPoint, IReadOnlySet<int>? files = null, StreamServerOptions? options = null, ILogger<StreamServer>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(torrent);
        ArgumentNullException.ThrowIfNull(endPoint);
        options ??= new StreamServerOptions();
        options.Validate();
        if (torrent.Info is null) throw new ArgumentException("the torrent's files are not known yet", nameof(torrent));
        _torrent = torrent;
        _options = options;
        _files = files;
        _log = logger ?? NullLogger<StreamServer>.Instance;
        EndPoint = endPoint;
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.RequestHeadersTimeout = options.HeadersTimeout;
            kestrel.Limits.MaxConcurrentConnections = options.MaxConnections;
            kestrel.Limits.MaxRequestBodySize = 0;
            kestrel.AddServerHeader = false;
            kestrel.Listen(endPoint, l => l.Protocols = HttpProtocols.Http1);
        });
        _app = builder.Build();
        _app.Run(ServeAsync);
    }

    /// <summary>The address listened on (the bound port once started).</summary>
    public IPEndPoint EndPoint { get; private set; }

    /// <summary>The URL of content file <paramref name="index"/>: <c>http://IP:PORT/N/url-encoded-name</c>.</summary>
    public string UrlOf(int index)
    {
        var file = _torrent.Info!.ContentFiles.ElementAt(index);
        return string.Create(CultureInfo.InvariantCulture, $"http://{EndPointParser.Format(EndPoint)}/{index}/{Uri.EscapeDataString(file.Path[^1])}");
    }

    /// <summary>Starts listening; throws <see cref="IOException"/> when the address cannot be bound.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        if (await KestrelStart.StartAsync(_app, ct).ConfigureAwait(false) is { } bound) EndPoint = new IPEndPoint(EndPoint.Address, bound);
    }

    /// <summary>The Content-Type for a file name, by extension (application/octet-stream when unknown).</summary>
    public static string ContentTypeOf(string fileName) =>
        ContentTypes.TryGetValue(Path.GetExtension(fileName), out var type) ? type : "application/octet-stream";

    private async Task ServeAsync(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        var ct = context.RequestAborted;
        var head = HttpMethods.IsHead(request.Method);
        if (!head && !HttpMethods.IsGet(request.Method))
        {
            response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            response.Headers.Allow = "GET, HEAD";
            return;
        }

        var files = _torrent.Info!.ContentFiles.ToList();
        var path = request.Path.Value ?? "/";
        var segments = path.Split('/', 3, StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length == 0)
        {
            response.ContentType = "text/plain; charset=utf-8";
            var list = string.Join("", Enumerable.Range(0, files.Count).Where(i => _files is null || _files.Contains(i)).Select(i => UrlOf(i) + "\n"));
            if (!head) await response.WriteAsync(list, ct).ConfigureAwait(false);
            return;
        }

        if (!int.TryParse(segments[0], NumberStyles.None, CultureInfo.InvariantCulture, out var index) || index >= files.Count || (_files is not null && !_files.Contains(index)))
        {
            response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        await ServeFileAsync(context, _torrent, index, _options, _log).ConfigureAwait(false);
    }

    /// <summary>
    /// Answers a <c>GET</c> or <c>HEAD</c> for content file <paramref name="index"/> of <paramref name="torrent"/> (which
    /// must exist): whole or one byte range (RFC 9110 §14), read through a <see cref="TorrentFileStream"/> while the
    /// torrent downloads. Also used by the node's dashboard (<c>/stream/HASH/N/NAME</c>).
    /// </summary>
    internal static async Task ServeFileAsync(HttpContext context, TorrentHandle torrent, int index, StreamServerOptions options, ILogger log)
    {
        var request = context.Request;
        var response = context.Response;
        var head = HttpMethods.IsHead(request.Method);
        var file = torrent.Info!.ContentFiles.ElementAt(index);
        response.Headers.AcceptRanges = "bytes";
        response.ContentType = ContentTypeOf(file.Path[^1]);
        var range = HttpRange.Parse(request.Headers.Range.Count == 0 ? null : request.Headers.Range.ToString(), file.Length);
        long first = 0, length = file.Length;
        switch (range.Kind)
        {
            case HttpRangeKind.Unsatisfiable:
                log.LogInformation("416 for {Remote}: Range '{Range}' of file {Index} ({Length} bytes): {Reason}",
                    context.Connection.RemoteIpAddress, Shorten(request.Headers.Range.ToString()), index, file.Length, range.Reason);
                response.StatusCode = StatusCodes.Status416RangeNotSatisfiable;
                response.Headers.ContentRange = string.Create(CultureInfo.InvariantCulture, $"bytes */{file.Length}");
                return;
            case HttpRangeKind.Partial:
                first = range.First;
                length = range.Length;
                response.StatusCode = StatusCodes.Status206PartialContent;
                response.Headers.ContentRange = string.Create(CultureInfo.InvariantCulture, $"bytes {range.First}-{range.Last}/{file.Length}");
                break;
            default:
                if (range.Reason is not null) log.LogInformation("Range '{Range}' from {Remote} ignored ({Reason}): sending the whole file", Shorten(request.Headers.Range.ToString()), context.Connection.RemoteIpAddress, range.Reason);
                break;
        }

        response.ContentLength = length;
        if (head || length == 0) return;
        await CopyAsync(context, torrent, index, first, length, options, log).ConfigureAwait(false);
    }

    private static async Task CopyAsync(HttpContext context, TorrentHandle torrent, int index, long first, long length, StreamServerOptions options, ILogger log)
    {
        var ct = context.RequestAborted;
        TorrentFileStream stream;
        try
        {
            stream = await torrent.OpenReadAsync(index, options.Read, ct).ConfigureAwait(false);
        }
        catch (InvalidOperationException ex)
        {
            log.LogWarning("cannot stream file {Index}: {Message}", index, ex.Message);
            context.Abort();
            return;
        }

        await using (stream.ConfigureAwait(false))
        {
            stream.Position = first;
            var buffer = new byte[(int)Math.Min(options.ChunkSize, length)];
            var left = length;
            try
            {
                while (left > 0)
                {
                    var n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), ct).ConfigureAwait(false);
                    if (n == 0) throw new IOException("the file ended early");
                    await context.Response.Body.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    left -= n;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // The client went away (a player seeking closes its connection): nothing to log.
            }
            catch (IOException ex) when (!ct.IsCancellationRequested)
            {
                log.LogWarning("stream of file {Index} cut at byte {At}: {Message}", index, first + length - left, ex.Message);
                context.Abort();
            }
        }
    }

    private static string Shorten(string s) => s.Length <= 80 ? s : s[..80] + "…";

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
