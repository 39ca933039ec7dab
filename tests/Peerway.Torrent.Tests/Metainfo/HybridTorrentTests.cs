using System.Security.Cryptography;
using FsCheck.Xunit;
using Peerway.Core.Bencoding;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;

namespace Peerway.Torrent.Tests.Metainfo;

/// <summary>
/// BEP 52 hybrid v1+v2 torrents as libtorrent 2.0's create_torrent makes them by default: "meta version" 2, a "file
/// tree", and in the v1 "files" list a BEP 47 padding file (attr "p", path ".pad/&lt;size&gt;") before every file that
/// would not start on a piece boundary. Peerway reads the v1 part: padding is hashed as zeros but never stored.
/// </summary>
public sealed class HybridTorrentTests : IDisposable
{
    private const int PieceLength = 16384;
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-hybrid-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static BDictionary File(long length, params string[] path) => new()
    {
        ["length"] = new BInteger(length),
        ["path"] = new BList([.. path.Select(p => new BString(p))]),
    };

    private static BDictionary Pad(long length) => new()
    {
        ["attr"] = new BString("p"),
        ["length"] = new BInteger(length),
        ["path"] = new BList([new BString(".pad"), new BString(length.ToString(System.Globalization.CultureInfo.InvariantCulture))]),
    };

    /// <summary>
    /// album/{a (20,000 B), sub/b (3,616 B), c (3,000 B)} laid out as libtorrent does: a, pad, b, pad, c. Both pads are
    /// 12,768 bytes, so they share the path ".pad/12768". Returns the info dictionary's bytes and the stream.
    /// </summary>
    private static (byte[] RawInfo, byte[] A, byte[] B, byte[] C, byte[] Stream) Hybrid(bool withPieces = true)
    {
        var a = RandomNumberGenerator.GetBytes(20_000);
        var b = RandomNumberGenerator.GetBytes(3_616);
        var c = RandomNumberGenerator.GetBytes(3_000);
        var pad = (PieceLength - (20_000 % PieceLength)) % PieceLength;
        var pad2 = PieceLength - 3_616;
        Assert.Equal(pad, pad2);
        var stream = a.Concat(new byte[pad]).Concat(b).Concat(new byte[pad2]).Concat(c).ToArray();
        var pieces = new MemoryStream();
        for (var off = 0; off < stream.Length; off += PieceLength)
        {
            pieces.Write(SHA1.HashData(stream.AsSpan(off, Math.Min(PieceLength, stream.Length - off))));
        }

        var info = new BDictionary
        {
            // The v2 part is not read by Peerway; its presence is what a hybrid looks like.
            ["file tree"] = new BDictionary { ["a"] = new BDictionary { [""] = new BDictionary { ["length"] = new BInteger(20_000) } } },
            ["meta version"] = new BInteger(2),
            ["name"] = new BString("album"),
            ["piece length"] = new BInteger(PieceLength),
        };
        if (withPieces)
        {
            info["files"] = new BList([File(20_000, "a"), Pad(pad), File(3_616, "sub", "b"), Pad(pad2), File(3_000, "c")]);
            info["pieces"] = new BString(pieces.ToArray());
        }

        return (Bencode.Encode(info), a, b, c, stream);
    }

    private static byte[] Torrent(byte[] rawInfo)
    {
        using var t = new MemoryStream();
        t.Write("d4:info"u8);
        t.Write(rawInfo);
        // BEP 52: "piece layers" sits outside the info dictionary.
        t.Write("12:piece layersdee"u8);
        return t.ToArray();
    }

