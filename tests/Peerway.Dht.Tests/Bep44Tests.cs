using System.Net;
using Peerway.Core;

namespace Peerway.Dht.Tests;

/// <summary>BEP 44 (storing arbitrary data in the DHT): the BEP's test vectors, the codec, the storing node's checks and
/// error codes, and get/put over a virtual network.</summary>
public sealed class Bep44Tests
{
    // BEP 44 "Test vectors" (bittorrent.org/beps/bep_0044.html).
    private static readonly byte[] VectorKey = Convert.FromHexString("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548");
    private static readonly byte[] VectorSig1 = Convert.FromHexString(
        "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01");
    private static readonly byte[] VectorSig2 = Convert.FromHexString(
        "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17ddf9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08");
    private static readonly byte[] HelloWorld = "12:Hello World!"u8.ToArray();

    [Fact]
    public void The_signed_bytes_are_the_BEPs()
    {
        Assert.Equal("3:seqi1e1:v12:Hello World!"u8.ToArray(), Bep44.SignedBytes([], 1, HelloWorld));
        Assert.Equal("4:salt6:foobar3:seqi1e1:v12:Hello World!"u8.ToArray(), Bep44.SignedBytes("foobar"u8, 1, HelloWorld));
    }

    [Fact]
    public void The_BEPs_targets_and_signatures_check_out()
    {
        Assert.Equal(NodeId.ParseHex("4a533d47ec9c7d95b1ad75f576cffc641853b750"), Bep44.MutableTarget(VectorKey, []));
        Assert.Equal(NodeId.ParseHex("411eba73b6f087ca51a3795d9c8c938d365e32c1"), Bep44.MutableTarget(VectorKey, "foobar"u8));
        Assert.Equal(NodeId.ParseHex("e5f96f6f38320f0f33959cb4d3d656452117aadb"), Bep44.ImmutableTarget(HelloWorld));
        Assert.True(Bep44.Verify(VectorKey, VectorSig1, [], 1, HelloWorld));
        Assert.True(Bep44.Verify(VectorKey, VectorSig2, "foobar"u8, 1, HelloWorld));
        // Any change to what is signed fails.
        Assert.False(Bep44.Verify(VectorKey, VectorSig1, [], 2, HelloWorld));
        Assert.False(Bep44.Verify(VectorKey, VectorSig1, "foobar"u8, 1, HelloWorld));
        Assert.False(Bep44.Verify(VectorKey, VectorSig2, "foobar"u8, 1, "12:Hello World?"u8));
        Assert.False(Bep44.Verify(VectorKey.AsSpan(1), VectorSig1, [], 1, HelloWorld));
        Assert.False(Bep44.Verify(new byte[32], VectorSig1, [], 1, HelloWorld));
    }

    [Fact]
    public void A_key_signs_what_verifies_and_comes_back_from_its_seed()
    {
        using var key = DhtSigningKey.Generate();
        var item = DhtItem.Mutable(key, "log"u8, 7, "d1:ai1ee"u8);
        Assert.True(Bep44.IsValid(item));
        Assert.False(Bep44.IsValid(item with { Sequence = 8 }));
        using var again = DhtSigningKey.FromSeed(key.ExportSeed());
        Assert.Equal(key.PublicKey, again.PublicKey);
        Assert.True(Bep44.Verify(again.PublicKey, again.Sign(Bep44.SignedBytes("log"u8, 7, "d1:ai1ee"u8)), "log"u8, 7, "d1:ai1ee"u8));
    }

