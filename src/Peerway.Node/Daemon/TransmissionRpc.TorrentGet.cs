using System.Buffers;
using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Peerway.Torrent;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;

namespace Peerway.Node.Daemon;

/// <summary>
/// torrent-get (rpc-spec.md §3.3) for many pollers: the torrents' stats are read from the engine once per
/// <see cref="SnapshotAge"/> (or after a change the node made) into a snapshot that every request shares, and each
/// distinct request (fields, ids, format) is serialized once per snapshot with a <see cref="Utf8JsonWriter"/> and its
/// bytes handed to every client that asks the same. A poller never takes an engine lock; 1,000 pollers polling every
/// second cost the engine one <c>GetStats</c> per torrent per second, as transmission's once-a-second stats do.
/// </summary>
public sealed partial class TransmissionRpc
{
    /// <summary>How stale a torrent-get answer may be: the node samples rates once a second, as transmission does.</summary>
    internal static readonly TimeSpan SnapshotAge = TimeSpan.FromSeconds(1);

    /// <summary>Distinct request shapes cached per snapshot (more are answered, not cached), so odd clients cannot grow it.</summary>
    private const int MaxCachedAnswers = 64;

    private readonly Lock _snapshotGate = new();
    private Snapshot? _snapshot;

    /// <summary>The torrent-get fields this node reports; any other spec field is left out (null in the table format).</summary>
    private static readonly FrozenSet<string> Reported = new[]
    {
        "id", "hashString", "name", "status", "error", "errorString", "percentDone", "percentComplete", "metadataPercentComplete", "totalSize",
        "sizeWhenDone", "leftUntilDone", "haveValid", "haveUnchecked", "desiredAvailable", "rateDownload", "rateUpload", "eta", "peersConnected",
        "peersSendingToUs", "peersGettingFromUs", "uploadedEver", "downloadedEver", "corruptEver", "uploadRatio", "addedDate", "startDate",
        "doneDate", "activityDate", "downloadDir", "isFinished", "isStalled", "isPrivate", "magnetLink", "pieceCount", "pieceSize", "file-count",
        "files", "fileStats", "wanted", "priorities", "trackers", "trackerStats", "trackerList", "webseeds", "webseedsSendingToUs", "queuePosition",
        "recheckProgress", "uploadLimit", "uploadLimited", "downloadLimit", "downloadLimited", "honorsSessionLimits", "bandwidthPriority",
        "peer-limit", "maxConnectedPeers", "labels", "sequentialDownload",
    }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>One torrent as read for a snapshot.</summary>
    private sealed record TorrentView(NodeTorrent Torrent, TorrentSessionStats Stats, TorrentState State, int QueuePosition);

    private sealed class Snapshot(long version, long timestamp, TorrentView[] torrents)
    {
        public long Version { get; } = version;

        public long Timestamp { get; } = timestamp;

        public TorrentView[] Torrents { get; } = torrents;

        public Dictionary<NodeTorrent, TorrentView> ByTorrent { get; } = torrents.ToDictionary(v => v.Torrent); // NodeTorrent: reference equality

        /// <summary>Serialized "arguments" of torrent-get, by request shape.</summary>
        public ConcurrentDictionary<string, byte[]> Answers { get; } = new(StringComparer.Ordinal);

        /// <summary>Whole answers of torrent-get, by the request's bytes (<see cref="TryCachedAnswer"/>).</summary>
        public ConcurrentDictionary<byte[], CachedAnswer> Bodies { get; } = NewBodyCache();
    }

    /// <summary>The current snapshot, read anew when older than <see cref="SnapshotAge"/> or when the node changed since.</summary>
    private Snapshot CurrentSnapshot()
    {
        lock (_snapshotGate)
        {
            var version = _torrents.Version;
            var now = _time.GetTimestamp();
            if (_snapshot is { } s && s.Version == version && _time.GetElapsedTime(s.Timestamp, now) < SnapshotAge) return s;
            var all = _torrents.All;
            var views = new TorrentView[all.Count];
            for (var i = 0; i < all.Count; i++) views[i] = new TorrentView(all[i], all[i].Handle.GetStats(), all[i].Handle.State, i);
            return _snapshot = new Snapshot(version, now, views);
        }
    }