    [Fact]
    public void Reads_the_v1_part_of_a_hybrid_torrent_with_padding_files_of_one_size()
    {
        var (raw, _, _, _, stream) = Hybrid();
        Assert.True(MetainfoParser.TryParse(Torrent(raw), out var meta, out var error), error.Describe());
        var info = meta!.Info;
        Assert.True(info.IsHybrid);
        // BEP 52: the v1 info-hash is the SHA-1 of the whole info dictionary (v2 keys included), the v2 one its SHA-256.
        Assert.Equal(Convert.ToHexStringLower(SHA1.HashData(raw)), info.InfoHash.ToString());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(raw)), info.InfoHashV2);
        Assert.Equal(stream.Length, info.TotalLength);
        Assert.Equal([false, true, false, true, false], info.Files.Select(f => f.IsPadding));
        Assert.Equal(["a", "sub/b", "c"], info.ContentFiles.Select(f => f.RelativePath));
        // Each file after a padding file starts on a piece boundary.
        Assert.Equal([0L, 2L * PieceLength, 3L * PieceLength], info.ContentFiles.Select(f => f.Offset));
    }

    [Fact]
    public void A_real_file_that_clashes_with_another_is_still_rejected()
    {
        var info = new BDictionary
        {
            ["files"] = new BList([File(1, "x"), File(1, "x")]),
            ["name"] = new BString("n"),
            ["piece length"] = new BInteger(PieceLength),
            ["pieces"] = new BString(new byte[20]),
        };
        Assert.False(MetainfoParser.TryParseInfo(Bencode.Encode(info), out _, out var error));
        Assert.Equal(MetainfoError.DuplicatePath, error);
    }

    [Fact]
    public void A_v2_only_torrent_is_a_clear_error()
    {
        var (raw, _, _, _, _) = Hybrid(withPieces: false);
        Assert.False(MetainfoParser.TryParse(Torrent(raw), out _, out var error));
        Assert.Equal(MetainfoError.V2Only, error);
        Assert.Contains("v2-only", error.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void Storage_never_writes_padding_and_seeds_without_it()
    {
        var (raw, a, b, c, stream) = Hybrid();
        Assert.True(MetainfoParser.TryParseInfo(raw, out var info, out _));
        var dl = Path.Combine(_dir, "dl");
        using (var storage = TorrentStorage.Open(info!, dl, create: true))
        {
            for (var p = 0; p < info!.PieceCount; p++)
            {
                Assert.True(storage.TryWriteVerifiedPiece(p, stream.AsSpan(p * PieceLength, info.PieceSize(p))));
            }

            Assert.True(storage.IsComplete);
            storage.SaveResume();
        }

        Assert.False(Directory.Exists(Path.Combine(dl, "album", ".pad")), "a padding file was written to disk");
        Assert.Equal(a, System.IO.File.ReadAllBytes(Path.Combine(dl, "album", "a")));
        Assert.Equal(b, System.IO.File.ReadAllBytes(Path.Combine(dl, "album", "sub", "b")));
        Assert.Equal(c, System.IO.File.ReadAllBytes(Path.Combine(dl, "album", "c")));

        // Seeding (read-only) from a directory that holds only the real files: padding reads back as zeros, and every
        // piece verifies after a recheck (no resume file) as well as from the resume file.
        System.IO.File.Delete(Directory.GetFiles(Path.Combine(dl, ".peerway")).Single());
        using (var seed = TorrentStorage.Open(info!, dl, create: false))
        {
            Assert.True(seed.IsComplete);
            Assert.Equal(info!.PieceCount, seed.PiecesRechecked);
            var block = new byte[PieceLength];
            seed.Read(1, 0, block);
            Assert.Equal(stream.AsSpan(PieceLength, PieceLength).ToArray(), block);
        }

        using (var again = TorrentStorage.Open(info!, dl, create: true))
        {
            again.SaveResume();
        }

        using var resumed = TorrentStorage.Open(info!, dl, create: true);
        Assert.True(resumed.IsComplete);
        Assert.Equal(0, resumed.PiecesRechecked);
    }

    private static readonly byte[] HybridSample = Torrent(Hybrid().RawInfo);

    /// <summary>Mutated hybrids (a padding flag or length flipped, a key damaged) never throw, and what parses is consistent.</summary>
    [Property(MaxTest = 1000)]
    public bool Parser_never_throws_on_mutated_hybrid_torrents(int position, byte value, bool insert)
    {
        var bytes = HybridSample.ToList();
        var at = (int)((uint)position % (uint)bytes.Count);
        if (insert) bytes.Insert(at, value);
        else bytes[at] = value;
        var ok = MetainfoParser.TryParse(bytes.ToArray(), out var meta, out var error);
        if (!ok) return error != MetainfoError.None && meta is null;
        var info = meta!.Info;
        // Files are contiguous in the piece stream and the real ones have distinct paths.
        var contiguous = info.Files.Select((f, i) => i == 0 ? f.Offset == 0 : f.Offset == info.Files[i - 1].Offset + info.Files[i - 1].Length).All(x => x);
        var paths = info.ContentFiles.Select(f => f.RelativePath).ToList();
        return contiguous && paths.Distinct(StringComparer.Ordinal).Count() == paths.Count;
    }

    [Fact]
    public void A_hybrid_magnet_uses_btih_and_a_v2_only_magnet_is_a_clear_error()
    {
        const string btih = "ec64f5eb8cb90712502431fb75d36e15e5991516";
        const string btmh = "122096d10ca1dc5e31073926c6ab485e7e3c8cdf17d3992032ba04a4440b92a16e3b";
        Assert.True(MagnetLink.TryParse($"magnet:?xt=urn:btmh:{btmh}&xt=urn:btih:{btih}&dn=album", out var m, out _));
        Assert.Equal(btih, m!.InfoHash.ToString());
        Assert.False(MagnetLink.TryParse($"magnet:?xt=urn:btmh:{btmh}&dn=album", out _, out var error));
        Assert.Equal(MagnetError.V2Only, error);
    }
}
