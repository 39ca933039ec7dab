using System.Security.Cryptography;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>File selection and priorities: the picker, the storage's parts file, and a client download of one file (in a
/// <see cref="SimulatedSwarm"/>, onto disk).</summary>
public sealed class FilePriorityTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-prio-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>Three files that do not start on piece boundaries (16 KiB pieces): 40,000 + 30,000 + 50,000 bytes.</summary>
    private async Task<(TorrentInfo Info, byte[] Content)> ThreeFilesAsync()
    {
        var src = Path.Combine(_dir, "src", "set");
        Directory.CreateDirectory(src);
        var parts = new[] { RandomNumberGenerator.GetBytes(40_000), RandomNumberGenerator.GetBytes(30_000), RandomNumberGenerator.GetBytes(50_000) };
        for (var i = 0; i < parts.Length; i++) await File.WriteAllBytesAsync(Path.Combine(src, $"f{i}"), parts[i]);
        var bytes = await TorrentCreator.CreateAsync(src, new TorrentCreateOptions { PieceLength = 16384 });
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        return (meta!.Info, parts.SelectMany(p => p).ToArray());
    }

    private static byte[] Piece(TorrentInfo info, byte[] content, int p) => content.AsSpan(p * info.PieceLength, info.PieceSize(p)).ToArray();

    private static Bitfield All(int n)
    {
        var b = new Bitfield(n);
        b.SetAll();
        return b;
    }

    [Fact]
    public async Task Pieces_take_the_highest_priority_of_the_files_they_overlap()
    {
        var (info, _) = await ThreeFilesAsync();
        // f0 = bytes 0..39,999 (pieces 0-2), f1 = 40,000..69,999 (pieces 2-4), f2 = 70,000..119,999 (pieces 4-7).
        var pieces = FilePriorities.ForPieces(info, [FilePriority.Skip, FilePriority.High, FilePriority.Skip]);
        Assert.Equal([FilePriority.Skip, FilePriority.Skip, FilePriority.High, FilePriority.High, FilePriority.High, FilePriority.Skip, FilePriority.Skip, FilePriority.Skip], pieces);
        Assert.Equal([false, true, false], FilePriorities.SkippedFiles(info, [FilePriority.Normal, FilePriority.Skip, FilePriority.High]));
        Assert.Throws<ArgumentException>(() => FilePriorities.Validate(info, [FilePriority.Normal]));
    }

    [Fact]
    public void Picker_never_requests_a_piece_wholly_in_skipped_files_and_starts_high_priority_pieces_first()
    {
        for (var seed = 0; seed < 50; seed++)
        {
            var have = new Bitfield(10);
            var picker = new PiecePicker(10, _ => 32 * 1024, have, new Random(seed));
            var priorities = Enumerable.Repeat(FilePriority.Skip, 10).ToArray();
            priorities[3] = priorities[4] = FilePriority.Normal;
            priorities[8] = FilePriority.High;
            picker.SetPiecePriorities(priorities);
            var peerOnlySkipped = new Bitfield(10);
            peerOnlySkipped.Set(0);
            peerOnlySkipped.Set(9);
            Assert.False(picker.IsInteresting(peerOnlySkipped));
            Assert.Empty(picker.Pick("skipped-only", peerOnlySkipped, 10));

            var picks = picker.Pick("p", All(10), 100);
            Assert.Equal([8, 3, 4], picks.Select(r => r.Piece).Distinct().Take(1).Concat(picks.Select(r => r.Piece).Distinct().Skip(1).Order()));
            Assert.Equal(6, picks.Count);
            Assert.True(picker.InEndgame);
            foreach (var piece in new[] { 3, 4, 8 }) picker.OnPieceVerified(piece);
            Assert.True(picker.IsDone);
            Assert.False(have.IsComplete);

            // Wanted again while running: the rest is picked, nothing already verified.
            picker.SetPiecePriorities(Enumerable.Repeat(FilePriority.Normal, 10).ToArray());
            Assert.False(picker.IsDone);
            var rest = picker.Pick("p", All(10), 100).Select(r => r.Piece).Distinct().Order();
            Assert.Equal([0, 1, 2, 5, 6, 7, 9], rest);
        }
    }

    [Fact]
    public void A_piece_skipped_while_requested_is_not_counted_as_missing_when_its_requests_drop()
    {
        var picker = new PiecePicker(4, _ => 32 * 1024, new Bitfield(4), new Random(1));
        var picks = picker.Pick("p", All(4), 100);
        Assert.Equal(8, picks.Count);
        picker.SetPiecePriorities([FilePriority.Normal, FilePriority.Skip, FilePriority.Skip, FilePriority.Skip]);
        foreach (var r in picks) picker.OnRequestDropped("p", r.Piece, r.Begin);
        Assert.Equal([0], picker.Pick("q", All(4), 100).Select(r => r.Piece).Distinct());
        Assert.True(picker.InEndgame);
    }

    [Fact]
    public async Task Skipped_files_are_not_created_and_boundary_pieces_keep_their_bytes_in_the_parts_file()
    {
        var (info, content) = await ThreeFilesAsync();
        var dl = Path.Combine(_dir, "dl");
        var skipped = FilePriorities.SkippedFiles(info, [FilePriority.Skip, FilePriority.Normal, FilePriority.Skip]);
        using (var storage = TorrentStorage.Open(info, dl, create: true, skippedFiles: skipped))
        {
            // f1's pieces: 2 (shared with f0) to 4 (shared with f2).
            for (var p = 2; p <= 4; p++) Assert.True(storage.TryWriteVerifiedPiece(p, Piece(info, content, p)));
            Assert.False(File.Exists(Path.Combine(dl, "set", "f0")));
            Assert.False(File.Exists(Path.Combine(dl, "set", "f2")));
            Assert.Equal(content.AsSpan(40_000, 30_000).ToArray(), await File.ReadAllBytesAsync(Path.Combine(dl, "set", "f1")));
            Assert.True(File.Exists(storage.PartsPath));
            // The boundary pieces read back whole (a peer may ask for them): f0's and f2's bytes from the parts file.
            var piece = new byte[info.PieceLength];
            storage.Read(2, 0, piece);
            Assert.Equal(Piece(info, content, 2), piece);
            storage.Read(4, 0, piece);
            Assert.Equal(Piece(info, content, 4), piece);
            storage.SaveResume();
        }

        // Reopened with the same selection: the resume record is trusted and the three pieces kept, nothing created.
        using (var again = TorrentStorage.Open(info, dl, create: true, skippedFiles: skipped))
        {
            Assert.Equal([2, 3, 4], again.Verified.SetIndices());
            Assert.Equal(0, again.PiecesRechecked);
            Assert.False(File.Exists(Path.Combine(dl, "set", "f0")));

            // f2 wanted now: created at once with its bytes of the verified piece 4 (from the parts file); f0 still absent.
            again.SetSkippedFiles(FilePriorities.SkippedFiles(info, [FilePriority.Skip, FilePriority.Normal, FilePriority.Normal]));
            var f2 = await File.ReadAllBytesAsync(Path.Combine(dl, "set", "f2"));
            Assert.Equal(50_000, f2.Length);
            var inPiece4 = (5 * 16384) - 70_000;
            Assert.Equal(content.AsSpan(70_000, inPiece4).ToArray(), f2.AsSpan(0, inPiece4).ToArray());
            Assert.All(f2.Skip(inPiece4), b => Assert.Equal(0, b));
            Assert.False(File.Exists(Path.Combine(dl, "set", "f0")));
            for (var p = 5; p < info.PieceCount; p++) Assert.True(again.TryWriteVerifiedPiece(p, Piece(info, content, p)));
            Assert.Equal(content.AsSpan(70_000).ToArray(), await File.ReadAllBytesAsync(Path.Combine(dl, "set", "f2")));
        }
    }

    [Fact]
    public async Task A_client_downloads_only_the_selected_file_and_creates_no_other()
    {
        var (info, content) = await ThreeFilesAsync();
        var dl = Path.Combine(_dir, "dl");
        // The leecher stores on disk (what is tested: files that are skipped are never created); its network, clock and
        // thread are a simulated swarm's.
        SimulatedSwarm.OnDeepStack(() =>
        {
            using var swarm = new SimulatedSwarm();
            var seeder = swarm.AddPeer();
            seeder.Storage.Add(info, content);
            swarm.Run(() => seeder.Client.AddAsync(info, "seed", new TorrentAddOptions { SeedOnly = true }));
            var leecher = swarm.AddPeer(storage: new FileStorageFactory(new FileStorageOptions(), swarm.Time));
            // By magnet link: the selection is made once the info dictionary arrives (BEP 9).
            var handle = swarm.Run(() => leecher.Client.AddAsync(new MagnetLink(info.InfoHash, null, [], []), dl, new TorrentAddOptions
            {
                Peers = [seeder.EndPoint],
                FileSelection = i => [.. i.ContentFiles.Select(f => f.RelativePath == "f1" ? FilePriority.Normal : FilePriority.Skip)],
            }));
            swarm.Wait(handle.Completed, "the download of the selected file did not complete");
            // Only f1's pieces (2-4) were fetched: the others wholly in skipped files were never asked for.
            Assert.Equal(3, handle.GetStats().VerifiedPieces);
            Assert.Equal([FilePriority.Skip, FilePriority.Normal, FilePriority.Skip], handle.FilePriorities);
        });

        Assert.Equal(content.AsSpan(40_000, 30_000).ToArray(), await File.ReadAllBytesAsync(Path.Combine(dl, "set", "f1")));
        Assert.False(File.Exists(Path.Combine(dl, "set", "f0")));
        Assert.False(File.Exists(Path.Combine(dl, "set", "f2")));
    }
}
