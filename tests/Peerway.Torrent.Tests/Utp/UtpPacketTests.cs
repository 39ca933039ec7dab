using System.Net;
using FsCheck.Xunit;
using Microsoft.Extensions.Time.Testing;
using Peerway.Net;
using Peerway.Torrent.Utp;

namespace Peerway.Torrent.Tests.Utp;

public sealed class UtpPacketTests
{
    /// <summary>A socket that only counts what is sent (the fuzz loop must not queue a million deliveries).</summary>
    private sealed class CountingSocket(IPEndPoint local) : IDatagramSocket
    {
        public IPEndPoint LocalEndPoint => local;

        public int LastLength { get; set; }

        public int LastType { get; set; }

        public long Sent { get; private set; }

        public void Start(DatagramHandler handler)
        {
        }

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
            LastLength = datagram.Length;
            LastType = datagram[0] >> 4;
            Sent++;
        }

        public void Dispose()
        {
        }
    }

    [Fact]
    public void A_packet_with_a_selective_ack_decodes_as_laid_out_in_bep_29()
    {
        // ST_STATE, version 1, extension 1 (SACK), connection 0x0102, ts 3, diff 4, wnd 5, seq 6, ack 7,
        // then [next 0][len 4][bitmask 0b0000_0101 ...] and 2 payload bytes.
        byte[] datagram = [0x21, 0x01, 0x01, 0x02, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 6, 0, 7, 0, 4, 0x05, 0, 0, 0x80, 0xAA, 0xBB];
        Assert.Equal(UtpDecodeError.None, UtpPacket.TryDecode(datagram, out var packet));
        Assert.Equal(UtpPacketType.State, packet.Header.Type);
        Assert.Equal((ushort)0x0102, packet.Header.ConnectionId);
        Assert.Equal((ushort)7, packet.Header.AckNumber);
        Assert.Equal(4, packet.Sack.Length);
        Assert.True(UtpPacket.SackBit(packet.Sack, 0)); // packet ack_nr + 2 = 9
        Assert.False(UtpPacket.SackBit(packet.Sack, 1));
        Assert.True(UtpPacket.SackBit(packet.Sack, 2));
        Assert.True(UtpPacket.SackBit(packet.Sack, 31));
        Assert.Equal([0xAA, 0xBB], packet.Payload.ToArray());
    }

    [Theory]
    [InlineData(new byte[] { 0x41, 0 }, (int)UtpDecodeError.TooShort)]
    [InlineData(new byte[] { 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, (int)UtpDecodeError.BadVersion)]
    [InlineData(new byte[] { 0x51, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, (int)UtpDecodeError.BadType)]
    [InlineData(new byte[] { 0x01, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, (int)UtpDecodeError.TruncatedExtension)]
    [InlineData(new byte[] { 0x01, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 1, 2 }, (int)UtpDecodeError.TruncatedExtension)]
    public void Malformed_datagrams_are_typed_errors(byte[] datagram, int expected) =>
        Assert.Equal((UtpDecodeError)expected, UtpPacket.TryDecode(datagram, out _));

    [Fact]
    public void A_dht_message_on_a_shared_port_is_not_taken_for_utp()
    {
        Assert.False(UtpTransport.IsUtp("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"u8));
        var syn = new byte[UtpHeader.Length];
        new UtpHeader(UtpPacketType.Syn, 0, 1, 2, 0, 0, 1, 0).Write(syn);
        Assert.True(UtpTransport.IsUtp(syn));
    }

    [Property(MaxTest = 500)]
    public bool Encode_then_decode_gives_back_header_sack_and_payload(byte type, ushort id, uint ts, uint diff, uint wnd, ushort seq, ushort ack,
        byte[] payload, bool withSack)
    {
        payload ??= [];
        var sack = withSack ? new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 } : [];
        var header = new UtpHeader((UtpPacketType)(type % 5), 0, id, ts, diff, wnd, seq, ack);
        var buffer = new byte[UtpHeader.Length + (withSack ? 2 + sack.Length : 0) + payload.Length];
        var n = UtpPacket.Encode(buffer, header, sack, payload);
        return n == buffer.Length
               && UtpPacket.TryDecode(buffer, out var p) == UtpDecodeError.None
               && p.Header == header with { Extension = withSack ? UtpPacket.SackExtension : (byte)0 }
               && p.Sack.SequenceEqual(sack)
               && p.Payload.SequenceEqual(payload);
    }

    [Property(MaxTest = 2000)]
    public void Decoding_random_bytes_never_throws(byte[] datagram) => UtpPacket.TryDecode(datagram ?? [], out _);

    /// <summary>A SYN flood from spoofed addresses holds at most MaxPendingAccepts slots, each answered with one
    /// 20-byte ST_STATE (no larger than the SYN), and the slots free themselves once the SYNs are not followed up.</summary>
    [Fact]
    public async Task A_syn_flood_is_bounded_by_the_half_open_limit_and_expires()
    {
        var time = new FakeTimeProvider();
        var socket = new CountingSocket(new IPEndPoint(IPAddress.Loopback, 6881));
        var options = new UtpOptions { CompleteInline = true, MaxPendingAccepts = 16 };
        await using var transport = new UtpTransport(socket, time, options);
        await using var listener = await transport.ListenAsync(socket.LocalEndPoint, CancellationToken.None);
        var syn = new byte[UtpHeader.Length];
        for (var i = 0; i < 1000; i++)
        {
            new UtpHeader(UtpPacketType.Syn, 0, (ushort)i, 1, 0, 65_535, 1, 0).Write(syn);
            transport.Receive(syn, new IPEndPoint(IPAddress.Parse("10.1.0.1"), 1000 + i));
            Assert.True(socket.LastLength <= syn.Length);
        }

        Assert.Equal(16, transport.ConnectionCount);
        for (var i = 0; i < 80; i++) time.Advance(TimeSpan.FromMilliseconds(50)); // past the 3 s connect timeout
        Assert.Equal(0, transport.ConnectionCount);
        new UtpHeader(UtpPacketType.Syn, 0, 5000, 1, 0, 65_535, 1, 0).Write(syn);
        transport.Receive(syn, new IPEndPoint(IPAddress.Parse("10.1.0.2"), 1000));
        Assert.Equal((int)UtpPacketType.State, socket.LastType);
    }

    /// <summary>
    /// 10^6 hostile packets against a listening transport: random bytes, and valid headers with random fields,
    /// extensions and payloads aimed at a live connection (its id and address) or at none. Nothing throws, a reply to a
    /// packet of no connection is never larger than it (no amplification), and a new connection still opens afterwards.
    /// </summary>
    [Fact]
    public async Task A_million_fuzzed_packets_neither_throw_nor_amplify()
    {
        var time = new FakeTimeProvider();
        var socket = new CountingSocket(new IPEndPoint(IPAddress.Loopback, 6881));
        await using var transport = new UtpTransport(socket, time, new UtpOptions { CompleteInline = true, RandomSeed = 1 });
        await using var listener = await transport.ListenAsync(socket.LocalEndPoint, CancellationToken.None);
        var peer = new IPEndPoint(IPAddress.Parse("10.9.9.9"), 5000);
        var random = new Random(42);
        var buffer = new byte[1600];
        ushort synId = 100;
        for (var i = 0; i < 1_000_000; i++)
        {
            if (i % 5000 == 0)
            {
                // What was accepted is taken and closed, as an engine would.
                for (var accept = listener.AcceptAsync(CancellationToken.None); accept.IsCompleted; accept = listener.AcceptAsync(CancellationToken.None))
                {
                    await (await accept)!.DisposeAsync();
                }

                // A fresh connection every 5,000 packets (fuzz resets or times out earlier ones).
                synId += 2;
                var syn = new byte[UtpHeader.Length];
                new UtpHeader(UtpPacketType.Syn, 0, synId, 1, 0, 65_535, 1, 0).Write(syn);
                transport.Receive(syn, peer);
                time.Advance(TimeSpan.FromMilliseconds(10));
            }

            var length = random.Next(0, 10) == 0 ? random.Next(0, 40) : random.Next(UtpHeader.Length, buffer.Length);
            var datagram = buffer.AsSpan(0, length);
            random.NextBytes(datagram);
            var live = false;
            if (length >= UtpHeader.Length && random.Next(4) != 0)
            {
                datagram[0] = (byte)((random.Next(5) << 4) | UtpHeader.Version);
                datagram[1] = (byte)random.Next(3); // no, SACK, or an unknown extension
                live = random.Next(2) == 0;
                if (live) System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(datagram[2..], (ushort)(synId + 1));
            }

            var before = socket.Sent;
            transport.Receive(datagram, peer);
            if (!live && socket.Sent > before) Assert.True(socket.LastLength <= length, $"a {length}-byte packet drew a {socket.LastLength}-byte reply");
            if (i % 1000 == 0) time.Advance(TimeSpan.FromMilliseconds(60));
        }

        Assert.True(transport.ConnectionCount <= new UtpOptions().MaxConnections);

        // Still serving: after the fuzz's connections time out, a SYN gets its ST_STATE.
        time.Advance(TimeSpan.FromMinutes(2));
        for (var i = 0; i < 100; i++) time.Advance(TimeSpan.FromSeconds(1));
        var sentBefore = socket.Sent;
        var last = new byte[UtpHeader.Length];
        new UtpHeader(UtpPacketType.Syn, 0, 9000, 1, 0, 65_535, 1, 0).Write(last);
        transport.Receive(last, new IPEndPoint(IPAddress.Parse("10.9.9.10"), 5000));
        Assert.True(sentBefore + 1 == socket.Sent, $"no answer; {transport.ConnectionCount} connections, {transport.Resets} resets");
        Assert.True((int)UtpPacketType.State == socket.LastType, $"type {socket.LastType}; {transport.ConnectionCount} connections, {((UtpListener)listener).Pending} pending");
    }
}
