using Peerway.Interop.Tests.Infrastructure;
using static Peerway.Interop.Tests.Torrent.LibtorrentPeer;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// libtorrent 2.0's DHT and Peerway's on 127.0.0.1: libtorrent bootstraps from a `peerway dht serve` node given as
/// dht_bootstrap_nodes, an announce by one side is found with get_peers by the other, and a magnet link (no tracker,
/// no peer given) is fetched through the DHT in both directions.
/// </summary>
/// <remarks>
/// libtorrent keeps its bootstrap ("router") nodes out of its routing table and only learns nodes from their replies,
/// so one Peerway node is not enough: <see cref="DhtNodes"/> `peerway dht serve` nodes join through the first, which then
/// returns the others. libtorrent accepts loopback DHT nodes once dht_restrict_routing_ips and
/// dht_restrict_search_ips are off (lt-peer.py does that whenever it is given bootstrap nodes): no namespaces needed.
/// </remarks>
public sealed class LibtorrentDhtInteropTests
{
    private const int DhtNodes = 5;

    private static async Task<string> StartPeerwayDhtAsync(LibtorrentPeer lt)
    {
        var first = TorrentInterop.FreePort();
        var bootstrap = "127.0.0.1:" + P(first);
        var nodes = new List<RunningProcess> { lt.Env.StartPeerway("dht", "serve", "--bind", "127.0.0.1", "--port", P(first)) };
        Assert.Contains("listening", await nodes[0].FirstLineAsync(Deadline), StringComparison.Ordinal);
        for (var i = 1; i < DhtNodes; i++)
        {
            nodes.Add(lt.Env.StartPeerway("dht", "serve", "--bind", "127.0.0.1", "--port", P(TorrentInterop.FreePort()), "--bootstrap", bootstrap, "--timeout", "10"));
        }

        foreach (var node in nodes) Assert.Contains("listening", await node.FirstLineAsync(Deadline), StringComparison.Ordinal);
        return bootstrap;
    }

    /// <summary>libtorrent's routing table holds Peerway nodes (it reports them through dht_stats_alert).</summary>
    private static Task<string> BootstrappedAsync(ExternalProcess session) =>
        session.WaitForStdoutAsync(l => l.StartsWith("dht-nodes ", StringComparison.Ordinal) && l != "dht-nodes 0", Deadline);

    [RequiresLibtorrentFact]
    public async Task Peerway_finds_libtorrent_in_the_dht_and_fetches_its_magnet()
    {
        await using var lt = new LibtorrentPeer("dht-up");
        var bootstrap = await StartPeerwayDhtAsync(lt);
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeFilesAsync(src, ("payload.bin", (4 * 1024 * 1024) + 3));
        var torrent = Path.Combine(lt.Env.Root, "payload.torrent");
        var (v1, _) = await lt.CreateAsync(Path.Combine(src, "payload.bin"), torrent);
        var port = TorrentInterop.FreePort();
        var session = await lt.RunAsync(port, "--torrent", torrent, "--save", src, "--dht-bootstrap", bootstrap);
        await BootstrappedAsync(session);

        // libtorrent announces the torrent it seeds (announce_peer with its listen port) on its own schedule: poll
        // Peerway's get_peers until the announce has landed.
        var announced = "127.0.0.1:" + P(port);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var found = string.Empty;
        while (!found.Split('\n').Contains(announced) && sw.Elapsed < Deadline)
        {
            Assert.False(session.HasExited, "libtorrent exited: " + session.Stderr);
            var (_, stdout, _) = await lt.Env.RunPeerwayAsync(Deadline, "dht", "get-peers", v1!, "--bootstrap", bootstrap, "--timeout", "10");
            found = stdout.Replace("\r", "", StringComparison.Ordinal);
        }

        Assert.True(found.Split('\n').Contains(announced), $"libtorrent's announce never reached the Peerway DHT: {found}\n{session.Stdout}");
        var dl = Path.Combine(lt.Env.Root, "dl");
        await lt.GetAsync($"magnet:?xt=urn:btih:{v1}&dn=payload.bin", "-o", dl, "--dht-bootstrap", bootstrap);
        AssertSameFiles(files, dl);
    }

    [RequiresLibtorrentFact]
    public async Task Libtorrent_finds_peerway_in_the_dht_and_fetches_its_magnet()
    {
        await using var lt = new LibtorrentPeer("dht-dl");
        var bootstrap = await StartPeerwayDhtAsync(lt);
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeFilesAsync(src, ("payload.bin", (4 * 1024 * 1024) + 9));
        var (_, magnet, port) = await lt.ShareAsync(Path.Combine(src, "payload.bin"), "--dht-bootstrap", bootstrap);
        var hash = magnet.Split("btih:")[1][..40];
        var dl = Path.Combine(lt.Env.Root, "lt");
        // The magnet only: the torrent's own DHT lookup (get_peers) must find `peerway share`, and so must a separate
        // dht_get_peers; libtorrent keeps running until both have happened (the lookup may outlast the download).
        var session = await lt.RunAsync(TorrentInterop.FreePort(), "--magnet", magnet, "--save", dl, "--dht-bootstrap", bootstrap,
            "--dht-get-peers", hash);
        var endpoint = "127.0.0.1:" + P(port);
        await session.WaitForStdoutAsync(l => DhtPeersLine().IsMatch(l) && l.Split(' ').Contains(endpoint), Deadline);
        await FinishedAsync(session);
        AssertSameFiles(files, dl);
    }
}
