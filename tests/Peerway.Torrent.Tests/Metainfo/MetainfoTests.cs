using System.Security.Cryptography;
using System.Text;
using FsCheck.Xunit;
using Peerway.Core;
using Peerway.Core.Bencoding;
using Peerway.Torrent.Metainfo;

namespace Peerway.Torrent.Tests.Metainfo;

public sealed class MetainfoTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-meta-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static byte[] Info(string inner) => Encoding.UTF8.GetBytes("d" + inner + "e");

    private static string Pieces(int count) => $"6:pieces{count * 20}:" + new string('x', count * 20);

    private static byte[] Torrent(string infoInner, string prefix = "8:announce27:http://127.0.0.1:1/announce") =>
        Encoding.UTF8.GetBytes("d" + prefix + "4:info").Concat(Info(infoInner)).Concat("e"u8.ToArray()).ToArray();

    [Fact]
    public void Info_hash_is_sha1_of_the_exact_info_bytes()
    {
        var inner = "6:lengthi40000e4:name5:a.bin12:piece lengthi16384e" + Pieces(3);
        var bytes = Torrent(inner);
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out var error), error.ToString());
        var expected = SHA1.HashData(Info(inner));
        Assert.Equal(Convert.ToHexStringLower(expected), meta!.InfoHash.ToString());
        Assert.Equal("a.bin", meta.Info.Name);
        Assert.Equal(40000, meta.Info.TotalLength);
        Assert.Equal(3, meta.Info.PieceCount);
        Assert.Equal(40000 - (2 * 16384), meta.Info.PieceSize(2));
        Assert.Equal("http://127.0.0.1:1/announce", Assert.Single(meta.Trackers));
    }

    [Theory]
    [InlineData("2:..", MetainfoError.PathTraversal)]
    [InlineData("1:.", MetainfoError.PathTraversal)]
    [InlineData("0:", MetainfoError.EmptyPathComponent)]
    [InlineData("4:/etc", MetainfoError.AbsolutePath)]
    [InlineData("6:C:\\win", MetainfoError.AbsolutePath)]
    [InlineData("3:a/b", MetainfoError.AbsolutePath)]
    public void Rejects_unsafe_path_components(string component, MetainfoError expected)
    {
        var inner = $"5:filesld6:lengthi10e4:pathl3:dir{component}eee4:name4:root12:piece lengthi16384e" + Pieces(1);
        Assert.False(MetainfoParser.TryParse(Torrent(inner), out _, out var error));
        Assert.Equal(expected, error);
    }

    [Fact]
    public void Rejects_unsafe_name()
    {
        var inner = "6:lengthi10e4:name2:..12:piece lengthi16384e" + Pieces(1);
        Assert.False(MetainfoParser.TryParse(Torrent(inner), out _, out var error));
        Assert.Equal(MetainfoError.PathTraversal, error);
    }

    [Fact]
    public void Rejects_empty_path_list()
    {
        var inner = "5:filesld6:lengthi10e4:pathleee4:name4:root12:piece lengthi16384e" + Pieces(1);
        Assert.False(MetainfoParser.TryParse(Torrent(inner), out _, out var error));
        Assert.Equal(MetainfoError.EmptyPathComponent, error);
    }

    [Theory]
    [InlineData("d6:lengthi5e4:pathl1:aeed6:lengthi5e4:pathl1:aee")]
    [InlineData("d6:lengthi5e4:pathl1:aeed6:lengthi5e4:pathl1:a1:bee")]
    [InlineData("d6:lengthi5e4:pathl1:a1:beed6:lengthi5e4:pathl1:aee")]
    public void Rejects_duplicate_paths(string files)
    {
        var inner = $"5:filesl{files}e4:name4:root12:piece lengthi16384e" + Pieces(1);
        Assert.False(MetainfoParser.TryParse(Torrent(inner), out _, out var error));
        Assert.Equal(MetainfoError.DuplicatePath, error);
    }

    [Theory]
    [InlineData(16384 * 2, 1)]
    [InlineData(16384 * 2, 3)]
    [InlineData(1, 0)]
    public void Rejects_piece_count_mismatch(int length, int pieces)
    {
        var inner = $"6:lengthi{length}e4:name1:a12:piece lengthi16384e" + Pieces(pieces);
        Assert.False(MetainfoParser.TryParse(Torrent(inner), out _, out var error));
        Assert.Equal(MetainfoError.PieceCountMismatch, error);
    }

    [Theory]
    [InlineData("4:name1:a12:piece lengthi16384e6:pieces0:", MetainfoError.InvalidFiles)]
    [InlineData("6:lengthi-1e4:name1:a12:piece lengthi16384e6:pieces0:", MetainfoError.InvalidLength)]
    [InlineData("6:lengthi1e4:name1:a12:piece lengthi0e6:pieces20:xxxxxxxxxxxxxxxxxxxx", MetainfoError.InvalidPieceLength)]
    [InlineData("6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces3:abc", MetainfoError.InvalidPieces)]
    [InlineData("6:lengthi1e12:piece lengthi16384e6:pieces20:xxxxxxxxxxxxxxxxxxxx", MetainfoError.InvalidName)]
    public void Rejects_invalid_info_fields(string inner, MetainfoError expected)
    {
        Assert.False(MetainfoParser.TryParse(Torrent(inner), out _, out var error));
        Assert.Equal(expected, error);
    }

    [Fact]
    public void Rejects_missing_info_and_bad_bencode()
    {
        Assert.False(MetainfoParser.TryParse("d8:announce3:abce"u8, out _, out var e1));
        Assert.Equal(MetainfoError.MissingInfo, e1);
        Assert.False(MetainfoParser.TryParse("d4:info"u8, out _, out var e2));
        Assert.Equal(MetainfoError.MalformedBencode, e2);
        Assert.False(MetainfoParser.TryParse(Torrent("6:lengthi1e4:name1:a12:piece lengthi16384e" + Pieces(1), "8:announce9:ftp://x/y"), out _, out var e3));
        Assert.Equal(MetainfoError.InvalidAnnounce, e3);
    }

    [Theory]
    [InlineData(0L, 16 * 1024)]
    [InlineData(1L << 20, 16 * 1024)]
    [InlineData(64L << 20, 32 * 1024)]
    [InlineData(1L << 30, 512 * 1024)]
    [InlineData(1L << 40, 16 << 20)]
    public void Chooses_piece_length_like_libtorrent(long total, int expected) => Assert.Equal(expected, TorrentCreator.ChoosePieceLength(total));

    // Vectors from WebTorrent's piece-length 2.0.1: Math.max(16384, 1 << Math.log2(bytes / 1024) + 0.5 | 0).
    [Theory]
    [InlineData(0L, 16 * 1024)]
    [InlineData(8L << 20, 16 * 1024)]
    [InlineData(64L << 20, 64 * 1024)]
    [InlineData(90L << 20, 64 * 1024)]
    [InlineData(91L << 20, 128 * 1024)]
    [InlineData(1L << 30, 1 << 20)]
    [InlineData(1L << 40, 16 << 20)]
    public void Chooses_piece_length_like_webtorrent(long total, int expected) => Assert.Equal(expected, TorrentCreator.ChooseWebTorrentPieceLength(total));

    [Fact]
    public async Task A_torrent_for_a_websocket_tracker_is_cut_as_webtorrent_cuts_it()
    {
        var file = Path.Combine(_dir, "big.bin");
        await using (var f = File.Create(file)) f.SetLength(64L << 20);
        var forBrowsers = await TorrentCreator.CreateAsync(file, new TorrentCreateOptions { Trackers = ["http://127.0.0.1:6969/announce", "ws://127.0.0.1:6969"] });
        var plain = await TorrentCreator.CreateAsync(file, new TorrentCreateOptions { Trackers = ["http://127.0.0.1:6969/announce"] });
        Assert.True(MetainfoParser.TryParse(forBrowsers, out var a, out _));
        Assert.True(MetainfoParser.TryParse(plain, out var b, out _));
        Assert.Equal(64 * 1024, a!.Info.PieceLength);
        Assert.Equal(32 * 1024, b!.Info.PieceLength);
    }

    [Fact]
    public async Task Creates_single_file_torrent_that_parses_and_verifies()
    {
        var file = Path.Combine(_dir, "data.bin");
        var content = RandomNumberGenerator.GetBytes(100_000);
        await File.WriteAllBytesAsync(file, content);
        var bytes = await TorrentCreator.CreateAsync(file, new TorrentCreateOptions { Trackers = ["http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969"], Private = true });
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out var error), error.ToString());
        Assert.Equal("data.bin", meta!.Info.Name);
        Assert.False(meta.Info.IsMultiFile);
        Assert.True(meta.Info.IsPrivate);
        Assert.Equal(2, meta.TrackerTiers.Count);
        Assert.Equal(16384, meta.Info.PieceLength);
        Assert.Equal(7, meta.Info.PieceCount);
        for (var i = 0; i < meta.Info.PieceCount; i++)
        {
            var piece = content.AsSpan(i * 16384, meta.Info.PieceSize(i));
            Assert.Equal(SHA1.HashData(piece), meta.Info.PieceHash(i).ToArray());
        }
    }

    [Fact]
    public async Task Creates_multi_file_torrent_with_pieces_spanning_files()
    {
        var root = Path.Combine(_dir, "set");
        Directory.CreateDirectory(Path.Combine(root, "sub"));
        var a = RandomNumberGenerator.GetBytes(20_000);
        var b = RandomNumberGenerator.GetBytes(0);
        var c = RandomNumberGenerator.GetBytes(30_001);
        await File.WriteAllBytesAsync(Path.Combine(root, "b.bin"), b);
        await File.WriteAllBytesAsync(Path.Combine(root, "a.bin"), a);
        await File.WriteAllBytesAsync(Path.Combine(root, "sub", "c.bin"), c);
        var bytes = await TorrentCreator.CreateAsync(root, new TorrentCreateOptions { PieceLength = 16384 });
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out var error), error.ToString());
        Assert.True(meta!.Info.IsMultiFile);
        Assert.Equal("set", meta.Info.Name);
        Assert.Equal(["a.bin", "b.bin", "sub/c.bin"], meta.Info.Files.Select(f => f.RelativePath));
        Assert.Equal([0L, 20_000L, 20_000L], meta.Info.Files.Select(f => f.Offset));
        var all = a.Concat(b).Concat(c).ToArray();
        Assert.Equal(all.Length, meta.Info.TotalLength);
        for (var i = 0; i < meta.Info.PieceCount; i++)
        {
            Assert.Equal(SHA1.HashData(all.AsSpan(i * 16384, meta.Info.PieceSize(i))), meta.Info.PieceHash(i).ToArray());
        }

        Assert.True(MetainfoParser.TryParseInfo(meta.Info.RawInfo.Span, meta.InfoHash, out _, out _));
        Assert.False(MetainfoParser.TryParseInfo(meta.Info.RawInfo.Span, NodeId.Zero, out _, out var mismatch));
        Assert.Equal(MetainfoError.InfoHashMismatch, mismatch);
    }

    [Property(MaxTest = 500)]
    public bool Parser_never_throws_on_random_bytes(byte[] data)
    {
        var ok = MetainfoParser.TryParse(data ?? [], out var meta, out var error);
        return ok == (meta is not null) && ok == (error == MetainfoError.None);
    }

    [Property(MaxTest = 1000)]
    public bool Parser_never_throws_on_mutated_torrents(int position, byte value, bool insert)
    {
        var inner = "5:filesld6:lengthi10e4:pathl3:dir1:aeed6:lengthi7e4:pathl1:beee4:name4:root12:piece lengthi16384e" + Pieces(1);
        var bytes = Torrent(inner).ToList();
        var at = (int)((uint)position % (uint)bytes.Count);
        if (insert) bytes.Insert(at, value);
        else bytes[at] = value;
        var ok = MetainfoParser.TryParse(bytes.ToArray(), out var meta, out var error);
        return ok ? meta!.Info.Files.All(f => f.Path.All(c => c is not (".." or "." or "") && !c.Contains('/'))) : error != MetainfoError.None;
    }

    [Fact]
    public void Canonical_encoding_of_parsed_info_matches()
    {
        var inner = "6:lengthi1e4:name1:a12:piece lengthi16384e" + Pieces(1);
        Assert.True(MetainfoParser.TryParse(Torrent(inner), out var meta, out _));
        Assert.Equal(Info(inner), Bencode.Encode(Bencode.Decode(meta!.Info.RawInfo.Span)));
    }
}
