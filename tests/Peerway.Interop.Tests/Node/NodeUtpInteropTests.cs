using Peerway.Interop.Tests.Infrastructure;
using Peerway.Interop.Tests.Torrent;
using static Peerway.Interop.Tests.Torrent.LibtorrentPeer;

namespace Peerway.Interop.Tests.Node;

/// <summary>
/// uTP (BEP 29) on <c>peerway node</c>'s peer port, against libtorrent 2.0.8 with TCP off both ways
/// (<c>lt-peer.py run --utp-only</c>), so every byte crosses uTP: the node downloads a magnet (added by
/// <c>transmission-remote</c>) from a uTP-only libtorrent seed (the node dials uTP), and a uTP-only libtorrent session
/// downloads from the node (libtorrent dials the node's peer port over UDP). Each file's SHA-256 is checked.
/// </summary>
public sealed class NodeUtpInteropTests
{
    private const int FileSize = 3 * 1024 * 1024 + 321;

    [RequiresLibtorrentFact]
    public async Task Node_downloads_a_magnet_from_a_utp_only_libtorrent_seed()
    {
        TorrentInterop.Require("transmission-remote");
        await using var lt = new LibtorrentPeer("node-utp-dl");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeFilesAsync(src, ("payload.bin", FileSize));
        var torrent = await lt.PeerwayCreateAsync(Path.Combine(src, "payload.bin"));
        var ltPort = TorrentInterop.FreePort();
        await lt.SeedAsync(ltPort, "--utp-only", "--torrent", torrent, "--save", src);

        var data = Path.Combine(lt.Env.Root, "node");
        var node = await RunningNode.StartAsync(lt.Env, data);
        var hash = Peerway.Torrent.Metainfo.MetainfoParser.TryParse(await File.ReadAllBytesAsync(torrent), out var meta, out _) ? meta!.InfoHash : throw new InvalidOperationException("bad torrent");
        var magnet = $"magnet:?xt=urn:btih:{hash}&dn=payload.bin&x.pe=127.0.0.1:{P(ltPort)}";
        var (code, stdout, stderr) = await TransmissionRemote.RunAsync(lt.Env, node, "-a", magnet);
        Assert.True(code == 0 && stdout.Contains("success", StringComparison.Ordinal), stdout + stderr);
        await TransmissionRemote.WaitForListAsync(lt.Env, node, r => r.TryGetValue(1, out var row) && row.Contains("100%", StringComparison.Ordinal), Deadline);
        AssertSameFiles(files, Path.Combine(data, "downloads"));
        Assert.True(await node.TerminateAsync() == 0, node.Process.Stderr);
    }

    [RequiresLibtorrentFact]
    public async Task Utp_only_libtorrent_downloads_from_the_node_on_its_peer_port()
    {
        TorrentInterop.Require("transmission-remote");
        await using var lt = new LibtorrentPeer("node-utp-up");
        var data = Path.Combine(lt.Env.Root, "node");
        var downloads = Path.Combine(data, "downloads");
        var files = await MakeFilesAsync(downloads, ("payload.bin", FileSize));
        var torrent = await lt.PeerwayCreateAsync(Path.Combine(downloads, "payload.bin"));
        var node = await RunningNode.StartAsync(lt.Env, data);
        Assert.True(node.PeerPort > 0, "no peer port in the banner");
        // The content is already in the node's download directory: the node verifies it and seeds.
        var (code, stdout, stderr) = await TransmissionRemote.RunAsync(lt.Env, node, "-a", torrent);
        Assert.True(code == 0 && stdout.Contains("success", StringComparison.Ordinal), stdout + stderr);
        await TransmissionRemote.WaitForListAsync(lt.Env, node, r => r.TryGetValue(1, out var row) && row.Contains("100%", StringComparison.Ordinal), Deadline);

        var dl = Path.Combine(lt.Env.Root, "lt");
        var session = await lt.RunAsync(TorrentInterop.FreePort(), "--utp-only", "--torrent", torrent, "--save", dl, "--peer", "127.0.0.1:" + P(node.PeerPort), "--exit-when-complete");
        await CompletedAsync(session);
        AssertSameFiles(files, dl);
        Assert.True(await node.TerminateAsync() == 0, node.Process.Stderr);
    }
}