    /// <summary>torrent-get: the serialized "arguments" object.</summary>
    private byte[] TorrentGet(JsonObject args, out Snapshot snapshot)
    {
        if (args["fields"] is not JsonArray fieldArray) throw new NodeRequestException("no fields specified");
        var fields = new List<string>(fieldArray.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var key = new StringBuilder();
        foreach (var f in fieldArray)
        {
            var name = f is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new NodeRequestException("fields must be strings");
            if (!SpecFields.Contains(name)) throw new NodeRequestException($"unknown field: {name}");
            if (!seen.Add(name)) continue; // a field asked twice is answered once (a JSON object has each name once)
            fields.Add(name);
            key.Append(name).Append(',');
        }

        var table = args["format"] is JsonValue fv && fv.TryGetValue<string>(out var format) && format == "table";
        key.Append('|').Append(table).Append('|').Append(args["ids"]?.ToJsonString());
        snapshot = CurrentSnapshot();
        var cacheKey = key.ToString();
        if (snapshot.Answers.TryGetValue(cacheKey, out var cached)) return cached;

        var torrents = Select(args, out var recentlyActive);
        var output = new ArrayBufferWriter<byte>(snapshot.Answers.IsEmpty ? 256 : snapshot.Answers.Values.Max(a => a.Length) + 64);
        using (var w = new Utf8JsonWriter(output))
        {
            w.WriteStartObject();
            w.WriteStartArray("torrents");
            if (table)
            {
                w.WriteStartArray();
                foreach (var f in fields) w.WriteStringValue(f);
                w.WriteEndArray();
            }

            var now = _time.GetUtcNow().ToUnixTimeSeconds();
            foreach (var t in torrents)
            {
                // A torrent added since the snapshot was read is in the next one (the add moved the version on).
                if (snapshot.ByTorrent.TryGetValue(t, out var view)) WriteTorrent(w, view, fields, table, now);
            }

            w.WriteEndArray();
            // Spec: with "recently-active", also the ids removed recently; the node reports removals to no one, so none.
            if (recentlyActive)
            {
                w.WriteStartArray("removed");
                w.WriteEndArray();
            }

            w.WriteEndObject();
        }

        var bytes = output.WrittenSpan.ToArray();
        if (snapshot.Answers.Count < MaxCachedAnswers) snapshot.Answers.TryAdd(cacheKey, bytes);
        return bytes;
    }

    private static void WriteTorrent(Utf8JsonWriter w, TorrentView view, List<string> fields, bool table, long now)
    {
        if (table) w.WriteStartArray();
        else w.WriteStartObject();
        var row = new Row(view, now);
        foreach (var f in fields)
        {
            if (!Reported.Contains(f))
            {
                // A spec field the node does not track: left out, as transmission leaves out what it lacks.
                if (table) w.WriteNullValue();
                continue;
            }

            if (!table) w.WritePropertyName(f);
            row.Write(w, f);
        }

        if (table) w.WriteEndArray();
        else w.WriteEndObject();
    }

    /// <summary>The values of one torrent's fields, from its snapshot.</summary>
    private readonly struct Row
    {
        private readonly TorrentView _view;
        private readonly long _now;
        private readonly long _total;
        private readonly long _have;
        private readonly int _status;

        public Row(TorrentView view, long now)
        {
            _view = view;
            _now = now;
            var s = view.Stats;
            var info = view.Torrent.Handle.Info;
            _total = info?.TotalLength ?? 0;
            _have = view.State == TorrentState.Seeding || (s.PieceCount > 0 && s.VerifiedPieces == s.PieceCount)
                ? _total
                : Math.Min(_total, (long)s.VerifiedPieces * (info?.PieceLength ?? 0));
            _status = view.State switch
            {
                TorrentState.Paused or TorrentState.Failed or TorrentState.Removed => StatusStopped,
                TorrentState.Seeding => StatusSeed,
                _ => StatusDownload,
            };
        }

        public void Write(Utf8JsonWriter w, string field)
        {
            var t = _view.Torrent;
            var h = t.Handle;
            var s = _view.Stats;
            var info = h.Info;
            var left = _total - _have;
            switch (field)
            {
                case "id": w.WriteNumberValue(t.Id); break;
                case "hashString": w.WriteStringValue(h.InfoHash.ToString()); break;
                case "name": w.WriteStringValue(t.Name); break;
                case "status": w.WriteNumberValue(_status); break;
                case "error": w.WriteNumberValue(_view.State == TorrentState.Failed ? 3 : 0); break; // TR_STAT_LOCAL_ERROR
                case "errorString": w.WriteStringValue(h.Error?.Message ?? ""); break;
                case "percentDone" or "percentComplete": w.WriteNumberValue(_total == 0 ? 0.0 : (double)_have / _total); break;
                case "metadataPercentComplete": w.WriteNumberValue(info is null ? 0.0 : 1.0); break;
                case "totalSize" or "sizeWhenDone": w.WriteNumberValue(_total); break;
                case "leftUntilDone": w.WriteNumberValue(left); break;
                case "haveValid": w.WriteNumberValue(_have); break;
                case "haveUnchecked": w.WriteNumberValue(0L); break;
                case "desiredAvailable": w.WriteNumberValue(s.Connections > 0 ? left : 0L); break;
                case "rateDownload": w.WriteNumberValue(t.RateDownload); break;
                case "rateUpload": w.WriteNumberValue(t.RateUpload); break;
                // Spec: -1 not available, -2 unknown.
                case "eta": w.WriteNumberValue(_status != StatusDownload ? -1 : t.RateDownload > 0 ? left / t.RateDownload : -2); break;
                case "peersConnected": w.WriteNumberValue(s.Connections); break;
                case "peersSendingToUs": w.WriteNumberValue(_status == StatusDownload && t.RateDownload > 0 ? s.Connections : 0); break;
                case "peersGettingFromUs": w.WriteNumberValue(t.RateUpload > 0 ? s.Connections : 0); break;
                case "uploadedEver": w.WriteNumberValue(s.Uploaded); break;
                case "downloadedEver": w.WriteNumberValue(s.Downloaded); break;
                case "corruptEver": w.WriteNumberValue((long)s.HashFailures * (info?.PieceLength ?? 0)); break;
                case "uploadRatio": w.WriteNumberValue(s.Downloaded == 0 ? -1.0 : (double)s.Uploaded / s.Downloaded); break;
                case "addedDate" or "startDate": w.WriteNumberValue(t.AddedDate); break;
                case "doneDate": w.WriteNumberValue(t.DoneDate); break;
                case "activityDate": w.WriteNumberValue(t.RateDownload + t.RateUpload > 0 ? _now : Math.Max(t.AddedDate, t.DoneDate)); break;
                case "downloadDir": w.WriteStringValue(t.DownloadDir); break;
                case "isFinished" or "isStalled" or "sequentialDownload" or "downloadLimited": w.WriteBooleanValue(false); break;
                case "isPrivate": w.WriteBooleanValue(info?.IsPrivate ?? false); break;
                case "magnetLink": w.WriteStringValue(new MagnetLink(h.InfoHash, info?.Name, t.Trackers, []).ToString()); break;
                case "pieceCount": w.WriteNumberValue(info?.PieceCount ?? 0); break;
                case "pieceSize": w.WriteNumberValue(info?.PieceLength ?? 0); break;
                case "file-count": w.WriteNumberValue(info?.ContentFiles.Count() ?? 0); break;
                case "files": WriteFiles(w, info, _have, _total, withName: true); break;
                case "fileStats": WriteFiles(w, info, _have, _total, withName: false); break;
                case "wanted": WriteRepeated(w, info, 1); break;
                case "priorities": WriteRepeated(w, info, 0); break;
                case "trackers": WriteTrackers(w, t, stats: false); break;
                case "trackerStats": WriteTrackers(w, t, stats: true); break;
                case "trackerList": w.WriteStringValue(string.Join("\n", t.Trackers)); break;
                case "webseeds" or "labels":
                    w.WriteStartArray();
                    w.WriteEndArray();
                    break;
                case "webseedsSendingToUs" or "downloadLimit" or "bandwidthPriority": w.WriteNumberValue(0); break;
                case "queuePosition": w.WriteNumberValue(_view.QueuePosition); break;
                case "recheckProgress": w.WriteNumberValue(0.0); break;
                case "uploadLimit": w.WriteNumberValue((t.UploadLimit ?? 0) / 1000); break;
                case "uploadLimited": w.WriteBooleanValue(t.UploadLimit is not null); break;
                case "honorsSessionLimits": w.WriteBooleanValue(true); break;
                case "peer-limit" or "maxConnectedPeers": w.WriteNumberValue(60); break;
                default: throw new InvalidOperationException($"torrent-get field {field} is in Reported but not written");
            }
        }
    }

    private static void WriteFiles(Utf8JsonWriter w, TorrentInfo? info, long have, long total, bool withName)
    {
        w.WriteStartArray();
        foreach (var f in info?.ContentFiles ?? [])
        {
            // Per-file progress is not tracked: each file is reported at the torrent's verified fraction.
            var done = total == 0 ? 0 : have == total ? f.Length : (long)(f.Length * ((double)have / total));
            w.WriteStartObject();
            w.WriteNumber("bytesCompleted", done);
            if (withName)
            {
                w.WriteNumber("length", f.Length);
                w.WriteString("name", info!.IsMultiFile ? $"{info.Name}/{f.RelativePath}" : info.Name);
            }
            else
            {
                w.WriteBoolean("wanted", true);
                w.WriteNumber("priority", 0);
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static void WriteRepeated(Utf8JsonWriter w, TorrentInfo? info, int value)
    {
        w.WriteStartArray();
        foreach (var _ in info?.ContentFiles ?? []) w.WriteNumberValue(value);
        w.WriteEndArray();
    }

    private static void WriteTrackers(Utf8JsonWriter w, NodeTorrent t, bool stats)
    {
        w.WriteStartArray();
        for (var i = 0; i < t.Trackers.Count; i++)
        {
            var url = t.Trackers[i];
            w.WriteStartObject();
            w.WriteString("announce", url);
            w.WriteNumber("id", i);
            w.WriteString("scrape", "");
            w.WriteNumber("tier", i);
            if (stats) w.WriteString("host", Uri.TryCreate(url, UriKind.Absolute, out var u) ? $"{u.Scheme}://{u.Authority}" : url);
            else w.WriteString("sitename", Uri.TryCreate(url, UriKind.Absolute, out var u2) ? u2.Host : "");
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }
}
