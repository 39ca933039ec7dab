using System.Net;
using System.Security.Cryptography;
using Peerway.Net;
using Peerway.Torrent.Utp;

namespace Peerway.Torrent.Tests.Utp;

/// <summary>
/// MTU discovery between Peerway peers (BEP 29's "MTU discovery by probing", done as RFC 8899 packetization-layer path
/// MTU discovery with padded ST_STATE probes, agreed through Peerway's uTP extension in SYN/STATE): over a virtual path
/// that drops datagrams above its MTU (as a router drops packets with DF set), packets grow from the safe 1,200 bytes
/// to what the path carries, and no lost probe costs data or window.
/// </summary>
public sealed class UtpMtuTests
{
    /// <summary>Counts what a transport sends: the largest datagram and how many data packets.</summary>
    private sealed class RecordingSocket(IDatagramSocket inner) : IDatagramSocket
    {
        public int Largest { get; private set; }

        public IPEndPoint LocalEndPoint => inner.LocalEndPoint;

        public void Start(DatagramHandler handler) => inner.Start(handler);

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
            Largest = Math.Max(Largest, datagram.Length);
            inner.Send(datagram, remote);
        }

        public void Dispose() => inner.Dispose();
    }

    private static (byte[] Received, UtpConnectionStats Sender) Transfer(UtpWorld world, UtpTransport server, UtpTransport client, byte[] data)
    {
        // The receiver reads the whole length; the sender's statistics are taken once all of it arrived.
        var listener = world.Await(UtpWorld.RunInline(() => server.ListenAsync(server.LocalEndPoint, CancellationToken.None).AsTask()));
        var arrived = new TaskCompletionSource();
        var received = UtpWorld.RunInline(async () =>
        {
            await using var connection = (await listener.AcceptAsync(CancellationToken.None))!;
            var output = new byte[data.Length];
            await connection.Stream.ReadExactlyAsync(output);
            arrived.SetResult();
            return output;
        });
        var sent = UtpWorld.RunInline(async () =>
        {
            var connection = (UtpStreamConnection)await client.ConnectAsync(server.LocalEndPoint, CancellationToken.None);
            await using (connection)
            {
                await connection.Stream.WriteAsync(data);
                await arrived.Task;
                return connection.Stats;
            }
        });
        var bytes = world.Await(received);
        return (bytes, world.Await(sent));
    }

    private static byte[] RandomBytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    /// <summary>Largest payload whose data packet (20-byte header, up to 34 bytes of SACK) fits an IPv4 path of this MTU.</summary>
    private static int FittingPayload(int mtu) => mtu - 28 - 20 - 34;

    [Theory]
    [InlineData(1_500)] // Ethernet: a little past the 1,400 bytes libtorrent peers are held to
    [InlineData(9_000)] // a jumbo path
    [InlineData(65_536)] // Linux loopback: up to the 64,000-byte default offer
    public void Probing_grows_packets_to_what_the_path_carries_and_a_lost_probe_is_no_loss(int mtu)
    {
        var world = new UtpWorld(mtu: mtu, latency: TimeSpan.FromMilliseconds(20));
        var server = world.Transport(1);
        var client = world.Transport(2);
        var data = RandomBytes(8 * 1024 * 1024, mtu);
        var (received, stats) = Transfer(world, server, client, data);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(received));
        var best = Math.Min(FittingPayload(mtu), new UtpOptions().LargePayload);
        Assert.InRange(stats.PayloadSize, best - 16, best);

        // Probes above the MTU were dropped by the path (except on loopback, where every size fits), yet no data
        // packet was: nothing resent, no timeout, no fast retransmit, so the window never shrank for them.
        if (mtu < 65_536) Assert.True(world.Network.TooLarge > 0, "no probe was too large for the path");
        Assert.Equal(0, stats.PacketsResent);
        Assert.Equal(0, stats.Timeouts);
        Assert.Equal(0, stats.FastResends);
        world.Dispose();
    }

    /// <summary>
    /// MTU black hole (RFC 8899 §4.3): probing grew packets to a jumbo path's size, then the path's MTU falls to
    /// Ethernet's mid-transfer (a route change), so every full-size packet in flight and every resend of it is dropped.
    /// After repeated timeouts the sender falls back to the safe payload, cuts the packets the peer never got to it, probes
    /// again, and the transfer completes intact.
    /// </summary>
    [Fact]
    public void A_path_whose_mtu_shrinks_mid_transfer_falls_back_to_the_safe_payload_and_completes()
    {
        var world = new UtpWorld(mtu: 9_000, latency: TimeSpan.FromMilliseconds(20));
        var server = world.Transport(1);
        var client = world.Transport(2);
        var data = RandomBytes(6 * 1024 * 1024, 9_000);
        var listener = world.Await(UtpWorld.RunInline(() => server.ListenAsync(server.LocalEndPoint, CancellationToken.None).AsTask()));
        var shrunk = false;
        var received = UtpWorld.RunInline(async () =>
        {
            await using var connection = (await listener.AcceptAsync(CancellationToken.None))!;
            var output = new byte[data.Length];
            var at = 0;
            while (at < output.Length)
            {
                var n = await connection.Stream.ReadAsync(output.AsMemory(at));
                if (n == 0) break;
                at += n;
                if (!shrunk && at >= 2 * 1024 * 1024)
                {
                    shrunk = true;
                    world.PathMtu = 1_500;
                }
            }

            return output[..at];
        });
        var sent = UtpWorld.RunInline(async () =>
        {
            var connection = (UtpStreamConnection)await client.ConnectAsync(server.LocalEndPoint, CancellationToken.None);
            await using (connection)
            {
                await connection.Stream.WriteAsync(data);
                await received;
                return connection.Stats;
            }
        });
        var bytes = world.Await(received);
        var after = world.Await(sent);
        Assert.True(shrunk, "the transfer ended before the path changed");
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(bytes));
        Assert.InRange(after.PayloadSize, new UtpOptions().InitialPayload, FittingPayload(1_500));
        Assert.True(after.Timeouts > 0, "the black hole cost no timeout: the path never dropped a full-size packet");
        world.Dispose();
    }

    /// <summary>Drops what its transport sends while <see cref="Until"/> is ahead of the clock (an ACK path gone quiet).</summary>
    private sealed class MutedSocket(IDatagramSocket inner, TimeProvider time) : IDatagramSocket
    {
        public DateTimeOffset Until { get; set; }

        public long Muted { get; private set; }

        public IPEndPoint LocalEndPoint => inner.LocalEndPoint;

        public void Start(DatagramHandler handler) => inner.Start(handler);

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
            if (time.GetUtcNow() < Until)
            {
                Muted++;
                return;
            }

            inner.Send(datagram, remote);
        }

        public void Dispose() => inner.Dispose();
    }

    /// <summary>
    /// The black-hole fallback must not mistake silence for loss of the data: here the path carries every large packet,
    /// but the receiver's ACKs are lost for three seconds (a loaded host that sends nothing, a congested return path).
    /// The sender times out twice on a large packet and suspects a black hole; the receiver, though, has those packets.
    /// Cutting them again under the same sequence numbers would hand the receiver other bytes under numbers it already
    /// took: the stream read must still equal the one written.
    /// </summary>
    [Fact]
    public void Acks_lost_for_seconds_after_packets_grew_do_not_cut_delivered_packets_again()
    {
        var world = new UtpWorld(mtu: 9_000, latency: TimeSpan.FromMilliseconds(20));
        MutedSocket? muted = null;
        var server = world.Transport(1, wrap: s => muted = new MutedSocket(s, world.Time));
        var client = world.Transport(2);
        var data = RandomBytes(6 * 1024 * 1024, 77);
        var listener = world.Await(UtpWorld.RunInline(() => server.ListenAsync(server.LocalEndPoint, CancellationToken.None).AsTask()));
        var quiet = false;
        var received = UtpWorld.RunInline(async () =>
        {
            await using var connection = (await listener.AcceptAsync(CancellationToken.None))!;
            // Read to the sender's FIN: bytes lost or added show in the length, bytes moved in the content.
            var output = new MemoryStream();
            var buffer = new byte[64 * 1024];
            int n;
            while ((n = await connection.Stream.ReadAsync(buffer)) > 0)
            {
                await output.WriteAsync(buffer.AsMemory(0, n));
                if (!quiet && output.Length >= 2 * 1024 * 1024)
                {
                    quiet = true;
                    muted!.Until = world.Time.GetUtcNow() + TimeSpan.FromSeconds(3);
                }
            }

            return output.ToArray();
        });
        var sent = UtpWorld.RunInline(async () =>
        {
            var connection = (UtpStreamConnection)await client.ConnectAsync(server.LocalEndPoint, CancellationToken.None);
            await using (connection) await connection.Stream.WriteAsync(data);
            await received;
            return connection.Stats;
        });
        var bytes = world.Await(received);
        var after = world.Await(sent);
        Assert.True(quiet && muted!.Muted > 0, "the receiver's ACKs were never lost");
        Assert.True(after.Timeouts >= 2, $"the sender timed out {after.Timeouts} times: the fallback was never considered");
        Assert.Equal(data.Length, bytes.Length);
        Assert.True(data.AsSpan().SequenceEqual(bytes), $"the stream differs from byte {data.AsSpan().CommonPrefixLength(bytes)} on");
        world.Dispose();
    }

    /// <summary>A peer that does not answer the extension (libtorrent, libutp; here a Peerway transport with it turned
    /// off) is never sent a datagram above an Ethernet MTU, even on a path that would carry more.</summary>
    [Fact]
    public void A_peer_without_the_extension_never_gets_large_packets()
    {
        var world = new UtpWorld(mtu: 65_536);
        RecordingSocket? toLegacy = null;
        RecordingSocket? fromLegacy = null;
        var legacy = world.Transport(1, new UtpOptions { LargePayload = 0 }, s => fromLegacy = new RecordingSocket(s));
        var peerway = world.Transport(2, wrap: s => toLegacy = new RecordingSocket(s));
        var data = RandomBytes(4 * 1024 * 1024, 11);
        var (received, stats) = Transfer(world, legacy, peerway, data);
        Assert.Equal(data, received);
        Assert.True(stats.PayloadSize <= new UtpOptions().MaxPayload, $"payload {stats.PayloadSize}");
        Assert.InRange(toLegacy!.Largest, 1_000, 1_472);
        Assert.InRange(fromLegacy!.Largest, 1, 1_472);
        world.Dispose();
    }

    [Fact]
    public void The_peerway_extension_follows_a_selective_ack_in_the_chain_and_decodes_back()
    {
        var buffer = new byte[100];
        var header = new UtpHeader(UtpPacketType.State, 0, 7, 1, 2, 3, 4, 5);
        byte[] sack = [1, 0, 0, 0];
        var n = UtpPacket.Encode(buffer, header, sack, UtpPeerwayOption.ProbeAck, 9_000, [0xAB]);
        Assert.Equal(UtpHeader.Length + 2 + 4 + 2 + UtpPacket.PeerwayOptionLength + 1, n);
        Assert.Equal(UtpDecodeError.None, UtpPacket.TryDecode(buffer.AsSpan(0, n), out var packet));
        Assert.Equal(sack, packet.Sack.ToArray());
        Assert.Equal(UtpPeerwayOption.ProbeAck, packet.Option);
        Assert.Equal((ushort)9_000, packet.OptionValue);
        Assert.Equal([0xAB], packet.Payload.ToArray());

        // Without a SACK, libutp's extension bits (type 2) go first: libutp reads a first type of 3 or more as the old
        // version-0 header (UTP_IsV1), and a SYN offering large packets must still reach transmission.
        var syn = new byte[100];
        var length = UtpPacket.Encode(syn, header with { Type = UtpPacketType.Syn }, [], UtpPeerwayOption.LargePackets, 64_000, []);
        Assert.Equal(UtpHeader.Length + UtpPacket.PeerwayOverhead, length);
        Assert.Equal(UtpPacket.ExtensionBits, syn[1]);
        Assert.Equal(UtpDecodeError.None, UtpPacket.TryDecode(syn.AsSpan(0, length), out var offer));
        Assert.Equal(UtpPeerwayOption.LargePackets, offer.Option);
        Assert.Equal((ushort)64_000, offer.OptionValue);

        // Of another length or an unknown kind, the extension is skipped like any unknown one.
        buffer[UtpHeader.Length + 2 + 4 + 2] = 9;
        Assert.Equal(UtpDecodeError.None, UtpPacket.TryDecode(buffer.AsSpan(0, n), out packet));
        Assert.Equal(UtpPeerwayOption.None, packet.Option);
    }
}
