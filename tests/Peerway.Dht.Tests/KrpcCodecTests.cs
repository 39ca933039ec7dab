using System.Net;
using System.Text;
using Peerway.Core;

namespace Peerway.Dht.Tests;

public sealed class KrpcCodecTests
{
    // BEP 5's example messages, verbatim ("Example Packets" of each query).
    public static TheoryData<string> Bep5Examples => new(Bep5Texts);

    internal static readonly string[] Bep5Texts =
    [
        "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
        "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
        "d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
        "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
        // BEP 44 get and put (canonical key order, so they re-encode byte for byte): get, immutable put, mutable put
        // with salt and cas, and a get reply carrying a mutable item whose value is a list.
        "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q3:get1:t2:aa1:y1:qe",
        "d1:ad2:id20:abcdefghij01234567895:token8:aoeusnth1:v12:Hello World!e1:q3:put1:t2:aa1:y1:qe",
        "d1:ad3:casi1e2:id20:abcdefghij01234567891:k32:0123456789abcdef0123456789abcdef4:salt6:foobar3:seqi2e3:sig64:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef5:token8:aoeusnth1:v12:Hello World!e1:q3:put1:t2:aa1:y1:qe",
        "d1:rd2:id20:abcdefghij01234567891:k32:0123456789abcdef0123456789abcdef3:seqi2e3:sig64:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef5:token8:aoeusnth1:vl4:spami7eee1:t2:aa1:y1:re",
        // BEP 51 sample_infohashes query and reply.
        "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q17:sample_infohashes1:t2:aa1:y1:qe",
        "d1:rd2:id20:abcdefghij01234567898:intervali21600e3:numi2e7:samples40:abcdefghij0123456789mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        // BEP 32: "want" in find_node and get_peers, and a reply with "nodes" and "nodes6" (26- and 38-byte entries).
        "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz1234564:wantl2:n42:n6ee1:q9:find_node1:t2:aa1:y1:qe",
        "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:wantl2:n6ee1:q9:get_peers1:t2:aa1:y1:qe",
        "d1:rd2:id20:abcdefghij01234567895:nodes26:abcdefghij0123456789axje.u6:nodes638:mnopqrstuvwxyz1234560123456789abcdefpqe1:t2:aa1:y1:re",
    ];

    [Theory]
    [MemberData(nameof(Bep5Examples))]
    public void Bep5_examples_decode_and_reencode_byte_for_byte(string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        Assert.True(KrpcCodec.TryDecode(bytes, out var message, out var error), error.ToString());
        Assert.Equal("aa"u8.ToArray(), message.TransactionId.ToArray());
        var buffer = new byte[1500];
        var n = KrpcCodec.Encode(message, buffer);
        Assert.Equal(text, Encoding.ASCII.GetString(buffer, 0, n));
    }

    [Fact]
    public void Ping_query_fields()
    {
        Assert.True(KrpcCodec.TryDecode("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"u8, out var m, out _));
        Assert.Equal(KrpcMessageType.Query, m.Type);
        Assert.Equal(KrpcMethod.Ping, m.Method);
        Assert.Equal(new NodeId("abcdefghij0123456789"u8), m.Id);
    }

    [Fact]
    public void Get_peers_values_and_token()
    {
        Assert.True(KrpcCodec.TryDecode("d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re"u8, out var m, out _));
        Assert.Equal("aoeusnth"u8.ToArray(), m.Token.ToArray());
        Assert.Equal(2, m.Values!.Count);
        // "axje.u": 'a'=97 'x'=120 'j'=106 'e'=101, port '.u' = 0x2e75.
        Assert.Equal(new IPEndPoint(IPAddress.Parse("97.120.106.101"), 0x2e75), m.Values[0]);
    }

    [Fact]
    public void Announce_peer_implied_port()
    {
        var text = "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"u8;
        Assert.True(KrpcCodec.TryDecode(text, out var m, out _));
        Assert.Equal(KrpcMethod.AnnouncePeer, m.Method);
        Assert.True(m.ImpliedPort);
        Assert.Equal(6881, m.Port);
        Assert.Equal(new NodeId("mnopqrstuvwxyz123456"u8), m.InfoHash);
    }