    [Fact]
    public void Put_and_get_messages_round_trip_through_the_codec()
    {
        using var key = DhtSigningKey.Generate();
        var item = DhtItem.Mutable(key, "salt"u8, 42, "l4:spami7ee"u8);
        var put = new KrpcMessage { Type = KrpcMessageType.Query, Method = KrpcMethod.Put, Id = NodeId.Random(new Random(1)) };
        put.SetTransactionId("aa"u8);
        put.SetToken("tok"u8);
        (put.ItemValue, put.HasItemValue, put.ItemKey, put.ItemSignature, put.ItemSalt, put.ItemSeq, put.ItemCas) =
            (item.Value, true, item.PublicKey, item.Signature, item.Salt, item.Sequence, 41);
        var buffer = new byte[2048];
        var n = KrpcCodec.Encode(put, buffer);
        Assert.True(n > 0);
        Assert.True(KrpcCodec.TryDecode(buffer.AsSpan(0, n), out var decoded, out var error), error.ToString());
        Assert.Equal(KrpcMethod.Put, decoded.Method);
        Assert.Equal(item.Value, decoded.ItemValue.ToArray());
        Assert.Equal(item.PublicKey, decoded.ItemKey);
        Assert.Equal(item.Signature, decoded.ItemSignature);
        Assert.Equal(item.Salt, decoded.ItemSalt);
        Assert.Equal(42, decoded.ItemSeq);
        Assert.Equal(41, decoded.ItemCas);
        Assert.Equal("tok"u8.ToArray(), decoded.Token.ToArray());

        // A get reply carries k, seq, sig and v next to the usual fields; the top-level "v" (version) stays apart.
        var reply = new KrpcMessage { Type = KrpcMessageType.Response, Id = NodeId.Random(new Random(2)) };
        reply.SetTransactionId("bb"u8);
        reply.SetVersion("PW01"u8);
        (reply.ItemValue, reply.HasItemValue, reply.ItemKey, reply.ItemSignature, reply.ItemSeq) = (item.Value, true, item.PublicKey, item.Signature, 42);
        n = KrpcCodec.Encode(reply, buffer);
        Assert.True(KrpcCodec.TryDecode(buffer.AsSpan(0, n), out decoded, out error), error.ToString());
        Assert.Equal("PW01"u8.ToArray(), decoded.Version.ToArray());
        Assert.Equal(item.Value, decoded.ItemValue.ToArray());
        Assert.Equal(42, decoded.ItemSeq);

        // A put without a value or a token does not decode (and is not encoded).
        var bare = new KrpcMessage { Type = KrpcMessageType.Query, Method = KrpcMethod.Put, Id = NodeId.Random(new Random(3)) };
        bare.SetTransactionId("cc"u8);
        bare.SetToken("tok"u8);
        Assert.Equal(-1, KrpcCodec.Encode(bare, buffer));
        Assert.False(KrpcCodec.TryDecode("d1:ad2:id20:aaaaaaaaaaaaaaaaaaaa5:token3:toke1:q3:put1:t2:aa1:y1:qe"u8, out _, out error));
        Assert.Equal(KrpcError.InvalidItem, error);
    }

