using System.Net;
using System.Security.Cryptography;
using Peerway.Core;
using Peerway.Net;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// Connection admission (issue 20, "idle connections cannot lock a seeder out"): the handshake timeout, the inactivity
/// timeout, the per-IP limit and the eviction rule, each against a seeding <see cref="TorrentClient"/> in a
/// <see cref="SimulatedSwarm"/> with raw wire clients (<see cref="WireClient"/>): virtual network, memory storage, fake
/// clock (timeouts move only when the swarm runs virtual time), one thread.
/// </summary>
public sealed class ConnectionLimitTests
{
    private static readonly byte[] Payload = RandomNumberGenerator.GetBytes(256 * 1024);
    private static readonly TorrentMetainfo Meta = SimulatedSwarm.MakeTorrent(Payload, 32 * 1024);

    /// <summary>A seeding client whose connection limits are <paramref name="options"/>' (what a session alone used to
    /// apply on its own port; in a client the limit, the per-IP limit and the handshake timeout are the client's).</summary>
    private static (SimulatedSwarm.Peer Peer, TorrentHandle Handle) Seeder(SimulatedSwarm swarm, TorrentSessionOptions options)
    {
        var peer = swarm.AddPeer(options: new TorrentClientOptions
        {
            Encryption = EncryptionPolicy.Prefer,
            MaxConnections = options.MaxConnections,
            MaxConnectionsPerIp = options.MaxConnectionsPerIp,
            HandshakeTimeout = options.HandshakeTimeout,
        });
        return (peer, peer.Seed(Meta, Payload, new TorrentAddOptions { Session = options }));
    }

    /// <summary>A client that completed the handshake and was registered by the session (its PeerConnected event).</summary>
    private static WireClient Registered(SimulatedSwarm swarm, TorrentHandle seeder, IPEndPoint target, VirtualStreamEndpoint? from = null)
    {
        var c = swarm.Wire(target, from);
        var registered = false;
        seeder.Session!.PeerConnected += id => registered |= id == c.PeerId;
        swarm.Run(() => c.SendHandshakeAsync(Meta.InfoHash));
        swarm.Wait(() => registered || c.Closed.Task.IsCompleted, "the session neither registered nor closed the peer");
        Assert.True(registered, "the session closed the connection instead of registering the peer");
        return c;
    }

    private static void Interested(SimulatedSwarm swarm, WireClient c)
    {
        swarm.Run(() => c.SendAsync(w => PeerWire.WriteSimple(w, PeerMessageType.Interested)));
        swarm.Wait(c.Unchoked.Task, "an interested peer was not unchoked");
    }

    private static void DownloadBlock(SimulatedSwarm swarm, WireClient c, int piece, int begin)
    {
        var before = c.PiecesReceived;
        swarm.Run(() => c.SendAsync(w => PeerWire.WriteBlockMessage(w, PeerMessageType.Request, piece, begin, 16384)));
        swarm.Wait(() => c.PiecesReceived > before, $"block {piece}/{begin} did not arrive");
    }

    /// <summary>A registered client that has downloaded two blocks: payload moved, so it counts as transferring.</summary>
    private static WireClient Downloader(SimulatedSwarm swarm, TorrentHandle seeder, IPEndPoint target)
    {
        var c = Registered(swarm, seeder, target);
        Interested(swarm, c);
        DownloadBlock(swarm, c, 0, 0);
        DownloadBlock(swarm, c, 0, 16384);
        return c;
    }

    /// <summary>Sends a handshake and runs until the seeder closes the connection without answering it.</summary>
    private static void Refused(SimulatedSwarm swarm, WireClient c)
    {
        swarm.Run(() => c.SendHandshakeAsync(Meta.InfoHash));
        swarm.Wait(c.Closed.Task, "the connection was not closed");
        Assert.False(c.HandshakeReceived.Task.IsCompleted);
    }

    [Fact]
    public void A_connection_that_does_not_complete_the_handshake_is_closed_after_the_handshake_timeout_on_the_session_clock() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        // The dial timeout is an hour: the handshake has its own limit, and it runs on the session's clock.
        var (seeder, handle) = Seeder(swarm, new TorrentSessionOptions { HandshakeTimeout = TimeSpan.FromSeconds(10), ConnectTimeout = TimeSpan.FromHours(1) });
        var admitted = false;
        seeder.Client.IncomingAdmitted += _ => admitted = true;
        var slow = swarm.Wire(seeder.EndPoint);
        swarm.Wait(() => admitted, "the connection was not admitted");
        // 20 of the 68 bytes, then nothing.
        swarm.Run(() => slow.SendHandshakeAsync(Meta.InfoHash, bytes: 20));
        swarm.RunFor(TimeSpan.FromSeconds(9));
        Assert.False(slow.Closed.Task.IsCompleted);
        swarm.Wait(slow.Closed.Task, "the stalled handshake was not closed", TimeSpan.FromSeconds(2));
        Assert.False(slow.HandshakeReceived.Task.IsCompleted);
        Assert.Equal(0, handle.GetStats().Connections);

