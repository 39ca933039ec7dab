using System.Buffers;
using System.Net;
using FsCheck.Xunit;
using Peerway.Core;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Tests.Wire;

public sealed class PeerWireTests
{
    private static byte[] Written(Action<IBufferWriter<byte>> write)
    {
        var w = new ArrayBufferWriter<byte>();
        write(w);
        return w.WrittenSpan.ToArray();
    }

    [Fact]
    public void Handshake_round_trips_with_reserved_bits()
    {
        var hs = new PeerHandshake(PeerHandshake.DhtBit | PeerHandshake.FastBit | PeerHandshake.ExtensionBit, NodeId.Random(), NodeId.Random());
        var bytes = new byte[PeerWire.HandshakeLength];
        PeerWire.WriteHandshake(bytes, hs);
        Assert.Equal(19, bytes[0]);
        Assert.Equal("BitTorrent protocol"u8.ToArray(), bytes[1..20]);
        // BEP 10: reserved byte 5 bit 0x10; BEP 5: byte 7 bit 0x01; BEP 6: byte 7 bit 0x04.
        Assert.Equal(0x10, bytes[20 + 5]);
        Assert.Equal(0x05, bytes[20 + 7]);
        Assert.True(PeerWire.TryReadHandshake(bytes, out var back, out _));
        Assert.Equal(hs, back);
        Assert.True(back.SupportsDht && back.SupportsFast && back.SupportsExtensions);
        bytes[5] ^= 1;
        Assert.False(PeerWire.TryReadHandshake(bytes, out _, out var error));
        Assert.Equal(PeerWireError.BadHandshake, error);
    }

