using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Node;

namespace Peerway.Node.Tests;

/// <summary>The demo's swarm, small: magnet only, DHT as the only peer source, real loopback sockets.</summary>
public sealed class LocalTorrentSwarmTests
{
    [Fact]
    public async Task Every_peer_downloads_and_verifies_from_a_magnet_found_through_the_dht()
    {
        var dir = Directory.CreateTempSubdirectory("pw-demo-test-").FullName;
        try
        {
            var options = new LocalTorrentSwarmOptions { Peers = 3, FileSize = 3 * 1024 * 1024 + 17, ExtraDhtNodes = 4, SeederUploadSlots = 1, Seed = 42, Directory = dir };
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            var report = await LocalTorrentSwarm.RunAsync(options, NullLoggerFactory.Instance, null, null, cts.Token);
            Assert.True(report.AllVerified);
            Assert.Equal(3, report.Peers.Count);
            Assert.StartsWith("magnet:?xt=urn:btih:", report.Magnet);
            Assert.DoesNotContain("tr=", report.Magnet, StringComparison.Ordinal);
            Assert.All(report.Peers, p => Assert.Equal(options.FileSize, p.FromSeeder + p.FromPeers));
            Assert.Equal(8, report.DhtNodes);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
