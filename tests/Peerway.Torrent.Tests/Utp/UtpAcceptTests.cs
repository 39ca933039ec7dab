using System.Net;
using Peerway.Torrent.Utp;

namespace Peerway.Torrent.Tests.Utp;

/// <summary>
/// The accepting side of a connection as libtorrent 2.0.8 opens it: its ST_SYN advertises a zero receive window
/// (utp_stream.cpp send_syn: <c>h->wnd_size = 0</c>), and its first ST_DATA (the BitTorrent handshake) follows the
/// ST_STATE answer whenever its network thread gets to it. An application that writes as soon as it accepts must not
/// lose the connection meanwhile (CI: libtorrent's uTP socket timed out on a Peerway listener that had dropped it), nor
/// send data to an address that has not answered yet (BEP 29 amplification: only the ST_STATE goes to an unconfirmed
/// peer).
/// </summary>
public sealed class UtpAcceptTests
{
    private const ushort ClientId = 0x4d2;
    private const ushort ClientSeq = 1000;

    private static byte[] Packet(UtpPacketType type, ushort connectionId, uint window, ushort seq, ushort ack, ReadOnlySpan<byte> payload)
    {
        var bytes = new byte[UtpHeader.Length + payload.Length];
        new UtpHeader(type, 0, connectionId, 1_000, 0, window, seq, ack).Write(bytes);
        payload.CopyTo(bytes.AsSpan(UtpHeader.Length));
        return bytes;
    }

    [Theory]
    [InlineData(20)] // the next packet comes within a tick of the write
    [InlineData(120)] // two ticks later
    [InlineData(2_000)] // a loaded machine: seconds later, still within the half-open limit
    public void A_write_right_after_accept_waits_for_the_peers_first_packet_and_the_connection_survives(int firstPacketAfterMs)
    {
        var world = new UtpWorld();
        var server = world.Transport(1);
        var client = world.Socket(2);
        var replies = new List<(UtpHeader Header, byte[] Payload)>();
        client.Start((d, _) =>
        {
            Assert.Equal(UtpDecodeError.None, UtpPacket.TryDecode(d, out var packet));
            replies.Add((packet.Header, packet.Payload.ToArray()));
        });
        var listener = world.Await(UtpWorld.RunInline(() => server.ListenAsync(server.LocalEndPoint, CancellationToken.None).AsTask()));
        var hello = "server speaks at once"u8.ToArray();
        var serve = UtpWorld.RunInline(async () =>
        {
            var connection = (await listener.AcceptAsync(CancellationToken.None))!;
            await connection.Stream.WriteAsync(hello);
            var request = new byte[5];
            await connection.Stream.ReadExactlyAsync(request);
            return (connection, request);
        });

        // → ST_SYN with wnd_size 0, as libtorrent sends it; ← ST_STATE; the server writes at once.
        client.Send(Packet(UtpPacketType.Syn, ClientId, 0, ClientSeq, 0, []), server.LocalEndPoint);
        Assert.True(world.RunUntil(() => replies.Count > 0, TimeSpan.FromSeconds(1)));
        var synAck = replies[0].Header;
        Assert.Equal(UtpPacketType.State, synAck.Type);
        Assert.Equal(ClientSeq, synAck.AckNumber);

        // The client's network thread is late: nothing from it for a while. The server's data waits (the peer's
        // address is unconfirmed, and its window is 0), and the connection stays.
        world.RunUntil(() => false, TimeSpan.FromMilliseconds(firstPacketAfterMs));
        Assert.Single(replies);
        Assert.Equal(1, server.ConnectionCount);

        // → ST_DATA (the client's handshake) with a real window: ← the server's data, acking it.
        client.Send(Packet(UtpPacketType.Data, ClientId + 1, 1 << 20, ClientSeq + 1, (ushort)(synAck.SequenceNumber - 1), "hello"u8),
            server.LocalEndPoint);
        Assert.True(world.RunUntil(() => replies.Any(p => p.Header.Type == UtpPacketType.Data), TimeSpan.FromSeconds(1)),
            $"the server sent no data; it answered {string.Join(", ", replies.Select(p => p.Header.Type))}");
        var data = replies.First(p => p.Header.Type == UtpPacketType.Data);
        Assert.Equal(synAck.SequenceNumber, data.Header.SequenceNumber);
        Assert.Equal((ushort)(ClientSeq + 1), data.Header.AckNumber);
        Assert.Equal(hello, data.Payload);
        Assert.DoesNotContain(replies, p => p.Header.Type == UtpPacketType.Reset);
        var (accepted, request) = world.Await(serve);
        Assert.Equal("hello"u8.ToArray(), request);
        world.Await(UtpWorld.RunInline(async () =>
        {
            await accepted.DisposeAsync();
            return true;
        }));
        world.Dispose();
    }

    [Fact]
    public void A_peer_that_never_follows_its_syn_is_dropped_after_the_half_open_limit_without_data_sent_to_it()
    {
        var world = new UtpWorld();
        var server = world.Transport(1);
        var client = world.Socket(2);
        var replies = new List<UtpPacketType>();
        client.Start((d, _) =>
        {
            Assert.True(UtpHeader.TryRead(d, out var h));
            replies.Add(h.Type);
        });
        var listener = world.Await(UtpWorld.RunInline(() => server.ListenAsync(server.LocalEndPoint, CancellationToken.None).AsTask()));
        var serve = UtpWorld.RunInline(async () =>
        {
            var connection = (await listener.AcceptAsync(CancellationToken.None))!;
            await connection.Stream.WriteAsync(new byte[100]);
            return await connection.Stream.ReadAsync(new byte[10]);
        });
        client.Send(Packet(UtpPacketType.Syn, ClientId, 1 << 20, ClientSeq, 0, []), server.LocalEndPoint);
        Assert.True(world.RunUntil(() => serve.IsCompleted, new UtpOptions().ConnectTimeout * 2));
        Assert.True(serve.IsFaulted);
        Assert.Equal([UtpPacketType.State], replies); // the SYN's answer only: nothing larger to an unconfirmed address
        Assert.True(world.RunUntil(() => server.ConnectionCount == 0, TimeSpan.FromSeconds(1)));
        world.Dispose();
    }
}
