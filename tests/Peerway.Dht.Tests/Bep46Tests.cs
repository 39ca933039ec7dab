using Peerway.Core;

namespace Peerway.Dht.Tests;

/// <summary>BEP 46 (updating torrents via DHT mutable items): the magnet link, the value, and resolve/publish/follow over
/// a virtual network with a fake clock.</summary>
public sealed class Bep46Tests
{
    private static readonly byte[] Key = Convert.FromHexString("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548");

    [Fact]
    public void A_magnet_link_parses_and_prints_back()
    {
        var text = "magnet:?xs=urn:btpk:77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548&s=666f6f626172";
        Assert.True(MutableTorrentLink.IsMutableTorrentMagnet(text));
        Assert.True(MutableTorrentLink.TryParse(text, out var link, out var error), error);
        Assert.Equal(Key, link!.PublicKey.ToArray());
        Assert.Equal("foobar"u8.ToArray(), link.Salt.ToArray());
        // BEP 44's vector: the target of this key with salt "foobar".
        Assert.Equal(NodeId.ParseHex("411eba73b6f087ca51a3795d9c8c938d365e32c1"), link.Target);
        Assert.Equal(text, link.ToString());

        // No salt, other parameters ignored, upper-case hex and an escaped colon accepted.
        Assert.True(MutableTorrentLink.TryParse("magnet:?dn=x&xs=urn%3Abtpk%3A77FF84905A91936367C01360803104F92432FCD904A43511876DF5CDF3E7E548&tr=udp://t", out var bare, out _));
        Assert.Equal(NodeId.ParseHex("4a533d47ec9c7d95b1ad75f576cffc641853b750"), bare!.Target);
        Assert.Equal(new MutableTorrentLink(Key, default), bare);
    }

