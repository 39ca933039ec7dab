using System.Net;
using System.Security.Cryptography;
using Peerway.Net;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>Streaming while downloading: piece deadlines in the picker, and <see cref="TorrentFileStream"/> over a real swarm.</summary>
public sealed class StreamingTests : IDisposable
{
    private const int Block = 16384;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-stream-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static Bitfield All(int n)
    {
        var b = new Bitfield(n);
        b.SetAll();
        return b;
    }

    [Fact]
    public void Deadline_pieces_come_first_earliest_first_whatever_their_rarity()
    {
        for (var seed = 0; seed < 20; seed++)
        {
            var have = new Bitfield(50);
            for (var p = 0; p < PiecePicker.RandomFirstPieces; p++) have.Set(p);
            var picker = new PiecePicker(50, _ => 2 * Block, have, new Random(seed));
            picker.AddAvailability(All(50));
            picker.AddAvailability(All(50));
            picker.AddAvailability(7); // Piece 7 is the commonest: rarest first alone would pick it last.
            picker.SetPieceDeadline(40, 2);
            picker.SetPieceDeadline(7, 1);
            picker.SetPieceDeadline(30, 0);
            picker.SetPieceDeadline(2, 0); // Already verified: ignored.
            var picks = picker.Pick("p", All(50), 7);
            Assert.Equal([30, 30, 7, 7, 40, 40], picks.Take(6).Select(r => r.Piece));
            Assert.DoesNotContain(2, picker.DeadlinePieces);
            // A verified piece loses its deadline.
            picker.OnPieceVerified(30);
            Assert.Equal([7, 40], picker.DeadlinePieces.Order());
            picker.ResetPieceDeadline(7);
            picker.ClearPieceDeadlines();
            Assert.Empty(picker.DeadlinePieces);
        }
    }

    [Fact]
    public void A_deadline_piece_whose_blocks_are_all_requested_is_asked_of_a_second_peer_once()
    {
        var picker = new PiecePicker(20, _ => 2 * Block, new Bitfield(20), new Random(1));
        picker.SetPieceDeadline(5, 0);
        picker.SetPieceDeadline(6, 1);
        picker.SetPieceDeadline(7, 2);
        var a = picker.Pick("a", All(20), 6);
        Assert.Equal([5, 5, 6, 6, 7, 7], a.Select(r => r.Piece));
        // Peer b: every deadline block is out, so it is asked for the two earliest pieces' blocks too (deadline
        // endgame), then for normal pieces; peer c gets no third copy.
        var b = picker.Pick("b", All(20), 6);
        Assert.Equal([5, 5, 6, 6], b.Take(4).Select(r => r.Piece));
        Assert.DoesNotContain(b.Skip(4), r => r.Piece is 5 or 6 or 7);
        var c = picker.Pick("c", All(20), 2);
        Assert.DoesNotContain(c, r => r.Piece is 5 or 6 or 7);
        // The first copy to arrive cancels the other.
        Assert.True(picker.OnBlockReceived("b", 5, 0, out var cancelAt, out _));
        Assert.Equal(["a"], cancelAt);
    }

    [Fact]
    public void A_deadline_on_a_skipped_piece_is_not_picked()
    {
        var picker = new PiecePicker(4, _ => Block, new Bitfield(4), new Random(1));
        picker.SetPiecePriorities([FilePriority.Normal, FilePriority.Skip, FilePriority.Normal, FilePriority.Normal]);
        picker.SetPieceDeadline(1, 0);
        Assert.DoesNotContain(picker.Pick("p", All(4), 10), r => r.Piece == 1);
    }