        // A peer that completes its handshake in time is registered as usual.
        Registered(swarm, handle, seeder.EndPoint);
        Assert.Equal(1, handle.GetStats().Connections);
    });

    [Fact]
    public void An_mse_handshake_that_stalls_is_closed_by_the_same_handshake_timeout_on_the_session_clock() => SimulatedSwarm.OnDeepStack(() =>
    {
        // Admission happens on the bare connection, before MSE: the negotiation counts against the handshake timeout
        // from that moment, on the session's clock (not the hour-long dial timeout, not the wall clock).
        using var swarm = new SimulatedSwarm();
        var (seeder, handle) = Seeder(swarm, new TorrentSessionOptions { HandshakeTimeout = TimeSpan.FromSeconds(10), ConnectTimeout = TimeSpan.FromHours(1) });
        var admitted = false;
        seeder.Client.IncomingAdmitted += _ => admitted = true;
        var slow = swarm.Wire(seeder.EndPoint);
        swarm.Wait(() => admitted, "the connection was not admitted");
        // A 96-byte DH public key (Ya: not a plain handshake, whose first byte is 19), then nothing.
        var ya = RandomNumberGenerator.GetBytes(96);
        ya[0] = 0x80;
        swarm.Run(() => slow.SendAsync(w => System.Buffers.BuffersExtensions.Write(w, ya)));
        swarm.RunFor(TimeSpan.FromSeconds(9));
        Assert.False(slow.Closed.Task.IsCompleted);
        swarm.Wait(slow.Closed.Task, "the stalled MSE handshake was not closed", TimeSpan.FromSeconds(2));
        Assert.Equal(0, handle.GetStats().Connections);
    });

    [Fact]
    public void Silent_connections_filling_the_handshake_slots_make_way_for_a_real_peer_once_they_have_had_a_second() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (seeder, handle) = Seeder(swarm, new TorrentSessionOptions { MaxConnections = 2 });
        var admitted = 0;
        seeder.Client.IncomingAdmitted += _ => admitted++;
        var silent = new[] { swarm.Wire(seeder.EndPoint), swarm.Wire(seeder.EndPoint) };
        swarm.Wait(() => admitted == 2, "the silent connections were not admitted");

        // Both handshake slots are taken by connections younger than a second: a newcomer is refused, not given the
        // power to close a handshake that may be on its way.
        Refused(swarm, swarm.Wire(seeder.EndPoint));

        // A second later the oldest silent one goes and a real peer gets in.
        swarm.RunFor(TimeSpan.FromSeconds(1));
        Registered(swarm, handle, seeder.EndPoint);
        swarm.Wait(silent[0].Closed.Task, "the oldest silent connection was not closed");
        Assert.False(silent[1].Closed.Task.IsCompleted);
    });

    /// <summary>libtorrent's rule: the inactivity timeout applies only while every connection slot is used.</summary>
    [Theory]
    [InlineData(2, true)]
    [InlineData(3, false)]
    public void A_peer_neither_interested_nor_interesting_is_closed_after_the_inactivity_timeout_while_the_session_is_full(int maxConnections, bool full) => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var options = new TorrentSessionOptions { MaxConnections = maxConnections, InactivityTimeout = TimeSpan.FromSeconds(60), IdleTimeout = TimeSpan.FromHours(1) };
        var (seeder, handle) = Seeder(swarm, options);
        var idle = Registered(swarm, handle, seeder.EndPoint);
        var wanting = Registered(swarm, handle, seeder.EndPoint);
        Interested(swarm, wanting);
        swarm.RunFor(TimeSpan.FromSeconds(59));
        Assert.Equal(2, handle.GetStats().Connections);
        swarm.RunFor(TimeSpan.FromSeconds(61));
        Assert.Equal(full ? 1 : 2, handle.GetStats().Connections);
        Assert.Equal(full, idle.Closed.Task.IsCompleted);
        Assert.False(wanting.Closed.Task.IsCompleted);
    });

    [Fact]
    public void Connections_from_one_address_beyond_the_per_ip_limit_are_refused_and_other_addresses_still_get_in() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (seeder, handle) = Seeder(swarm, new TorrentSessionOptions { MaxConnectionsPerIp = 3 });
        var host = swarm.Network.AddEndpoint();
        var admitted = new List<WireClient>();
        for (var i = 0; i < 3; i++) admitted.Add(Registered(swarm, handle, seeder.EndPoint, host));
        for (var i = 0; i < 3; i++) Refused(swarm, swarm.Wire(seeder.EndPoint, host));

        Assert.Equal(3, handle.GetStats().Connections);
        Assert.All(admitted, c => Assert.False(c.Closed.Task.IsCompleted));
        Registered(swarm, handle, seeder.EndPoint, swarm.Network.AddEndpoint());
        Assert.Equal(4, handle.GetStats().Connections);
    });

    [Fact]
    public void A_full_session_drops_its_idle_peer_then_its_longest_waiting_interested_peer_for_newcomers_never_a_downloading_one() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (seeder, handle) = Seeder(swarm, new TorrentSessionOptions { MaxConnections = 3 });
        var downloading = Downloader(swarm, handle, seeder.EndPoint);
        var waiting = Registered(swarm, handle, seeder.EndPoint);
        Interested(swarm, waiting);
        swarm.RunFor(TimeSpan.FromSeconds(1));
        var idle = Registered(swarm, handle, seeder.EndPoint);

        // Full: the newcomer takes the idle peer's place.
        var first = Registered(swarm, handle, seeder.EndPoint);
        swarm.Wait(idle.Closed.Task, "the idle peer was not dropped");
        Assert.Equal(3, handle.GetStats().Connections);

        // No idle peer left once the newcomer is interested: the next one replaces the interested peer that has waited
        // longest for payload, not the newer one and not the one downloading.
        Interested(swarm, first);
        Registered(swarm, handle, seeder.EndPoint);
        swarm.Wait(waiting.Closed.Task, "the longest-waiting interested peer was not dropped");
        Assert.Equal(3, handle.GetStats().Connections);
        Assert.False(downloading.Closed.Task.IsCompleted);
        Assert.False(first.Closed.Task.IsCompleted);
    });

    [Fact]
    public void When_every_connected_peer_is_moving_payload_a_newcomer_is_refused() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (seeder, handle) = Seeder(swarm, new TorrentSessionOptions { MaxConnections = 2 });
        var a = Downloader(swarm, handle, seeder.EndPoint);
        var b = Downloader(swarm, handle, seeder.EndPoint);
        var newcomer = swarm.Wire(seeder.EndPoint);
        var registered = false;
        handle.Session!.PeerConnected += id => registered |= id == newcomer.PeerId;
        Refused(swarm, newcomer);
        Assert.False(registered);
        Assert.Equal(2, handle.GetStats().Connections);
        Assert.False(a.Closed.Task.IsCompleted);
        Assert.False(b.Closed.Task.IsCompleted);

        // Both keep downloading.
        DownloadBlock(swarm, a, 1, 0);
        DownloadBlock(swarm, b, 1, 0);
    });

    /// <summary>
    /// The other side of eviction: a leecher that a full seeder dropped (here: right after the handshake, before any
    /// payload) dials it again while it still wants data, so a flood at the seeder cannot keep it out for good.
    /// </summary>
    [Fact]
    public void A_leecher_dropped_by_a_peer_after_the_handshake_dials_it_again() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var host = swarm.Network.AddEndpoint();
        var listener = swarm.Own(swarm.Run(() => host.ListenAsync(new IPEndPoint(host.Address, 6881), CancellationToken.None).AsTask()));
        // This raw peer speaks plain BitTorrent only; with MSE first (Prefer) it would read the DH key as a handshake.
        var leecher = swarm.AddPeer(options: new TorrentClientOptions { Encryption = EncryptionPolicy.Off });
        var download = leecher.Add(Meta, new TorrentAddOptions { Session = new TorrentSessionOptions { RedialDelay = TimeSpan.FromMilliseconds(100) } });
        var registered = false;
        download.Session!.PeerConnected += _ => registered = true;
        var accepting = SimulatedSwarm.StartAsync(() => listener.AcceptAsync(CancellationToken.None).AsTask());
        download.Session.AddPeers([listener.LocalEndPoint]);
        swarm.Wait(accepting, "the leecher did not dial");
        var first = swarm.Run(() => accepting)!;
        swarm.Run(async () =>
        {
            await first.Stream.ReadExactlyAsync(new byte[PeerWire.HandshakeLength]);
            var ours = new byte[PeerWire.HandshakeLength];
            PeerWire.WriteHandshake(ours, new PeerHandshake(0, Meta.InfoHash, NodeId.Random()));
            await first.Stream.WriteAsync(ours);
        });
        swarm.Wait(() => registered, "the leecher did not register the peer");
        // Dropped after the handshake, before any payload, as a full seeder drops its least useful peer.
        swarm.Run(() => first.DisposeAsync().AsTask());

        var second = swarm.Run(() => listener.AcceptAsync(CancellationToken.None).AsTask());
        Assert.NotNull(second);
        swarm.Run(() => second!.DisposeAsync().AsTask());
    });

    [Fact]
    public void Limits_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TorrentSessionOptions { MaxConnectionsPerIp = 0 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new TorrentSessionOptions { HandshakeTimeout = TimeSpan.Zero }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new TorrentSessionOptions { InactivityTimeout = TimeSpan.Zero }.Validate());
        new TorrentSessionOptions().Validate();
    }
}
