using Peerway.Interop.Tests.Infrastructure;
using static Peerway.Interop.Tests.Torrent.LibtorrentPeer;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Peerway against the reference implementation, libtorrent-rasterbar 2.0 (Debian's python3-libtorrent, driven by
/// tests/interop-peers/lt-peer.py) on 127.0.0.1: .torrent downloads both ways, single- and multi-file; torrents made by
/// libtorrent (hybrid v1+v2 with BEP 47 padding files by default, and v1-only); magnet links with the peer given
/// (BEP 9 ut_metadata) both ways. libtorrent runs with its default encryption policy, "enabled": to a peer given with
/// connect_peer it opens with an MSE handshake offering RC4 and plaintext, and Peerway (encryption "prefer") selects
/// plaintext, as libtorrent itself does by default (an obfuscated handshake, then a plaintext stream); a peer from a
/// magnet's x.pe it dials in plaintext. Forced RC4 is in <see cref="EncryptionInteropTests"/>.
/// Every file's SHA-256 is checked. The DHT tests are in <see cref="LibtorrentDhtInteropTests"/>.
/// </summary>
public sealed class LibtorrentInteropTests
{
    /// <summary>libtorrent's connection to Peerway: the extension protocol (BEP 10), a plaintext stream, after an MSE handshake or not.</summary>
    private static async Task AssertExtendedAsync(ExternalProcess lt, int peerwayPort, bool obfuscated)
    {
        var line = await HandshakenPeerAsync(lt, peerwayPort);
        Assert.Contains("supports_extensions", line, StringComparison.Ordinal);
        Assert.Equal(obfuscated, line.Contains("plaintext_encrypted", StringComparison.Ordinal));
        Assert.DoesNotContain("rc4_encrypted", line, StringComparison.Ordinal);
    }

    [RequiresLibtorrentFact]
    public async Task Libtorrent_downloads_a_file_from_peerway()
    {
        await using var lt = new LibtorrentPeer("dl-file");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeFilesAsync(src, ("payload.bin", (4 * 1024 * 1024) + 1));
        var torrent = Path.Combine(lt.Env.Root, "payload.torrent");
        var (code, _, err) = await lt.Env.RunPeerwayAsync(Deadline, "create", Path.Combine(src, "payload.bin"), "-o", torrent);
        Assert.True(code == 0, err);
        var (session, port, dl) = await lt.LibtorrentDownloadsFromPeerwayAsync(torrent, Path.Combine(src, "payload.bin"));
        AssertSameFiles(files, dl);

        // Encryption "enabled" (libtorrent's default): the connection opens with MSE (Message Stream Encryption),
        // which Peerway accepts, selecting plaintext for the stream.
        Assert.Contains($"mse-attempt 127.0.0.1:{P(port)}", session.StdoutLines);
        await AssertExtendedAsync(session, port, obfuscated: true);

        // What libtorrent saw Peerway negotiate: the fast extension (BEP 6) and the DHT bit in the reserved bytes, HAVE_ALL
        // from a seed, and a BEP 10 handshake offering ut_metadata and ut_pex.
        var wire = session.StdoutLines.Where(l => l.StartsWith($"wire 127.0.0.1:{P(port)} ", StringComparison.Ordinal)).ToList();
        Assert.Contains(wire, l => l.Contains("EXTENSIONS", StringComparison.Ordinal) && l.Contains("FAST", StringComparison.Ordinal) && l.Contains("DHT", StringComparison.Ordinal));
        Assert.Contains(wire, l => l.Contains("HAVE_ALL", StringComparison.Ordinal));
        Assert.Contains(wire, l => l.Contains("EXTENDED_HANDSHAKE", StringComparison.Ordinal) && l.Contains("ut_pex", StringComparison.Ordinal) && l.Contains("ut_metadata", StringComparison.Ordinal));
    }

    [RequiresLibtorrentFact]
    public async Task Libtorrent_downloads_a_directory_from_peerway()
    {
        await using var lt = new LibtorrentPeer("dl-dir");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeAlbumAsync(src);
        var torrent = Path.Combine(lt.Env.Root, "album.torrent");
        var (code, _, err) = await lt.Env.RunPeerwayAsync(Deadline, "create", Path.Combine(src, "album"), "-o", torrent);
        Assert.True(code == 0, err);
        var (_, _, dl) = await lt.LibtorrentDownloadsFromPeerwayAsync(torrent, Path.Combine(src, "album"));
        AssertSameFiles(files, Path.Combine(dl, "album"));
    }

    [RequiresLibtorrentFact]
    public async Task Peerway_reads_and_downloads_a_hybrid_torrent_made_and_seeded_by_libtorrent()
    {
        await using var lt = new LibtorrentPeer("hybrid-up");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeAlbumAsync(src);
        var torrent = Path.Combine(lt.Env.Root, "album.torrent");
        var (v1, v2) = await lt.CreateAsync(Path.Combine(src, "album"), torrent);
        Assert.NotNull(v1);
        Assert.NotNull(v2);

        // BEP 52: the v1 info-hash of a hybrid is the SHA-1 of the whole info dictionary; padding files are listed apart.
        var (code, info, err) = await lt.Env.RunPeerwayAsync(Deadline, "info", torrent);
        Assert.True(code == 0, err);
        Assert.Matches(@"info-hash:\s*" + v1, info);
        Assert.Matches(@"info-hash v2:\s*" + v2, info);
        Assert.Contains("hybrid v1+v2", info, StringComparison.Ordinal);
        Assert.Matches(@"files:\s*4 \(and \d+ padding files", info);
        Assert.DoesNotContain(".pad/", info, StringComparison.Ordinal);

        var dl = await lt.PeerwayDownloadsFromLibtorrentAsync(torrent, src);
        AssertSameFiles(files, Path.Combine(dl, "album"));
        Assert.False(Directory.Exists(Path.Combine(dl, "album", ".pad")), "padding files were written to disk");
    }

    [RequiresLibtorrentFact]
    public async Task Libtorrent_downloads_its_hybrid_torrent_from_peerway_which_has_no_padding_files()
    {
        await using var lt = new LibtorrentPeer("hybrid-dl");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeAlbumAsync(src);
        var torrent = Path.Combine(lt.Env.Root, "album.torrent");
        await lt.CreateAsync(Path.Combine(src, "album"), torrent);
        // Peerway seeds from the real files only: its reads of the padding files' ranges are zeros.
        var (_, _, dl) = await lt.LibtorrentDownloadsFromPeerwayAsync(torrent, Path.Combine(src, "album"));
        AssertSameFiles(files, Path.Combine(dl, "album"));
    }

    [RequiresLibtorrentFact]
    public async Task Peerway_downloads_a_v1_only_libtorrent_torrent()
    {
        await using var lt = new LibtorrentPeer("v1-up");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeFilesAsync(src, ("payload.bin", (3 * 1024 * 1024) + 5));
        var torrent = Path.Combine(lt.Env.Root, "payload.torrent");
        var (v1, v2) = await lt.CreateAsync(Path.Combine(src, "payload.bin"), torrent, "--v1-only");
        Assert.Null(v2);
        var (code, info, err) = await lt.Env.RunPeerwayAsync(Deadline, "info", torrent);
        Assert.True(code == 0, err);
        Assert.Matches(@"info-hash:\s*" + v1, info);
        Assert.DoesNotContain("hybrid", info, StringComparison.Ordinal);

        var dl = await lt.PeerwayDownloadsFromLibtorrentAsync(torrent, src);
        AssertSameFiles(files, dl);
    }

    [RequiresLibtorrentFact]
    public async Task A_v2_only_libtorrent_torrent_and_its_magnet_are_clear_usage_errors()
    {
        await using var lt = new LibtorrentPeer("v2-only");
        var src = Path.Combine(lt.Env.Root, "src");
        await MakeFilesAsync(src, ("payload.bin", 100_000));
        var torrent = Path.Combine(lt.Env.Root, "payload.torrent");
        var (v1, v2) = await lt.CreateAsync(Path.Combine(src, "payload.bin"), torrent, "--v2-only");
        Assert.Null(v1);
        Assert.NotNull(v2);
        var (code, _, err) = await lt.Env.RunPeerwayAsync(Deadline, "info", torrent);
        Assert.Equal(2, code);
        Assert.Contains("v2-only", err, StringComparison.Ordinal);
        (code, _, err) = await lt.Env.RunPeerwayAsync(Deadline, "get", $"magnet:?xt=urn:btmh:1220{v2}&dn=payload.bin", "-o", Path.Combine(lt.Env.Root, "dl"));
        Assert.Equal(2, code);
        Assert.Contains("v2-only", err, StringComparison.Ordinal);
    }

    [RequiresLibtorrentFact]
    public async Task Libtorrent_fetches_a_magnet_from_peerway()
    {
        await using var lt = new LibtorrentPeer("magnet-dl");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeAlbumAsync(src);
        var (_, magnet, port) = await lt.ShareAsync(Path.Combine(src, "album"));
        Assert.DoesNotContain("tr=", magnet, StringComparison.Ordinal);
        var dl = Path.Combine(lt.Env.Root, "lt");
        // The peer is in the magnet (x.pe); libtorrent has no tracker, DHT or LSD: the info dictionary comes over BEP 9.
        var session = await lt.RunAsync(TorrentInterop.FreePort(), "--magnet", $"{magnet}&x.pe=127.0.0.1:{P(port)}", "--save", dl, "--exit-when-complete");
        await session.WaitForStdoutAsync(l => l == "metadata album", Deadline);
        // libtorrent dials the magnet's x.pe peer with a plain BitTorrent handshake (no MSE attempt): accepted too.
        await AssertExtendedAsync(session, port, obfuscated: false);
        await CompletedAsync(session);
        AssertSameFiles(files, Path.Combine(dl, "album"));
    }

    [RequiresLibtorrentFact]
    public async Task Libtorrent_fetches_the_v1_magnet_of_its_hybrid_torrent_from_peerway()
    {
        await using var lt = new LibtorrentPeer("hybrid-magnet-dl");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeAlbumAsync(src);
        var torrent = Path.Combine(lt.Env.Root, "album.torrent");
        var (v1, _) = await lt.CreateAsync(Path.Combine(src, "album"), torrent);
        var (_, magnet, port) = await lt.ShareAsync(torrent, "--content", Path.Combine(src, "album"));
        Assert.Contains("btih:" + v1, magnet, StringComparison.Ordinal);
        // The info dictionary Peerway serves over BEP 9 is the hybrid's, v2 "file tree" included: libtorrent sees a
        // hybrid torrent, and downloads it through its v1 hashes from a peer that never sends v2 hashes.
        var dl = Path.Combine(lt.Env.Root, "lt");
        var session = await lt.RunAsync(TorrentInterop.FreePort(), "--magnet", $"{magnet}&x.pe=127.0.0.1:{P(port)}", "--save", dl, "--exit-when-complete");
        await CompletedAsync(session);
        Assert.Contains("metadata album", session.StdoutLines);
        AssertSameFiles(files, Path.Combine(dl, "album"));
    }

    /// <summary>
    /// BEP 11: two libtorrent leechers, each given only Peerway's address, find each other through Peerway's ut_pex
    /// (no tracker, DHT or LSD). PEX goes out at most once a minute, so this takes about a minute; Peerway's upload is
    /// capped so that both are still downloading then.
    /// </summary>
    [RequiresLibtorrentFact]
    public async Task Libtorrent_leechers_find_each_other_through_peerway_pex()
    {
        await using var lt = new LibtorrentPeer("pex");
        var src = Path.Combine(lt.Env.Root, "src");
        await MakeFilesAsync(src, ("big.bin", 8 << 20));
        var (_, magnet, port) = await lt.ShareAsync(Path.Combine(src, "big.bin"), "--upload-limit", "64");
        var first = await lt.RunAsync(TorrentInterop.FreePort(), "--magnet", $"{magnet}&x.pe=127.0.0.1:{P(port)}", "--save", Path.Combine(lt.Env.Root, "a"));
        await lt.RunAsync(TorrentInterop.FreePort(), "--magnet", $"{magnet}&x.pe=127.0.0.1:{P(port)}", "--save", Path.Combine(lt.Env.Root, "b"));
        // Whichever dials, the first session then lists the second as a peer past the BEP 10 handshake ("v" lt-peer/...).
        var other = await first.WaitForStdoutAsync(l => l.StartsWith("peer ", StringComparison.Ordinal)
            && l.Contains("supports_extensions", StringComparison.Ordinal) && l.Contains("client=lt-peer", StringComparison.Ordinal), Deadline);
        Assert.DoesNotContain($"127.0.0.1:{P(port)} ", other, StringComparison.Ordinal);
    }

    [RequiresLibtorrentFact]
    public async Task Peerway_fetches_a_hybrid_magnet_from_libtorrent()
    {
        await using var lt = new LibtorrentPeer("magnet-up");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeAlbumAsync(src);
        var torrent = Path.Combine(lt.Env.Root, "album.torrent");
        var (v1, v2) = await lt.CreateAsync(Path.Combine(src, "album"), torrent);
        var port = TorrentInterop.FreePort();
        await lt.RunAsync(port, "--torrent", torrent, "--save", src);
        // The magnet libtorrent's make_magnet_uri writes for a hybrid (btih and btmh), with the peer added.
        var magnet = $"magnet:?xt=urn:btih:{v1}&xt=urn:btmh:1220{v2}&dn=album&x.pe=127.0.0.1:{P(port)}";
        var dl = Path.Combine(lt.Env.Root, "dl");
        await lt.GetAsync(magnet, "-o", dl);
        AssertSameFiles(files, Path.Combine(dl, "album"));
        Assert.False(Directory.Exists(Path.Combine(dl, "album", ".pad")), "padding files were written to disk");
    }
}