    [Fact]
    public void Error_message_fields()
    {
        Assert.True(KrpcCodec.TryDecode("d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee"u8, out var m, out _));
        Assert.Equal(KrpcMessageType.Error, m.Type);
        Assert.Equal((int)KrpcErrorCode.Generic, m.ErrorCode);
        Assert.Equal("A Generic Error Ocurred", m.ErrorMessage);
    }

    [Fact]
    public void Response_with_nodes_ip_and_version_round_trips()
    {
        var contacts = Enumerable.Range(1, 8)
            .Select(i => new NodeContact(NodeId.Sha1([(byte)i]), new IPEndPoint(IPAddress.Parse($"192.0.2.{i}"), 6881 + i)))
            .ToList();
        var m = new KrpcMessage { Type = KrpcMessageType.Response, Id = NodeId.Sha1("x"u8), ExternalAddress = new IPEndPoint(IPAddress.Parse("203.0.113.9"), 51413) };
        m.SetTransactionId([1, 2]);
        m.SetVersion("LT\x01\x02"u8);
        m.SetToken([9, 9, 9, 9]);
        m.Nodes = KrpcCodec.WriteCompactNodes(contacts, System.Net.Sockets.AddressFamily.InterNetwork);
        var buffer = new byte[1500];
        var n = KrpcCodec.Encode(m, buffer);
        Assert.True(n > 0);
        Assert.True(KrpcCodec.TryDecode(buffer.AsSpan(0, n), out var d, out var e), e.ToString());
        Assert.Equal(m.Id, d.Id);
        Assert.Equal(m.ExternalAddress, d.ExternalAddress);
        Assert.Equal("LT\x01\x02"u8.ToArray(), d.Version.ToArray());
        Assert.Equal(contacts, KrpcCodec.ReadCompactNodes(d.Nodes.Span, System.Net.Sockets.AddressFamily.InterNetwork));
        Assert.Equal(8 * KrpcCodec.CompactNodeLength, d.Nodes.Length);
    }

    [Fact]
    public void IPv6_nodes6_and_values_round_trip()
    {
        var contacts = new[] { new NodeContact(NodeId.Sha1("a"u8), new IPEndPoint(IPAddress.Parse("2001:db8::1"), 6881)) };
        var m = new KrpcMessage { Type = KrpcMessageType.Response, Id = NodeId.Sha1("y"u8) };
        m.SetTransactionId([7]);
        m.Nodes6 = KrpcCodec.WriteCompactNodes(contacts, System.Net.Sockets.AddressFamily.InterNetworkV6);
        m.Values = [new IPEndPoint(IPAddress.Parse("2001:db8::2"), 1), new IPEndPoint(IPAddress.Parse("198.51.100.1"), 2)];
        var buffer = new byte[1500];
        var n = KrpcCodec.Encode(m, buffer);
        Assert.True(KrpcCodec.TryDecode(buffer.AsSpan(0, n), out var d, out _));
        Assert.Equal(contacts, KrpcCodec.ReadCompactNodes(d.Nodes6.Span, System.Net.Sockets.AddressFamily.InterNetworkV6));
        Assert.Equal(m.Values, d.Values);
    }

    [Theory]
    [InlineData("", KrpcError.MalformedBencode)]
    [InlineData("le", KrpcError.NotADictionary)]
    [InlineData("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:y1:qe", KrpcError.MissingTransactionId)]
    [InlineData("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:xe", KrpcError.InvalidType)]
    [InlineData("d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe", KrpcError.InvalidId)]
    [InlineData("d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe", KrpcError.InvalidTarget)]
    [InlineData("d1:ad2:id20:abcdefghij0123456789e1:q9:get_peers1:t2:aa1:y1:qe", KrpcError.InvalidInfoHash)]
    [InlineData("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881ee1:q13:announce_peer1:t2:aa1:y1:qe", KrpcError.InvalidToken)]
    [InlineData("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti70000e5:token2:xxe1:q13:announce_peer1:t2:aa1:y1:qe", KrpcError.InvalidPort)]
    [InlineData("d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re", KrpcError.InvalidNodes)]
    [InlineData("d1:rd2:id20:0123456789abcdefghij6:valuesl3:abcee1:t2:aa1:y1:re", KrpcError.InvalidValues)]
    [InlineData("d1:eli201ee1:t2:aa1:y1:ee", KrpcError.None)]
    [InlineData("d1:e3:abc1:t2:aa1:y1:ee", KrpcError.InvalidError)]
    [InlineData("d1:q4:ping1:t2:aa1:y1:qe", KrpcError.MissingBody)]
    [InlineData("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:q", KrpcError.MalformedBencode)]
    [InlineData("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qeX", KrpcError.MalformedBencode)]
    [InlineData("d2:ip3:abc1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re", KrpcError.InvalidAddress)]
    public void Invalid_messages_give_typed_errors(string text, KrpcError expected)
    {
        KrpcCodec.TryDecode(Encoding.ASCII.GetBytes(text), out _, out var error);
        Assert.Equal(expected, error);
    }