    [Fact]
    public void Every_message_round_trips()
    {
        var block = Enumerable.Range(0, 16384).Select(i => (byte)i).ToArray();
        foreach (var t in new[] { PeerMessageType.Choke, PeerMessageType.Unchoke, PeerMessageType.Interested, PeerMessageType.NotInterested, PeerMessageType.HaveAll, PeerMessageType.HaveNone })
        {
            var f = Written(w => PeerWire.WriteSimple(w, t));
            Assert.Equal([0, 0, 0, 1, (byte)t], f);
            Assert.True(PeerWire.TryDecode(f, out var m, out _));
            Assert.Equal(t, m.Type);
        }

        foreach (var t in new[] { PeerMessageType.Have, PeerMessageType.Suggest, PeerMessageType.AllowedFast })
        {
            Assert.True(PeerWire.TryDecode(Written(w => PeerWire.WriteIndex(w, t, 123456)), out var m, out _));
            Assert.Equal((t, 123456), (m.Type, m.Index));
        }

        foreach (var t in new[] { PeerMessageType.Request, PeerMessageType.Cancel, PeerMessageType.RejectRequest })
        {
            var f = Written(w => PeerWire.WriteBlockMessage(w, t, 7, 16384, 16384));
            Assert.Equal(17, f.Length);
            Assert.True(PeerWire.TryDecode(f, out var m, out _));
            Assert.Equal((t, 7, 16384, 16384), (m.Type, m.Index, m.Begin, m.Length));
        }

        var piece = Written(w => PeerWire.WritePiece(w, 3, 32768, block));
        Assert.True(PeerWire.TryDecode(piece, out var p, out _));
        Assert.Equal((PeerMessageType.Piece, 3, 32768), (p.Type, p.Index, p.Begin));
        Assert.Equal(block, p.Payload.ToArray());
        var header = new byte[13];
        PeerWire.WritePieceHeader(header, 3, 32768, block.Length);
        Assert.Equal(piece[..13], header);

        Assert.True(PeerWire.TryDecode(Written(w => PeerWire.WriteBitfield(w, [0xFF, 0x80])), out var bf, out _));
        Assert.Equal([0xFF, 0x80], bf.Payload.ToArray());
        Assert.True(PeerWire.TryDecode(Written(w => PeerWire.WritePort(w, 6881)), out var port, out _));
        Assert.Equal((PeerMessageType.Port, 6881), (port.Type, port.Index));
        Assert.True(PeerWire.TryDecode(Written(w => PeerWire.WriteExtended(w, 3, "de"u8)), out var ext, out _));
        Assert.Equal((PeerMessageType.Extended, (byte)3), (ext.Type, ext.ExtendedId));
        Assert.Equal("de"u8.ToArray(), ext.Payload.ToArray());
        var ka = Written(PeerWire.WriteKeepAlive);
        Assert.Equal([0, 0, 0, 0], ka);
        Assert.True(PeerWire.TryDecode(ka, out var k, out _));
        Assert.Equal(PeerMessageType.KeepAlive, k.Type);
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0, 2, 0, 0 }, PeerWireError.BadLength)]
    [InlineData(new byte[] { 0, 0, 0, 4, 4, 0, 0, 0 }, PeerWireError.BadLength)]
    [InlineData(new byte[] { 0, 0, 0, 1, 99 }, PeerWireError.UnknownMessage)]
    [InlineData(new byte[] { 0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 1 }, PeerWireError.BadRequest)]
    [InlineData(new byte[] { 0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 }, PeerWireError.BadRequest)]
    [InlineData(new byte[] { 0, 0, 0, 5, 4, 0x80, 0, 0, 0 }, PeerWireError.BadLength)]
    public void Rejects_malformed_messages(byte[] frame, object expected)
    {
        // object: PeerWireError is internal, and a public test method cannot take it.
        Assert.False(PeerWire.TryDecode(frame, out _, out var error));
        Assert.Equal((PeerWireError)expected, error);
    }

    [Fact]
    public void Frame_length_limits_and_partial_frames()
    {
        Assert.Equal(0, PeerWire.FrameLength([0, 0, 0], out _));
        Assert.Equal(0, PeerWire.FrameLength([0, 0, 0, 5, 4], out _));
        Assert.Equal(9, PeerWire.FrameLength([0, 0, 0, 5, 4, 0, 0, 0, 1, 9], out _));
        Assert.Equal(-1, PeerWire.FrameLength([0, 0x20, 0, 0], out var error));
        Assert.Equal(PeerWireError.MessageTooLarge, error);
        var seq = new ReadOnlySequence<byte>(new byte[] { 0, 0, 0, 1, 2, 7 });
        Assert.Equal(5, PeerWire.FrameLength(seq, out _));
    }

    // BEP 6 "Allowed Fast" test vectors: 1313 pieces, IP 80.4.4.200, info-hash 0xaa × 20.
    [Fact]
    public void Allowed_fast_set_matches_bep6_vectors()
    {
        var hash = new NodeId(Enumerable.Repeat((byte)0xaa, 20).ToArray());
        Assert.Equal([1059, 431, 808, 1217, 287, 376, 1188], AllowedFast.Generate(IPAddress.Parse("80.4.4.200"), hash, 1313, 7));
        Assert.Equal([1059, 431, 808, 1217, 287, 376, 1188, 353, 508], AllowedFast.Generate(IPAddress.Parse("80.4.4.200"), hash, 1313, 9));
    }

    [Fact]
    public void Extended_handshake_round_trips()
    {
        var hs = new ExtendedHandshake
        {
            Extensions = new Dictionary<string, byte> { ["ut_metadata"] = 1, ["ut_pex"] = 2 },
            ListenPort = 6881,
            Client = "Peerway 0.1",
            RequestQueue = 250,
            MetadataSize = 31337,
            YourIp = IPAddress.Loopback,
        };
        Assert.True(ExtendedHandshake.TryDecode(hs.Encode(), out var back, out _));
        Assert.Equal(1, back!.ExtensionId("ut_metadata"));
        Assert.Equal(2, back.ExtensionId("ut_pex"));
        Assert.Equal(0, back.ExtensionId("lt_donthave"));
        Assert.Equal((6881, "Peerway 0.1", 250, 31337), (back.ListenPort, back.Client, back.RequestQueue, back.MetadataSize));
        Assert.Equal(IPAddress.Loopback, back.YourIp);
        Assert.False(ExtendedHandshake.TryDecode("li1ee"u8, out _, out _));
    }

    [Fact]
    public void Metadata_messages_round_trip_with_trailing_data()
    {
        var data = new byte[1000];
        Random.Shared.NextBytes(data);
        var bytes = MetadataMessage.Encode(MetadataMessageType.Data, 2, 33768, data);
        Assert.StartsWith("d8:msg_typei1e5:piecei2e10:total_sizei33768ee", System.Text.Encoding.Latin1.GetString(bytes));
        Assert.True(MetadataMessage.TryDecode(bytes, out var m, out _));
        Assert.Equal((MetadataMessageType.Data, 2, 33768), (m.Type, m.Piece, m.TotalSize));
        Assert.Equal(data, m.Data.ToArray());
        Assert.True(MetadataMessage.TryDecode(MetadataMessage.Encode(MetadataMessageType.Request, 0), out var r, out _));
        Assert.Equal(MetadataMessageType.Request, r.Type);
        Assert.False(MetadataMessage.TryDecode("d8:msg_typei0e5:piecei0eeXX"u8, out _, out _));
        Assert.False(MetadataMessage.TryDecode("d8:msg_typei7e5:piecei0ee"u8, out _, out _));
    }

    [Fact]
    public void Pex_round_trips_v4_and_v6()
    {
        var added = new List<IPEndPoint> { new(IPAddress.Parse("10.0.0.1"), 6881), new(IPAddress.IPv6Loopback, 51413) };
        var dropped = new List<IPEndPoint> { new(IPAddress.Parse("192.168.1.2"), 1) };
        Assert.True(PexMessage.TryDecode(new PexMessage(added, dropped).Encode(), out var back, out _));
        Assert.Equal(added, back!.Added);
        Assert.Equal(dropped, back.Dropped);
        Assert.False(PexMessage.TryDecode("d5:added5:abcdee"u8, out _, out _));
    }

    [Property(MaxTest = 2000)]
    public bool Decoders_never_throw_on_random_bytes(byte[] data)
    {
        data ??= [];
        var n = PeerWire.FrameLength(data, out _);
        if (n > 0) PeerWire.TryDecode(data.AsSpan(0, n), out _, out _);
        PeerWire.TryDecode(data, out _, out _);
        PeerWire.TryReadHandshake(data, out _, out _);
        ExtendedHandshake.TryDecode(data, out _, out _);
        MetadataMessage.TryDecode(data, out _, out _);
        PexMessage.TryDecode(data, out _, out _);
        return true;
    }

    [Property(MaxTest = 2000)]
    public bool Mutated_valid_frames_decode_or_fail_typed(int which, int position, byte value)
    {
        byte[][] valid =
        [
            Written(w => PeerWire.WriteBlockMessage(w, PeerMessageType.Request, 1, 0, 16384)),
            Written(w => PeerWire.WritePiece(w, 1, 0, new byte[32])),
            Written(w => PeerWire.WriteExtended(w, 0, new ExtendedHandshake { MetadataSize = 5 }.Encode())),
            Written(w => PeerWire.WriteExtended(w, 1, MetadataMessage.Encode(MetadataMessageType.Data, 0, 10, new byte[10]))),
        ];
        var frame = (byte[])valid[(int)((uint)which % (uint)valid.Length)].Clone();
        frame[(int)((uint)position % (uint)frame.Length)] = value;
        if (PeerWire.TryDecode(frame, out var m, out var e))
        {
            if (m.Type == PeerMessageType.Extended)
            {
                var ok = m.ExtendedId == 0 ? ExtendedHandshake.TryDecode(m.Payload, out _, out e) : MetadataMessage.TryDecode(m.Payload, out _, out e);
                return ok || e != PeerWireError.None;
            }

            return e == PeerWireError.None;
        }

        return e != PeerWireError.None;
    }
}
