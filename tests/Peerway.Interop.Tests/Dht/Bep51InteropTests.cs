using System.Text.Json;
using Peerway.Core;
using Peerway.Interop.Tests.Infrastructure;

namespace Peerway.Interop.Tests.Dht;

/// <summary>
/// Issue 17 §3: BEP 51 both ways with libtorrent 2.0.8 (tests/interop-peers/lt-dht-sample.py): libtorrent's
/// dht_sample_infohashes gets what a `peerway dht serve` node stores, and `peerway dht sample` gets what a libtorrent
/// DHT node stores (info-hashes announced to each with `peerway dht announce`).
/// </summary>
public sealed class Bep51InteropTests
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(90);

    [RequiresLibtorrentFact]
    public async Task Libtorrent_samples_the_info_hashes_a_peerway_node_stores()
    {
        LibtorrentTool.Require();
        await using var node = await ServedNode.StartAsync();
        var announced = new[] { NodeId.Random().ToString(), NodeId.Random().ToString() };
        foreach (var infoHash in announced)
        {
            var a = await PeerwayCli.RunAsync("dht", "announce", infoHash, "--port", "7000", "--bootstrap", node.EndPoint, "--bind", "127.0.0.1", "--timeout", "60");
            Assert.True(a.ExitCode == 0, a.ToString());
        }

        await using var lt = ExternalProcess.Start(LibtorrentTool.Python, [Driver, "sample", node.EndPoint], Lifetime, RepoRoot.Find());
        var code = await lt.WaitForExitAsync(Lifetime);
        Assert.True(code == 0, $"lt-dht-sample.py exited {code}\n{lt.Stdout}\n{lt.Stderr}");
        using var doc = JsonDocument.Parse(lt.StdoutLines.Single(l => l.StartsWith('{')));
        Assert.Equal(2, doc.RootElement.GetProperty("num").GetInt32());
        Assert.Equal(21600, doc.RootElement.GetProperty("interval").GetInt32());
        Assert.Equal(announced.Order(), doc.RootElement.GetProperty("samples").EnumerateArray().Select(s => s.GetString()!).Order());
    }

    [RequiresLibtorrentFact]
    public async Task Peerway_samples_the_info_hashes_a_libtorrent_node_stores()
    {
        LibtorrentTool.Require();
        await using var lt = ExternalProcess.Start(LibtorrentTool.Python, [Driver, "serve"], Lifetime * 2, RepoRoot.Find());
        var first = await lt.WaitForStdoutAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), Lifetime);
        var endPoint = "127.0.0.1:" + first["listening ".Length..];
        var infoHash = NodeId.Random().ToString();
        var a = await PeerwayCli.RunAsync("dht", "announce", infoHash, "--port", "7000", "--bootstrap", endPoint, "--bind", "127.0.0.1", "--timeout", "60");
        Assert.True(a.ExitCode == 0, a.ToString());

        var sample = await PeerwayCli.RunAsync("dht", "sample", endPoint, "--bind", "127.0.0.1", "--timeout", "60");
        Assert.True(sample.ExitCode == 0, sample.ToString());
        Assert.Equal([infoHash], sample.StdoutLines);
    }

    private static string Driver => Path.Combine(RepoRoot.Find(), "tests", "interop-peers", "lt-dht-sample.py");
}
