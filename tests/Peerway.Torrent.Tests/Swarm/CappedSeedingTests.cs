using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Wire;
using Xunit.Abstractions;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// Issue 23: a seeder under an upload cap keeps serving, at the cap, a streaming client that cancels and re-requests
/// (as libtorrent does for piece deadlines), requests a block twice and requests beyond our reqq, next to a plain
/// leecher. The seeder's clock is a <see cref="FakeTimeProvider"/>: its token bucket fills only when the test advances
/// it, one 100 ms tick per round, so "at the cap" is counted in ticks, never in wall time.
/// </summary>
public sealed class CappedSeedingTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Block = 16 * 1024;
    private const int FileSize = 32 * Block;

    /// <summary>Two blocks per 100 ms tick: one for each peer when both have requests queued.</summary>
    private const long Rate = 20 * Block;

    /// <summary>Our reqq: the streaming client keeps twice as many requests in flight, so some go beyond it.</summary>
    private const int Reqq = 4;

    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-capped-").FullName;
    private readonly List<IAsyncDisposable> _disposables = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--) await _disposables[i].DisposeAsync();
        Directory.Delete(_dir, true);
    }

    [Fact]
    public async Task Capped_seeder_serves_a_cancelling_re_requesting_peer_and_a_plain_one_at_the_cap_in_request_order()
    {
        var (meta, content, time, seeder) = await SeedAsync(Rate, Reqq);
        var info = meta.Info;
        using var hang = new CancellationTokenSource(TimeSpan.FromMinutes(2)); // a guard against a hung socket, not a measurement
        var endPoint = new IPEndPoint(IPAddress.Loopback, seeder.ListenPort);
        var streamer = new StreamingClient(await ConnectAsync(endPoint, meta.InfoHash, hang.Token), info, content);
        var plain = new PlainClient(await ConnectAsync(endPoint, meta.InfoHash, hang.Token), info, content);

        // Ideal: both peers' bytes at the cap. A seeder that leaves the streaming client's cancelled requests unanswered
        // stalls it for good, so this bound is far beyond what a working seeder needs and fails only on a stall.
        var idealTicks = (int)(2L * FileSize * 10 / Rate);
        var ticks = 0;
        for (; ticks <= 3 * idealTicks && !(streamer.Done && plain.Done); ticks++)
        {
            await streamer.RoundAsync(ticks, hang.Token);
            await plain.RoundAsync(hang.Token);
            time.Advance(Tick);
            // The token bucket starts empty and fills at the cap: after n ticks no more than n · 100 ms at the cap has left.
            Assert.True(seeder.GetStats().Uploaded <= Rate * (ticks + 1) / 10, $"{seeder.GetStats().Uploaded} bytes after {ticks + 1} ticks");
        }

        output.WriteLine($"ran {ticks} ticks of 100 ms (ideal at the cap: {idealTicks}); streaming client: " +
                         $"{streamer.Cancels} cancels, {streamer.Rejects} rejects, {streamer.Duplicates} blocks received twice, " +
                         $"first block after {streamer.FirstBlockTick} ticks; plain client done after {plain.DoneTick} ticks");
        Assert.True(streamer.Done, $"the streaming client stalled at {streamer.Received}/{streamer.Blocks.Count} blocks after {ticks} ticks " +
                                   $"({streamer.Pending} requests unanswered, {streamer.Cancels} cancels, {streamer.Rejects} rejects)");
        Assert.True(plain.Done, $"the plain client stalled at {plain.Received}/{plain.Blocks.Count} blocks");
        // At the cap: the seeder's upload never idles while both want data (the last few ticks go to whoever is left).
        Assert.True(ticks <= idealTicks + (idealTicks / 4) + 3, $"{ticks} ticks for {idealTicks} ticks' worth of data at the cap");
        // The block asked twice in one breath went out once; cancelled blocks still queued were rejected (BEP 6).
        Assert.Equal(0, streamer.Duplicates);
        Assert.True(streamer.Rejects > 0);
        // Blocks arrive in the order they were requested (no cancelled block holds up the ones behind it).
        Assert.True(streamer.ArrivedInRequestOrder, "a block overtook one requested before it");
        Assert.True(plain.ArrivedInRequestOrder, "a block overtook one requested before it");
    }

    [Fact]
    public async Task A_cap_below_the_block_size_still_serves_within_the_cap()
    {
        const long rate = Block / 2; // 8 KiB/s: a 16 KiB block takes two seconds' budget
        var (meta, content, time, seeder) = await SeedAsync(rate, new TorrentSessionOptions().MaxIncomingRequests);
        using var hang = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var plain = new PlainClient(await ConnectAsync(new IPEndPoint(IPAddress.Loopback, seeder.ListenPort), meta.InfoHash, hang.Token), meta.Info, content);
        const int ticks = 80; // 8 s: 64 KiB at the cap, four blocks
        for (var i = 0; i < ticks; i++)
        {
            await plain.RoundAsync(hang.Token);
            time.Advance(Tick);
            Assert.True(seeder.GetStats().Uploaded <= rate * (i + 1) / 10, $"{seeder.GetStats().Uploaded} bytes after {i + 1} ticks");
        }

        await plain.RoundAsync(hang.Token);
        output.WriteLine($"{plain.Received} blocks in {ticks} ticks at {rate} B/s");
        // The first tick adds nothing (no time has passed yet): 7.9 s of budget is three whole blocks.
        Assert.Equal(3, plain.Received);
    }

    /// <summary>A seeder of a random <see cref="FileSize"/>-byte file (pieces of two blocks) on a fake clock.</summary>
    private async Task<(TorrentMetainfo Meta, byte[] Content, FakeTimeProvider Time, TorrentSession Seeder)> SeedAsync(long rate, int reqq)
    {
        var src = Path.Combine(_dir, "payload.bin");
        var content = RandomNumberGenerator.GetBytes(FileSize);
        await File.WriteAllBytesAsync(src, content);
        Assert.True(MetainfoParser.TryParse(await TorrentCreator.CreateAsync(src, new TorrentCreateOptions { PieceLength = 2 * Block }), out var meta, out _));
        var time = new FakeTimeProvider();
        var seeder = TestSessions.Create(meta!.InfoHash, meta.Info, src, true,
            new TorrentSessionOptions { ListenAddress = IPAddress.Loopback, UploadRateLimit = rate, MaxIncomingRequests = reqq }, time);
        _disposables.Add(seeder);
        await seeder.StartAsync(CancellationToken.None);
        return (meta, content, time, seeder);
    }

    private async Task<ScriptedPeer> ConnectAsync(IPEndPoint endPoint, Peerway.Core.NodeId infoHash, CancellationToken ct)
    {
        var peer = await ScriptedPeer.ConnectAsync(endPoint, infoHash, ct);
        _disposables.Add(peer);
        return peer;
    }

    /// <summary>Blocks of the torrent, tracking what was received, what is pending, and the arrival order.</summary>
    private abstract class Client(ScriptedPeer peer, TorrentInfo info, byte[] content)
    {
        private readonly Dictionary<BlockRequest, long> _sequence = [];
        private long _nextSequence;
        private long _lastArrived = -1;

        protected ScriptedPeer Peer { get; } = peer;

        public List<BlockRequest> Blocks { get; } = Enumerable.Range(0, info.PieceCount)
            .SelectMany(p => Enumerable.Range(0, (info.PieceSize(p) + Block - 1) / Block)
                .Select(b => new BlockRequest(p, b * Block, Math.Min(Block, info.PieceSize(p) - (b * Block)))))
            .ToList();

        protected HashSet<BlockRequest> Have { get; } = [];

        /// <summary>Requests awaiting their answer (PIECE or REJECT), as libtorrent keeps them: cancelled ones too.</summary>
        protected Dictionary<BlockRequest, (int Round, bool Cancelled)> Outstanding { get; } = [];

        public int Received => Have.Count;
        public int Pending => Outstanding.Count;
        public bool Done => Have.Count == Blocks.Count;
        public int Rejects { get; private set; }
        public int Duplicates { get; private set; }
        public int? FirstBlockTick { get; private set; }
        public bool ArrivedInRequestOrder { get; private set; } = true;

        protected IEnumerable<BlockRequest> Missing => Blocks.Where(b => !Have.Contains(b));

        protected void Request(BlockRequest b, int round)
        {
            Peer.Request(b);
            Outstanding[b] = (round, false);
            _sequence[b] = _nextSequence++;
        }

        protected async Task SyncAsync(int round, CancellationToken ct)
        {
            foreach (var m in await Peer.SyncAsync(ct))
            {
                if (m.Type == PeerMessageType.RejectRequest)
                {
                    Rejects++;
                    Outstanding.Remove(m.Block);
                }
                else if (m.Type == PeerMessageType.Piece)
                {
                    var offset = ((long)m.Block.Piece * info.PieceLength) + m.Block.Begin;
                    Assert.True(content.AsSpan((int)offset, m.Block.Length).SequenceEqual(m.Data), $"wrong bytes for {m.Block}");
                    if (!Have.Add(m.Block)) Duplicates++;
                    Outstanding.Remove(m.Block);
                    FirstBlockTick ??= round;
                    var seq = _sequence[m.Block];
                    if (seq < _lastArrived) ArrivedInRequestOrder = false;
                    _lastArrived = seq;
                }
            }
        }
    }

    /// <summary>
    /// A streaming client modelled on libtorrent with piece deadlines: it keeps <see cref="Window"/> requests in flight
    /// (twice our reqq), wants the next <see cref="Critical"/> missing blocks first, cancels every other request still
    /// unanswered, and cancels a wanted one unanswered for <see cref="Late"/> rounds to ask for it again. A cancelled
    /// request holds its slot until the seeder answers it (PIECE or, BEP 6, REJECT_REQUEST), as in libtorrent. Its first
    /// round asks for its first block twice.
    /// </summary>
    private sealed class StreamingClient(ScriptedPeer peer, TorrentInfo info, byte[] content) : Client(peer, info, content)
    {
        private const int Window = 2 * Reqq;
        private const int Critical = 3;
        private const int Late = 3;

        public int Cancels { get; private set; }

        public async Task RoundAsync(int round, CancellationToken ct)
        {
            var critical = Missing.Take(Critical).ToHashSet();
            foreach (var (b, (asked, cancelled)) in Outstanding.ToList())
            {
                if (cancelled || (critical.Contains(b) && round - asked < Late)) continue;
                Peer.Cancel(b);
                Cancels++;
                Outstanding[b] = (asked, true);
            }

            foreach (var b in Missing.Where(b => !Outstanding.ContainsKey(b)).Take(Window - Outstanding.Count).ToList()) Request(b, round);
            if (round == 0) Peer.Request(Blocks[0]);
            await SyncAsync(round, ct);
        }
    }

    /// <summary>A plain client: up to our reqq requests in flight, in order, never cancelled.</summary>
    private sealed class PlainClient(ScriptedPeer peer, TorrentInfo info, byte[] content) : Client(peer, info, content)
    {
        private int _round;

        public int? DoneTick { get; private set; }

        public async Task RoundAsync(CancellationToken ct)
        {
            foreach (var b in Missing.Where(b => !Outstanding.ContainsKey(b)).Take(Reqq - Outstanding.Count).ToList()) Request(b, _round);
            await SyncAsync(_round, ct);
            if (Done) DoneTick ??= _round;
            _round++;
        }
    }
}