    /// <summary>Two files of 1,000,000 and 3,000,000 bytes in 16 KiB pieces; a seeder capped at 512 KiB/s.</summary>
    private async Task<(TorrentInfo Info, byte[][] Files, TorrentClient Seeder)> SeederAsync(long uploadLimit = 512 * 1024)
    {
        var src = Path.Combine(_dir, "src", "set");
        Directory.CreateDirectory(src);
        var files = new[] { RandomNumberGenerator.GetBytes(1_000_000), RandomNumberGenerator.GetBytes(3_000_000) };
        for (var i = 0; i < files.Length; i++) await File.WriteAllBytesAsync(Path.Combine(src, $"f{i}.bin"), files[i]);
        var bytes = await TorrentCreator.CreateAsync(src, new TorrentCreateOptions { PieceLength = 16384 });
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        var store = new MemoryStorageFactory();
        store.Add(meta!.Info, [.. files.SelectMany(f => f)]);
        var options = new TorrentClientOptions { ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, 0)], UploadRateLimit = uploadLimit };
        var seeder = new TorrentClient([new TcpStreamTransport()], options, store, TimeProvider.System);
        await seeder.StartAsync(CancellationToken.None);
        await seeder.AddAsync(meta.Info, "seed", new TorrentAddOptions { SeedOnly = true });
        return (meta.Info, files, seeder);
    }

    private static async Task<TorrentClient> LeecherAsync()
    {
        var leecher = new TorrentClient([new TcpStreamTransport()], new TorrentClientOptions { ListenEndPoints = [new IPEndPoint(IPAddress.Loopback, 0)] }, new MemoryStorageFactory(), TimeProvider.System);
        await leecher.StartAsync(CancellationToken.None);
        return leecher;
    }

    [Fact]
    public async Task Reading_the_end_of_a_file_fetches_it_first_and_returns_its_verified_bytes_before_the_middle_arrives()
    {
        var (info, files, seeder) = await SeederAsync();
        await using var _ = seeder;
        await using var leecher = await LeecherAsync();
        // No peers yet: the reader registers its window first, so the first requests are for its pieces.
        var handle = await leecher.AddAsync(info, "dl");
        await using var stream = await handle.OpenReadAsync(1, new TorrentReadOptions { ReadAhead = 2 * 16384 });
        Assert.Equal(3_000_000, stream.Length);
        stream.Seek(-100_000, SeekOrigin.End);
        var buffer = new byte[100_000];
        var read = stream.ReadAsync(buffer).AsTask();
        Assert.False(read.IsCompleted);
        handle.Session!.AddPeers([new IPEndPoint(IPAddress.Loopback, seeder.Port)]);
        await ReadExactlyAsync(stream, buffer, read);
        var stats = handle.GetStats();

        Assert.Equal(files[1].AsSpan(2_900_000).ToArray(), buffer);
        // 100,000 bytes span 7 pieces; with a 2-piece window and the first requests made, far fewer than the 245 pieces
        // of the torrent are there (rarest-first alone would have had to fetch most of it first).
        Assert.True(stats.VerifiedPieces < info.PieceCount / 4, $"{stats.VerifiedPieces} of {info.PieceCount} pieces before the end of file 1 was read");
    }

    /// <summary>Completes <paramref name="first"/> and reads on until <paramref name="buffer"/> is full (a read returns at most a piece).</summary>
    private static async Task ReadExactlyAsync(Stream stream, byte[] buffer, Task<int> first)
    {
        var total = await first.WaitAsync(Deadline);
        while (total < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(total)).AsTask().WaitAsync(Deadline);
            Assert.NotEqual(0, n);
            total += n;
        }
    }

    [Fact]
    public async Task Two_readers_in_two_files_are_served_at_once_and_the_whole_file_reads_back_exactly()
    {
        var (info, files, seeder) = await SeederAsync(2 * 1024 * 1024);
        await using var _ = seeder;
        await using var leecher = await LeecherAsync();
        var handle = await leecher.AddAsync(info, "dl", new TorrentAddOptions { Peers = [new IPEndPoint(IPAddress.Loopback, seeder.Port)] });
        await using var first = await handle.OpenReadAsync(0);
        await using var second = await handle.OpenReadAsync(1);
        second.Position = 2_000_000;
        var a = new MemoryStream();
        var b = new byte[500_000];
        var copyA = first.CopyToAsync(a);
        var readB = ReadExactlyAsync(second, b, second.ReadAsync(b).AsTask());
        await Task.WhenAll(copyA, readB).WaitAsync(Deadline);
        Assert.Equal(files[0], a.ToArray());
        Assert.Equal(files[1].AsSpan(2_000_000, 500_000).ToArray(), b);
        Assert.Equal(2, handle.Session!.ReaderCount);
        await first.DisposeAsync();
        Assert.Equal(1, handle.Session.ReaderCount);
        // Reading at the end gives 0.
        second.Position = second.Length;
        Assert.Equal(0, await second.ReadAsync(b));
    }

    [Fact]
    public async Task A_read_waiting_for_a_missing_piece_is_cancellable_and_a_pause_fails_it()
    {
        var (info, _, seeder) = await SeederAsync();
        await using var __ = seeder;
        await using var leecher = await LeecherAsync();
        var handle = await leecher.AddAsync(info, "dl");
        await using var stream = await handle.OpenReadAsync(0);
        using var cts = new CancellationTokenSource();
        var buffer = new byte[1000];
        var read = stream.ReadAsync(buffer, cts.Token).AsTask();
        Assert.False(read.IsCompleted);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.WaitAsync(Deadline));
        Assert.All(buffer, x => Assert.Equal(0, x));

        var waiting = stream.ReadAsync(buffer).AsTask();
        await handle.PauseAsync();
        await Assert.ThrowsAsync<IOException>(() => waiting.WaitAsync(Deadline));
        await Assert.ThrowsAsync<IOException>(() => stream.ReadAsync(buffer).AsTask());
    }

    [Fact]
    public async Task Opening_a_file_that_does_not_exist_or_is_skipped_fails()
    {
        var (info, _, seeder) = await SeederAsync();
        await using var __ = seeder;
        await using var leecher = await LeecherAsync();
        var handle = await leecher.AddAsync(info, "dl", new TorrentAddOptions { FileSelection = _ => [FilePriority.Skip, FilePriority.Normal] });
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => handle.OpenReadAsync(2));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => handle.OpenReadAsync(-1));
        await Assert.ThrowsAsync<InvalidOperationException>(() => handle.OpenReadAsync(0));
        await using var stream = await handle.OpenReadAsync(1);
        Assert.Throws<IOException>(() => stream.Seek(-1, SeekOrigin.Begin));
    }
}
