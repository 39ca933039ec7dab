using System.Net;
using System.Security.Cryptography;
using Peerway.Net;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// Misbehaving peers (<see cref="FakePeer"/>: test doubles speaking the real protocol) against a <see cref="TorrentClient"/>
/// in a <see cref="SimulatedSwarm"/>: virtual network, memory storage, fake clock, one thread; every wait is bounded in
/// virtual time.
/// </summary>
public sealed class FaultTests
{
    /// <summary>The engine's default policy: MSE first, then plain (the fake peers speak plain only).</summary>
    private static readonly TorrentClientOptions Prefer = new() { Encryption = EncryptionPolicy.Prefer };

    private static (TorrentMetainfo Meta, byte[] Content) Content(int size = 2 * 1024 * 1024)
    {
        var content = RandomNumberGenerator.GetBytes(size);
        return (SimulatedSwarm.MakeTorrent(content, 16384 * 2), content);
    }

    /// <summary>Counts piece-aligned regions of the stored download that are neither zero (not yet written) nor correct.</summary>
    private static int CorruptPieces(SimulatedSwarm.Peer peer, TorrentInfo info)
    {
        if (peer.Storage.Get(info.InfoHash) is not { } storage) return 0;
        var bytes = storage.ToArray();
        var bad = 0;
        for (var p = 0; p < info.PieceCount; p++)
        {
            var span = bytes.AsSpan(p * info.PieceLength, info.PieceSize(p));
            // A piece is written whole after its hash verified: anything else stored is a corrupt byte.
            if (span.ContainsAnyExcept((byte)0) && !TorrentStorage.VerifyPiece(info, p, span)) bad++;
        }

        return bad;
    }

    [Fact]
    public void Corrupting_peer_is_banned_stays_banned_and_no_corrupt_byte_reaches_the_storage() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (meta, content) = Content();
        var liar = swarm.Fake(meta, content, FakePeerMode.Corrupt);
        var leecher = swarm.AddPeer(options: Prefer);
        var download = leecher.Add(meta);
        // The storage is checked at each moment something may have been written: after every verified piece (on the
        // verifier, before the next piece can be written), when the liar is dropped, and at the end.
        var corrupt = 0;
        download.Session!.PieceVerified += _ => corrupt += CorruptPieces(leecher, meta.Info);
        download.Session.AddPeers([liar.EndPoint]);
        swarm.Wait(liar.Dropped.Task, "the corrupting peer was not dropped");
        var stats = download.GetStats();
        Assert.True(stats.HashFailures >= 1);
        Assert.Equal(1, stats.BannedPeers);
        Assert.Equal(0, stats.VerifiedPieces);
        Assert.Equal(0, CorruptPieces(leecher, meta.Info));