    [Fact]
    public void Transaction_id_is_kept_when_the_body_is_invalid()
    {
        Assert.False(KrpcCodec.TryDecode("d1:ad2:id3:abce1:q4:ping1:t2:zz1:y1:qe"u8, out var m, out _));
        Assert.True(m.HasTransactionId);
        Assert.Equal("zz"u8.ToArray(), m.TransactionId.ToArray());
    }

    [Fact]
    public void Oversized_datagram_is_refused()
    {
        var big = new byte[KrpcCodec.MaxDatagramLength + 1];
        big[0] = (byte)'d';
        Assert.Equal(KrpcError.DatagramTooLarge, KrpcCodec.Decode(big, new KrpcMessage()));
    }

    [Fact]
    public void Deep_nesting_is_refused()
    {
        var deep = "d1:ad1:x" + string.Concat(Enumerable.Repeat("l", 50)) + string.Concat(Enumerable.Repeat("e", 50)) + "2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
        Assert.Equal(KrpcError.MalformedBencode, KrpcCodec.Decode(Encoding.ASCII.GetBytes(deep), new KrpcMessage()));
    }

    [Fact]
    public void Read_only_flag_and_unknown_keys_are_tolerated()
    {
        Assert.True(KrpcCodec.TryDecode("d1:ad2:id20:abcdefghij01234567894:wantl2:n42:n6ee1:q4:ping2:roi1e1:t2:aa1:y1:qe"u8, out var m, out var e), e.ToString());
        Assert.True(m.ReadOnly);
    }

    [Fact]
    public void Unsorted_top_level_keys_are_tolerated()
    {
        Assert.True(KrpcCodec.TryDecode("d1:t2:aa1:y1:q1:q4:ping1:ad2:id20:abcdefghij0123456789ee"u8, out var m, out var e), e.ToString());
        Assert.Equal(KrpcMethod.Ping, m.Method);
    }

    [Fact]
    public void Unknown_method_keeps_its_name_and_target()
    {
        Assert.True(KrpcCodec.TryDecode("d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q6:sample1:t2:aa1:y1:qe"u8, out var m, out _));
        Assert.Equal(KrpcMethod.Unknown, m.Method);
        Assert.Equal("sample"u8.ToArray(), m.MethodName.ToArray());
        Assert.NotNull(m.Target);
    }

    [Fact]
    public void Encode_reports_a_too_small_destination()
    {
        Assert.True(KrpcCodec.TryDecode("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"u8, out var m, out _));
        Assert.Equal(-1, KrpcCodec.Encode(m, new byte[20]));
    }

    [Fact]
    public void Decoding_a_get_peers_query_into_a_reused_message_allocates_nothing()
    {
        var bytes = "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:v4:LT\u0001\u00021:y1:qe"u8.ToArray();
        var message = new KrpcMessage();
        Assert.Equal(KrpcError.None, KrpcCodec.Decode(bytes, message)); // warm up
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++) KrpcCodec.Decode(bytes, message);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal(KrpcMethod.GetPeers, message.Method);
    }

    [Fact]
    public void Encoding_a_reply_allocates_nothing()
    {
        Assert.True(KrpcCodec.TryDecode("d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re"u8, out var m, out _));
        m.ExternalAddress = new IPEndPoint(IPAddress.Loopback, 1);
        var buffer = new byte[512];
        KrpcCodec.Encode(m, buffer);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++) KrpcCodec.Encode(m, buffer);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
