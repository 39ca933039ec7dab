using System.Buffers;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Peerway.Core;
using Peerway.Torrent;
using Peerway.Torrent.Metainfo;

namespace Peerway.Node.Daemon;

/// <summary>
/// Transmission's RPC protocol (transmission docs/rpc-spec.md, RPC version 17) over <see cref="NodeTorrents"/>, at
/// <c>/transmission/rpc</c>: a POSTed JSON object <c>{"method", "arguments", "tag"}</c> answered with
/// <c>{"result", "arguments", "tag"}</c>, where result is "success" or an error string. Spec §2.3.1: a request without
/// the current <c>X-Transmission-Session-Id</c> gets 409 with the id in that header (CSRF protection); §2.3.2: with a
/// user and password set, HTTP basic auth. Unknown methods, fields and arguments get an error result, never a crash.
/// </summary>
public sealed partial class TransmissionRpc : IDisposable
{
    /// <summary>The RPC version we speak (transmission 4.0's) and the oldest one a client may assume.</summary>
    public const int RpcVersion = 17;
    public const int RpcVersionMinimum = 14;
    public const string SessionIdHeader = "X-Transmission-Session-Id";

    // rpc-spec.md §3.3, torrent-get "status": tr_torrent_activity.
    private const int StatusStopped = 0;
    private const int StatusDownload = 4;
    private const int StatusSeed = 6;

    private readonly NodeTorrents _torrents;
    private readonly NodeConfig _config;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Func<int> _dhtPort;
    private readonly long _startedAt;
    private readonly SemaphoreSlim _concurrent;

