using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Peerway.Core;
using Peerway.Net;
using Peerway.Torrent.Lsd;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;

namespace Peerway.Torrent.Tests.Lsd;

/// <summary>
/// <see cref="LocalDiscovery"/> over an in-memory multicast group (each datagram delivered to every member, the sender
/// included, from the sender's address, as IP multicast with loop on): two clients find each other and the download
/// completes; own announces, unknown torrents, private torrents and floods. The real group is tested in namespaces
/// (Interop: LsdNamespaceTests).
/// </summary>
public sealed class LocalDiscoveryTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-lsd-").FullName;
    private readonly List<IAsyncDisposable> _disposables = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--) await _disposables[i].DisposeAsync();
        Directory.Delete(_dir, true);
    }

    /// <summary>An in-memory multicast group: a member's send reaches every member, itself included.</summary>
    private sealed class Group
    {
        private readonly List<Member> _members = [];

        public Member Join(IPAddress address)
        {
            var m = new Member(this, address);
            lock (_members) _members.Add(m);
            return m;
        }

        public void Deliver(ReadOnlySpan<byte> datagram, IPEndPoint from)
        {
            Member[] members;
            lock (_members) members = [.. _members];
            foreach (var m in members) m.Receive(datagram, from);
        }

        public sealed class Member(Group group, IPAddress address) : IDatagramSocket
        {
            private readonly Lock _gate = new();
            private DatagramHandler? _handler;

            public IPEndPoint LocalEndPoint { get; } = new(address, 6771);

            public int Sent;

            /// <summary>Released once per datagram sent (the resend tasks run after the fake clock's timers fire).</summary>
            public SemaphoreSlim Sends { get; } = new(0);

            public void Start(DatagramHandler handler) => _handler = handler;

            public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
            {
                Interlocked.Increment(ref Sent);
                group.Deliver(datagram, LocalEndPoint);
                Sends.Release();
            }

            public void Receive(ReadOnlySpan<byte> datagram, IPEndPoint from)
            {
                // Serial per socket, as IDatagramSocket promises.
                lock (_gate) _handler?.Invoke(datagram, from);
            }

            public void Dispose() => _handler = null;
        }
    }

    private async Task<(TorrentMetainfo Meta, byte[] Content)> MakeTorrentAsync(int size, bool isPrivate = false)
    {
        var path = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        var content = RandomNumberGenerator.GetBytes(size);
        await File.WriteAllBytesAsync(path, content);
        var bytes = await TorrentCreator.CreateAsync(path, new TorrentCreateOptions { PieceLength = 32 * 1024, Private = isPrivate });
        File.Delete(path);
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        return (meta!, content);
    }

    private async Task<TorrentClient> StartClientAsync(ITorrentStorageFactory storage)
    {
        var client = new TorrentClient([new TcpStreamTransport()], new TorrentClientOptions { ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, 0)] }, storage, TimeProvider.System);
        _disposables.Add(client);
        await client.StartAsync(CancellationToken.None);
        return client;
    }

    private LocalDiscovery Discover(TorrentClient client, Group.Member socket, TimeProvider? time = null, LocalDiscoveryOptions? options = null)
    {
        var lsd = new LocalDiscovery(client, [new LsdChannel(socket, LsdCodec.GroupV4)], time ?? TimeProvider.System, options);
        _disposables.Add(lsd);
        lsd.Start();
        return lsd;
    }

    /// <summary>A client seeding one torrent, with LSD on a fake clock (50 datagrams a second at most).</summary>
    private async Task<(TorrentMetainfo Meta, FakeTimeProvider Time, Group Group, Group.Member Socket, LocalDiscovery Lsd)> SeedWithLsdAsync(bool isPrivate = false)
    {
        var (meta, content) = await MakeTorrentAsync(100_000, isPrivate);
        var store = new MemoryStorageFactory();
        store.Add(meta.Info, content);
        var client = await StartClientAsync(store);
        var time = new FakeTimeProvider();
        var group = new Group();
        var socket = group.Join(IPAddress.Loopback);
        var lsd = Discover(client, socket, time, new LocalDiscoveryOptions { MaxDatagramsPerSecond = 50 });
        await client.AddAsync(meta, "seed", new TorrentAddOptions { SeedOnly = true });
        return (meta, time, group, socket, lsd);
    }

    [Fact]
    public async Task Two_clients_find_each_other_by_their_announces_and_the_download_completes()
    {
        var (meta, content) = await MakeTorrentAsync(300_000);
        var group = new Group();
        var seedStore = new MemoryStorageFactory();
        seedStore.Add(meta.Info, content);
        var seeder = await StartClientAsync(seedStore);
        var seedLsd = Discover(seeder, group.Join(IPAddress.Loopback));
        await seeder.AddAsync(meta, "seed", new TorrentAddOptions { SeedOnly = true });

        var leechStore = new MemoryStorageFactory();
        var leecher = await StartClientAsync(leechStore);
        var leechLsd = Discover(leecher, group.Join(IPAddress.Loopback));
        // No peers given: the leecher's announce on add reaches the seeder, which dials it (and the other way round).
        var handle = await leecher.AddAsync(meta, "dl");
        await handle.Completed.WaitAsync(Deadline);

        Assert.Equal(content, leechStore.Get(meta.InfoHash)!.ToArray());
        // The seeder announced before the leecher joined: only the leecher's announce found a peer.
        Assert.True(seedLsd.Stats.PeersAdded > 0, $"seeder {seedLsd.Stats}, leecher {leechLsd.Stats}");
        Assert.True(leechLsd.Stats.OwnIgnored > 0, "the leecher's own looped-back announce was not recognised by its cookie");
        Assert.NotEqual(seedLsd.Cookie, leechLsd.Cookie);
    }

    [Fact]
    public async Task Unknown_torrents_malformed_datagrams_and_floods_cost_a_bounded_amount_and_add_no_peer()
    {
        var (meta, time, group, _, lsd) = await SeedWithLsdAsync();
        var stranger = new IPEndPoint(IPAddress.Parse("127.0.0.9"), 6771);
        var buffer = new byte[LsdCodec.MaxMessageSize];
        var n = LsdCodec.Encode("239.192.152.143:6771", 1234, [NodeId.Random()], "abc", buffer);
        for (var i = 0; i < 30; i++) group.Deliver(buffer.AsSpan(0, n), stranger);
        for (var i = 0; i < 10; i++) group.Deliver("BT-SEARCH * HTTP/1.1\r\nnope\r\n\r\n"u8, stranger);
        // The rest of this second's flood is dropped before decoding, even announces for our torrent.
        n = LsdCodec.Encode("239.192.152.143:6771", 1234, [meta.InfoHash], "abc", buffer);
        for (var i = 0; i < 1000; i++) group.Deliver(buffer.AsSpan(0, n), stranger);
        var s = lsd.Stats;
        Assert.Equal(30, s.UnknownTorrents);
        Assert.Equal(10, s.Malformed);
        Assert.True(s.Flooded >= 1000 - 10 - 1, s.ToString()); // our own announce on add may have taken one slot
        Assert.True(s.PeersAdded <= 10, s.ToString());

        // A second later announces are read again.
        time.Advance(TimeSpan.FromSeconds(1));
        var before = lsd.Stats.PeersAdded;
        group.Deliver(buffer.AsSpan(0, n), stranger);
        Assert.Equal(before + 1, lsd.Stats.PeersAdded);
    }

    [Fact]
    public async Task A_private_torrent_is_neither_announced_nor_given_peers_by_lsd()
    {
        var (meta, time, group, socket, lsd) = await SeedWithLsdAsync(isPrivate: true);
        time.Advance(TimeSpan.FromMinutes(11));
        Assert.Equal(0, socket.Sent);
        var buffer = new byte[LsdCodec.MaxMessageSize];
        var n = LsdCodec.Encode("239.192.152.143:6771", 1234, [meta.InfoHash], "abc", buffer);
        group.Deliver(buffer.AsSpan(0, n), new IPEndPoint(IPAddress.Parse("127.0.0.9"), 6771));
        Assert.Equal(0, lsd.Stats.PeersAdded);
        Assert.Equal(1, lsd.Stats.UnknownTorrents);
    }

    [Fact]
    public async Task A_torrent_is_announced_on_add_twice_more_then_every_interval_and_no_more()
    {
        var (_, time, _, socket, lsd) = await SeedWithLsdAsync();
        Assert.True(await socket.Sends.WaitAsync(Deadline));
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(await socket.Sends.WaitAsync(Deadline));
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.True(await socket.Sends.WaitAsync(Deadline));
        Assert.Equal(3, socket.Sent);
        time.Advance(TimeSpan.FromMinutes(4));
        Assert.Equal(3, socket.Sent);
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(await socket.Sends.WaitAsync(Deadline));
        Assert.Equal(4, socket.Sent);
        Assert.Equal(4, lsd.Stats.OwnIgnored);
    }
}