        // Banned for good: reconnecting (as itself) is refused, and the download completes from an honest seeder.
        Assert.False(swarm.Run(() => liar.ReconnectAsync(leecher.EndPoint)));
        var seeder = swarm.AddPeer(options: Prefer);
        seeder.Seed(meta, content);
        download.Session.AddPeers([seeder.EndPoint, liar.EndPoint]);
        swarm.Wait(download.Completed, "the download did not complete");
        Assert.Equal(0, corrupt);
        Assert.Equal(0, CorruptPieces(leecher, meta.Info));
        Assert.Equal(content, leecher.Content(meta));
        Assert.True(download.GetStats().ReceivedByPeerId.ContainsKey(seeder.Client.PeerId));
    });

    /// <summary>
    /// A peer that is not ready at first (libtorrent closes connections to a torrent it is still checking; a peer from
    /// the command line may start after us) is dialled again: before the fix a failed dial forgot the peer for good.
    /// In front of the seeder sits a gate that closes the first connection at once and relays later ones.
    /// </summary>
    [Fact]
    public void Peer_that_drops_the_first_connection_is_dialled_again() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (meta, content) = Content(256 * 1024);
        var seeder = swarm.AddPeer();
        seeder.Seed(meta, content);
        var gate = swarm.Own(swarm.Run(() => DropFirstGate.StartAsync(swarm.Network.AddEndpoint(), seeder.EndPoint)));
        // Plain dials only: under Prefer, the encrypted attempt's plaintext fallback would reconnect at once and hide
        // whether the redial itself works.
        var leecher = swarm.AddPeer(options: new TorrentClientOptions { Encryption = EncryptionPolicy.Off });
        var download = leecher.Add(meta, new TorrentAddOptions
        {
            Peers = [gate.EndPoint],
            Session = new TorrentSessionOptions { RedialDelay = TimeSpan.FromMilliseconds(100) },
        });
        swarm.Wait(gate.FirstDropped.Task, "the gate saw no connection");
        swarm.Wait(download.Completed, "the peer was not dialled again");
        Assert.Equal(content, leecher.Content(meta));
        Assert.True(gate.Relayed >= 1);
    });

    /// <summary>
    /// The only peer drops mid-transfer and is unreachable for a while (a restart, a network blip under load), then comes
    /// back: the download must dial it again, with back-off, and complete (libtorrent and anacrolix put a dropped peer back
    /// among the candidates unless it is banned). In front of the seeder sits a gate that cuts the first connection once
    /// a quarter of the content went through, refuses connections for 20 s, then relays.
    /// </summary>
    [Fact]
    public void Only_peer_dropping_mid_transfer_and_coming_back_is_dialled_again() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (meta, content) = Content(1024 * 1024);
        var seeder = swarm.AddPeer();
        seeder.Seed(meta, content);
        var gate = swarm.Own(swarm.Run(() => CutGate.StartAsync(swarm.Network.AddEndpoint(), seeder.EndPoint, swarm.Time, cutAfter: content.Length / 4,
            downFor: TimeSpan.FromSeconds(20))));
        var leecher = swarm.AddPeer(options: new TorrentClientOptions { Encryption = EncryptionPolicy.Off });
        var download = leecher.Add(meta, new TorrentAddOptions { Peers = [gate.EndPoint] });
        swarm.Wait(gate.Cut.Task, "the gate never cut the first connection");
        var verified = download.GetStats().VerifiedPieces;
        Assert.InRange(verified, 0, meta.Info.PieceCount - 1);
        swarm.Wait(download.Completed, $"the peer was not dialled again after the drop ({download.GetStats().VerifiedPieces}/{meta.Info.PieceCount} pieces, {gate.Refused} dials refused)");
        Assert.Equal(content, leecher.Content(meta));
        Assert.True(gate.Refused >= 1, "no dial came while the peer was away: the test did not cover the back-off");
        Assert.True(gate.Relayed >= 2);
    });

    /// <summary>
    /// The CI failure of LibtorrentInteropTests.Peerway_downloads_a_v1_only_libtorrent_torrent under load: 10 of 97
    /// pieces, then no peer for two minutes and no dial. One piece from the only peer failed its hash check (here a
    /// byte flipped on the way), and a piece "sent alone" banned its sender at once: the only seeder, banned for good,
    /// was never dialled again. One bad piece is no proof of a lying peer (a flipped bit on the path, a glitch on its
    /// disk); like a shared piece it now costs a strike, and a peer is banned at
    /// <see cref="TorrentSessionOptions.BanAfterHashFailures"/> strikes, counted across its connections. The peer then
    /// drops and is away for a while, and the download completes once it is back.
    /// </summary>
    [Fact]
    public void Only_peer_that_sent_one_bad_piece_and_dropped_is_dialled_again_and_completes() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (meta, content) = Content(1024 * 1024);
        var seeder = swarm.AddPeer();
        seeder.Seed(meta, content);
        var gate = swarm.Own(swarm.Run(() => CutGate.StartAsync(swarm.Network.AddEndpoint(), seeder.EndPoint, swarm.Time, cutAfter: content.Length / 2,
            downFor: TimeSpan.FromSeconds(20), corruptAt: content.Length / 8)));
        var leecher = swarm.AddPeer(options: new TorrentClientOptions { Encryption = EncryptionPolicy.Off });
        var download = leecher.Add(meta, new TorrentAddOptions { Peers = [gate.EndPoint] });
        swarm.Wait(download.Completed, $"the only peer was not dialled again ({download.GetStats().VerifiedPieces}/{meta.Info.PieceCount} pieces, " +
            $"{download.GetStats().BannedPeers} banned, {gate.Relayed} connections relayed)");
        Assert.Equal(content, leecher.Content(meta));
        Assert.Equal(1, download.GetStats().HashFailures);
        Assert.Equal(0, download.GetStats().BannedPeers);
        Assert.True(gate.Relayed >= 2, "the download completed on the first connection: the test did not cover the drop");
    });

    [Fact]
    public void Silent_peer_does_not_stall_the_download() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (meta, content) = Content();
        var silent = swarm.Fake(meta, content, FakePeerMode.Silent);
        var leecher = swarm.AddPeer(options: Prefer);
        var download = leecher.Add(meta, new TorrentAddOptions { Session = new TorrentSessionOptions { RequestTimeout = TimeSpan.FromSeconds(2) } });
        download.Session!.AddPeers([silent.EndPoint]);
        swarm.Wait(silent.FirstRequest.Task, "the silent peer got no request");
        var seeder = swarm.AddPeer(options: Prefer);
        seeder.Seed(meta, content);
        download.Session.AddPeers([seeder.EndPoint]);
        swarm.Wait(download.Completed, "the download stalled behind the silent peer");
        Assert.Equal(content, leecher.Content(meta));
    });

    [Fact]
    public void Peer_vanishing_mid_piece_does_not_stall_the_download() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (meta, content) = Content();
        var vanisher = swarm.Fake(meta, content, FakePeerMode.VanishMidPiece);
        var leecher = swarm.AddPeer(options: Prefer);
        var download = leecher.Add(meta);
        download.Session!.AddPeers([vanisher.EndPoint]);
        swarm.Wait(vanisher.FirstBlockSent.Task, "the vanishing peer sent no block");
        var seeder = swarm.AddPeer(options: Prefer);
        seeder.Seed(meta, content);
        download.Session.AddPeers([seeder.EndPoint]);
        swarm.Wait(download.Completed, "the download stalled behind the vanished peer");
        Assert.Equal(content, leecher.Content(meta));
    });

    [Fact]
    public void Malformed_message_drops_only_that_peer() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (meta, content) = Content();
        var seeder = swarm.AddPeer(options: Prefer);
        seeder.Seed(meta, content);
        var bad = swarm.Fake(meta, content, FakePeerMode.Malformed);
        var leecher = swarm.AddPeer(options: Prefer);
        var download = leecher.Add(meta, new TorrentAddOptions { Peers = [bad.EndPoint, seeder.EndPoint] });
        swarm.Wait(bad.Dropped.Task, "the malformed peer was not dropped");
        swarm.Wait(download.Completed, "the download did not complete");
        Assert.Equal(content, leecher.Content(meta));
        Assert.Equal(meta.Info.TotalLength, download.GetStats().ReceivedByPeerId[seeder.Client.PeerId]);
    });

    [Fact]
    public void A_piece_completed_in_a_read_batch_that_ends_on_a_bad_frame_is_still_verified_and_stored() => SimulatedSwarm.OnDeepStack(() =>
    {
        // The connection ends inside the batch that completed a piece (its read loop returns before the batch's hand-over
        // to the disk queue): that piece must still reach the disk queue, or it is neither stored nor ever asked for again.
        using var swarm = new SimulatedSwarm();
        var (meta, content) = Content();
        var bad = swarm.Fake(meta, content, FakePeerMode.MalformedAfterCompletePiece);
        var leecher = swarm.AddPeer(options: Prefer);
        var download = leecher.Add(meta, new TorrentAddOptions { Peers = [bad.EndPoint] });
        swarm.Wait(bad.Dropped.Task, "the peer that sent the bad frame was not dropped");
        Assert.True(bad.CompletedPiece >= 0);
        var seeder = swarm.AddPeer(options: Prefer);
        seeder.Seed(meta, content);
        download.Session!.AddPeers([seeder.EndPoint]);
        swarm.Wait(download.Completed, "the download stalled on the piece completed in the dropped peer's last batch");
        Assert.Equal(content, leecher.Content(meta));
    });

    [Fact]
    public void Upload_rate_limit_caps_the_seeder_by_its_clock() => SimulatedSwarm.OnDeepStack(() =>
    {
        using var swarm = new SimulatedSwarm();
        var (meta, content) = Content(1024 * 1024);
        const int rate = 64 * 1024;
        // The network itself is unlimited: only the seeder's token bucket (on the swarm's clock) holds the bytes back.
        var seeder = swarm.AddPeer(options: Prefer with { UploadRateLimit = rate });
        var started = swarm.Elapsed;
        var seeding = seeder.Seed(meta, content);
        var waiting = false;
        seeding.Session!.RequestsWaiting += () => waiting = true;
        var leecher = swarm.AddPeer(options: Prefer);
        var download = leecher.Add(meta, new TorrentAddOptions { Peers = [seeder.EndPoint] });
        swarm.Wait(() => waiting, "the leecher's requests never queued at the seeder");
        // The token bucket only grows with the seeder's clock: after T of (virtual) time at most rate·T bytes have left.
        for (var i = 0; i < 10; i++)
        {
            swarm.RunFor(TimeSpan.FromMilliseconds(100));
            var elapsed = swarm.Elapsed - started;
            Assert.True(seeding.GetStats().Uploaded <= rate * elapsed.TotalSeconds, $"{seeding.GetStats().Uploaded} bytes after {elapsed}");
        }

        // And it does serve within the budget: a second at 64 KiB/s allows a few 16 KiB blocks.
        Assert.True(seeding.GetStats().Uploaded > 0, "nothing was uploaded within the budget");
        Assert.False(download.Completed.IsCompleted);
    });

    /// <summary>
    /// Relays connections to <c>target</c>; on the first, flips one byte at <c>corruptAt</c> of what goes from the target
    /// to the client (when given) and cuts it once <c>cutAfter</c> bytes went that way, then closes every connection at
    /// once for <c>downFor</c> (the peer is away), and relays again after that.
    /// </summary>
    private sealed class CutGate : IAsyncDisposable
    {
        private readonly IStreamTransport _transport;
        private readonly IStreamListener _listener;
        private readonly IPEndPoint _target;
        private readonly TimeProvider _time;
        private readonly long _cutAfter;
        private readonly long _corruptAt;
        private readonly TimeSpan _downFor;
        private readonly List<Task> _relays = [];
        private readonly List<IStreamConnection> _open = [];
        private readonly Task _accept;
        private DateTimeOffset _backAt = DateTimeOffset.MaxValue;

        private CutGate(IStreamTransport transport, IStreamListener listener, IPEndPoint target, TimeProvider time, long cutAfter, long corruptAt,
            TimeSpan downFor)
        {
            _corruptAt = corruptAt;
            _transport = transport;
            _listener = listener;
            _target = target;
            _time = time;
            _cutAfter = cutAfter;
            _downFor = downFor;
            _accept = AcceptAsync();
        }

        public static async Task<CutGate> StartAsync(VirtualStreamEndpoint at, IPEndPoint target, TimeProvider time, long cutAfter, TimeSpan downFor,
            long corruptAt = -1) =>
            new(at, await at.ListenAsync(new IPEndPoint(at.Address, 6881), CancellationToken.None), target, time, cutAfter, corruptAt, downFor);

        public IPEndPoint EndPoint => _listener.LocalEndPoint;

        public TaskCompletionSource Cut { get; } = new();

        public int Relayed { get; private set; }

        public int Refused { get; private set; }

        private async Task AcceptAsync()
        {
            while (await _listener.AcceptAsync(CancellationToken.None) is { } client)
            {
                if (Cut.Task.IsCompleted && _time.GetUtcNow() < _backAt)
                {
                    Refused++;
                    client.Abort();
                    await client.DisposeAsync();
                    continue;
                }

                Relayed++;
                _relays.Add(RelayAsync(client, first: Relayed == 1));
            }
        }

        private async Task RelayAsync(IStreamConnection client, bool first)
        {
            await using (client)
            {
                await using var upstream = await _transport.ConnectAsync(_target, CancellationToken.None);
                _open.Add(client);
                _open.Add(upstream);
                try
                {
                    await Task.WhenAny(client.Stream.CopyToAsync(upstream.Stream), DownAsync(upstream.Stream, client.Stream, first));
                }
                catch (IOException)
                {
                    // One side reset: the relay ends.
                }

                client.Abort();
                upstream.Abort();
            }
        }

        /// <summary>Copies the target's bytes to the client; on the first connection, only up to the cut.</summary>
        private async Task DownAsync(Stream from, Stream to, bool first)
        {
            var buffer = new byte[16 * 1024];
            long copied = 0;
            while (true)
            {
                var n = await from.ReadAsync(buffer);
                if (n == 0) return;
                if (first && copied + n >= _cutAfter)
                {
                    _backAt = _time.GetUtcNow() + _downFor;
                    Cut.TrySetResult();
                    return;
                }

                if (first && _corruptAt >= copied && _corruptAt < copied + n) buffer[_corruptAt - copied] ^= 0x5A;
                await to.WriteAsync(buffer.AsMemory(0, n));
                copied += n;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _listener.DisposeAsync();
            await _accept;
            foreach (var c in _open) c.Abort();
            await Task.WhenAll(_relays).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>Listens on an endpoint of the virtual network: closes the first connection at once, relays later ones to <c>target</c>.</summary>
    private sealed class DropFirstGate : IAsyncDisposable
    {
        private readonly IStreamTransport _transport;
        private readonly IStreamListener _listener;
        private readonly IPEndPoint _target;
        private readonly List<Task> _relays = [];
        private readonly List<IStreamConnection> _open = [];
        private readonly Task _accept;

        private DropFirstGate(IStreamTransport transport, IStreamListener listener, IPEndPoint target)
        {
            _transport = transport;
            _listener = listener;
            _target = target;
            _accept = AcceptAsync();
        }

        public static async Task<DropFirstGate> StartAsync(VirtualStreamEndpoint at, IPEndPoint target) =>
            new(at, await at.ListenAsync(new IPEndPoint(at.Address, 6881), CancellationToken.None), target);

        public IPEndPoint EndPoint => _listener.LocalEndPoint;

        public TaskCompletionSource FirstDropped { get; } = new();

        public int Relayed { get; private set; }

        private async Task AcceptAsync()
        {
            while (await _listener.AcceptAsync(CancellationToken.None) is { } client)
            {
                if (!FirstDropped.Task.IsCompleted)
                {
                    await client.DisposeAsync();
                    FirstDropped.TrySetResult();
                    continue;
                }

                Relayed++;
                _relays.Add(RelayAsync(client));
            }
        }

        private async Task RelayAsync(IStreamConnection client)
        {
            await using (client)
            {
                await using var upstream = await _transport.ConnectAsync(_target, CancellationToken.None);
                _open.Add(client);
                _open.Add(upstream);
                try
                {
                    await Task.WhenAny(client.Stream.CopyToAsync(upstream.Stream), upstream.Stream.CopyToAsync(client.Stream));
                }
                catch (IOException)
                {
                    // One side reset: the relay ends.
                }

                client.Abort();
                upstream.Abort();
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _listener.DisposeAsync();
            await _accept;
            // Relays still copying (the leecher's connection is open until its client goes) are reset.
            foreach (var c in _open) c.Abort();
            await Task.WhenAll(_relays).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }
}
