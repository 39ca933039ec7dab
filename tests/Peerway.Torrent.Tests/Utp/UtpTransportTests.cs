using System.Net;
using System.Security.Cryptography;
using Peerway.Net;
using Peerway.Torrent.Utp;

namespace Peerway.Torrent.Tests.Utp;

public sealed class UtpTransportTests
{
    /// <summary>Client (host 2) connects to a listener (host 1), writes <paramref name="data"/> and closes; the
    /// server reads to the FIN. Returns what the server read and the client's connection statistics.</summary>
    private static (byte[] Received, UtpConnectionStats Sender) Transfer(UtpWorld world, byte[] data, UtpOptions? options = null, TimeSpan? limit = null)
    {
        var server = world.Transport(1, options);
        var client = world.Transport(2, options);
        var listener = world.Await(UtpWorld.RunInline(() => server.ListenAsync(server.LocalEndPoint, CancellationToken.None).AsTask()));
        var received = UtpWorld.RunInline(() => ReadAllAsync(listener));
        var sent = UtpWorld.RunInline(() => WriteAllAsync(client, server.LocalEndPoint, data));
        var stats = world.Await(sent, limit);
        var bytes = world.Await(received, limit);
        return (bytes, stats);
    }

    private static async Task<byte[]> ReadAllAsync(IStreamListener listener)
    {
        await using var connection = (await listener.AcceptAsync(CancellationToken.None))!;
        var output = new MemoryStream();
        var buffer = new byte[50_000];
        int n;
        while ((n = await connection.Stream.ReadAsync(buffer)) > 0) await output.WriteAsync(buffer.AsMemory(0, n));
        return output.ToArray();
    }

    private static async Task<UtpConnectionStats> WriteAllAsync(UtpTransport client, IPEndPoint server, byte[] data)
    {
        var connection = (UtpStreamConnection)await client.ConnectAsync(server, CancellationToken.None);
        await using (connection)
        {
            for (var offset = 0; offset < data.Length; offset += 65_536)
            {
                await connection.Stream.WriteAsync(data.AsMemory(offset, Math.Min(65_536, data.Length - offset)));
            }

            return connection.Stats;
        }
    }

