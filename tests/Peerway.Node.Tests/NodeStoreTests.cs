using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Net;
using Peerway.Node.Daemon;
using Peerway.Torrent;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;

namespace Peerway.Node.Tests;

/// <summary>
/// Issue 18 item 5: the node saves one record per torrent (<c>torrents/HASH.json</c>) and the session in
/// <c>state.json</c>, so an add writes that torrent's record only; a <c>state.json</c> of an older node that lists its
/// torrents is migrated; a removed torrent's id is not handed out again.
/// </summary>
public sealed class NodeStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-store-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task An_add_writes_its_own_record_and_leaves_state_json_and_the_other_records_alone()
    {
        await using (var node = Open())
        {
            await node.LoadAsync(CancellationToken.None);
            node.SetPins(["bafkqaaa"]);
            await AddAsync(node, "one");
        }

        var state = Path.Combine(_dir, "state.json");
        var stateBefore = await File.ReadAllBytesAsync(state);
        var recordsBefore = Records();
        Assert.Single(recordsBefore);

        await using (var node = Open())
        {
            await node.LoadAsync(CancellationToken.None);
            var second = await AddAsync(node, "two");
            Assert.Equal(2, second.Id);
            Assert.Equal(stateBefore, await File.ReadAllBytesAsync(state));
            var recordsAfter = Records();
            Assert.Equal(2, recordsAfter.Count);
            foreach (var (path, bytes) in recordsBefore) Assert.Equal(bytes, recordsAfter[path]);
        }

        await using (var node = Open())
        {
            await node.LoadAsync(CancellationToken.None);
            Assert.Equal(["one.bin", "two.bin"], node.All.Select(t => t.Name));
            Assert.Equal(["bafkqaaa"], node.Pins);
        }
    }

    [Fact]
    public async Task A_state_json_that_lists_its_torrents_is_migrated_to_one_record_each()
    {
        var info = await InfoAsync("old");
        var hash = info.InfoHash.ToString();
        Directory.CreateDirectory(Path.Combine(_dir, "torrents"));
        await File.WriteAllBytesAsync(Path.Combine(_dir, "torrents", hash + ".info"), info.RawInfo.ToArray());
        var downloads = Path.Combine(_dir, "downloads");
        await File.WriteAllTextAsync(Path.Combine(_dir, "state.json"), $$"""
            {"next-id": 9, "settings": {"speed-limit-up": 42}, "pins": ["bafkqaaa"],
             "torrents": [{"id": 7, "info-hash": "{{hash}}", "name": "old.bin", "download-dir": "{{downloads}}", "paused": true, "added": 1700000000, "done": 0}]}
            """);

        for (var round = 0; round < 2; round++)
        {
            await using var node = Open();
            await node.LoadAsync(CancellationToken.None);
            var t = Assert.Single(node.All, x => x.Id == 7);
            Assert.Equal("old.bin", t.Name);
            Assert.Equal(1700000000, t.AddedDate);
            Assert.Equal(TorrentState.Paused, t.Handle.State);
            Assert.Equal(42, node.Settings.SpeedLimitUp);
            Assert.Equal(["bafkqaaa"], node.Pins);
            Assert.True(File.Exists(Path.Combine(_dir, "torrents", hash + ".json")));
            Assert.DoesNotContain(hash, await File.ReadAllTextAsync(Path.Combine(_dir, "state.json")), StringComparison.Ordinal);
            Assert.Equal(9, (await AddAsync(node, $"new{round}")).Id - round);
        }
    }

    [Fact]
    public async Task A_removed_torrents_id_is_not_handed_out_again_after_a_restart()
    {
        await using (var node = Open())
        {
            await node.LoadAsync(CancellationToken.None);
            await AddAsync(node, "a");
            var b = await AddAsync(node, "b");
            await node.RemoveAsync(b, deleteData: false, CancellationToken.None);
        }

        Assert.Single(Records());
        await using (var node = Open())
        {
            await node.LoadAsync(CancellationToken.None);
            Assert.Equal([1], node.All.Select(t => t.Id));
            Assert.Equal(3, (await AddAsync(node, "c")).Id);
        }
    }

    [Fact]
    public async Task A_record_that_does_not_parse_is_skipped_and_kept()
    {
        await using (var node = Open())
        {
            await node.LoadAsync(CancellationToken.None);
            await AddAsync(node, "a");
            await AddAsync(node, "b");
        }

        var bad = Records().Keys.Order(StringComparer.Ordinal).First();
        await File.WriteAllTextAsync(bad, "{not json");
        await using (var node = Open())
        {
            await node.LoadAsync(CancellationToken.None);
            Assert.Single(node.All);
        }

        Assert.Equal("{not json", await File.ReadAllTextAsync(bad));
    }

    private NodeTorrents Open()
    {
        var client = new TorrentClient([new TcpStreamTransport()], new TorrentClientOptions { ListenEndPoints = [] }, new MemoryStorageFactory(), TimeProvider.System);
        return new NodeTorrents(client, _dir, Path.Combine(_dir, "downloads"), [], null, TimeProvider.System, NullLoggerFactory.Instance);
    }

    private Dictionary<string, byte[]> Records() =>
        Directory.EnumerateFiles(Path.Combine(_dir, "torrents"), "*.json").ToDictionary(p => p, File.ReadAllBytes);

    private async Task<NodeTorrent> AddAsync(NodeTorrents node, string name)
    {
        var torrent = await TorrentFileAsync(name);
        Assert.True(MetainfoParser.TryParse(torrent, out var meta, out _));
        var (t, duplicate) = await node.AddAsync(new NodeAddRequest(null, meta, null, Paused: true), CancellationToken.None);
        Assert.False(duplicate);
        return t;
    }

    private async Task<TorrentInfo> InfoAsync(string name)
    {
        Assert.True(MetainfoParser.TryParse(await TorrentFileAsync(name), out var meta, out _));
        return meta!.Info;
    }

    private async Task<byte[]> TorrentFileAsync(string name)
    {
        var content = Path.Combine(_dir, "src", name + ".bin");
        Directory.CreateDirectory(Path.GetDirectoryName(content)!);
        await File.WriteAllBytesAsync(content, System.Text.Encoding.UTF8.GetBytes(name + new string('x', 40_000)));
        return await TorrentCreator.CreateAsync(content, new TorrentCreateOptions());
    }
}
