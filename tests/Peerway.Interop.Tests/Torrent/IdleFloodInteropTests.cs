using System.Net;
using Peerway.Interop.Tests.Infrastructure;
using Peerway.Torrent.Metainfo;
using static Peerway.Interop.Tests.Torrent.LibtorrentPeer;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// Issue 20, "idle connections cannot lock a seeder out": a `peerway share` seeder is flooded with connections that send
/// a handshake and then nothing, 500 from one address and 500 from as many other loopback addresses, reconnecting
/// whenever they are closed; a real `peerway get` and a real libtorrent leecher, started once the flood has filled the
/// seeder's connection slots, both complete while the flood goes on. Before the fix the flood kept the seeder full
/// (its 60 + 10 connections) for three minutes and the downloaders saw no peer.
/// </summary>
public sealed class IdleFloodInteropTests
{
    /// <summary>The seeder's default connection limit (TorrentSessionOptions.MaxConnections).</summary>
    private const int SeederSlots = 60;

    private static List<IPAddress> FloodSources()
    {
        var sources = new List<IPAddress>();
        // 500 from one address...
        for (var i = 0; i < 500; i++) sources.Add(IPAddress.Parse("127.0.0.2"));
        // ...and one each from 500 others (Linux routes all of 127/8 to lo).
        for (var i = 0; i < 500; i++) sources.Add(new IPAddress([127, 20, (byte)(i / 250), (byte)((i % 250) + 1)]));
        return sources;
    }

    [RequiresLibtorrentFact]
    public async Task A_seeder_flooded_with_idle_connections_still_serves_peerway_get_and_libtorrent()
    {
        await using var lt = new LibtorrentPeer("idle-flood");
        var src = Path.Combine(lt.Env.Root, "src");
        var files = await MakeFilesAsync(src, ("payload.bin", (4 * 1024 * 1024) + 1));
        var torrent = await lt.PeerwayCreateAsync(Path.Combine(src, "payload.bin"));
        Assert.True(MetainfoParser.TryParse(await File.ReadAllBytesAsync(torrent), out var meta, out _));
        var (share, _, port) = await lt.ShareAsync(torrent, "--content", Path.Combine(src, "payload.bin"));

        await using var flood = new IdleFlood(new IPEndPoint(IPAddress.Loopback, port), meta!.InfoHash, FloodSources(), fillTarget: SeederSlots);
        // The seeder's slots are all taken by idle peers before any downloader arrives.
        await flood.Filled.WaitAsync(Deadline);
        var answeredBefore = flood.Answered;

        var ltDir = Path.Combine(lt.Env.Root, "lt");
        var leecher = await lt.RunAsync(TorrentInterop.FreePort(), "--torrent", torrent, "--save", ltDir, "--peer", "127.0.0.1:" + P(port), "--exit-when-complete");
        var dl = Path.Combine(lt.Env.Root, "dl");
        await lt.GetAsync(torrent, "-o", dl, "--peer", "127.0.0.1:" + P(port));
        AssertSameFiles(files, dl);
        await CompletedAsync(leecher);
        AssertSameFiles(files, ltDir);

        // The seeder is still up, and the flood went on throughout: it was still being answered (taking freed places)
        // and still holds connections.
        Assert.False(share.HasExited, $"peerway share exited ({(share.HasExited ? share.ExitCode : 0)}): {share.Stderr}");
        Assert.True(flood.Answered > answeredBefore, $"the flood stopped: {flood.Answered} answered, {answeredBefore} before the downloads");
        Assert.True(flood.Open > 0, $"no flood connection is open at the end ({flood.Connects} connects, {flood.Answered} answered)");
    }
}
