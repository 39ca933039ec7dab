using System.Net;
using System.Net.Sockets;
using Peerway.Core;

namespace Peerway.Dht.Tests;

/// <summary>
/// BEP 32 for peers and BEP 46 items: a dual-stack pair (one id, an IPv4 and an IPv6 node) announces, looks up,
/// resolves and publishes on both DHTs, as libtorrent does, on the virtual network with a fake clock.
/// </summary>
public sealed class DualStackLookupTests
{
    private static readonly NodeId InfoHash = NodeId.Sha1("dual stack torrent"u8);

    [Fact]
    public async Task An_ipv6_only_seeder_is_found_by_a_dual_stack_downloader_through_an_ipv6_only_dht_node()
    {
        await using var net = new DhtTestNetwork();
        var (v4, r6) = Build(net);

        // The IPv6-only seeder knows one IPv6-only DHT node and announces there; an IPv4 seeder does in the IPv4 DHT.
        var seeder6 = net.AddNode(new DhtOptions { RandomSeed = 501 }, new IPEndPoint(IPAddress.Parse("fd00:5::1"), 6881));
        net.Await(seeder6.BootstrapAsync([r6.LocalEndPoint], CancellationToken.None));
        Assert.True(net.Await(seeder6.AnnounceAsync(InfoHash, 6000, impliedPort: false, CancellationToken.None)).AnnouncedTo > 0);
        var seeder4 = net.AddNode(new DhtOptions { RandomSeed = 502 }, new IPEndPoint(IPAddress.Parse("10.0.5.1"), 6881));
        net.Await(seeder4.BootstrapAsync([v4[0].LocalEndPoint], CancellationToken.None));
        Assert.True(net.Await(seeder4.AnnounceAsync(InfoHash, 6004, impliedPort: false, CancellationToken.None)).AnnouncedTo > 0);

        // The downloader: an IPv4 and an IPv6 node with one id, each bootstrapped from a node of its family.
        var (d4, d6) = Pair(net, "downloader", 600);
        net.Await(d4.BootstrapAsync([v4[0].LocalEndPoint], CancellationToken.None));
        net.Await(d6.BootstrapAsync([r6.LocalEndPoint], CancellationToken.None));

        // One family alone (what share/get did before): the IPv4 DHT knows only the IPv4 seeder.
        var alone = net.Await(d4.AnnounceAsync(InfoHash, 7000, impliedPort: false, CancellationToken.None));
        Assert.DoesNotContain(alone.Lookup.Peers, p => p.AddressFamily == AddressFamily.InterNetworkV6);

        // Both: the peers of both families, merged.
        var peers = net.Await(d4.AnnounceDualStackAsync(InfoHash, 7000, impliedPort: false, CancellationToken.None));
        Assert.Contains(new IPEndPoint(IPAddress.Parse("fd00:5::1"), 6000), peers);
        Assert.Contains(new IPEndPoint(IPAddress.Parse("10.0.5.1"), 6004), peers);
        Assert.Equal(peers.Count, peers.Distinct().Count());

        // ... and the downloader announced itself in both DHTs: the IPv6-only seeder now finds it over IPv6.
        var back = net.Await(seeder6.GetPeersAsync(InfoHash, CancellationToken.None));
        Assert.Contains(new IPEndPoint(d6.LocalEndPoint.Address, 7000), back.Peers);
    }