    [Fact]
    public async Task Immutable_and_mutable_items_put_by_one_node_are_got_by_another()
    {
        await using var net = Swarm(out var nodes);
        var immutable = net.Await(nodes[5].PutImmutableAsync("12:Hello World!"u8.ToArray(), CancellationToken.None));
        Assert.Equal(NodeId.ParseHex("e5f96f6f38320f0f33959cb4d3d656452117aadb"), immutable.Item.Target);
        Assert.True(immutable.StoredOn > 0, "stored on no node");
        var got = net.Await(nodes[17].GetImmutableAsync(immutable.Item.Target, CancellationToken.None));
        Assert.Equal(HelloWorld, got.Item?.Value);

        // A fixed key: the swarm is deterministic (seeded nodes, stepped scheduler), so the run is too.
        using var key = DhtSigningKey.FromSeed(System.Security.Cryptography.SHA256.HashData("bep44 swarm test"u8));
        var first = net.Await(nodes[8].PutMutableAsync(key, "name"u8.ToArray(), "5:first"u8.ToArray(), sequence: null, cas: null, CancellationToken.None));
        Assert.Equal(1, first.Item.Sequence);
        Assert.True(first.StoredOn > 0);
        var second = net.Await(nodes[9].PutMutableAsync(key, "name"u8.ToArray(), "6:second"u8.ToArray(), sequence: null, cas: null, CancellationToken.None));
        Assert.Equal(2, second.Item.Sequence); // one above the highest found
        var latest = net.Await(nodes[21].GetMutableAsync(key.PublicKey, "name"u8.ToArray(), CancellationToken.None));
        Assert.Equal(2, latest.Item?.Sequence);
        Assert.Equal("6:second"u8.ToArray(), latest.Item?.Value);

        // Another salt is another item: nothing there.
        Assert.Null(net.Await(nodes[21].GetMutableAsync(key.PublicKey, "other"u8.ToArray(), CancellationToken.None)).Item);

        // Going backwards is refused with 302 and a CAS on a stale seq with 301 by the nodes that hold the item (a node
        // of this lookup's k closest that missed the earlier puts may take it: it has nothing to compare with); a get
        // still finds the newest.
        var stale = net.Await(nodes[3].PutMutableAsync(key, "name"u8.ToArray(), "3:old"u8.ToArray(), sequence: 1, cas: null, CancellationToken.None));
        Assert.Contains((int)KrpcErrorCode.SequenceNotNewer, stale.Errors);
        Assert.Equal("6:second"u8.ToArray(), net.Await(nodes[22].GetMutableAsync(key.PublicKey, "name"u8.ToArray(), CancellationToken.None)).Item?.Value);
        var cas = net.Await(nodes[3].PutMutableAsync(key, "name"u8.ToArray(), "5:third"u8.ToArray(), sequence: 3, cas: 1, CancellationToken.None));
        Assert.Contains((int)KrpcErrorCode.CasMismatch, cas.Errors);
        var casOk = net.Await(nodes[3].PutMutableAsync(key, "name"u8.ToArray(), "5:third"u8.ToArray(), sequence: 3, cas: 2, CancellationToken.None));
        Assert.True(casOk.StoredOn > 0);
        Assert.Equal("5:third"u8.ToArray(), net.Await(nodes[0].GetMutableAsync(key.PublicKey, "name"u8.ToArray(), CancellationToken.None)).Item?.Value);
    }

    [Fact]
    public async Task A_node_that_serves_a_forged_item_is_not_believed()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var liar = new RawPeer(net);
        var boot = node.BootstrapAsync([liar.EndPoint], CancellationToken.None);
        net.Scheduler.RunUntilIdle();
        var handled = 0;
        liar.AnswerQueries(ref handled);
        Assert.True(net.Await(boot) > 0);

        // The liar's only contact answers every get with an item that does not verify: a mutable one whose value was
        // swapped after signing, an immutable one that does not hash to the target.
        using var key = DhtSigningKey.Generate();
        var forged = DhtItem.Mutable(key, [], 5, "4:real"u8) with { Value = "4:fake"u8.ToArray() };
        liar.Received.Clear();
        var mutable = node.GetMutableAsync(key.PublicKey, Array.Empty<byte>(), CancellationToken.None);
        var immutable = node.GetImmutableAsync(Bep44.ImmutableTarget(HelloWorld), CancellationToken.None);
        net.Scheduler.RunUntilIdle();
        Assert.Equal(2, liar.AnswerGets(forged, "12:Hello World?"u8.ToArray()));
        net.Scheduler.RunUntilIdle();
        Assert.Equal(1, net.Await(mutable).Lookup.Responses);
        Assert.Null(net.Await(mutable).Item);
        Assert.Null(net.Await(immutable).Item);

