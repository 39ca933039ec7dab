using System.Text.Json;
using System.Text.Json.Serialization;

namespace Peerway.Node.Daemon;

/// <summary>
/// One torrent of the node as saved in its own record, <c>DATA/torrents/HASH.json</c> (its info dictionary is in
/// <c>DATA/torrents/HASH.info</c>); before issue 18's per-torrent records, in the <c>torrents</c> list of <c>state.json</c>.
/// </summary>
internal sealed record SavedTorrent
{
    [JsonPropertyName("id")] public required int Id { get; init; }
    [JsonPropertyName("info-hash")] public required string InfoHash { get; init; }
    [JsonPropertyName("name")] public string? Name { get; init; }
    [JsonPropertyName("download-dir")] public required string DownloadDir { get; init; }
    [JsonPropertyName("paused")] public bool Paused { get; init; }
    [JsonPropertyName("added")] public long AddedDate { get; init; }
    [JsonPropertyName("done")] public long DoneDate { get; init; }
    [JsonPropertyName("trackers")] public IReadOnlyList<string> Trackers { get; init; } = [];
    [JsonPropertyName("peers")] public IReadOnlyList<string> Peers { get; init; } = [];
    [JsonPropertyName("upload-limit")] public long? UploadLimit { get; init; }
}

/// <summary>The node's session settings that RPC clients change (session-set), saved with the torrents.</summary>
internal sealed record SavedSettings
{
    [JsonPropertyName("speed-limit-down")] public long SpeedLimitDown { get; init; } = 100;
    [JsonPropertyName("speed-limit-down-enabled")] public bool SpeedLimitDownEnabled { get; init; }
    [JsonPropertyName("speed-limit-up")] public long SpeedLimitUp { get; init; } = 100;
    [JsonPropertyName("speed-limit-up-enabled")] public bool SpeedLimitUpEnabled { get; init; }
    [JsonPropertyName("download-dir")] public string? DownloadDir { get; init; }
}

/// <summary>
/// The node's session state in <c>DATA/state.json</c> (next id, settings, pins), written whole and atomically
/// (<see cref="StateFile.WriteAtomic"/>); the torrents have a record each (<see cref="NodeStore"/>), so
/// <see cref="Torrents"/> is only read, from a state file of an older node, and migrated.
/// </summary>
internal sealed record SavedNodeState
{
    [JsonPropertyName("next-id")] public int NextId { get; init; } = 1;
    [JsonPropertyName("torrents")] public IReadOnlyList<SavedTorrent> Torrents { get; init; } = [];
    [JsonPropertyName("settings")] public SavedSettings Settings { get; init; } = new();
    [JsonPropertyName("pins")] public IReadOnlyList<string> Pins { get; init; } = [];

    public static SavedNodeState? TryRead(string path)
    {
        var bytes = StateFile.TryRead(path);
        if (bytes is null) return null;
        try
        {
            return JsonSerializer.Deserialize(bytes, NodeStateJson.Default.SavedNodeState);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"state file {path} is not valid: {ex.Message}; move it away to start empty", ex);
        }
    }

    public void Write(string path, bool durable = true) => StateFile.WriteAtomic(path, JsonSerializer.SerializeToUtf8Bytes(this, NodeStateJson.Default.SavedNodeState), durable);
}

/// <summary>Reads and writes one torrent's record.</summary>
internal static class SavedTorrentFile
{
    /// <summary>The record, or null when it does not exist; <see cref="InvalidDataException"/> when it does not parse.</summary>
    public static SavedTorrent? TryRead(string path)
    {
        var bytes = StateFile.TryRead(path);
        if (bytes is null) return null;
        try
        {
            return JsonSerializer.Deserialize(bytes, NodeStateJson.Default.SavedTorrent) ?? throw new InvalidDataException($"torrent record {path} is empty");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"torrent record {path} is not valid: {ex.Message}", ex);
        }
    }

    public static void Write(string path, SavedTorrent torrent, bool durable) =>
        StateFile.WriteAtomic(path, JsonSerializer.SerializeToUtf8Bytes(torrent, NodeStateJson.Default.SavedTorrent), durable);
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(SavedNodeState))]
[JsonSerializable(typeof(SavedTorrent))]
internal sealed partial class NodeStateJson : JsonSerializerContext;
