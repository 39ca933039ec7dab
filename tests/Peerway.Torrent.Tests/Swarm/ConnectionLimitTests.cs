using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Peerway.Core;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// Connection admission (issue 20, "idle connections cannot lock a seeder out"): the handshake timeout, the inactivity
/// timeout, the per-IP limit and the eviction rule, each against a real seeding session over loopback TCP with raw wire
/// clients, on a <see cref="FakeTimeProvider"/> (rates and timeouts move only when the test advances the clock).
/// </summary>
public sealed class ConnectionLimitTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-limits-").FullName;
    private readonly List<IAsyncDisposable> _disposables = [];
    private readonly FakeTimeProvider _time = new();
    private TorrentMetainfo _meta = null!;
    private string _source = null!;

    public async Task InitializeAsync()
    {
        _source = Path.Combine(_dir, "seed", "payload.bin");
        Directory.CreateDirectory(Path.GetDirectoryName(_source)!);
        await File.WriteAllBytesAsync(_source, RandomNumberGenerator.GetBytes(256 * 1024));
        var bytes = await TorrentCreator.CreateAsync(_source, new TorrentCreateOptions { PieceLength = 32 * 1024 });
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        _meta = meta!;
    }

    public async Task DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--) await _disposables[i].DisposeAsync();
        Directory.Delete(_dir, true);
    }

    private async Task<(TorrentSession Session, IPEndPoint EndPoint)> SeederAsync(TorrentSessionOptions options)
    {
        var s = TestSessions.Create(_meta.InfoHash, _meta.Info, _source, true, options with { ListenAddress = IPAddress.Any }, _time);
        _disposables.Add(s);
        await s.StartAsync(CancellationToken.None);
        return (s, new IPEndPoint(IPAddress.Loopback, s.ListenPort));
    }

    private async Task<WireClient> ConnectAsync(IPEndPoint target, IPAddress? from = null)
    {
        var c = await WireClient.ConnectAsync(target, from);
        _disposables.Add(c);
        return c;
    }

    /// <summary>A client that completed the handshake and was registered by the session (its PeerConnected event).</summary>
    private async Task<WireClient> RegisteredAsync(TorrentSession session, IPEndPoint target, IPAddress? from = null)
    {
        var c = await ConnectAsync(target, from);
        var registered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        session.PeerConnected += id =>
        {
            if (id == c.PeerId) registered.TrySetResult();
        };
        await c.SendHandshakeAsync(_meta.InfoHash);
        await Task.WhenAny(registered.Task, c.Closed.Task).WaitAsync(Deadline);
        Assert.True(registered.Task.IsCompleted, "the session closed the connection instead of registering the peer");
        return c;
    }

    /// <summary>A registered client that has downloaded two blocks: payload moved, so it counts as transferring.</summary>
    private async Task<WireClient> DownloaderAsync(TorrentSession session, IPEndPoint target)
    {
        var c = await RegisteredAsync(session, target);
        await c.InterestedAsync(Deadline);
        // The first block's upload is accounted (under the lock, on the connection's read task) before that task reads
        // the second request, so once the second block arrives the first is in the upload rate.
        await c.DownloadBlockAsync(0, 0, 16384, Deadline);
        await c.DownloadBlockAsync(0, 16384, 16384, Deadline);
        return c;
    }

    [Fact]
    public async Task A_connection_that_does_not_complete_the_handshake_is_closed_after_the_handshake_timeout_on_the_session_clock()
    {
        // The dial timeout is an hour: the handshake has its own limit, and it runs on the session's clock.
        var (seeder, ep) = await SeederAsync(new TorrentSessionOptions { HandshakeTimeout = TimeSpan.FromSeconds(10), ConnectTimeout = TimeSpan.FromHours(1) });
        var admitted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        seeder.IncomingAdmitted += _ => admitted.TrySetResult();
        var slow = await ConnectAsync(ep);
        await admitted.Task.WaitAsync(Deadline);
        // 20 of the 68 bytes, then nothing.
        await slow.SendHandshakeAsync(_meta.InfoHash, bytes: 20);
        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.False(slow.Closed.Task.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(2));
        await slow.Closed.Task.WaitAsync(Deadline);
        Assert.False(slow.HandshakeReceived.Task.IsCompleted);
        Assert.Equal(0, seeder.GetStats().Connections);

        // A peer that completes its handshake in time is registered as usual.
        await RegisteredAsync(seeder, ep);
        Assert.Equal(1, seeder.GetStats().Connections);
    }

    [Fact]
    public async Task An_mse_handshake_that_stalls_is_closed_by_the_same_handshake_timeout_on_the_session_clock()
    {
        // Admission happens on the bare socket, before MSE: the negotiation counts against the handshake timeout from
        // that moment, on the session's clock (not the hour-long dial timeout, not the wall clock).
        var (seeder, ep) = await SeederAsync(new TorrentSessionOptions { HandshakeTimeout = TimeSpan.FromSeconds(10), ConnectTimeout = TimeSpan.FromHours(1) });
        var admitted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        seeder.IncomingAdmitted += _ => admitted.TrySetResult();
        var slow = await ConnectAsync(ep);
        await admitted.Task.WaitAsync(Deadline);
        // A 96-byte DH public key (Ya: not a plain handshake, whose first byte is 19), then nothing.
        var ya = RandomNumberGenerator.GetBytes(96);
        ya[0] = 0x80;
        await slow.SendAsync(w => System.Buffers.BuffersExtensions.Write(w, ya));
        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.False(slow.Closed.Task.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(2));
        await slow.Closed.Task.WaitAsync(Deadline);
        Assert.Equal(0, seeder.GetStats().Connections);
    }

    [Fact]
    public async Task Silent_connections_filling_the_handshake_slots_make_way_for_a_real_peer_once_they_have_had_a_second()
    {
        var (seeder, ep) = await SeederAsync(new TorrentSessionOptions { MaxConnections = 2 });
        var admitted = 0;
        var bothAdmitted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        seeder.IncomingAdmitted += _ =>
        {
            if (Interlocked.Increment(ref admitted) == 2) bothAdmitted.TrySetResult();
        };
        var silent = new[] { await ConnectAsync(ep, IPAddress.Parse("127.0.0.3")), await ConnectAsync(ep, IPAddress.Parse("127.0.0.4")) };
        await bothAdmitted.Task.WaitAsync(Deadline);

        // Both handshake slots are taken by connections younger than a second: a newcomer is refused, not given the
        // power to close a handshake that may be on its way.
        var early = await ConnectAsync(ep);
        await early.SendHandshakeAsync(_meta.InfoHash);
        await early.Closed.Task.WaitAsync(Deadline);
        Assert.False(early.HandshakeReceived.Task.IsCompleted);

        // A second later the oldest silent one goes and a real peer gets in.
        _time.Advance(TimeSpan.FromSeconds(1));
        await RegisteredAsync(seeder, ep);
        await silent[0].Closed.Task.WaitAsync(Deadline);
        Assert.False(silent[1].Closed.Task.IsCompleted);
    }

    /// <summary>libtorrent's rule: the inactivity timeout applies only while every connection slot is used.</summary>
    [Theory]
    [InlineData(2, true)]
    [InlineData(3, false)]
    public async Task A_peer_neither_interested_nor_interesting_is_closed_after_the_inactivity_timeout_while_the_session_is_full(int maxConnections, bool full)
    {
        var options = new TorrentSessionOptions { MaxConnections = maxConnections, InactivityTimeout = TimeSpan.FromSeconds(60), IdleTimeout = TimeSpan.FromHours(1) };
        var (seeder, ep) = await SeederAsync(options);
        var idle = await RegisteredAsync(seeder, ep);
        var wanting = await RegisteredAsync(seeder, ep);
        await wanting.InterestedAsync(Deadline);
        // Ticks run inside Advance, under the session's lock: the count is settled when Advance returns.
        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(2, seeder.GetStats().Connections);
        _time.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(full ? 1 : 2, seeder.GetStats().Connections);
        if (full) await idle.Closed.Task.WaitAsync(Deadline);
        else Assert.False(idle.Closed.Task.IsCompleted);
        Assert.False(wanting.Closed.Task.IsCompleted);
    }

    [Fact]
    public async Task Connections_from_one_address_beyond_the_per_ip_limit_are_refused_and_other_addresses_still_get_in()
    {
        var (seeder, ep) = await SeederAsync(new TorrentSessionOptions { MaxConnectionsPerIp = 3 });
        var admitted = new List<WireClient>();
        for (var i = 0; i < 3; i++) admitted.Add(await RegisteredAsync(seeder, ep, IPAddress.Loopback));
        for (var i = 0; i < 3; i++)
        {
            var refused = await ConnectAsync(ep, IPAddress.Loopback);
            await refused.SendHandshakeAsync(_meta.InfoHash);
            await refused.Closed.Task.WaitAsync(Deadline);
            Assert.False(refused.HandshakeReceived.Task.IsCompleted);
        }

        Assert.Equal(3, seeder.GetStats().Connections);
        Assert.All(admitted, c => Assert.False(c.Closed.Task.IsCompleted));
        await RegisteredAsync(seeder, ep, IPAddress.Parse("127.0.0.2"));
        Assert.Equal(4, seeder.GetStats().Connections);
    }

    [Fact]
    public async Task A_full_session_drops_its_idle_peer_then_its_longest_waiting_interested_peer_for_newcomers_never_a_downloading_one()
    {
        var (seeder, ep) = await SeederAsync(new TorrentSessionOptions { MaxConnections = 3 });
        var downloading = await DownloaderAsync(seeder, ep);
        var waiting = await RegisteredAsync(seeder, ep);
        await waiting.InterestedAsync(Deadline);
        _time.Advance(TimeSpan.FromSeconds(1));
        var idle = await RegisteredAsync(seeder, ep);

        // Full: the newcomer takes the idle peer's place.
        var first = await RegisteredAsync(seeder, ep);
        await idle.Closed.Task.WaitAsync(Deadline);
        Assert.Equal(3, seeder.GetStats().Connections);

        // No idle peer left once the newcomer is interested: the next one replaces the interested peer that has waited
        // longest for payload, not the newer one and not the one downloading.
        await first.InterestedAsync(Deadline);
        await RegisteredAsync(seeder, ep);
        await waiting.Closed.Task.WaitAsync(Deadline);
        Assert.Equal(3, seeder.GetStats().Connections);
        Assert.False(downloading.Closed.Task.IsCompleted);
        Assert.False(first.Closed.Task.IsCompleted);
    }

    [Fact]
    public async Task When_every_connected_peer_is_moving_payload_a_newcomer_is_refused()
    {
        var (seeder, ep) = await SeederAsync(new TorrentSessionOptions { MaxConnections = 2 });
        var a = await DownloaderAsync(seeder, ep);
        var b = await DownloaderAsync(seeder, ep);
        var newcomer = await ConnectAsync(ep);
        var registered = false;
        seeder.PeerConnected += id => registered |= id == newcomer.PeerId;
        await newcomer.SendHandshakeAsync(_meta.InfoHash);
        await newcomer.Closed.Task.WaitAsync(Deadline);
        Assert.False(registered);
        Assert.Equal(2, seeder.GetStats().Connections);
        Assert.False(a.Closed.Task.IsCompleted);
        Assert.False(b.Closed.Task.IsCompleted);

        // Both keep downloading.
        await a.DownloadBlockAsync(1, 0, 16384, Deadline);
        await b.DownloadBlockAsync(1, 0, 16384, Deadline);
    }

    /// <summary>
    /// The other side of eviction: a leecher that a full seeder dropped (here: right after the handshake, before any
    /// payload) dials it again while it still wants data, so a flood at the seeder cannot keep it out for good.
    /// </summary>
    [Fact]
    public async Task A_leecher_dropped_by_a_peer_after_the_handshake_dials_it_again()
    {
        using var peer = new TcpListener(IPAddress.Loopback, 0);
        peer.Start();
        var leecher = TestSessions.Create(_meta.InfoHash, _meta.Info, Path.Combine(_dir, "dl"), false,
            new TorrentSessionOptions
            {
                // This raw peer speaks plain BitTorrent only; with MSE first (Prefer) it would read the DH key as a handshake.
                ListenAddress = IPAddress.Loopback, RedialDelay = TimeSpan.FromMilliseconds(100), Encryption = EncryptionPolicy.Off,
            }, TimeProvider.System);
        _disposables.Add(leecher);
        await leecher.StartAsync(CancellationToken.None);
        var registered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        leecher.PeerConnected += _ => registered.TrySetResult();
        leecher.AddPeers([(IPEndPoint)peer.LocalEndpoint]);
        using (var first = await peer.AcceptSocketAsync().WaitAsync(Deadline))
        {
            await using var stream = new NetworkStream(first);
            await stream.ReadExactlyAsync(new byte[PeerWire.HandshakeLength]).AsTask().WaitAsync(Deadline);
            var ours = new byte[PeerWire.HandshakeLength];
            PeerWire.WriteHandshake(ours, new PeerHandshake(0, _meta.InfoHash, NodeId.Random()));
            await stream.WriteAsync(ours);
            await registered.Task.WaitAsync(Deadline);
            // Dropped after the handshake, before any payload, as a full seeder drops its least useful peer.
        }

        using var second = await peer.AcceptSocketAsync().WaitAsync(Deadline);
    }

    [Fact]
    public void Limits_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TorrentSessionOptions { MaxConnectionsPerIp = 0 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new TorrentSessionOptions { HandshakeTimeout = TimeSpan.Zero }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new TorrentSessionOptions { InactivityTimeout = TimeSpan.Zero }.Validate());
        new TorrentSessionOptions().Validate();
    }
}