    [Fact]
    public async Task A_dual_stack_publisher_puts_a_bep_46_item_in_both_dhts_one_above_the_highest_of_either()
    {
        await using var net = new DhtTestNetwork();
        var (v4, r6) = Build(net);
        using var key = DhtSigningKey.FromSeed(System.Security.Cryptography.SHA256.HashData("dual stack bep46"u8));
        var link = new MutableTorrentLink(key.PublicKey, "channel"u8.ToArray());

        // seq 5 exists only in the IPv6 DHT (put by an IPv6-only writer, stored on r6).
        var w6 = net.AddNode(new DhtOptions { RandomSeed = 450 }, new IPEndPoint(IPAddress.Parse("fd00::450"), 6881));
        net.Await(w6.BootstrapAsync([r6.LocalEndPoint], CancellationToken.None));
        var old = net.Await(w6.PutMutableAsync(key, link.Salt, Bep46.EncodeValue(NodeId.Sha1("old"u8)), 5, null, CancellationToken.None));
        Assert.True(old.StoredOn > 0);

        var (p4, p6) = Pair(net, "publisher", 700);
        net.Await(p4.BootstrapAsync([v4[0].LocalEndPoint], CancellationToken.None));
        net.Await(p6.BootstrapAsync([r6.LocalEndPoint], CancellationToken.None));
        var next = NodeId.Sha1("next"u8);
        var put = net.Await(p4.PublishMutableTorrentAsync(key, link.Salt, next, CancellationToken.None));
        Assert.Equal(6, put.Item.Sequence);

        // An IPv4-only reader and an IPv6-only reader both resolve seq 6.
        var reader4 = net.AddNode(new DhtOptions { RandomSeed = 801 }, new IPEndPoint(IPAddress.Parse("10.0.8.1"), 6881));
        net.Await(reader4.BootstrapAsync([v4[0].LocalEndPoint], CancellationToken.None));
        var reader6 = net.AddNode(new DhtOptions { RandomSeed = 802 }, new IPEndPoint(IPAddress.Parse("fd00:8::1"), 6881));
        net.Await(reader6.BootstrapAsync([r6.LocalEndPoint], CancellationToken.None));
        foreach (var reader in new[] { reader4, reader6 })
        {
            var resolved = net.Await(reader.ResolveMutableTorrentAsync(link, CancellationToken.None));
            Assert.Equal((6L, next), (resolved!.Sequence, resolved.InfoHash));
        }

        // A dual-stack reader takes the newest of both DHTs: seq 7 put in the IPv6 DHT alone is seen through its IPv4 node.
        var newest = NodeId.Sha1("newest"u8);
        Assert.True(net.Await(w6.PutMutableAsync(key, link.Salt, Bep46.EncodeValue(newest), 7, null, CancellationToken.None)).StoredOn > 0);
        Assert.Equal(6, net.Await(reader4.ResolveMutableTorrentAsync(link, CancellationToken.None))!.Sequence);
        var (q4, q6) = Pair(net, "reader", 900);
        net.Await(q4.BootstrapAsync([v4[0].LocalEndPoint], CancellationToken.None));
        net.Await(q6.BootstrapAsync([r6.LocalEndPoint], CancellationToken.None));
        var dual = net.Await(q4.ResolveMutableTorrentAsync(link, CancellationToken.None));
        Assert.Equal((7L, newest), (dual!.Sequence, dual.InfoHash));

        // Republishing an item signed elsewhere goes to both DHTs too.
        var again = net.Await(q4.PutItemDualStackAsync(dual.Item, CancellationToken.None));
        Assert.True(again.StoredOn > old.StoredOn, $"stored on {again.StoredOn} nodes of both DHTs, {old.StoredOn} of one");
    }

    /// <summary>12 IPv4 nodes joined through the first, and one IPv6-only DHT node (the IPv6 DHT's only router).</summary>
    private static (List<DhtNode> V4, DhtNode R6) Build(DhtTestNetwork net)
    {
        var v4 = Enumerable.Range(0, 12).Select(i => net.AddNode(new DhtOptions { RandomSeed = i + 1 }, new IPEndPoint(IPAddress.Parse($"10.0.0.{i + 1}"), 6881))).ToList();
        foreach (var n in v4.Skip(1)) net.Await(n.BootstrapAsync([v4[0].LocalEndPoint], CancellationToken.None));
        var r6 = net.AddNode(new DhtOptions { RandomSeed = 400 }, new IPEndPoint(IPAddress.Parse("fd00::400"), 6881));
        return (v4, r6);
    }

    /// <summary>A dual-stack host: one node per family with the same id (BEP 32), paired.</summary>
    private static (DhtNode V4, DhtNode V6) Pair(DhtTestNetwork net, string name, int seed)
    {
        var id = NodeId.Sha1(System.Text.Encoding.UTF8.GetBytes(name));
        var v4 = net.AddNode(new DhtOptions { RandomSeed = seed, NodeId = id }, new IPEndPoint(IPAddress.Parse($"10.0.{seed / 100}.{seed % 100 + 1}"), 6881));
        var v6 = net.AddNode(new DhtOptions { RandomSeed = seed + 1, NodeId = id }, new IPEndPoint(IPAddress.Parse($"fd00:{seed:x}::1"), 6881));
        v4.PairWith(v6);
        return (v4, v6);
    }
}
