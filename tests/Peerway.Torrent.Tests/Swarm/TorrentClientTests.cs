using Peerway.Net;
using System.Net;
using System.Security.Cryptography;
using Peerway.Core;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// <see cref="TorrentClient"/>: several torrents on one port, routed by info-hash (plain) or SKEY (MSE), one connection
/// limit across torrents, removal at run time, two clients in one process; pieces kept in memory (no disk).
/// </summary>
public sealed class TorrentClientTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-client-").FullName;
    private readonly List<IAsyncDisposable> _disposables = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--) await _disposables[i].DisposeAsync();
        Directory.Delete(_dir, true);
    }

    /// <summary>A torrent of random content (its .torrent made from a file, then kept only in memory).</summary>
    private async Task<(TorrentMetainfo Meta, byte[] Content)> MakeTorrent(string name, int size, int pieceLength = 32 * 1024)
    {
        var path = Path.Combine(_dir, name);
        var content = RandomNumberGenerator.GetBytes(size);
        await File.WriteAllBytesAsync(path, content);
        var bytes = await TorrentCreator.CreateAsync(path, new TorrentCreateOptions { PieceLength = pieceLength });
        File.Delete(path);
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        return (meta!, content);
    }

    private async Task<TorrentClient> StartClient(ITorrentStorageFactory storage, TorrentClientOptions? options = null)
    {
        var client = new TorrentClient([new TcpStreamTransport()], options ?? new TorrentClientOptions { ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, 0)] },
            storage, TimeProvider.System);
        _disposables.Add(client);
        await client.StartAsync(CancellationToken.None);
        return client;
    }

    private static TorrentAddOptions Seeding => new() { SeedOnly = true };

    private static TorrentAddOptions From(TorrentClient seeder) => new() { Peers = [new IPEndPoint(IPAddress.Loopback, seeder.Port)] };

    [Fact]
    public async Task Two_torrents_on_one_client_and_one_port_are_both_served_to_a_second_client()
    {
        var (a, contentA) = await MakeTorrent("a.bin", 300_000);
        var (b, contentB) = await MakeTorrent("b.bin", 200_000);
        var seedStore = new MemoryStorageFactory();
        seedStore.Add(a.Info, contentA);
        seedStore.Add(b.Info, contentB);
        var seeder = await StartClient(seedStore);
        await seeder.AddAsync(a, "seed", Seeding);
        await seeder.AddAsync(b, "seed", Seeding);
        Assert.Single(seeder.LocalEndPoints);

        var leechStore = new MemoryStorageFactory();
        var leecher = await StartClient(leechStore);
        // One by magnet link (metadata over BEP 9), one by .torrent; both dial the seeder's one port (MSE first: Prefer).
        var gotA = await leecher.AddAsync(new MagnetLink(a.InfoHash, null, [], []), "dl", From(seeder));
        var gotB = await leecher.AddAsync(b, "dl", From(seeder));
        await Task.WhenAll(gotA.Completed, gotB.Completed).WaitAsync(Deadline);

        Assert.Equal(contentA, leechStore.Get(a.InfoHash)!.ToArray());
        Assert.Equal(contentB, leechStore.Get(b.InfoHash)!.ToArray());
        Assert.Equal(TorrentState.Seeding, gotA.State);
        Assert.Equal(a.Info.Name, gotA.Info!.Name);
        Assert.All(seeder.Torrents, t => Assert.True(t.GetStats().Uploaded > 0, $"{t.Info!.Name} uploaded nothing"));
    }

    [Fact]
    public async Task Two_clients_in_one_process_each_download_what_the_other_seeds()
    {
        var (a, contentA) = await MakeTorrent("a.bin", 100_000);
        var (b, contentB) = await MakeTorrent("b.bin", 100_000);
        var storeX = new MemoryStorageFactory();
        var storeY = new MemoryStorageFactory();
        storeX.Add(a.Info, contentA);
        storeY.Add(b.Info, contentB);
        var x = await StartClient(storeX);
        var y = await StartClient(storeY);
        Assert.NotEqual(x.Port, y.Port);
        await x.AddAsync(a, "x", Seeding);
        await y.AddAsync(b, "y", Seeding);

        var bAtX = await x.AddAsync(b, "x", From(y));
        var aAtY = await y.AddAsync(a, "y", From(x));
        await Task.WhenAll(bAtX.Completed, aAtY.Completed).WaitAsync(Deadline);

        Assert.Equal(contentB, storeX.Get(b.InfoHash)!.ToArray());
        Assert.Equal(contentA, storeY.Get(a.InfoHash)!.ToArray());
    }

    [Fact]
    public async Task An_incoming_handshake_for_an_unknown_info_hash_is_dropped_alone()
    {
        var (a, contentA) = await MakeTorrent("a.bin", 64 * 1024);
        var store = new MemoryStorageFactory();
        store.Add(a.Info, contentA);
        var seeder = await StartClient(store);
        var handle = await seeder.AddAsync(a, "seed", Seeding);
        var at = new IPEndPoint(IPAddress.Loopback, seeder.Port);

        await using var good = await WireClient.ConnectAsync(at);
        await good.SendHandshakeAsync(a.InfoHash);
        await good.HandshakeReceived.Task.WaitAsync(Deadline);

        // A plain handshake naming no torrent of this client: closed without an answer.
        await using var stranger = await WireClient.ConnectAsync(at);
        await stranger.SendHandshakeAsync(NodeId.Random());
        await stranger.Closed.Task.WaitAsync(Deadline);
        Assert.False(stranger.HandshakeReceived.Task.IsCompleted);

        // MSE with an SKEY (info-hash) of no torrent here: the responder finds no req2 match and drops it.
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(at);
        try
        {
            var mse = await MseNegotiator.InitiateAsync(tcp.GetStream(), NodeId.Random().ToArray(), EncryptionPolicy.Require, CancellationToken.None).WaitAsync(Deadline);
            Assert.False(mse.Succeeded);
        }
        catch (IOException)
        {
            // Closed with our bytes unread: a reset, equally a refusal.
        }

        // The torrent's own peer is unaffected: it still gets a block.
        await good.InterestedAsync(Deadline);
        await good.DownloadBlockAsync(0, 0, 16 * 1024, Deadline);
        Assert.Equal(1, handle.GetStats().Connections);
    }

    [Fact]
    public async Task The_connection_limit_is_shared_across_torrents_and_a_torrent_only_drops_its_own_peers()
    {
        var (a, contentA) = await MakeTorrent("a.bin", 64 * 1024);
        var (b, contentB) = await MakeTorrent("b.bin", 64 * 1024);
        var store = new MemoryStorageFactory();
        store.Add(a.Info, contentA);
        store.Add(b.Info, contentB);
        var seeder = await StartClient(store, new TorrentClientOptions { ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, 0)], MaxConnections = 2 });
        var torrentA = await seeder.AddAsync(a, "seed", Seeding);
        var torrentB = await seeder.AddAsync(b, "seed", Seeding);
        var at = new IPEndPoint(IPAddress.Loopback, seeder.Port);
        var most = 0;
        var registered = new Dictionary<NodeId, TaskCompletionSource>();
        void Watch(TorrentSession s) => s.PeerConnected += id =>
        {
            lock (registered)
            {
                most = Math.Max(most, seeder.ConnectionCount);
                registered[id].TrySetResult();
            }
        };
        Watch(torrentA.Session!);
        Watch(torrentB.Session!);

        async Task<WireClient> Join(NodeId infoHash)
        {
            var peer = await WireClient.ConnectAsync(at);
            _disposables.Add(peer);
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (registered) registered[peer.PeerId] = done;
            await peer.SendHandshakeAsync(infoHash);
            await done.Task.WaitAsync(Deadline);
            return peer;
        }

        var first = await Join(a.InfoHash);
        var other = await Join(b.InfoHash);
        Assert.Equal(2, seeder.ConnectionCount);

        // A third peer, for A, while the client is full: A makes room from its own (idle) peer, never from B's.
        var third = await Join(a.InfoHash);
        await first.Closed.Task.WaitAsync(Deadline);
        Assert.Equal(2, seeder.ConnectionCount);
        Assert.Equal(2, most);
        Assert.False(other.Closed.Task.IsCompleted);
        Assert.False(third.Closed.Task.IsCompleted);
        Assert.Equal(1, torrentB.GetStats().Connections);
    }

    [Fact]
    public async Task Removing_a_torrent_at_run_time_closes_its_peers_only()
    {
        var (a, contentA) = await MakeTorrent("a.bin", 100_000);
        var (b, contentB) = await MakeTorrent("b.bin", 100_000);
        var seedStore = new MemoryStorageFactory();
        seedStore.Add(a.Info, contentA);
        seedStore.Add(b.Info, contentB);
        var seeder = await StartClient(seedStore);
        var seedA = await seeder.AddAsync(a, "seed", Seeding);
        var seedB = await seeder.AddAsync(b, "seed", Seeding);
        var leecher = await StartClient(new MemoryStorageFactory());
        var gotA = await leecher.AddAsync(a, "dl", From(seeder));
        var gotB = await leecher.AddAsync(b, "dl", From(seeder));
        await Task.WhenAll(gotA.Completed, gotB.Completed).WaitAsync(Deadline);

        var aLeft = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var bLeft = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        seedA.Session!.PeerDisconnected += _ => aLeft.TrySetResult();
        seedB.Session!.PeerDisconnected += _ => bLeft.TrySetResult();
        Assert.Equal(1, seedB.GetStats().Connections);
        var states = new List<TorrentState>();
        gotA.StateChanged += (_, s) => states.Add(s);

        await gotA.RemoveAsync();
        await aLeft.Task.WaitAsync(Deadline);

        Assert.Equal(TorrentState.Removed, gotA.State);
        Assert.Equal(new[] { TorrentState.Removed }, states);
        Assert.Single(leecher.Torrents);
        Assert.False(bLeft.Task.IsCompleted);
        Assert.Equal(1, seedB.GetStats().Connections);
        Assert.Equal(1, gotB.GetStats().Connections);
        Assert.Equal(1, leecher.ConnectionCount);
    }

    [Fact]
    public async Task A_paused_torrent_closes_its_peers_and_resumes_with_what_it_had()
    {
        var (a, contentA) = await MakeTorrent("a.bin", 100_000);
        var seedStore = new MemoryStorageFactory();
        seedStore.Add(a.Info, contentA);
        var seeder = await StartClient(seedStore);
        var seedA = await seeder.AddAsync(a, "seed", Seeding);
        var leecher = await StartClient(new MemoryStorageFactory());
        var got = await leecher.AddAsync(new MagnetLink(a.InfoHash, null, [], []), "dl", From(seeder));
        await got.Completed.WaitAsync(Deadline);
        var left = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        seedA.Session!.PeerDisconnected += _ => left.TrySetResult();

        await got.PauseAsync();
        await left.Task.WaitAsync(Deadline);
        Assert.Equal(TorrentState.Paused, got.State);
        Assert.Null(got.Session);
        Assert.Equal(0, leecher.ConnectionCount);

        await got.ResumeAsync();
        // The metadata fetched before the pause is kept: the storage reopens complete at once.
        Assert.Equal(TorrentState.Seeding, got.State);
        Assert.Equal(a.Info.PieceCount, got.GetStats().VerifiedPieces);
    }

    [Fact]
    public async Task A_torrent_added_paused_opens_no_storage_until_started()
    {
        var (a, _) = await MakeTorrent("a.bin", 100_000);
        var client = await StartClient(new FileStorageFactory(new FileStorageOptions(), TimeProvider.System));
        var saveDir = Path.Combine(_dir, "dl");

        var handle = await client.AddAsync(a, saveDir, new TorrentAddOptions { Paused = true });
        // As libtorrent's torrent_flags::paused: no engine, no file created, but the size and files are known.
        Assert.Equal(TorrentState.Paused, handle.State);
        Assert.Null(handle.Session);
        Assert.False(File.Exists(Path.Combine(saveDir, "a.bin")));
        Assert.Equal(a.Info.TotalLength, handle.GetStats().TotalLength);
        Assert.Same(a.Info, await handle.MetadataReady.WaitAsync(Deadline));
        Assert.Contains(handle, client.Torrents);

        await handle.ResumeAsync();
        Assert.Equal(TorrentState.Downloading, handle.State);
        Assert.NotNull(handle.Session);
        Assert.True(File.Exists(Path.Combine(saveDir, "a.bin")));
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TorrentClientOptions { MaxConnections = 0 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new TorrentClientOptions { DownloadRateLimit = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => new TorrentClient([], new TorrentClientOptions(), new MemoryStorageFactory(), TimeProvider.System));
    }
}
