using System.Net;
using System.Security.Cryptography;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>Whole engines talking over real loopback TCP.</summary>
public sealed class SwarmTests() : LoopbackSwarmTests("pw-swarm-")
{
    private static IPEndPoint At(TorrentSession s) => new(IPAddress.Loopback, s.ListenPort);

    [Fact]
    public async Task Leecher_downloads_from_seeder_and_verifies()
    {
        var (meta, src, content) = await MakeContent(3 * 1024 * 1024 + 12345);
        var seeder = await Start(meta, meta.Info, src, source: true);
        Assert.True(seeder.Completed.IsCompleted);
        var leecher = await Start(meta, meta.Info, Path.Combine(Dir, "dl"), source: false);
        leecher.AddPeers([At(seeder)]);
        await leecher.Completed.WaitAsync(Deadline);
        Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(Dir, "dl", "payload.bin")));
        var stats = leecher.GetStats();
        Assert.Equal(meta.Info.PieceCount, stats.VerifiedPieces);
        Assert.Equal(content.Length, stats.ReceivedByPeerId[seeder.PeerId]);
        Assert.Equal(0, stats.HashFailures);
    }

    [Fact]
    public async Task Magnet_download_fetches_metadata_with_ut_metadata()
    {
        var (meta, src, content) = await MakeContent(1024 * 1024 + 7, 16384);
        var seeder = await Start(meta, meta.Info, src, source: true);
        var leecher = await Start(meta, null, Path.Combine(Dir, "dl"), source: false);
        leecher.AddPeers([At(seeder)]);
        var info = await leecher.MetadataReady.WaitAsync(Deadline);
        Assert.Equal(meta.Info.RawInfo.ToArray(), info.RawInfo.ToArray());
        await leecher.Completed.WaitAsync(Deadline);
        Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(Dir, "dl", "payload.bin")));
    }

    [Fact]
    public async Task Leechers_exchange_pieces_among_themselves_through_pex()
    {
        var (meta, src, content) = await MakeContent(4 * 1024 * 1024, 16384);
        // The seeder is capped (1 MiB/s for 4 × 4 MiB) so the swarm cannot finish from the seeder alone before PEX
        // (every second) has introduced the leechers to each other: the outcome does not depend on machine speed.
        var seeder = await Start(meta, meta.Info, src, source: true, Loopback with { Choker = new ChokerOptions { UploadSlots = 1 }, PexInterval = TimeSpan.FromSeconds(1), UploadRateLimit = 1024 * 1024 });
        var leechers = new List<TorrentSession>();
        for (var i = 0; i < 4; i++)
        {
            var l = await Start(meta, meta.Info, Path.Combine(Dir, $"dl{i}"), source: false, Loopback with { PexInterval = TimeSpan.FromSeconds(1) });
            l.AddPeers([At(seeder)]);
            leechers.Add(l);
        }

        await Task.WhenAll(leechers.Select(l => l.Completed)).WaitAsync(Deadline);
        for (var i = 0; i < 4; i++) Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(Dir, $"dl{i}", "payload.bin")));
        // Only the seeder's address was given: any bytes from another leecher arrived via a PEX-learned peer.
        var fromPeers = leechers.Sum(l => l.GetStats().ReceivedByPeerId.Where(kv => kv.Key != seeder.PeerId).Sum(kv => kv.Value));
        Assert.True(fromPeers > 0, "no leecher received anything from another leecher");
    }

    [Fact]
    public async Task Two_peers_dialling_each_other_at_once_keep_one_connection_and_finish()
    {
        // Each side may register a different one of the two crossing connections first; without a shared tie-break both
        // drop the connection the other kept and, neither re-dialling an outgoing peer, the download never starts.
        var (meta, src, content) = await MakeContent(512 * 1024, 16384);
        var pairs = new List<(TorrentSession Seeder, TorrentSession Leecher, string Dir)>();
        for (var i = 0; i < 4; i++)
        {
            var seeder = await Start(meta, meta.Info, src, source: true);
            var dir = Path.Combine(Dir, $"cross{i}");
            var leecher = await Start(meta, meta.Info, dir, source: false);
            seeder.AddPeers([At(leecher)]);
            leecher.AddPeers([At(seeder)]);
            pairs.Add((seeder, leecher, dir));
        }

        await Task.WhenAll(pairs.Select(p => p.Leecher.Completed)).WaitAsync(Deadline);
        foreach (var (seeder, leecher, dir) in pairs)
        {
            Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(dir, "payload.bin")));
            Assert.Equal(content.Length, leecher.GetStats().ReceivedByPeerId[seeder.PeerId]);
        }
    }
}