    private static byte[] RandomBytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    [Fact]
    public void Ten_MiB_arrive_intact_over_a_link_that_loses_5_percent_duplicates_and_reorders()
    {
        var world = new UtpWorld(lossRate: 0.05, duplicateRate: 0.02, maxJitter: TimeSpan.FromMilliseconds(4));
        var data = RandomBytes(10 * 1024 * 1024, 1);
        var (received, stats) = Transfer(world, data);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(received));
        Assert.True(world.Network.Dropped > 300, $"the link dropped only {world.Network.Dropped} datagrams");
        Assert.True(world.Duplicated > 100);
        Assert.True(stats.PacketsResent > 0);
        world.Dispose();
    }

    [Fact]
    public void Lost_packets_are_resent_fast_from_selective_acks_without_waiting_for_the_timeout()
    {
        var world = new UtpWorld(lossRate: 0.02);
        var data = RandomBytes(2 * 1024 * 1024, 2);
        var (received, stats) = Transfer(world, data);
        Assert.Equal(data, received);
        Assert.True(stats.FastResends > 0, "no fast retransmit");
        world.Dispose();
    }

    [Fact]
    public void Sequence_numbers_wrap_around_without_losing_or_repeating_data()
    {
        // Both ends start 40 packets below 2^16; 1 MiB is ~870 packets, so seq_nr and ack_nr wrap early, with loss
        // and reordering around the wrap so SACKs and the reorder buffer straddle it.
        var world = new UtpWorld(lossRate: 0.03, maxJitter: TimeSpan.FromMilliseconds(3));
        var data = RandomBytes(1024 * 1024, 3);
        var (received, _) = Transfer(world, data, new UtpOptions { InitialSequenceNumber = 65_496 });
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(received));
        world.Dispose();
    }

    [Fact]
    public void Mtu_probing_grows_packets_past_the_safe_start_on_a_path_that_carries_them()
    {
        // Data packets as probes (libtorrent's way, used toward peers without Peerway's extension): here turned off.
        var world = new UtpWorld(mtu: null);
        var data = RandomBytes(4 * 1024 * 1024, 4);
        var options = new UtpOptions { MaxPayload = 16 * 1024, LargePayload = 0 };
        var (received, stats) = Transfer(world, data, options);
        Assert.Equal(data, received);
        Assert.True(stats.PayloadSize > 8 * 1024, $"payload stayed at {stats.PayloadSize}");
        world.Dispose();
    }

    [Fact]
    public void A_packet_of_an_unknown_connection_gets_a_reset_no_larger_than_itself()
    {
        var world = new UtpWorld();
        var server = world.Transport(1);
        var probe = world.Socket(9);
        var replies = new List<byte[]>();
        probe.Start((d, _) => replies.Add(d.ToArray()));
        var packet = new byte[UtpHeader.Length];
        new UtpHeader(UtpPacketType.Data, 0, 0x1234, 1000, 0, 65_535, 77, 5).Write(packet);
        probe.Send(packet, server.LocalEndPoint);
        world.RunUntil(() => replies.Count > 0, TimeSpan.FromSeconds(1));
        var reply = Assert.Single(replies);
        Assert.True(reply.Length <= packet.Length);
        Assert.True(UtpHeader.TryRead(reply, out var reset));
        Assert.Equal(UtpPacketType.Reset, reset.Type);
        Assert.Equal((ushort)0x1234, reset.ConnectionId);
        Assert.Equal((ushort)77, reset.AckNumber);

        // A reset is never answered (two hosts cannot loop).
        new UtpHeader(UtpPacketType.Reset, 0, 0x1234, 1000, 0, 0, 78, 5).Write(packet);
        probe.Send(packet, server.LocalEndPoint);
        world.RunUntil(() => false, TimeSpan.FromMilliseconds(100));
        Assert.Single(replies);
        world.Dispose();
    }

    [Fact]
    public async Task Connecting_to_a_host_without_a_listener_fails_at_once_on_its_reset()
    {
        var world = new UtpWorld();
        var server = world.Transport(1);
        var client = world.Transport(2);
        var start = world.Time.GetUtcNow();
        var connect = UtpWorld.RunInline(() => client.ConnectAsync(server.LocalEndPoint, CancellationToken.None).AsTask());
        Assert.True(world.RunUntil(() => connect.IsCompleted, TimeSpan.FromSeconds(30)));
        var error = await Assert.ThrowsAsync<IOException>(() => connect);
        Assert.Contains("reset", error.Message, StringComparison.Ordinal);
        Assert.True(world.Time.GetUtcNow() - start < TimeSpan.FromSeconds(1), "waited for a timeout instead of the reset");
        world.Dispose();
    }

    [Fact]
    public async Task Connecting_to_a_silent_host_times_out_after_the_syn_resends()
    {
        var world = new UtpWorld();
        var client = world.Transport(2);
        var silent = world.Socket(3);
        silent.Start((_, _) => { });
        var connect = UtpWorld.RunInline(() => client.ConnectAsync(silent.LocalEndPoint, CancellationToken.None).AsTask());
        Assert.True(world.RunUntil(() => connect.IsCompleted, TimeSpan.FromMinutes(1)));
        await Assert.ThrowsAsync<IOException>(() => connect);
        Assert.Equal(0, client.ConnectionCount);
        world.Dispose();
    }

    [Fact]
    public async Task Abort_resets_the_remote_whose_pending_read_fails()
    {
        var world = new UtpWorld();
        var server = world.Transport(1);
        var client = world.Transport(2);
        var listener = world.Await(UtpWorld.RunInline(() => server.ListenAsync(new IPEndPoint(IPAddress.Any, 0), CancellationToken.None).AsTask()));
        var accepted = UtpWorld.RunInline(() => listener.AcceptAsync(CancellationToken.None).AsTask());
        var connection = world.Await(UtpWorld.RunInline(() => client.ConnectAsync(server.LocalEndPoint, CancellationToken.None).AsTask()));
        var serverSide = world.Await(accepted)!;
        var read = UtpWorld.RunInline(() => serverSide.Stream.ReadAsync(new byte[10]).AsTask());
        UtpWorld.RunInline(() =>
        {
            connection.Abort();
            return 0;
        });
        Assert.True(world.RunUntil(() => read.IsCompleted, TimeSpan.FromSeconds(5)));
        await Assert.ThrowsAsync<IOException>(() => read);
        world.Dispose();
    }

    [Fact]
    public void Both_directions_carry_data_at_once_and_each_side_sees_the_others_fin()
    {
        var world = new UtpWorld(lossRate: 0.01, maxJitter: TimeSpan.FromMilliseconds(2));
        var server = world.Transport(1);
        var client = world.Transport(2);
        var listener = world.Await(UtpWorld.RunInline(() => server.ListenAsync(server.LocalEndPoint, CancellationToken.None).AsTask()));
        var up = RandomBytes(300_000, 5);
        var down = RandomBytes(500_000, 6);
        var serverTask = UtpWorld.RunInline(() => ExchangeAsync(async () => (await listener.AcceptAsync(CancellationToken.None))!, down, null));
        var clientTask = UtpWorld.RunInline(() => ExchangeAsync(() => client.ConnectAsync(server.LocalEndPoint, CancellationToken.None).AsTask(), up, down.Length));
        Assert.Equal(down, world.Await(clientTask));
        Assert.Equal(up, world.Await(serverTask));
        Assert.True(world.RunUntil(() => server.ConnectionCount == 0 && client.ConnectionCount == 0, TimeSpan.FromSeconds(30)),
            "closed connections were not forgotten");
        world.Dispose();

        // Writes go to the send buffer at once (it holds them all); then reads to the FIN, or the expected length
        // (the seam has no half-close, so the side that knows the length closes first).
        static async Task<byte[]> ExchangeAsync(Func<Task<IStreamConnection>> open, byte[] send, int? expect)
        {
            var c = await open();
            await c.Stream.WriteAsync(send);
            var output = new MemoryStream();
            var buffer = new byte[8192];
            int n;
            while (output.Length != expect && (n = await c.Stream.ReadAsync(buffer)) > 0) await output.WriteAsync(buffer.AsMemory(0, n));
            await c.DisposeAsync();
            return output.ToArray();
        }
    }
}
