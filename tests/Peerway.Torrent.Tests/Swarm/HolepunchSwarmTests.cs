using System.Net;
using System.Security.Cryptography;
using Peerway.Core;
using Peerway.Net;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Utp;
using Peerway.Torrent.Encryption;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// BEP 55 hole punching (issue 15 item 4) over a <see cref="VirtualNetwork"/>: a leecher A and a seeder C each behind a
/// port-restricted cone NAT (RFC 4787: endpoint-independent mapping, address-and-port-dependent filtering; the NAT
/// picks its own external port), and a public relay R both dial. R's PEX tells A and C of each other's listen
/// endpoint (public address, BEP 10 "p"), which no NAT mapping answers to, so their direct dials die in the other's
/// NAT. With ut_holepunch, the failed dial makes A (and C) ask R for a rendezvous; R names to each the other's uTP
/// mapping (the endpoint their packets reach R from), the simultaneous uTP connect gets through, and A downloads
/// from C. Each client speaks uTP only (a TCP SYN cannot be punched).
/// </summary>
public sealed class HolepunchSwarmTests : IAsyncLifetime, IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private const int Port = 6881;
    private readonly PumpDeliveryScheduler _scheduler = new(TimeProvider.System);
    private readonly VirtualNetwork _net;
    private readonly List<IAsyncDisposable> _disposables = [];

    public HolepunchSwarmTests() => _net = new VirtualNetwork(_scheduler);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--) await _disposables[i].DisposeAsync();
        Assert.Equal(0, _scheduler.Faults);
    }

    public void Dispose() => _scheduler.Dispose();

    private static async Task<TorrentMetainfo> MakeTorrentAsync(byte[] content)
    {
        var dir = Directory.CreateTempSubdirectory("pw-holepunch-").FullName;
        try
        {
            var path = Path.Combine(dir, "content.bin");
            await File.WriteAllBytesAsync(path, content);
            var bytes = await TorrentCreator.CreateAsync(path, new TorrentCreateOptions { PieceLength = 32 * 1024 });
            Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
            return meta!;
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>A port-restricted cone NAT in front of 10.0.N.0/24 with public address 203.0.113.N.</summary>
    private VirtualNat Nat(int n) => _net.AddNat(IPAddress.Parse($"203.0.113.{n}"), IPNetwork.Parse($"10.0.{n}.0/24"), new VirtualNatOptions
    {
        Mapping = NatMappingBehavior.EndpointIndependent,
        Filtering = NatFilteringBehavior.AddressAndPortDependent,
    });

    private async Task<TorrentClient> ClientAsync(VirtualDatagramSocket socket, ITorrentStorageFactory storage, long? downloadLimit = null)
    {
        var utp = new UtpTransport(socket, TimeProvider.System, new UtpOptions());
        var options = new TorrentClientOptions { ListenEndPoints = [socket.LocalEndPoint], Encryption = EncryptionPolicy.Off, DownloadRateLimit = downloadLimit };
        var client = new TorrentClient([utp], options, storage, TimeProvider.System);
        _disposables.Add(utp);
        _disposables.Add(client);
        await client.StartAsync(CancellationToken.None);
        return client;
    }

    private static TorrentAddOptions Options(bool holepunch, bool seed = false, IPEndPoint? peer = null) => new()
    {
        SeedOnly = seed,
        Peers = peer is null ? [] : [peer],
        // PEX every second instead of every minute, and short dials: the test's world is small and has no latency.
        Session = new TorrentSessionOptions { Holepunch = holepunch, PexInterval = TimeSpan.FromSeconds(1), ConnectTimeout = TimeSpan.FromSeconds(2), RedialDelay = TimeSpan.FromSeconds(1) },
    };

    private sealed record World(TorrentHandle Leecher, TorrentHandle Seeder, TorrentHandle Relay, MemoryStorageFactory LeecherStore, TorrentMetainfo Meta, byte[] Content, NodeId SeederId);

    private async Task<World> BuildAsync(bool holepunch)
    {
        var content = RandomNumberGenerator.GetBytes(1_000_000);
        var meta = await MakeTorrentAsync(content);
        var relayAt = new IPEndPoint(IPAddress.Parse("198.51.100.1"), Port);
        // The relay joins the swarm as a leecher held to 1 KiB/s, so it has next to nothing to pass on: A's download
        // has to come from C.
        var relay = await ClientAsync(_net.CreateSocket(relayAt), new MemoryStorageFactory(), downloadLimit: 1024);
        var relayHandle = await relay.AddAsync(meta, "relay", Options(holepunch));

        var seedStore = new MemoryStorageFactory();
        seedStore.Add(meta.Info, content);
        var natC = Nat(20);
        var seeder = await ClientAsync(natC.CreateSocket(new IPEndPoint(IPAddress.Parse("10.0.20.2"), Port)), seedStore);
        var seedHandle = await seeder.AddAsync(meta, "seed", Options(holepunch, seed: true, peer: relayAt));

        var leechStore = new MemoryStorageFactory();
        var natA = Nat(10);
        var leecher = await ClientAsync(natA.CreateSocket(new IPEndPoint(IPAddress.Parse("10.0.10.2"), Port)), leechStore);
        var leechHandle = await leecher.AddAsync(meta, "leech", Options(holepunch, peer: relayAt));
        return new World(leechHandle, seedHandle, relayHandle, leechStore, meta, content, seeder.PeerId);
    }

    [Fact]
    public async Task Two_peers_behind_port_restricted_cone_nats_download_from_each_other_after_the_relay_punches_a_hole()
    {
        var world = await BuildAsync(holepunch: true);
        var punched = new TaskCompletionSource<IPEndPoint>(TaskCreationOptions.RunContinuationsAsynchronously);
        world.Leecher.Session!.HolepunchConnected += ep => punched.TrySetResult(ep);
        world.Seeder.Session!.HolepunchConnected += ep => punched.TrySetResult(ep);

        await world.Leecher.Completed.WaitAsync(Deadline);

        Assert.Equal(world.Content, world.LeecherStore.Get(world.Meta.InfoHash)!.ToArray());
        // The seeder is reachable only through the punched hole, and data came from it.
        var fromSeeder = world.Leecher.GetStats().ReceivedByPeerId.GetValueOrDefault(world.SeederId);
        Assert.True(fromSeeder > world.Content.Length / 2, $"only {fromSeeder} bytes came from the seeder behind its NAT");
        Assert.True(world.Relay.Session!.HolepunchCounters.Relayed >= 1);
        Assert.True(world.Leecher.Session.HolepunchCounters.RendezvousSent + world.Seeder.Session.HolepunchCounters.RendezvousSent >= 1);
        var punchedTo = await punched.Task.WaitAsync(Deadline);
        Assert.Contains(punchedTo.Address, new[] { IPAddress.Parse("203.0.113.10"), IPAddress.Parse("203.0.113.20") });
        Assert.NotEqual(Port, punchedTo.Port); // the NAT's mapping, not the listen port PEX gave
    }

    [Fact]
    public async Task Without_holepunch_the_direct_dial_dies_in_the_nat_and_no_rendezvous_is_sent()
    {
        var world = await BuildAsync(holepunch: false);
        var failed = new TaskCompletionSource<IPEndPoint>(TaskCreationOptions.RunContinuationsAsynchronously);
        var seederAt = new IPEndPoint(IPAddress.Parse("203.0.113.20"), Port);
        world.Leecher.Session!.DialFailed += ep =>
        {
            if (ep.Equals(seederAt)) failed.TrySetResult(ep);
        };

        await failed.Task.WaitAsync(Deadline);

        Assert.Equal(0, world.Leecher.Session.HolepunchCounters.RendezvousSent);
        Assert.Equal(0, world.Relay.Session!.HolepunchCounters.Relayed);
        Assert.Equal(0, world.Leecher.GetStats().ReceivedByPeerId.GetValueOrDefault(world.SeederId));
    }
}