    public TransmissionRpc(NodeTorrents torrents, NodeConfig config, Func<int> dhtPort, TimeProvider time, ILogger<TransmissionRpc> log)
    {
        ArgumentNullException.ThrowIfNull(torrents);
        ArgumentNullException.ThrowIfNull(config);
        _torrents = torrents;
        _config = config;
        _dhtPort = dhtPort;
        _time = time;
        _log = log;
        _startedAt = time.GetTimestamp();
        _concurrent = new SemaphoreSlim(config.RpcMaxConcurrent, config.RpcMaxConcurrent);
        SessionId = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).Replace('+', 'A').Replace('/', 'B');
    }

    public void Dispose() => _concurrent.Dispose();

    /// <summary>Called with each request's method name (for the node's metrics).</summary>
    internal Action<string>? OnMethod { get; init; }

    /// <summary>This process's CSRF token (spec §2.3.1).</summary>
    public string SessionId { get; }

    /// <summary>The methods answered (metrics label them; any other name is counted as "unknown").</summary>
    private static readonly HashSet<string> SpecMethods = new(StringComparer.Ordinal)
    {
        "session-get", "session-set", "session-stats", "torrent-get", "torrent-add", "torrent-start", "torrent-start-now", "torrent-stop",
        "torrent-verify", "torrent-remove", "torrent-set", "free-space", "port-test",
    };

    /// <summary>Every torrent-get field of rpc-spec.md §3.3; a name not here is an error (a spec field we do not track is left out of the answer).</summary>
    private static readonly HashSet<string> SpecFields = new(StringComparer.Ordinal)
    {
        "activityDate", "addedDate", "availability", "bandwidthPriority", "comment", "corruptEver", "creator", "dateCreated", "desiredAvailable",
        "doneDate", "downloadDir", "downloadedEver", "downloadLimit", "downloadLimited", "editDate", "error", "errorString", "eta", "etaIdle",
        "file-count", "files", "fileStats", "group", "hashString", "haveUnchecked", "haveValid", "honorsSessionLimits", "id", "isFinished",
        "isPrivate", "isStalled", "labels", "leftUntilDone", "magnetLink", "manualAnnounceTime", "maxConnectedPeers", "metadataPercentComplete",
        "name", "peer-limit", "peers", "peersConnected", "peersFrom", "peersGettingFromUs", "peersSendingToUs", "percentComplete", "percentDone",
        "pieces", "pieceCount", "pieceSize", "primary-mime-type", "priorities", "queuePosition", "rateDownload", "rateUpload", "recheckProgress",
        "secondsDownloading", "secondsSeeding", "seedIdleLimit", "seedIdleMode", "seedRatioLimit", "seedRatioMode", "sequentialDownload",
        "sizeWhenDone", "startDate", "status", "trackerList", "trackers", "trackerStats", "totalSize", "torrentFile", "uploadedEver",
        "uploadLimit", "uploadLimited", "uploadRatio", "wanted", "webseeds", "webseedsSendingToUs",
    };

    /// <summary>Serves one HTTP request: auth, the loopback rule, the session-id handshake, then <see cref="HandleAsync"/>.</summary>
    public async Task ServeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var request = context.Request;
        var response = context.Response;
        if (!await AdmitAsync(context).ConfigureAwait(false)) return;

        response.Headers[SessionIdHeader] = SessionId;
        if (!string.Equals(request.Headers[SessionIdHeader], SessionId, StringComparison.Ordinal))
        {
            response.StatusCode = StatusCodes.Status409Conflict;
            await response.WriteAsync($"<h1>409: Conflict</h1><p>Your request had an invalid session-id header.</p><p><code>{SessionIdHeader}: {SessionId}</code></p>",
                context.RequestAborted).ConfigureAwait(false);
            return;
        }

        if (!HttpMethods.IsPost(request.Method))
        {
            response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }

        byte[]? small = null;
        try
        {
            ReadOnlyMemory<byte> body;
            if (IsSmall(request.ContentLength))
            {
                // A poller's request: read into a pooled buffer, and answered from the cache when it was asked before.
                small = ArrayPool<byte>.Shared.Rent((int)request.ContentLength!.Value);
                body = small.AsMemory(0, await ReadBodyAsync(request, small.AsMemory(0, (int)request.ContentLength.Value), context.RequestAborted).ConfigureAwait(false));
                if (TryCachedAnswer(body.Span, out var cached))
                {
                    OnMethod?.Invoke("torrent-get");
                    await WriteCachedAsync(response, cached, context.RequestAborted).ConfigureAwait(false);
                    return;
                }
            }
            else
            {
                using var stream = new MemoryStream();
                await request.Body.CopyToAsync(stream, context.RequestAborted).ConfigureAwait(false);
                body = stream.GetBuffer().AsMemory(0, (int)stream.Length);
            }

            Answer answer;
            // The RPC's own limit on requests handled at once: a crowd of clients waits here, off the engine's threads.
            await _concurrent.WaitAsync(context.RequestAborted).ConfigureAwait(false);
            try
            {
                answer = await AnswerAsync(body, context.RequestAborted).ConfigureAwait(false);
            }
            finally
            {
                _concurrent.Release();
            }

            var output = new ArrayBufferWriter<byte>(answer.RawArguments is { } raw ? raw.Length + 64 : 256);
            Write(answer, output);
            if (answer.Snapshot is { } snapshot) Remember(snapshot, body.Span, answer.RawArguments!, output.WrittenSpan);
            response.ContentType = JsonContentType;
            response.ContentLength = output.WrittenCount;
            await response.Body.WriteAsync(output.WrittenMemory, context.RequestAborted).ConfigureAwait(false);
        }
        catch (BadHttpRequestException ex)
        {
            // Larger than rpc-max-body (413) or too slow (408).
            response.StatusCode = ex.StatusCode;
        }
        finally
        {
            if (small is not null) ArrayPool<byte>.Shared.Return(small);
        }
    }

    /// <summary>
    /// The access rule of everything on the rpc listener (the RPC, the dashboard, <c>/metrics</c>): false, with 403 or
    /// 401 written, for a client that may not use it.
    /// </summary>
    public async Task<bool> AdmitAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var response = context.Response;
        var remote = context.Connection.RemoteIpAddress;
        // Issue 18 §8: clients off this host only when the RPC was bound elsewhere on purpose *and* auth is set.
        if (remote is not null && !IPAddress.IsLoopback(remote) && !_config.RpcAuth)
        {
            response.StatusCode = StatusCodes.Status403Forbidden;
            await response.WriteAsync("403: the RPC answers other hosts only with rpc-username and rpc-password set\n", context.RequestAborted).ConfigureAwait(false);
            return false;
        }

        if (_config.RpcAuth && !Authorized(context.Request.Headers.Authorization.ToString()))
        {
            response.StatusCode = StatusCodes.Status401Unauthorized;
            response.Headers.WWWAuthenticate = "Basic realm=\"Transmission\"";
            await response.WriteAsync("401: Unauthorized\n", context.RequestAborted).ConfigureAwait(false);
            return false;
        }

        return true;
    }

    private bool Authorized(string header)
    {
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase)) return false;
        try
        {
            var pair = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
            var expected = Encoding.UTF8.GetBytes($"{_config.RpcUsername}:{_config.RpcPassword}");
            return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(pair), expected);
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>Answers one request body as a JSON object (what <see cref="ServeAsync"/> writes, parsed back).</summary>
    public async Task<JsonObject> HandleAsync(ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        var output = new ArrayBufferWriter<byte>();
        Write(await AnswerAsync(body, ct).ConfigureAwait(false), output);
        return JsonNode.Parse(output.WrittenSpan)!.AsObject();
    }

    /// <summary>
    /// An answer: the result, and the arguments as an object or as bytes already serialized (torrent-get, with the
    /// snapshot they were read from, under which the request's bytes may be kept for repeats).
    /// </summary>
    private readonly record struct Answer(string Result, JsonObject? Arguments, byte[]? RawArguments, JsonNode? Tag, Snapshot? Snapshot = null);

    private static void Write(Answer answer, IBufferWriter<byte> output)
    {
        using var w = new Utf8JsonWriter(output);
        w.WriteStartObject();
        w.WritePropertyName("arguments");
        if (answer.RawArguments is { } raw) w.WriteRawValue(raw, skipInputValidation: true);
        else (answer.Arguments ?? []).WriteTo(w);
        w.WriteString("result", answer.Result);
        if (answer.Tag is { } tag)
        {
            w.WritePropertyName("tag");
            tag.WriteTo(w);
        }

        w.WriteEndObject();
    }

    /// <summary>Answers one request body. Malformed JSON, a missing method, an unknown method or argument: an error result.</summary>
    private async Task<Answer> AnswerAsync(ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        JsonObject? request;
        try
        {
            request = JsonNode.Parse(body.Span, documentOptions: new JsonDocumentOptions { MaxDepth = 16 }) as JsonObject;
        }
        catch (JsonException)
        {
            return Result("JSON parse error", null, null);
        }

        if (request is null) return Result("JSON parse error", null, null);
        var tag = request["tag"]?.DeepClone();
        if (request["method"] is not JsonValue m || !m.TryGetValue<string>(out var method)) return Result("no method name", null, tag);
        var args = request["arguments"] as JsonObject ?? [];
        OnMethod?.Invoke(SpecMethods.Contains(method) ? method : "unknown");
        try
        {
            if (method == "torrent-get") return new Answer("success", null, TorrentGet(args, out var snapshot), tag, snapshot);
            var result = method switch
            {
                "session-get" => SessionGet(args),
                "session-set" => SessionSet(args),
                "session-stats" => SessionStats(),
                "torrent-add" => await TorrentAddAsync(args, ct).ConfigureAwait(false),
                "torrent-start" or "torrent-start-now" => await ForEachAsync(args, (t, c) => _torrents.StartAsync(t, c), ct).ConfigureAwait(false),
                "torrent-stop" => await ForEachAsync(args, (t, c) => _torrents.StopAsync(t, c), ct).ConfigureAwait(false),
                "torrent-verify" => await ForEachAsync(args, (t, c) => _torrents.VerifyAsync(t, c), ct).ConfigureAwait(false),
                "torrent-remove" => await ForEachAsync(args, (t, c) => _torrents.RemoveAsync(t, Bool(args, "delete-local-data"), c), ct).ConfigureAwait(false),
                "torrent-set" => await TorrentSetAsync(args, ct).ConfigureAwait(false),
                "free-space" => FreeSpace(args),
                "port-test" => throw new NodeRequestException("port-test needs a service outside this host to connect back; Peerway asks none"),
                _ => throw new NodeRequestException($"method name not recognized: {method}"),
            };
            return Result("success", result, tag);
        }
        catch (NodeRequestException ex)
        {
            return Result(ex.Message, null, tag);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException or InvalidOperationException)
        {
            LogFailed(method, ex.Message);
            return Result(ex.Message, null, tag);
        }
    }

    private static Answer Result(string result, JsonObject? arguments, JsonNode? tag) => new(result, arguments, null, tag);

    private JsonObject SessionGet(JsonObject args)
    {
        var s = _torrents.Settings;
        var all = new JsonObject
        {
            ["alt-speed-enabled"] = false,
            ["config-dir"] = Path.GetFullPath(_config.Data),
            ["dht-enabled"] = true,
            ["download-dir"] = s.DownloadDir ?? _torrents.DefaultDownloadDir,
            ["encryption"] = "preferred",
            ["lpd-enabled"] = false,
            ["peer-limit-global"] = 200,
            ["peer-port"] = _torrents.Client.Port,
            ["pex-enabled"] = true,
            ["port-forwarding-enabled"] = false,
            ["rpc-version"] = RpcVersion,
            ["rpc-version-minimum"] = RpcVersionMinimum,
            ["rpc-version-semver"] = "5.3.0",
            ["session-id"] = SessionId,
            ["speed-limit-down"] = s.SpeedLimitDown,
            ["speed-limit-down-enabled"] = s.SpeedLimitDownEnabled,
            ["speed-limit-up"] = s.SpeedLimitUp,
            ["speed-limit-up-enabled"] = s.SpeedLimitUpEnabled,
            ["units"] = new JsonObject
            {
                ["memory-bytes"] = 1024,
                ["memory-units"] = new JsonArray("KiB", "MiB", "GiB", "TiB"),
                ["size-bytes"] = 1000,
                ["size-units"] = new JsonArray("kB", "MB", "GB", "TB"),
                ["speed-bytes"] = 1000,
                ["speed-units"] = new JsonArray("kB/s", "MB/s", "GB/s", "TB/s"),
            },
            ["utp-enabled"] = _config.UtpEnabled,
            ["version"] = "4.0.0 (Peerway)",
            ["dht-port"] = _dhtPort(),
        };
        if (args["fields"] is not JsonArray fields) return all;
        var picked = new JsonObject();
        foreach (var f in fields)
        {
            var name = f?.GetValue<string>() ?? "";
            if (all[name] is { } v) picked[name] = v.DeepClone();
        }

        return picked;
    }

    private JsonObject SessionSet(JsonObject args)
    {
        foreach (var (key, _) in args)
        {
            if (key is not ("download-dir" or "speed-limit-down" or "speed-limit-down-enabled" or "speed-limit-up" or "speed-limit-up-enabled"))
                throw new NodeRequestException($"session-set argument not supported: {key}");
        }

        var dir = args["download-dir"] is { } d ? _torrents.ConfineDownloadDir(Str(d, "download-dir")) : null;
        _torrents.UpdateSettings(s => s with
        {
            DownloadDir = dir ?? s.DownloadDir,
            SpeedLimitDown = args.ContainsKey("speed-limit-down") ? NonNegative(args, "speed-limit-down") : s.SpeedLimitDown,
            SpeedLimitDownEnabled = args.ContainsKey("speed-limit-down-enabled") ? Bool(args, "speed-limit-down-enabled") : s.SpeedLimitDownEnabled,
            SpeedLimitUp = args.ContainsKey("speed-limit-up") ? NonNegative(args, "speed-limit-up") : s.SpeedLimitUp,
            SpeedLimitUpEnabled = args.ContainsKey("speed-limit-up-enabled") ? Bool(args, "speed-limit-up-enabled") : s.SpeedLimitUpEnabled,
        });
        return [];
    }

    private JsonObject SessionStats()
    {
        var all = CurrentSnapshot().Torrents;
        long down = 0, up = 0, downloaded = 0, uploaded = 0;
        var active = 0;
        foreach (var v in all)
        {
            down += v.Torrent.RateDownload;
            up += v.Torrent.RateUpload;
            downloaded += v.Stats.Downloaded;
            uploaded += v.Stats.Uploaded;
            if (v.State is not (TorrentState.Paused or TorrentState.Failed)) active++;
        }

        var seconds = (long)_time.GetElapsedTime(_startedAt).TotalSeconds;
        // Totals since this process started: the node keeps no byte counters across restarts, so both blocks are this session.
        JsonObject Stats() => new()
        {
            ["uploadedBytes"] = uploaded,
            ["downloadedBytes"] = downloaded,
            ["filesAdded"] = all.Length,
            ["sessionCount"] = 1,
            ["secondsActive"] = seconds,
        };
        return new JsonObject
        {
            ["activeTorrentCount"] = active,
            ["pausedTorrentCount"] = all.Length - active,
            ["torrentCount"] = all.Length,
            ["downloadSpeed"] = down,
            ["uploadSpeed"] = up,
            ["cumulative-stats"] = Stats(),
            ["current-stats"] = Stats(),
        };
    }

    private async Task<JsonObject> TorrentAddAsync(JsonObject args, CancellationToken ct)
    {
        foreach (var (key, _) in args)
        {
            if (key is not ("filename" or "metainfo" or "download-dir" or "paused" or "peer-limit" or "bandwidthPriority" or "labels"))
                throw new NodeRequestException($"torrent-add argument not supported: {key}");
        }

        MagnetLink? magnet = null;
        TorrentMetainfo? meta = null;
        if (args["metainfo"] is { } m)
        {
            byte[] bytes;
            try
            {
                bytes = Convert.FromBase64String(Str(m, "metainfo"));
            }
            catch (FormatException)
            {
                throw new NodeRequestException("invalid or corrupt torrent file: metainfo is not base64");
            }

            if (!MetainfoParser.TryParse(bytes, out meta, out var error)) throw new NodeRequestException($"invalid or corrupt torrent file: {error.Describe()}");
        }
        else if (args["filename"] is { } f)
        {
            var name = Str(f, "filename");
            if (name.StartsWith("magnet:", StringComparison.OrdinalIgnoreCase))
            {
                if (!MagnetLink.TryParse(name, out magnet, out var error)) throw new NodeRequestException($"invalid magnet link: {error.Describe()}");
            }
            else
            {
                // Spec: a filename may also be a URL or a path on the daemon's host; the node fetches nothing and reads no files for a client.
                throw new NodeRequestException("filename must be a magnet link (send a .torrent as base64 metainfo)");
            }
        }
        else
        {
            throw new NodeRequestException("torrent-add needs filename or metainfo");
        }

        var dir = args["download-dir"] is { } d ? Str(d, "download-dir") : null;
        var (torrent, duplicate) = await _torrents.AddAsync(new NodeAddRequest(magnet, meta, dir, Bool(args, "paused")), ct).ConfigureAwait(false);
        var added = new JsonObject { ["id"] = torrent.Id, ["name"] = torrent.Name, ["hashString"] = torrent.Handle.InfoHash.ToString() };
        return new JsonObject { [duplicate ? "torrent-duplicate" : "torrent-added"] = added };
    }

    private async Task<JsonObject> TorrentSetAsync(JsonObject args, CancellationToken ct)
    {
        foreach (var (key, _) in args)
        {
            if (key is not ("ids" or "uploadLimit" or "uploadLimited"))
                throw new NodeRequestException($"torrent-set argument not supported: {key}");
        }

        foreach (var t in Select(args, out _))
        {
            var limited = args.ContainsKey("uploadLimited") ? Bool(args, "uploadLimited") : t.UploadLimit is not null;
            // Spec: uploadLimit in kB/s (units: speed-bytes 1000).
            var kb = args.ContainsKey("uploadLimit") ? NonNegative(args, "uploadLimit") : (t.UploadLimit ?? 0) / 1000;
            long? limit = limited && kb > 0 ? kb * 1000 : null;
            await _torrents.SetUploadLimitAsync(t, limit, ct).ConfigureAwait(false);
        }

        return [];
    }

    private static JsonObject FreeSpace(JsonObject args)
    {
        var path = args["path"] is { } p ? Str(p, "path") : throw new NodeRequestException("free-space needs a path");
        if (!Path.IsPathFullyQualified(path) || !Directory.Exists(path)) throw new NodeRequestException($"free-space: no such directory: {path}");
        var drive = new DriveInfo(path);
        return new JsonObject { ["path"] = path, ["size-bytes"] = drive.AvailableFreeSpace, ["total_size"] = drive.TotalSize };
    }

    private async Task<JsonObject> ForEachAsync(JsonObject args, Func<NodeTorrent, CancellationToken, Task> action, CancellationToken ct)
    {
        foreach (var t in Select(args, out _)) await action(t, ct).ConfigureAwait(false);
        return [];
    }

    /// <summary>Spec §3.1 "ids": absent (all), one id, one hash, a list of ids and hashes, or "recently-active".</summary>
    private List<NodeTorrent> Select(JsonObject args, out bool recentlyActive)
    {
        recentlyActive = false;
        var all = _torrents.All;
        if (args["ids"] is not { } ids) return [.. all];
        if (ids is JsonValue one && one.TryGetValue<string>(out var text) && text == "recently-active")
        {
            recentlyActive = true;
            return [.. all.Where(t => t.RateDownload + t.RateUpload > 0 || t.Handle.State is TorrentState.Downloading or TorrentState.FetchingMetadata)];
        }

        var items = ids is JsonArray array ? [.. array] : new List<JsonNode?> { ids };
        var picked = new List<NodeTorrent>();
        foreach (var item in items)
        {
            NodeTorrent? t = item switch
            {
                JsonValue v when v.TryGetValue<int>(out var id) => _torrents.Find(id),
                JsonValue v when v.TryGetValue<string>(out var hash) && NodeId.TryParseHex(hash, out var h) => _torrents.Find(h),
                JsonValue v when v.TryGetValue<string>(out _) => throw new NodeRequestException($"invalid id: {item!.ToJsonString()}"),
                _ => throw new NodeRequestException($"invalid id: {item?.ToJsonString() ?? "null"}"),
            };
            if (t is not null && !picked.Contains(t)) picked.Add(t);
        }

        return picked;
    }

    private static string Str(JsonNode node, string name) =>
        node is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new NodeRequestException($"{name} must be a string");

    /// <summary>Spec: booleans may come as true/false or as 0/1 (older clients).</summary>
    private static bool Bool(JsonObject args, string name) => args[name] switch
    {
        null => false,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        JsonValue v when v.TryGetValue<long>(out var n) => n != 0,
        _ => throw new NodeRequestException($"{name} must be a boolean"),
    };

    private static long NonNegative(JsonObject args, string name) => args[name] switch
    {
        JsonValue v when v.TryGetValue<long>(out var n) && n >= 0 => n,
        JsonValue v when v.TryGetValue<double>(out var d) && d >= 0 && d <= long.MaxValue => (long)d,
        _ => throw new NodeRequestException($"{name} must be a number ≥ 0"),
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "rpc {Method} failed: {Message}")]
    private partial void LogFailed(string method, string message);
}
