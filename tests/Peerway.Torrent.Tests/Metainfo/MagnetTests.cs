using FsCheck.Xunit;
using Peerway.Core;
using Peerway.Torrent.Metainfo;

namespace Peerway.Torrent.Tests.Metainfo;

public sealed class MagnetTests
{
    private const string Hex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    // RFC 4648 §6 base32, written independently of the parser.
    private static string Base32(byte[] data)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        var bits = string.Concat(data.Select(b => Convert.ToString(b, 2).PadLeft(8, '0')));
        return string.Concat(Enumerable.Range(0, bits.Length / 5).Select(i => alphabet[Convert.ToInt32(bits.Substring(i * 5, 5), 2)]));
    }

    [Fact]
    public void Parses_hex_btih_with_name_trackers_and_peers()
    {
        var uri = $"magnet:?xt=urn:btih:{Hex.ToUpperInvariant()}&dn=My%20File.iso&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce&tr=udp://127.0.0.1:6970&x.pe=127.0.0.1:6881&x.pe=[::1]:6882";
        Assert.True(MagnetLink.TryParse(uri, out var m, out var error), error.ToString());
        Assert.Equal(Hex, m!.InfoHash.ToString());
        Assert.Equal("My File.iso", m.DisplayName);
        Assert.Equal(["http://127.0.0.1:6969/announce", "udp://127.0.0.1:6970"], m.Trackers);
        Assert.Equal(["127.0.0.1:6881", "[::1]:6882"], m.Peers);
    }

    [Fact]
    public void Base32_and_hex_give_the_same_info_hash()
    {
        var b32 = Base32(Convert.FromHexString(Hex));
        Assert.Equal(32, b32.Length);
        Assert.True(MagnetLink.TryParse($"magnet:?xt=urn:btih:{b32}", out var m, out _));
        Assert.Equal(Hex, m!.InfoHash.ToString());
        Assert.True(MagnetLink.TryParse($"magnet:?xt=urn:btih:{b32.ToLowerInvariant()}", out var lower, out _));
        Assert.Equal(m.InfoHash, lower!.InfoHash);
    }

    [Theory]
    [InlineData("http://x", MagnetError.NotMagnet)]
    [InlineData("magnet:?dn=x", MagnetError.MissingInfoHash)]
    [InlineData("magnet:?xt=urn:btih:1234", MagnetError.InvalidInfoHash)]
    [InlineData("magnet:?xt=urn:btih:zz2fe1c06bba254a9dc9f519b335aa7c1367a88a", MagnetError.InvalidInfoHash)]
    [InlineData("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&tr=ftp://x", MagnetError.InvalidTracker)]
    [InlineData("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&x.pe=nohost", MagnetError.InvalidPeer)]
    [InlineData("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=%zz", MagnetError.InvalidEncoding)]
    [InlineData("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=%4", MagnetError.InvalidEncoding)]
    public void Rejects_invalid_magnets(string uri, MagnetError expected)
    {
        Assert.False(MagnetLink.TryParse(uri, out var m, out var error));
        Assert.Null(m);
        Assert.Equal(expected, error);
    }

    [Property(MaxTest = 300)]
    public bool Round_trips(byte[] hash, string? name, bool withTracker, ushort port)
    {
        var h = new byte[20];
        (hash ?? []).AsSpan(0, Math.Min(20, hash?.Length ?? 0)).CopyTo(h);
        var link = new MagnetLink(new NodeId(h), string.IsNullOrEmpty(name) ? null : name.Replace("\uFFFD", "", StringComparison.Ordinal),
            withTracker ? ["http://127.0.0.1:1/a?b=c&d"] : [], port == 0 ? [] : [$"127.0.0.1:{port}"]);
        if (link.DisplayName is { } dn && !System.Text.Unicode.Utf8.IsValid(System.Text.Encoding.UTF8.GetBytes(dn))) return true;
        if (link.DisplayName is { } d && d.Any(char.IsSurrogate)) return true;
        return MagnetLink.TryParse(link.ToString(), out var parsed, out _) && parsed!.Equals(link);
    }

    [Property(MaxTest = 500)]
    public bool Never_throws(string? text)
    {
        var ok = MagnetLink.TryParse("magnet:?" + text, out var m, out var e);
        return ok == (m is not null) && ok == (e == MagnetError.None);
    }
}
