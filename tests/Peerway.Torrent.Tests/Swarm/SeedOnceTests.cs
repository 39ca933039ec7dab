using System.Security.Cryptography;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// <see cref="TorrentSessionOptions.SeedEachPieceOnceFirst"/> against a seeding <see cref="TorrentClient"/> in a
/// <see cref="SimulatedSwarm"/>, with two leechers that are raw protocol doubles (<see cref="WireClient"/>, our codec),
/// so the test decides exactly which piece each one asks for.
/// </summary>
public sealed class SeedOnceTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Seeder_gives_each_piece_out_once_before_any_twice(bool seedOnce) => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var content = RandomNumberGenerator.GetBytes(4 * 32768);
        var meta = SimulatedSwarm.MakeTorrent(content, 32768);
        var seeder = swarm.AddPeer();
        seeder.Seed(meta, content, new TorrentAddOptions { Session = new TorrentSessionOptions { SeedEachPieceOnceFirst = seedOnce } });
        var a = Leecher(swarm, seeder.EndPoint, meta.InfoHash);
        var b = Leecher(swarm, seeder.EndPoint, meta.InfoHash);

        Assert.Equal(PeerMessageType.Piece, Request(swarm, a, 0));
        // Piece 0 went to a; pieces 1..3 have gone to nobody yet.
        Assert.Equal(seedOnce ? PeerMessageType.RejectRequest : PeerMessageType.Piece, Request(swarm, b, 0));
        Assert.Equal(PeerMessageType.Piece, Request(swarm, b, 1));
        Assert.Equal(PeerMessageType.Piece, Request(swarm, a, 2));
        Assert.Equal(PeerMessageType.Piece, Request(swarm, a, 3));
        // Every piece has gone out once: now anything is served.
        Assert.Equal(PeerMessageType.Piece, Request(swarm, b, 0));
        Assert.Equal(PeerMessageType.Piece, Request(swarm, a, 1));
    });

    /// <summary>A minimal leecher: handshake (fast extension), interested, unchoked.</summary>
    private static WireClient Leecher(SimulatedSwarm swarm, System.Net.IPEndPoint seeder, Core.NodeId infoHash)
    {
        var c = swarm.Wire(seeder);
        swarm.Run(() => c.SendHandshakeAsync(infoHash));
        swarm.Run(() => c.SendAsync(w => PeerWire.WriteSimple(w, PeerMessageType.Interested)));
        // The seeder fills a free upload slot as soon as a peer is interested.
        swarm.Wait(c.Unchoked.Task, "the seeder did not unchoke an interested peer");
        return c;
    }

    /// <summary>Asks for the first block of <paramref name="piece"/>; returns the answer, Piece or RejectRequest.</summary>
    private static PeerMessageType Request(SimulatedSwarm swarm, WireClient c, int piece)
    {
        var seen = c.Received.Count;
        swarm.Run(() => c.SendAsync(w => PeerWire.WriteBlockMessage(w, PeerMessageType.Request, piece, 0, TorrentLimits.BlockLength)));
        PeerMessageType? answer = null;
        swarm.Wait(() => (answer = Answer(c, seen, piece)) is not null, $"no answer to the request for piece {piece}");
        return answer!.Value;
    }

    private static PeerMessageType? Answer(WireClient c, int seen, int piece)
    {
        foreach (var (type, index) in c.Received.Skip(seen))
        {
            if (type is PeerMessageType.Piece or PeerMessageType.RejectRequest && index == piece) return type;
        }

        return null;
    }
}
