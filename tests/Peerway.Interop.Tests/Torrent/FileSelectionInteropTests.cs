using Peerway.Interop.Tests.Infrastructure;
using static Peerway.Interop.Tests.Torrent.LibtorrentPeer;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// File selection against libtorrent 2.0: it seeds a multi-file torrent it made, `peerway get --only/--skip` fetches
/// some of its files; the others are never created, and the bytes of pieces they share with a wanted file are kept in
/// `.peerway/&lt;info-hash&gt;.parts` (v1-only: files not aligned to pieces; hybrid: BEP 47 padding aligns them).
/// </summary>
public sealed class FileSelectionInteropTests
{
    [RequiresLibtorrentFact]
    public async Task Peerway_gets_only_the_selected_file_of_a_v1_libtorrent_torrent()
    {
        await using var lt = new LibtorrentPeer("only");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeAlbumAsync(src);
        var torrent = Path.Combine(lt.Env.Root, "album.torrent");
        var (v1, _) = await lt.CreateAsync(Path.Combine(src, "album"), torrent, "--v1-only");

        // `peerway info` numbers the files (0-based), in the torrent's order.
        var (code, info, err) = await lt.Env.RunPeerwayAsync(Deadline, "info", torrent);
        Assert.True(code == 0, err);
        Assert.Matches(@"(?m)^\s+0\s+\d+\s+album/", info);
        Assert.Matches(@"(?m)^\s+3\s+\d+\s+album/", info);

        var port = TorrentInterop.FreePort();
        await lt.RunAsync(port, "--torrent", torrent, "--save", src);
        var dl = Path.Combine(lt.Env.Root, "dl");
        // c.bin (1 MiB) follows a.bin (3,000,001 B): both of its end pieces are shared with a neighbour.
        await lt.GetAsync(torrent, "-o", dl, "--peer", "127.0.0.1:" + P(port), "--only", "c.bin");

        AssertSameFiles(new() { ["c.bin"] = files["c.bin"] }, Path.Combine(dl, "album"));
        Assert.False(File.Exists(Path.Combine(dl, "album", "a.bin")), "a skipped file was created");
        Assert.False(File.Exists(Path.Combine(dl, "album", "sub", "b.txt")), "a skipped file was created");
        Assert.True(File.Exists(Path.Combine(dl, ".peerway", v1 + ".parts")), "no parts file for the shared pieces");
    }

    [RequiresLibtorrentFact]
    public async Task Peerway_skips_a_file_of_a_hybrid_libtorrent_torrent_by_magnet()
    {
        await using var lt = new LibtorrentPeer("skip");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeAlbumAsync(src);
        var torrent = Path.Combine(lt.Env.Root, "album.torrent");
        var (v1, _) = await lt.CreateAsync(Path.Combine(src, "album"), torrent);

        var port = TorrentInterop.FreePort();
        await lt.RunAsync(port, "--torrent", torrent, "--save", src);
        var dl = Path.Combine(lt.Env.Root, "dl");
        // By magnet: the globs apply once the info dictionary has come from libtorrent (BEP 9).
        await lt.GetAsync($"magnet:?xt=urn:btih:{v1}&dn=album", "-o", dl, "--peer", "127.0.0.1:" + P(port), "--skip", "*.bin");

        AssertSameFiles(new() { ["sub/b.txt"] = files["sub/b.txt"] }, Path.Combine(dl, "album"));
        Assert.False(File.Exists(Path.Combine(dl, "album", "a.bin")), "a skipped file was created");
        Assert.False(File.Exists(Path.Combine(dl, "album", "c.bin")), "a skipped file was created");
    }
}