    [Theory]
    [InlineData("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567")]
    [InlineData("magnet:?xs=urn:btpk:77ff")]
    [InlineData("magnet:?xs=urn:btpk:zzff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")]
    [InlineData("magnet:?xs=urn:btpk:77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548&s=abc")]
    [InlineData("magnet:?xs=urn:btpk:77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548&s=0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("magnet:?xs=urn:btpk:77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548&xs=urn:btpk:77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")]
    [InlineData("http://example/")]
    [InlineData("")]
    public void Not_a_BEP_46_link_is_a_reason_not_an_exception(string text)
    {
        Assert.False(MutableTorrentLink.TryParse(text, out var link, out var error));
        Assert.Null(link);
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void The_value_is_a_dictionary_with_a_20_byte_ih()
    {
        var hash = NodeId.ParseHex("0123456789abcdef0123456789abcdef01234567");
        var value = Bep46.EncodeValue(hash);
        Assert.Equal("d2:ih20:"u8.ToArray().Concat(hash.ToArray()).Append((byte)'e'), value);
        Assert.True(Bep46.TryDecodeValue(value, out var back));
        Assert.Equal(hash, back);
        // Other keys are tolerated; a short ih, a string or garbage is not a pointer.
        Assert.True(Bep46.TryDecodeValue("d2:ih20:aaaaaaaaaaaaaaaaaaaa1:xi1ee"u8, out _));
        Assert.False(Bep46.TryDecodeValue("d2:ih19:aaaaaaaaaaaaaaaaaaae"u8, out _));
        Assert.False(Bep46.TryDecodeValue("d2:ih21:aaaaaaaaaaaaaaaaaaaaae"u8, out _));
        Assert.False(Bep46.TryDecodeValue("20:aaaaaaaaaaaaaaaaaaaa"u8, out _));
        Assert.False(Bep46.TryDecodeValue("d2:ih"u8, out _));
    }

    [FsCheck.Xunit.Property(MaxTest = 5000)]
    public bool Random_bytes_never_throw_in_the_value_decoder(byte[] data, bool asDictionary)
    {
        // Half the inputs start like a BEP 46 value, so the decoder gets past the first byte.
        byte[] value = asDictionary ? [.. "d2:ih"u8, .. data] : data;
        return !Bep46.TryDecodeValue(value, out _) || value.Length <= Bep44.MaxValueLength;
    }

    [FsCheck.Xunit.Property(MaxTest = 5000)]
    public bool Random_text_never_throws_in_the_link_parser(string text, bool asLink)
    {
        var link = asLink ? "magnet:?xs=urn:btpk:" + text : text;
        return !MutableTorrentLink.TryParse(link ?? "", out var parsed, out var error) ? error is not null : parsed is not null;
    }

    [Fact]
    public async Task A_published_torrent_resolves_and_a_follower_sees_each_update_on_its_timer()
    {
        await using var net = Swarm(25, out var nodes);
        using var key = DhtSigningKey.FromSeed(System.Security.Cryptography.SHA256.HashData("bep46 test"u8));
        var link = new MutableTorrentLink(key.PublicKey, "release"u8.ToArray());
        var first = NodeId.Sha1("first torrent"u8);
        var second = NodeId.Sha1("second torrent"u8);

        Assert.Null(net.Await(nodes[3].ResolveMutableTorrentAsync(link, CancellationToken.None)));
        var put = net.Await(nodes[5].PublishMutableTorrentAsync(key, link.Salt, first, CancellationToken.None));
        Assert.Equal(1, put.Item.Sequence);
        Assert.True(put.StoredOn > 0);
        var resolved = net.Await(nodes[17].ResolveMutableTorrentAsync(link, CancellationToken.None));
        Assert.Equal(first, resolved!.InfoHash);
        Assert.Equal(1, resolved.Sequence);

        using var cts = new CancellationTokenSource();
        var interval = TimeSpan.FromMinutes(5);
        var follower = nodes[20].FollowMutableTorrentAsync(link, interval, cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(net.Await(follower.MoveNextAsync().AsTask()));
        Assert.Equal((1L, first), (follower.Current.Sequence, follower.Current.InfoHash));

        // Nothing new: the follower polls on its timer and yields nothing.
        var next = follower.MoveNextAsync().AsTask();
        net.Scheduler.RunUntil(() => next.IsCompleted, TimeSpan.FromSeconds(30), interval * 3);
        Assert.False(next.IsCompleted);
        var queriesBefore = nodes[20].Stats.QueriesSent;

        // The publisher puts the next torrent with the seq one above: the follower sees it within one interval.
        var update = net.Await(nodes[6].PublishMutableTorrentAsync(key, link.Salt, second, CancellationToken.None));
        Assert.Equal(2, update.Item.Sequence);
        var start = net.Time.GetUtcNow();
        Assert.True(net.Await(next));
        Assert.Equal((2L, second), (follower.Current.Sequence, follower.Current.InfoHash));
        Assert.True(net.Time.GetUtcNow() - start <= interval + TimeSpan.FromMinutes(1), "the update was not seen within one interval");
        Assert.True(nodes[20].Stats.QueriesSent > queriesBefore);

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await follower.MoveNextAsync());
        await follower.DisposeAsync();
    }

    [Fact]
    public async Task An_item_of_the_key_that_is_not_a_torrent_pointer_resolves_to_nothing()
    {
        await using var net = Swarm(12, out var nodes);
        using var key = DhtSigningKey.FromSeed(System.Security.Cryptography.SHA256.HashData("bep46 not a pointer"u8));
        Assert.True(net.Await(nodes[2].PutMutableAsync(key, default, "5:hello"u8.ToArray(), null, null, CancellationToken.None)).StoredOn > 0);
        Assert.Null(net.Await(nodes[7].ResolveMutableTorrentAsync(new MutableTorrentLink(key.PublicKey, default), CancellationToken.None)));
    }

    private static DhtTestNetwork Swarm(int count, out List<DhtNode> nodes)
    {
        var net = new DhtTestNetwork();
        nodes = Enumerable.Range(0, count).Select(_ => net.AddNode()).ToList();
        foreach (var n in nodes.Skip(1)) net.Await(n.BootstrapAsync([nodes[0].LocalEndPoint], CancellationToken.None));
        return net;
    }
}
