using System.Net;
using System.Security.Cryptography;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// Whole engines talking over real loopback TCP and disk: the end-to-end check of what DeterministicSwarmTests runs on
/// the virtual network, in memory and in virtual time (with the magnet, PEX and crossing-dial swarms).
/// </summary>
public sealed class SwarmTests() : LoopbackSwarmTests("pw-swarm-")
{
    private static IPEndPoint At(TorrentSession s) => new(IPAddress.Loopback, s.ListenPort);

    [Fact]
    public async Task Leecher_downloads_from_seeder_and_verifies()
    {
        var (meta, src, content) = await MakeContentAsync(3 * 1024 * 1024 + 12345);
        var seeder = await StartAsync(meta, meta.Info, src, source: true);
        Assert.True(seeder.Completed.IsCompleted);
        var leecher = await StartAsync(meta, meta.Info, Path.Combine(Dir, "dl"), source: false);
        leecher.AddPeers([At(seeder)]);
        await leecher.Completed.WaitAsync(Deadline);
        Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(Dir, "dl", "payload.bin")));
        var stats = leecher.GetStats();
        Assert.Equal(meta.Info.PieceCount, stats.VerifiedPieces);
        Assert.Equal(content.Length, stats.ReceivedByPeerId[seeder.PeerId]);
        Assert.Equal(0, stats.HashFailures);
    }
}
