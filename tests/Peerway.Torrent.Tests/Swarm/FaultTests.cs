using System.Net;
using System.Security.Cryptography;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>Misbehaving peers (test doubles speaking the real protocol) against a real session over loopback TCP.</summary>
public sealed class FaultTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-fault-").FullName;
    private readonly List<IAsyncDisposable> _disposables = [];
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--) await _disposables[i].DisposeAsync();
        Directory.Delete(_dir, true);
    }

    private async Task<(TorrentMetainfo Meta, string Source, byte[] Content)> Content(int size = 2 * 1024 * 1024)
    {
        var src = Path.Combine(_dir, "seed", "payload.bin");
        Directory.CreateDirectory(Path.GetDirectoryName(src)!);
        var content = RandomNumberGenerator.GetBytes(size);
        await File.WriteAllBytesAsync(src, content);
        var bytes = await TorrentCreator.CreateAsync(src, new TorrentCreateOptions { PieceLength = 16384 * 2 });
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        return (meta!, src, content);
    }

    private async Task<TorrentSession> Session(TorrentMetainfo meta, string dir, bool source, TorrentSessionOptions? options = null)
    {
        var s = TestSessions.Create(meta.InfoHash, meta.Info, dir, source, options ?? new TorrentSessionOptions { ListenAddress = IPAddress.Loopback }, TimeProvider.System);
        _disposables.Add(s);
        await s.StartAsync(CancellationToken.None);
        return s;
    }

    private FakePeer Fake(TorrentMetainfo meta, byte[] content, FakePeerMode mode)
    {
        var f = new FakePeer(meta.Info, content, mode);
        _disposables.Add(f);
        return f;
    }

    /// <summary>Counts piece-aligned regions of the download file that are neither zero (not yet written) nor correct.</summary>
    private static int CorruptPiecesOnDisk(string path, TorrentInfo info)
    {
        if (!File.Exists(path)) return 0;
        var bad = 0;
        var buffer = new byte[info.PieceLength];
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        for (var p = 0; p < info.PieceCount; p++)
        {
            var span = buffer.AsSpan(0, info.PieceSize(p));
            f.Position = (long)p * info.PieceLength;
            f.ReadExactly(span);
            // A piece is written whole after its hash verified: anything else on disk is a corrupt byte.
            if (span.ContainsAnyExcept((byte)0) && !TorrentStorage.VerifyPiece(info, p, span)) bad++;
        }

        return bad;
    }

    [Fact]
    public async Task Corrupting_peer_is_banned_stays_banned_and_no_corrupt_byte_reaches_the_disk()
    {
        var (meta, src, content) = await Content();
        var liar = Fake(meta, content, FakePeerMode.Corrupt);
        var leecher = await Session(meta, Path.Combine(_dir, "dl"), source: false);
        var file = Path.Combine(_dir, "dl", "payload.bin");
        // The disk is checked at each moment something may have been written: after every verified piece (on the
        // verifier, before the next piece can be written), when the liar is dropped, and at the end.
        var corrupt = 0;
        leecher.PieceVerified += _ => Interlocked.Add(ref corrupt, CorruptPiecesOnDisk(file, meta.Info));
        leecher.AddPeers([liar.EndPoint]);
        await liar.Dropped.Task.WaitAsync(Deadline);
        var stats = leecher.GetStats();
        Assert.True(stats.HashFailures >= 1);
        Assert.Equal(1, stats.BannedPeers);
        Assert.Equal(0, stats.VerifiedPieces);
        Assert.Equal(0, CorruptPiecesOnDisk(file, meta.Info));

        // Banned for good: reconnecting (as itself) is refused, and the download completes from an honest seeder.
        Assert.False(await liar.ReconnectAsync(new IPEndPoint(IPAddress.Loopback, leecher.ListenPort)));
        var seeder = await Session(meta, src, source: true);
        leecher.AddPeers([new IPEndPoint(IPAddress.Loopback, seeder.ListenPort), liar.EndPoint]);
        await leecher.Completed.WaitAsync(Deadline);
        Assert.Equal(0, Volatile.Read(ref corrupt));
        Assert.Equal(0, CorruptPiecesOnDisk(file, meta.Info));
        Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(_dir, "dl", "payload.bin")));
        Assert.True(leecher.GetStats().ReceivedByPeerId.ContainsKey(seeder.PeerId));
    }

    /// <summary>
    /// A peer that is not ready at first (libtorrent closes connections to a torrent it is still checking; a peer from
    /// the command line may start after us) is dialled again: before the fix a failed dial forgot the peer for good.
    /// In front of the seeder sits a gate that closes the first connection at once and relays later ones.
    /// </summary>
    [Fact]
    public async Task Peer_that_drops_the_first_connection_is_dialled_again()
    {
        var (meta, src, content) = await Content(256 * 1024);
        var seeder = await Session(meta, src, source: true);
        using var gate = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        gate.Start();
        var firstDropped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource();
        var relay = Task.Run(async () =>
        {
            var relays = new List<Task>();
            try
            {
                while (true)
                {
                    var client = await gate.AcceptTcpClientAsync(stop.Token);
                    if (!firstDropped.Task.IsCompleted)
                    {
                        client.Dispose();
                        firstDropped.TrySetResult();
                        continue;
                    }

                    var upstream = new System.Net.Sockets.TcpClient();
                    await upstream.ConnectAsync(IPAddress.Loopback, seeder.ListenPort, stop.Token);
                    relays.Add(Relay(client, upstream, stop.Token));
                }
            }
            catch (OperationCanceledException)
            {
                await Task.WhenAll(relays);
            }
        });
        var leecher = await Session(meta, Path.Combine(_dir, "dl"), source: false,
            // Plain dials only: under Prefer, the encrypted attempt's plaintext fallback would reconnect at once and
            // hide whether the redial itself works.
            new TorrentSessionOptions { ListenAddress = IPAddress.Loopback, RedialDelay = TimeSpan.FromMilliseconds(100), Encryption = Peerway.Torrent.Encryption.EncryptionPolicy.Off });
        leecher.AddPeers([(IPEndPoint)gate.LocalEndpoint]);
        await firstDropped.Task.WaitAsync(Deadline);
        await leecher.Completed.WaitAsync(Deadline);
        Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(_dir, "dl", "payload.bin")));
        await leecher.DisposeAsync();
        await stop.CancelAsync();
        await relay;
    }

    private static async Task Relay(System.Net.Sockets.TcpClient a, System.Net.Sockets.TcpClient b, CancellationToken ct)
    {
        using (a)
        using (b)
        {
            var sa = a.GetStream();
            var sb = b.GetStream();
            try
            {
                await Task.WhenAny(sa.CopyToAsync(sb, ct), sb.CopyToAsync(sa, ct));
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
                // One side closed: the relay ends.
            }
        }
    }

    [Fact]
    public async Task Silent_peer_does_not_stall_the_download()
    {
        var (meta, src, content) = await Content();
        var silent = Fake(meta, content, FakePeerMode.Silent);
        var options = new TorrentSessionOptions { ListenAddress = IPAddress.Loopback, RequestTimeout = TimeSpan.FromSeconds(2) };
        var leecher = await Session(meta, Path.Combine(_dir, "dl"), source: false, options);
        leecher.AddPeers([silent.EndPoint]);
        await silent.FirstRequest.Task.WaitAsync(Deadline);
        var seeder = await Session(meta, src, source: true);
        leecher.AddPeers([new IPEndPoint(IPAddress.Loopback, seeder.ListenPort)]);
        await leecher.Completed.WaitAsync(Deadline);
        Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(_dir, "dl", "payload.bin")));
    }

    [Fact]
    public async Task Peer_vanishing_mid_piece_does_not_stall_the_download()
    {
        var (meta, src, content) = await Content();
        var vanisher = Fake(meta, content, FakePeerMode.VanishMidPiece);
        var leecher = await Session(meta, Path.Combine(_dir, "dl"), source: false);
        leecher.AddPeers([vanisher.EndPoint]);
        await vanisher.FirstBlockSent.Task.WaitAsync(Deadline);
        var seeder = await Session(meta, src, source: true);
        leecher.AddPeers([new IPEndPoint(IPAddress.Loopback, seeder.ListenPort)]);
        await leecher.Completed.WaitAsync(Deadline);
        Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(_dir, "dl", "payload.bin")));
    }

    [Fact]
    public async Task Malformed_message_drops_only_that_peer()
    {
        var (meta, src, content) = await Content();
        var seeder = await Session(meta, src, source: true);
        var bad = Fake(meta, content, FakePeerMode.Malformed);
        var leecher = await Session(meta, Path.Combine(_dir, "dl"), source: false);
        leecher.AddPeers([bad.EndPoint, new IPEndPoint(IPAddress.Loopback, seeder.ListenPort)]);
        await bad.Dropped.Task.WaitAsync(Deadline);
        await leecher.Completed.WaitAsync(Deadline);
        Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(_dir, "dl", "payload.bin")));
        Assert.Equal(meta.Info.TotalLength, leecher.GetStats().ReceivedByPeerId[seeder.PeerId]);
    }

    [Fact]
    public async Task Upload_rate_limit_caps_the_seeder_by_its_clock()
    {
        var (meta, src, content) = await Content(1024 * 1024);
        const int rate = 64 * 1024;
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var seeder = TestSessions.Create(meta.InfoHash, meta.Info, src, true,
            new TorrentSessionOptions { ListenAddress = IPAddress.Loopback, UploadRateLimit = rate }, time);
        _disposables.Add(seeder);
        await seeder.StartAsync(CancellationToken.None);
        var leecher = await Session(meta, Path.Combine(_dir, "dl"), source: false);
        var waiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        seeder.RequestsWaiting += () => waiting.TrySetResult();
        leecher.AddPeers([new IPEndPoint(IPAddress.Loopback, seeder.ListenPort)]);
        // The leecher's requests are queued at the seeder; nothing leaves before the seeder's clock moves.
        await waiting.Task.WaitAsync(Deadline);
        Assert.Equal(0, seeder.GetStats().Uploaded);
        // The token bucket only grows with the seeder's clock, and the timer serves the queue synchronously inside
        // Advance: after T of (fake) time at most rate·T bytes can have left.
        var advanced = TimeSpan.Zero;
        for (var i = 0; i < 10; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            advanced += TimeSpan.FromMilliseconds(100);
            Assert.True(seeder.GetStats().Uploaded <= rate * advanced.TotalSeconds, $"{seeder.GetStats().Uploaded} bytes after {advanced}");
        }

        // And it does serve within the budget: 1 s at 64 KiB/s allows a few 16 KiB blocks.
        Assert.True(seeder.GetStats().Uploaded > 0, "nothing was uploaded within the budget");
        Assert.False(leecher.Completed.IsCompleted);
    }
}
