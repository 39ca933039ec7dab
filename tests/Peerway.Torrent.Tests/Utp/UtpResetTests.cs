using System.Net;
using FsCheck.Xunit;
using Microsoft.Extensions.Time.Testing;
using Peerway.Net;
using Peerway.Torrent.Utp;

namespace Peerway.Torrent.Tests.Utp;

public sealed class UtpResetTests
{
    /// <summary>Runs every delivery at once, on the sender's thread: the test sees replies as soon as Send returns.</summary>
    private sealed class InlineScheduler : IDeliveryScheduler
    {
        public void Schedule(TimeSpan delay, Action action) => action();
    }

    /// <summary>A uTP transport without a listener: what a host that does not accept uTP (yet) runs on its port.</summary>
    private static (UtpTransport Responder, VirtualDatagramSocket Client, List<byte[]> Replies) Setup(FakeTimeProvider time, int maxPerSecond = 200)
    {
        var network = new VirtualNetwork(new InlineScheduler());
        var responder = new UtpTransport(network.CreateSocket(), time, new UtpOptions { MaxResetsPerSecond = maxPerSecond, CompleteInline = true });
        var client = network.CreateSocket();
        var replies = new List<byte[]>();
        client.Start((d, _) => replies.Add(d.ToArray()));
        return (responder, client, replies);
    }

    private static byte[] Packet(UtpPacketType type, ushort connectionId, ushort seq)
    {
        var bytes = new byte[UtpHeader.Length];
        new UtpHeader(type, 0, connectionId, 123_456, 0, 1 << 20, seq, 0).Write(bytes);
        return bytes;
    }

    [Fact]
    public void Syn_gets_a_reset_with_its_connection_id_acking_its_seq_nr()
    {
        var (responder, client, replies) = Setup(new FakeTimeProvider());
        // A SYN laid out by hand per BEP 29: type 4, version 1, extension 0, connection_id 0x3a5c, seq_nr 1.
        byte[] syn = [0x41, 0x00, 0x3a, 0x5c, 0x00, 0x01, 0xe2, 0x40, 0, 0, 0, 0, 0x00, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
        client.Send(syn, responder.LocalEndPoint);
        var reply = Assert.Single(replies);
        Assert.Equal(UtpHeader.Length, reply.Length);
        Assert.Equal(0x31, reply[0]); // BEP 29: ST_RESET << 4 | version 1
        Assert.True(UtpHeader.TryRead(reply, out var reset));
        Assert.Equal(UtpPacketType.Reset, reset.Type);
        Assert.Equal((ushort)0x3a5c, reset.ConnectionId);
        Assert.Equal((ushort)1, reset.AckNumber);
        Assert.Equal(1, responder.Resets);
    }

    [Theory]
    [InlineData(0)] // ST_DATA
    [InlineData(1)] // ST_FIN
    [InlineData(2)] // ST_STATE
    public void Packets_of_unknown_connections_get_a_reset(int type)
    {
        var (responder, client, replies) = Setup(new FakeTimeProvider());
        client.Send(Packet((UtpPacketType)type, 7, 9), responder.LocalEndPoint);
        Assert.True(UtpHeader.TryRead(Assert.Single(replies), out var reset));
        Assert.Equal(UtpPacketType.Reset, reset.Type);
        Assert.Equal((ushort)9, reset.AckNumber);
    }

    [Fact]
    public void A_reset_is_never_answered_so_two_hosts_cannot_loop()
    {
        var (responder, client, replies) = Setup(new FakeTimeProvider());
        client.Send(Packet(UtpPacketType.Reset, 7, 9), responder.LocalEndPoint);
        Assert.Empty(replies);
    }

    [Fact]
    public void Resets_are_capped_per_second()
    {
        var time = new FakeTimeProvider();
        var (responder, client, replies) = Setup(time, maxPerSecond: 5);
        for (var i = 0; i < 50; i++) client.Send(Packet(UtpPacketType.Syn, (ushort)i, 1), responder.LocalEndPoint);
        Assert.Equal(5, replies.Count);
        time.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < 50; i++) client.Send(Packet(UtpPacketType.Syn, (ushort)i, 1), responder.LocalEndPoint);
        Assert.Equal(10, replies.Count);
    }

    [Property(MaxTest = 20_000)]
    public bool Random_datagrams_never_throw_and_never_get_a_larger_answer(byte[] datagram)
    {
        datagram ??= [];
        var (responder, client, replies) = Setup(new FakeTimeProvider());
        client.Send(datagram, responder.LocalEndPoint);
        return replies.All(r => r.Length <= datagram.Length) && replies.Count <= 1;
    }
}
