using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Peerway.Core.Bencoding;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;

namespace Peerway.Torrent.Tests.Storage;

/// <summary>
/// Resume saves fsync the data only every <see cref="FileStorageOptions.DataSyncInterval"/>; pieces verified since are
/// recorded as unsynced with the kernel's boot id, trusted on a restart in the same boot and hashed again after a reboot.
/// A "reboot" here is a resume record whose boot-id is another boot's; "lost data" is a piece's bytes zeroed on disk
/// with the file's mtime put back (what a power loss leaves when the journal has the metadata but not the data).
/// </summary>
public sealed class ResumeSyncTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-resume-sync-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => Directory.Delete(_dir, true);

    private async Task<(TorrentInfo Info, byte[] Content)> TorrentAsync()
    {
        var src = Path.Combine(_dir, "src");
        Directory.CreateDirectory(src);
        var content = RandomNumberGenerator.GetBytes(4 * 16384);
        await File.WriteAllBytesAsync(Path.Combine(src, "f.bin"), content);
        var bytes = await TorrentCreator.CreateAsync(Path.Combine(src, "f.bin"), new TorrentCreateOptions { PieceLength = 16384 });
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        return (meta!.Info, content);
    }

    private static byte[] Piece(byte[] content, int p) => content.AsSpan(p * 16384, 16384).ToArray();

    private string Dl => Path.Combine(_dir, "dl");

    private string DataFile => Path.Combine(Dl, "f.bin");

    private string ResumeFile(TorrentInfo info) => Path.Combine(Dl, TorrentStorage.ResumeDirectory, info.InfoHash + ".resume");

    private TorrentStorage Open(TorrentInfo info, TimeSpan? interval = null) =>
        TorrentStorage.Open(info, Dl, create: true, time: _time, dataSyncInterval: interval ?? TimeSpan.FromSeconds(30));

    private static BDictionary Record(TorrentStorage storage)
    {
        Assert.True(Bencode.TryDecode(File.ReadAllBytes(storage.ResumePath), out var value, out _));
        return Assert.IsType<BDictionary>(value);
    }

    private static void RewriteBootId(string resumePath, string bootId)
    {
        Assert.True(Bencode.TryDecode(File.ReadAllBytes(resumePath), out var value, out _));
        var d = Assert.IsType<BDictionary>(value);
        Assert.NotNull(d["boot-id"]);
        d["boot-id"] = new BString(bootId);
        File.WriteAllBytes(resumePath, Bencode.Encode(d));
    }

    /// <summary>Zeroes piece <paramref name="piece"/> on disk and puts the file's mtime back, as a lost writeback would.</summary>
    private void LoseWriteback(int piece)
    {
        var mtime = File.GetLastWriteTimeUtc(DataFile);
        using (var raw = new FileStream(DataFile, FileMode.Open))
        {
            raw.Position = piece * 16384;
            raw.Write(new byte[16384]);
        }

        File.SetLastWriteTimeUtc(DataFile, mtime);
    }

    [Fact]
    public async Task Unsynced_pieces_are_trusted_in_the_same_boot_and_hashed_again_after_a_reboot()
    {
        var (info, content) = await TorrentAsync();
        using (var storage = Open(info))
        {
            for (var p = 0; p < 4; p++) Assert.True(storage.TryWriteVerifiedPiece(p, Piece(content, p)));
            storage.SaveResume();
            Assert.Equal(0, storage.DataSyncs); // within the interval: no fsync of the data
            var record = Record(storage);
            Assert.NotNull(record["boot-id"]);
            Assert.Equal(Assert.IsType<BString>(record["pieces"]).Value.ToArray(), Assert.IsType<BString>(record["unsynced"]).Value.ToArray());
        }

        LoseWriteback(1);

        // Same boot: the page cache could not have lost the bytes, so the record is trusted as it is (nothing hashed).
        using (var storage = Open(info))
        {
            Assert.Equal(0, storage.PiecesRechecked);
            Assert.Equal(4, storage.VerifiedCount);
            storage.SaveResume();
        }

        // Another boot: every unsynced piece is hashed again, and the one whose bytes were lost is not kept.
        RewriteBootId(ResumeFile(info), "00000000-0000-0000-0000-000000000000");
        using (var storage = Open(info))
        {
            Assert.Equal(4, storage.PiecesRechecked);
            Assert.Equal([0, 2, 3], storage.Verified.SetIndices());
        }
    }

    [Fact]
    public async Task A_due_data_sync_makes_the_pieces_synced_and_a_reboot_hashes_only_what_came_after()
    {
        var (info, content) = await TorrentAsync();
        using (var storage = Open(info))
        {
            for (var p = 0; p < 3; p++) Assert.True(storage.TryWriteVerifiedPiece(p, Piece(content, p)));
            storage.SaveResume();
            Assert.Equal(0, storage.DataSyncs);

            // The interval passes: the next save fsyncs even with no new piece, and the record lists nothing unsynced.
            _time.Advance(TimeSpan.FromSeconds(30));
            storage.SaveResume();
            Assert.Equal(1, storage.DataSyncs);
            Assert.Null(Record(storage)["unsynced"]);

            Assert.True(storage.TryWriteVerifiedPiece(3, Piece(content, 3)));
            _time.Advance(TimeSpan.FromSeconds(1));
            storage.SaveResume();
            Assert.Equal(1, storage.DataSyncs);
            var unsynced = Assert.IsType<BString>(Record(storage)["unsynced"]).Value.ToArray();
            Assert.True(Bitfield.TryFromBytes(unsynced, info.PieceCount, out var bits));
            Assert.Equal([3], bits!.SetIndices());
        }

        RewriteBootId(ResumeFile(info), "another-boot");
        using (var storage = Open(info))
        {
            Assert.Equal(1, storage.PiecesRechecked);
            Assert.Equal(4, storage.VerifiedCount);
        }
    }

    [Fact]
    public async Task With_a_zero_interval_every_save_fsyncs_and_a_reboot_trusts_the_record()
    {
        var (info, content) = await TorrentAsync();
        using (var storage = Open(info, TimeSpan.Zero))
        {
            var before = storage.DataSyncs;
            Assert.True(storage.TryWriteVerifiedPiece(0, Piece(content, 0)));
            storage.SaveResume();
            Assert.Equal(before + 1, storage.DataSyncs);
            Assert.Null(Record(storage)["unsynced"]);
        }

        RewriteBootId(ResumeFile(info), "another-boot");
        using (var storage = Open(info, TimeSpan.Zero))
        {
            Assert.Equal(0, storage.PiecesRechecked);
            Assert.Equal([0], storage.Verified.SetIndices());
        }
    }

    [Fact]
    public async Task An_unsynced_entry_that_does_not_decode_trusts_no_piece_after_a_reboot()
    {
        var (info, content) = await TorrentAsync();
        string resume;
        using (var storage = Open(info, TimeSpan.Zero))
        {
            for (var p = 0; p < 4; p++) Assert.True(storage.TryWriteVerifiedPiece(p, Piece(content, p)));
            storage.SaveResume();
            resume = storage.ResumePath;
        }

        Assert.True(Bencode.TryDecode(await File.ReadAllBytesAsync(resume), out var value, out _));
        var d = Assert.IsType<BDictionary>(value);
        d["unsynced"] = new BInteger(7);
        d["boot-id"] = new BString("another-boot");
        await File.WriteAllBytesAsync(resume, Bencode.Encode(d));
        using var again = Open(info);
        Assert.Equal(4, again.PiecesRechecked);
        Assert.Equal(4, again.VerifiedCount);
    }

    [Fact]
    public void A_negative_interval_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new FileStorageOptions { DataSyncInterval = TimeSpan.FromSeconds(-1) });
        Assert.Equal(TimeSpan.FromSeconds(30), new FileStorageOptions().DataSyncInterval);
    }
}
