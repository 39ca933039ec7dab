using Peerway.Net;
using System.Net;
using System.Security.Cryptography;
using Peerway.Core;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Wire;
using Peerway.TestSupport;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// <see cref="TorrentClient"/>: several torrents on one port, routed by info-hash (plain) or SKEY (MSE), one connection
/// limit across torrents, removal at run time, two clients in one process. In a <see cref="SimulatedSwarm"/> (virtual
/// network, memory storage, fake clock), except the first test, which stays on real loopback TCP on purpose: it is the
/// end-to-end check that one real listening socket serves several torrents, MSE included, through
/// <see cref="TcpStreamTransport"/> (the transport the CLI and the node use), with real threads and the wall clock.
/// </summary>
public sealed class TorrentClientTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    /// <summary>A torrent of random content, kept in memory.</summary>
    private static (TorrentMetainfo Meta, byte[] Content) MakeTorrent(int size, int pieceLength = 32 * 1024)
    {
        var content = RandomNumberGenerator.GetBytes(size);
        return (SimulatedSwarm.MakeTorrent(content, pieceLength), content);
    }

    private static TorrentAddOptions Seeding => new() { SeedOnly = true };

    private static TorrentAddOptions From(SimulatedSwarm.Peer seeder) => new() { Peers = [seeder.EndPoint] };

    /// <summary>The engine's default policy (MSE first, then plain).</summary>
    private static TorrentClientOptions Prefer => new() { Encryption = EncryptionPolicy.Prefer };

    [Fact]
    public async Task Two_torrents_on_one_client_and_one_real_tcp_port_are_both_served_to_a_second_client()
    {
        var (a, contentA) = MakeTorrent(300_000);
        var (b, contentB) = MakeTorrent(200_000);
        var seedStore = new MemoryStorageFactory();
        seedStore.Add(a.Info, contentA);
        seedStore.Add(b.Info, contentB);
        var listen = new TorrentClientOptions { ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, 0)] };
        await using var seeder = new TorrentClient([new TcpStreamTransport()], listen, seedStore, TimeProvider.System);
        await seeder.StartAsync(CancellationToken.None);
        await seeder.AddAsync(a, "seed", Seeding);
        await seeder.AddAsync(b, "seed", Seeding);
        Assert.Single(seeder.LocalEndPoints);

        var leechStore = new MemoryStorageFactory();
        await using var leecher = new TorrentClient([new TcpStreamTransport()], listen, leechStore, TimeProvider.System);
        await leecher.StartAsync(CancellationToken.None);
        // One by magnet link (metadata over BEP 9), one by .torrent; both dial the seeder's one port (MSE first: Prefer).
        var from = new TorrentAddOptions { Peers = [new IPEndPoint(IPAddress.Loopback, seeder.Port)] };
        var gotA = await leecher.AddAsync(new MagnetLink(a.InfoHash, null, [], []), "dl", from);
        var gotB = await leecher.AddAsync(b, "dl", from);
        await Task.WhenAll(gotA.Completed, gotB.Completed).WaitAsync(Deadline);

        Assert.Equal(contentA, leechStore.Get(a.InfoHash)!.ToArray());
        Assert.Equal(contentB, leechStore.Get(b.InfoHash)!.ToArray());
        Assert.Equal(TorrentState.Seeding, gotA.State);
        Assert.Equal(a.Info.Name, gotA.Info!.Name);
        Assert.All(seeder.Torrents, t => Assert.True(t.GetStats().Uploaded > 0, $"{t.Info!.Name} uploaded nothing"));
    }

    [Fact]
    public void Two_clients_in_one_process_each_download_what_the_other_seeds() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (a, contentA) = MakeTorrent(100_000);
        var (b, contentB) = MakeTorrent(100_000);
        var x = swarm.AddPeer(options: Prefer);
        var y = swarm.AddPeer(options: Prefer);
        x.Seed(a, contentA);
        y.Seed(b, contentB);

        var bAtX = x.Add(b, From(y));
        var aAtY = y.Add(a, From(x));
        swarm.Wait(() => bAtX.Completed.IsCompleted && aAtY.Completed.IsCompleted, "a download did not complete");

        Assert.Equal(contentB, x.Content(b));
        Assert.Equal(contentA, y.Content(a));
    });

    [Fact]
    public void An_incoming_handshake_for_an_unknown_info_hash_is_dropped_alone() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (a, contentA) = MakeTorrent(64 * 1024);
        var seeder = swarm.AddPeer(options: Prefer);
        var handle = seeder.Seed(a, contentA);

        var good = swarm.Wire(seeder.EndPoint);
        swarm.Run(() => good.SendHandshakeAsync(a.InfoHash));
        swarm.Wait(good.HandshakeReceived.Task, "the torrent's own peer got no handshake");

        // A plain handshake naming no torrent of this client: closed without an answer.
        var stranger = swarm.Wire(seeder.EndPoint);
        swarm.Run(() => stranger.SendHandshakeAsync(NodeId.Random()));
        swarm.Wait(stranger.Closed.Task, "the stranger was not closed");
        Assert.False(stranger.HandshakeReceived.Task.IsCompleted);

        // MSE with an SKEY (info-hash) of no torrent here: the responder finds no req2 match and drops it.
        var raw = swarm.Network.AddEndpoint();
        Assert.False(swarm.Run(async () =>
        {
            await using var connection = await raw.ConnectAsync(seeder.EndPoint, CancellationToken.None);
            try
            {
                return (await MseNegotiator.InitiateAsync(connection.Stream, NodeId.Random().ToArray(), EncryptionPolicy.Require, CancellationToken.None)).Succeeded;
            }
            catch (IOException)
            {
                return false; // closed with our bytes unread: a reset, equally a refusal
            }
        }));

        // The torrent's own peer is unaffected: it still gets a block.
        swarm.Run(() => good.SendAsync(w => PeerWire.WriteSimple(w, PeerMessageType.Interested)));
        swarm.Wait(good.Unchoked.Task, "the torrent's own peer was not unchoked");
        swarm.Run(() => good.SendAsync(w => PeerWire.WriteBlockMessage(w, PeerMessageType.Request, 0, 0, 16 * 1024)));
        swarm.Wait(() => good.PiecesReceived == 1, "the torrent's own peer got no block");
        Assert.Equal(1, handle.GetStats().Connections);
    });

    [Fact]
    public void The_connection_limit_is_shared_across_torrents_and_a_torrent_only_drops_its_own_peers() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (a, contentA) = MakeTorrent(64 * 1024);
        var (b, contentB) = MakeTorrent(64 * 1024);
        var seeder = swarm.AddPeer(options: Prefer with { MaxConnections = 2 });
        var torrentA = seeder.Seed(a, contentA);
        var torrentB = seeder.Seed(b, contentB);
        var most = 0;
        var registered = new HashSet<NodeId>();
        void Watch(TorrentSession s) => s.PeerConnected += id =>
        {
            most = Math.Max(most, seeder.Client.ConnectionCount);
            registered.Add(id);
        };
        Watch(torrentA.Session!);
        Watch(torrentB.Session!);

        WireClient Join(NodeId infoHash)
        {
            var peer = swarm.Wire(seeder.EndPoint);
            swarm.Run(() => peer.SendHandshakeAsync(infoHash));
            swarm.Wait(() => registered.Contains(peer.PeerId), "a peer was not registered");
            return peer;
        }

        var first = Join(a.InfoHash);
        var other = Join(b.InfoHash);
        Assert.Equal(2, seeder.Client.ConnectionCount);

        // A third peer, for A, while the client is full: A makes room from its own (idle) peer, never from B's.
        var third = Join(a.InfoHash);
        swarm.Wait(first.Closed.Task, "A's idle peer was not closed");
        Assert.Equal(2, seeder.Client.ConnectionCount);
        Assert.Equal(2, most);
        Assert.False(other.Closed.Task.IsCompleted);
        Assert.False(third.Closed.Task.IsCompleted);
        Assert.Equal(1, torrentB.GetStats().Connections);
    });

    [Fact]
    public void Removing_a_torrent_at_run_time_closes_its_peers_only() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (a, contentA) = MakeTorrent(100_000);
        var (b, contentB) = MakeTorrent(100_000);
        var seeder = swarm.AddPeer(options: Prefer);
        var seedA = seeder.Seed(a, contentA);
        var seedB = seeder.Seed(b, contentB);
        var leecher = swarm.AddPeer(options: Prefer);
        var gotA = leecher.Add(a, From(seeder));
        var gotB = leecher.Add(b, From(seeder));
        swarm.Wait(() => gotA.Completed.IsCompleted && gotB.Completed.IsCompleted, "a download did not complete");

        var aLeft = false;
        var bLeft = false;
        seedA.Session!.PeerDisconnected += _ => aLeft = true;
        seedB.Session!.PeerDisconnected += _ => bLeft = true;
        Assert.Equal(1, seedB.GetStats().Connections);
        var states = new List<TorrentState>();
        gotA.StateChanged += (_, s) => states.Add(s);

        swarm.Run(gotA.RemoveAsync);
        swarm.Wait(() => aLeft, "the seeder's peer of A did not leave");

        Assert.Equal(TorrentState.Removed, gotA.State);
        Assert.Equal(new[] { TorrentState.Removed }, states);
        Assert.Single(leecher.Client.Torrents);
        Assert.False(bLeft);
        Assert.Equal(1, seedB.GetStats().Connections);
        Assert.Equal(1, gotB.GetStats().Connections);
        Assert.Equal(1, leecher.Client.ConnectionCount);
    });

    [Fact]
    public void A_paused_torrent_closes_its_peers_and_resumes_with_what_it_had() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (a, contentA) = MakeTorrent(100_000);
        var seeder = swarm.AddPeer(options: Prefer);
        var seedA = seeder.Seed(a, contentA);
        var leecher = swarm.AddPeer(options: Prefer);
        var got = leecher.Add(new MagnetLink(a.InfoHash, null, [], []), From(seeder));
        swarm.Wait(got.Completed, "the magnet download did not complete");
        var left = false;
        seedA.Session!.PeerDisconnected += _ => left = true;

        swarm.Run(got.PauseAsync);
        swarm.Wait(() => left, "the seeder's peer did not leave");
        Assert.Equal(TorrentState.Paused, got.State);
        Assert.Null(got.Session);
        Assert.Equal(0, leecher.Client.ConnectionCount);

        swarm.Run(() => got.ResumeAsync());
        // The metadata fetched before the pause is kept: the storage reopens complete at once.
        Assert.Equal(TorrentState.Seeding, got.State);
        Assert.Equal(a.Info.PieceCount, got.GetStats().VerifiedPieces);
    });

    [Fact]
    public void A_torrent_added_paused_opens_no_storage_until_started() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var dir = new TempDirectory();
        using var swarm = new SimulatedSwarm();
        var (a, _) = MakeTorrent(100_000);
        var client = swarm.AddPeer(storage: new FileStorageFactory(new FileStorageOptions(), swarm.Time)).Client;
        var saveDir = dir.Combine("dl");
        var file = Path.Combine(saveDir, a.Info.Name);

        var handle = swarm.Run(() => client.AddAsync(a, saveDir, new TorrentAddOptions { Paused = true }));
        // As libtorrent's torrent_flags::paused: no engine, no file created, but the size and files are known.
        Assert.Equal(TorrentState.Paused, handle.State);
        Assert.Null(handle.Session);
        Assert.False(File.Exists(file));
        Assert.Equal(a.Info.TotalLength, handle.GetStats().TotalLength);
        Assert.True(handle.MetadataReady.IsCompletedSuccessfully);
        Assert.Same(a.Info, swarm.Run(() => handle.MetadataReady));
        Assert.Contains(handle, client.Torrents);

        swarm.Run(() => handle.ResumeAsync());
        Assert.Equal(TorrentState.Downloading, handle.State);
        Assert.NotNull(handle.Session);
        Assert.True(File.Exists(file));
    });

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TorrentClientOptions { MaxConnections = 0 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new TorrentClientOptions { DownloadRateLimit = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => new TorrentClient([], new TorrentClientOptions(), new MemoryStorageFactory(), TimeProvider.System));
    }
}
