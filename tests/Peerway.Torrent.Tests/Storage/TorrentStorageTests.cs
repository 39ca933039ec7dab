using System.Security.Cryptography;
using Peerway.Core.IO;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;

namespace Peerway.Torrent.Tests.Storage;

public sealed class TorrentStorageTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-store-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private async Task<(TorrentInfo Info, byte[] Content)> MultiFileTorrentAsync()
    {
        var src = Path.Combine(_dir, "src", "set");
        Directory.CreateDirectory(Path.Combine(src, "d"));
        var a = RandomNumberGenerator.GetBytes(40_000);
        var b = RandomNumberGenerator.GetBytes(30_000);
        await File.WriteAllBytesAsync(Path.Combine(src, "a"), a);
        await File.WriteAllBytesAsync(Path.Combine(src, "d", "b"), b);
        var bytes = await TorrentCreator.CreateAsync(src, new TorrentCreateOptions { PieceLength = 16384 });
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        return (meta!.Info, a.Concat(b).ToArray());
    }

    private static byte[] Piece(TorrentInfo info, byte[] content, int p) => content.AsSpan(p * info.PieceLength, info.PieceSize(p)).ToArray();

    [Fact]
    public async Task Memory_storage_keeps_only_verified_pieces_and_reads_the_rest_as_zeros()
    {
        var (info, content) = await MultiFileTorrentAsync();
        using var storage = new MemoryTorrentStorage(info);
        var bad = Piece(info, content, 1);
        bad[5] ^= 1;
        Assert.False(storage.TryWriteVerifiedPiece(1, bad));
        Assert.True(storage.TryWriteVerifiedPiece(0, Piece(info, content, 0)));
        Assert.Equal(1, storage.VerifiedCount);
        Assert.True(storage.HasPiece(0));
        Assert.False(storage.HasPiece(1));
        var block = new byte[100];
        storage.Read(1, 0, block);
        Assert.All(block, b => Assert.Equal(0, b));
        storage.Read(0, 16_000, block);
        Assert.Equal(content.AsSpan(16_000, 100).ToArray(), block);

        // Given the whole content, every piece verifies at once (a seeder's storage).
        var full = new MemoryTorrentStorage(info, content);
        Assert.True(full.IsComplete);
        Assert.Equal(content, full.ToArray());
    }

    [Fact]
    public async Task File_storage_for_seeding_refuses_content_that_does_not_match()
    {
        var (info, content) = await MultiFileTorrentAsync();
        var factory = new FileStorageFactory(new FileStorageOptions(), TimeProvider.System);
        using (var seeding = factory.Open(info, Path.Combine(_dir, "src"), seedOnly: true, CancellationToken.None))
        {
            Assert.True(seeding.IsComplete);
        }

        await File.WriteAllBytesAsync(Path.Combine(_dir, "src", "set", "a"), new byte[40_000]);
        var refused = Assert.Throws<InvalidDataException>(() => factory.Open(info, Path.Combine(_dir, "src"), seedOnly: true, CancellationToken.None));
        Assert.Contains("does not match", refused.Message, StringComparison.Ordinal);
        Assert.Equal(content.Length, info.TotalLength);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // O_DIRECT for the block-aligned parts, buffered for unaligned tails and file boundaries.
    public async Task Writes_only_verified_pieces_across_file_boundaries(bool directWrites)
    {
        var (info, content) = await MultiFileTorrentAsync();
        var dl = Path.Combine(_dir, "dl");
        using (var storage = TorrentStorage.Open(info, dl, create: true, directWrites: directWrites))
        {
            Assert.Equal(40_000, new FileInfo(Path.Combine(dl, "set", "a")).Length);
            Assert.Equal(30_000, new FileInfo(Path.Combine(dl, "set", "d", "b")).Length);
            Assert.Equal(0, storage.VerifiedCount);
            var bad = Piece(info, content, 2);
            bad[5] ^= 1;
            Assert.False(storage.TryWriteVerifiedPiece(2, bad));
            Assert.All(await File.ReadAllBytesAsync(Path.Combine(dl, "set", "a")), b => Assert.Equal(0, b));
            for (var p = 0; p < info.PieceCount; p++) Assert.True(storage.TryWriteVerifiedPiece(p, Piece(info, content, p)));
            Assert.True(storage.IsComplete);
            var block = new byte[100];
            storage.Read(2, 16384 - 50, block);
            Assert.Equal(content.AsSpan((2 * 16384) + 16384 - 50, 100).ToArray(), block);
        }

        Assert.Equal(content, (await File.ReadAllBytesAsync(Path.Combine(dl, "set", "a"))).Concat(await File.ReadAllBytesAsync(Path.Combine(dl, "set", "d", "b"))));
    }

    [Fact]
    public async Task Resume_is_trusted_only_when_size_and_mtime_match()
    {
        var (info, content) = await MultiFileTorrentAsync();
        var dl = Path.Combine(_dir, "dl");
        using (var storage = TorrentStorage.Open(info, dl, create: true))
        {
            Assert.Equal(0, storage.PiecesRechecked); // Files created now hold no data: nothing to hash.
            storage.TryWriteVerifiedPiece(0, Piece(info, content, 0));
            storage.TryWriteVerifiedPiece(4, Piece(info, content, 4));
            storage.SaveResume();
            Assert.False(File.Exists(storage.ResumePath + ".tmp"));
        }

        using (var storage = TorrentStorage.Open(info, dl, create: true))
        {
            Assert.Equal(0, storage.PiecesRechecked);
            Assert.Equal([0, 4], storage.Verified.SetIndices());
        }

        // Data written after the resume file (as after a crash) changes the mtime: those files are re-hashed.
        using (var raw = new FileStream(Path.Combine(dl, "set", "d", "b"), FileMode.Open))
        {
            raw.Position = (3 * 16384) - 40_000;
            raw.Write(Piece(info, content, 3).AsSpan(0, 16384));
        }

        File.SetLastWriteTimeUtc(Path.Combine(dl, "set", "d", "b"), DateTime.UtcNow.AddMinutes(1));
        using (var storage = TorrentStorage.Open(info, dl, create: true))
        {
            Assert.True(storage.PiecesRechecked > 0);
            Assert.Equal([0, 3, 4], storage.Verified.SetIndices());
        }
    }

    [Fact]
    public async Task Lying_resume_file_is_not_trusted_after_files_change()
    {
        var (info, content) = await MultiFileTorrentAsync();
        var dl = Path.Combine(_dir, "dl");
        using (var storage = TorrentStorage.Open(info, dl, create: true))
        {
            for (var p = 0; p < info.PieceCount; p++) storage.TryWriteVerifiedPiece(p, Piece(info, content, p));
            storage.SaveResume();
        }

        // Corrupt a byte on disk behind our back (mtime changes): the resume file claims everything, the recheck must not.
        await using (var raw = new FileStream(Path.Combine(dl, "set", "a"), FileMode.Open))
        {
            raw.Position = 100;
            raw.WriteByte((byte)(content[100] ^ 0xFF));
        }

        File.SetLastWriteTimeUtc(Path.Combine(dl, "set", "a"), DateTime.UtcNow.AddMinutes(2));
        using var again = TorrentStorage.Open(info, dl, create: true);
        Assert.False(again.HasPiece(0));
        Assert.Equal(info.PieceCount - 1, again.VerifiedCount);
    }

    [Fact]
    public async Task Existing_files_are_resume_data_and_only_the_torrents_pieces_are_written_into_them()
    {
        var (info, content) = await MultiFileTorrentAsync();
        var dl = Path.Combine(_dir, "dl");
        var a = Path.Combine(dl, "set", "a");
        Directory.CreateDirectory(Path.GetDirectoryName(a)!);
        await File.WriteAllBytesAsync(a, content.AsSpan(0, 40_000).ToArray()); // "d/b" is missing

        using (var storage = TorrentStorage.Open(info, dl, create: true))
        {
            // Pieces 0 and 1 lie in "a" alone; piece 2 also needs "b", which is not there yet.
            Assert.Equal([0, 1], storage.Verified.SetIndices());
            Assert.Equal(2, storage.PiecesKeptOnOpen);
            for (var p = 2; p < info.PieceCount; p++) Assert.True(storage.TryWriteVerifiedPiece(p, Piece(info, content, p)));
        }

        Assert.Equal(content, (await File.ReadAllBytesAsync(a)).Concat(await File.ReadAllBytesAsync(Path.Combine(dl, "set", "d", "b"))));
    }

    [Fact]
    public async Task A_zero_filled_file_fits_as_a_download_nothing_was_written_into_yet()
    {
        var (info, _) = await MultiFileTorrentAsync();
        var dl = Path.Combine(_dir, "dl");
        Directory.CreateDirectory(Path.Combine(dl, "set"));
        await File.WriteAllBytesAsync(Path.Combine(dl, "set", "a"), new byte[40_000]);

        using var storage = TorrentStorage.Open(info, dl, create: true);

        Assert.Equal(0, storage.VerifiedCount);
    }

    [Theory]
    [InlineData(true)] // larger than the torrent's file: preallocation would cut it
    [InlineData(false)] // same size, other content: not one of its pieces verifies
    public async Task A_file_that_does_not_fit_is_untouched_and_nothing_is_created_unless_overwrite(bool larger)
    {
        var (info, content) = await MultiFileTorrentAsync();
        var dl = Path.Combine(_dir, "dl");
        var a = Path.Combine(dl, "set", "a");
        Directory.CreateDirectory(Path.GetDirectoryName(a)!);
        var theirs = larger ? [.. content.AsSpan(0, 40_000), .. RandomNumberGenerator.GetBytes(7)] : RandomNumberGenerator.GetBytes(40_000);
        await File.WriteAllBytesAsync(a, theirs);

        var refused = Assert.Throws<OutputConflictException>(() => TorrentStorage.Open(info, dl, create: true));

        Assert.Equal(OutputConflict.DoesNotFit, refused.Conflict);
        Assert.Contains(a, refused.Message, StringComparison.Ordinal);
        Assert.Equal(theirs, await File.ReadAllBytesAsync(a));
        Assert.False(Directory.Exists(Path.Combine(dl, "set", "d"))); // every check comes before any change

        using var storage = TorrentStorage.Open(info, dl, create: true, overwrite: true);
        Assert.Equal(40_000, new FileInfo(a).Length);
        Assert.Equal(larger ? [0, 1] : [], storage.Verified.SetIndices());
    }

    [Fact]
    public async Task A_piece_write_torn_by_a_crash_does_not_make_our_own_file_look_like_someone_elses()
    {
        var (info, content) = await MultiFileTorrentAsync();
        var dl = Path.Combine(_dir, "dl");
        var a = Path.Combine(dl, "set", "a");
        TorrentStorage.Open(info, dl, create: true).Dispose();

        // SIGKILL between the two writes of the first piece (O_DIRECT part, then the buffered rest): half a piece on disk.
        await using (var raw = new FileStream(a, FileMode.Open))
        {
            raw.Write(Piece(info, content, 0).AsSpan(0, 8192));
        }

        File.SetLastWriteTimeUtc(a, DateTime.UtcNow.AddMinutes(1));
        using (var storage = TorrentStorage.Open(info, dl, create: true))
        {
            Assert.Equal(0, storage.VerifiedCount);
        }

        // The same when the file was deleted and created again under an existing resume file.
        File.Delete(a);
        TorrentStorage.Open(info, dl, create: true).Dispose();
        await using (var raw = new FileStream(a, FileMode.Open))
        {
            raw.Write(Piece(info, content, 0).AsSpan(0, 8192));
        }

        File.SetLastWriteTimeUtc(a, DateTime.UtcNow.AddMinutes(2));
        using var again = TorrentStorage.Open(info, dl, create: true);
        Assert.Equal(0, again.VerifiedCount);
    }

    [Theory]
    [InlineData("set/a", "file", OutputConflict.SymbolicLink)]
    [InlineData("set", "directory", OutputConflict.SymbolicLink)]
    [InlineData("set/d", "directory", OutputConflict.SymbolicLink)]
    [InlineData("set/d", "plain file", OutputConflict.NotDirectory)]
    [InlineData("set/a", "fifo", OutputConflict.NotRegularFile)]
    [InlineData("set/a", "directory here", OutputConflict.NotRegularFile)]
    [InlineData(".peerway", "directory", OutputConflict.SymbolicLink)] // our resume directory is in the output tree too
    public async Task Links_and_non_regular_files_in_the_output_tree_are_refused_and_never_followed(string at, string what, OutputConflict expected)
    {
        var (info, _) = await MultiFileTorrentAsync();
        var dl = Path.Combine(_dir, "dl");
        var outside = Directory.CreateDirectory(Path.Combine(_dir, "outside")).FullName;
        var outsideFile = Path.Combine(outside, "victim");
        await File.WriteAllBytesAsync(outsideFile, [1, 2, 3]);
        var path = Path.Combine(dl, at);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        switch (what)
        {
            case "file": File.CreateSymbolicLink(path, outsideFile); break;
            case "directory": File.CreateSymbolicLink(path, outside); break;
            case "plain file": await File.WriteAllBytesAsync(path, [1]); break;
            case "directory here": Directory.CreateDirectory(path); break;
            default:
                using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [path]))
                {
                    await mkfifo.WaitForExitAsync();
                    Assert.Equal(0, mkfifo.ExitCode);
                }

                break;
        }

        var refused = Assert.Throws<OutputConflictException>(() => TorrentStorage.Open(info, dl, create: true, overwrite: true));

        Assert.Equal(expected, refused.Conflict);
        Assert.Equal([outsideFile], Directory.GetFileSystemEntries(outside));
        Assert.Equal([1, 2, 3], await File.ReadAllBytesAsync(outsideFile));
    }

    [Fact]
    public async Task A_scattered_read_returns_the_bytes_of_one_read_per_destination_within_and_across_files()
    {
        var (info, content) = await MultiFileTorrentAsync();
        var factory = new FileStorageFactory(new FileStorageOptions(), TimeProvider.System);
        using var storage = factory.Open(info, Path.Combine(_dir, "src"), seedOnly: true, CancellationToken.None);
        var memory = new MemoryTorrentStorage(info, content);
        var random = new Random(14);
        for (var round = 0; round < 300; round++)
        {
            // A seeder's run: consecutive ranges of one piece, each behind a gap (where its message header goes).
            var piece = random.Next(info.PieceCount);
            var size = info.PieceSize(piece);
            var begin = random.Next(size);
            var buffer = new byte[size * 2];
            var destinations = new List<Memory<byte>>();
            var at = 0;
            for (var left = size - begin; left > 0;)
            {
                var length = Math.Min(left, 1 + random.Next(6000));
                at += random.Next(14);
                destinations.Add(buffer.AsMemory(at, length));
                at += length;
                left -= random.Next(3) == 0 ? left : length;
            }

            storage.Read(piece, begin, destinations);
            var expected = (long)piece * info.PieceLength + begin;
            foreach (var d in destinations)
            {
                Assert.Equal(content.AsSpan((int)expected, d.Length).ToArray(), d.ToArray());
                expected += d.Length;
            }

            // The interface's default (one read per destination) agrees.
            var copy = destinations.Select(d => new byte[d.Length]).ToList();
            ((ITorrentStorage)memory).Read(piece, begin, copy.Select(c => (Memory<byte>)c).ToList());
            Assert.Equal(destinations.Select(d => d.ToArray()), copy);
        }
    }

    [Fact]
    public void Bitfield_rejects_spare_bits_and_wrong_length()
    {
        Assert.True(Bitfield.TryFromBytes([0xFF, 0xC0], 10, out var ok));
        Assert.Equal(10, ok!.SetCount);
        Assert.False(Bitfield.TryFromBytes([0xFF, 0xE0], 10, out _));
        Assert.False(Bitfield.TryFromBytes([0xFF], 10, out _));
        var b = new Bitfield(9);
        b.Set(0);
        b.Set(8);
        Assert.Equal([0x80, 0x80], b.AsSpan().ToArray());
    }
}