        // The same liar telling the truth is believed (the test can fail).
        var honest = DhtItem.Mutable(key, [], 5, "4:real"u8);
        var again = node.GetMutableAsync(key.PublicKey, Array.Empty<byte>(), CancellationToken.None);
        var again2 = node.GetImmutableAsync(Bep44.ImmutableTarget(HelloWorld), CancellationToken.None);
        net.Scheduler.RunUntilIdle();
        Assert.Equal(2, liar.AnswerGets(honest, HelloWorld));
        net.Scheduler.RunUntilIdle();
        Assert.Equal("4:real"u8.ToArray(), net.Await(again).Item?.Value);
        Assert.Equal(HelloWorld, net.Await(again2).Item?.Value);
    }

    [Fact]
    public async Task A_storing_node_refuses_what_does_not_verify_with_the_BEPs_error_codes()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var peer = new RawPeer(net);
        var token = peer.GetToken(net, node, NodeId.Random(new Random(4)));
        using var key = DhtSigningKey.Generate();
        var good = DhtItem.Mutable(key, "s"u8, 1, "3:abc"u8);

        int Put(DhtItem item, byte[]? tok = null, long? cas = null, byte[]? salt = null, byte[]? sig = null)
        {
            peer.Received.Clear();
            peer.SendPut(node.LocalEndPoint, tok ?? token, item, cas, salt, sig);
            net.Scheduler.RunUntilIdle();
            var reply = Assert.Single(peer.Replies());
            return reply.Type == KrpcMessageType.Error ? reply.ErrorCode : 0;
        }

        var big = new byte[1001];
        "997:"u8.CopyTo(big);
        Assert.Equal(205, Put(DhtItem.Immutable(big)));
        Assert.Equal(206, Put(good, sig: new byte[64]));
        Assert.Equal(207, Put(good, salt: new byte[65]));
        Assert.Equal(203, Put(good, tok: "nope"u8.ToArray()));
        Assert.Equal(0, node.Stats.StoredItems);

        Assert.Equal(0, Put(good));
        Assert.Equal(1, node.Stats.StoredItems);
        Assert.Equal(0, Put(good)); // the same item again refreshes it
        Assert.Equal(302, Put(DhtItem.Mutable(key, "s"u8, 1, "3:xyz"u8))); // same seq, another value
        Assert.Equal(302, Put(DhtItem.Mutable(key, "s"u8, 0, "3:xyz"u8)));
        Assert.Equal(301, Put(DhtItem.Mutable(key, "s"u8, 2, "3:xyz"u8), cas: 5));
        Assert.Equal(0, Put(DhtItem.Mutable(key, "s"u8, 2, "3:xyz"u8), cas: 1));
        Assert.Equal(1, node.Stats.StoredItems);
    }

    [Fact]
    public async Task Storage_is_bounded_per_IP_and_items_expire_unless_put_again()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode(new DhtOptions { RandomSeed = 3, MaxStoredItemsPerIp = 5, MaxStoredItems = 8 });
        var flooder = new RawPeer(net);
        var other = new RawPeer(net);
        var otherToken = other.GetToken(net, node, NodeId.Random(new Random(5)));
        other.SendPut(node.LocalEndPoint, otherToken, DhtItem.Immutable("5:other"u8), null, null, null);
        var token = flooder.GetToken(net, node, NodeId.Random(new Random(6)));
        for (var i = 0; i < 40; i++) flooder.SendPut(node.LocalEndPoint, token, DhtItem.Immutable(System.Text.Encoding.ASCII.GetBytes($"i{i}e")), null, null, null);
        net.Scheduler.RunUntilIdle();
        Assert.Equal(6, node.Stats.StoredItems); // 5 of the flooder's, and the other's
        var probe = new RawPeer(net);
        Assert.True(probe.HasItem(net, node, Bep44.ImmutableTarget("5:other"u8)));
        Assert.True(probe.HasItem(net, node, Bep44.ImmutableTarget("i39e"u8)));
        Assert.False(probe.HasItem(net, node, Bep44.ImmutableTarget("i0e"u8)));

        // Two hours later (the default lifetime) what was not put again is gone.
        net.Time.Advance(TimeSpan.FromHours(1));
        var fresh = other.GetToken(net, node, NodeId.Random(new Random(7)));
        other.SendPut(node.LocalEndPoint, fresh, DhtItem.Immutable("5:other"u8), null, null, null);
        net.Scheduler.RunUntilIdle();
        net.Time.Advance(TimeSpan.FromHours(1.5));
        net.Scheduler.RunUntilIdle();
        Assert.Equal(1, node.Stats.StoredItems);
        Assert.True(probe.HasItem(net, node, Bep44.ImmutableTarget("5:other"u8)));
    }

    private static DhtTestNetwork Swarm(out List<DhtNode> nodes)
    {
        var net = new DhtTestNetwork();
        nodes = Enumerable.Range(0, 30).Select(_ => net.AddNode()).ToList();
        foreach (var n in nodes.Skip(1)) net.Await(n.BootstrapAsync([nodes[0].LocalEndPoint], CancellationToken.None));
        return net;
    }
}
