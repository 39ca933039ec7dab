using System.Net;
using System.Security.Cryptography;
using Peerway.Net;
using Peerway.Torrent.Utp;

namespace Peerway.Torrent.Tests.Utp;

/// <summary>
/// Delayed ACKs as libtorrent sends them: a receiver whose socket reports the end of each receive batch
/// (<see cref="IBatchingDatagramSocket"/>) acks a burst of data packets with one ST_STATE; one whose socket does not
/// acks every packet.
/// </summary>
public sealed class UtpAckTests
{
    /// <summary>Over the world's virtual socket: a batch ends once every datagram due at this instant was delivered
    /// (a zero-delay event queues behind them). Counts the datagrams received and the ST_STATEs sent.</summary>
    private sealed class BatchingSocket(IDatagramSocket inner, UtpWorld world, bool batching) : IBatchingDatagramSocket
    {
        private bool _endScheduled;

        public int DataReceived { get; private set; }

        public int StatesSent { get; private set; }

        public IPEndPoint LocalEndPoint => inner.LocalEndPoint;

        public void Start(DatagramHandler handler) => inner.Start((d, r) => Count(handler, d, r));

        public void Start(DatagramHandler handler, Action batchEnd)
        {
            if (!batching)
            {
                Start(handler);
                return;
            }

            inner.Start((d, r) =>
            {
                Count(handler, d, r);
                if (_endScheduled) return;
                _endScheduled = true;
                world.Schedule(TimeSpan.Zero, () =>
                {
                    _endScheduled = false;
                    batchEnd();
                });
            });
        }

        private void Count(DatagramHandler handler, ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
            if (datagram.Length > 0 && datagram[0] >> 4 == (int)UtpPacketType.Data) DataReceived++;
            handler(datagram, remote);
        }

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
            if (datagram[0] >> 4 == (int)UtpPacketType.State) StatesSent++;
            inner.Send(datagram, remote);
        }

        public void Dispose() => inner.Dispose();
    }

    private static (BatchingSocket Receiver, bool Intact) Transfer(bool batching)
    {
        var world = new UtpWorld(latency: TimeSpan.FromMilliseconds(5));
        BatchingSocket? receiver = null;
        var server = world.Transport(1, wrap: s => receiver = new BatchingSocket(s, world, batching));
        var client = world.Transport(2);
        var data = new byte[4 * 1024 * 1024];
        new Random(5).NextBytes(data);
        var listener = world.Await(UtpWorld.RunInline(() => server.ListenAsync(server.LocalEndPoint, CancellationToken.None).AsTask()));
        var received = UtpWorld.RunInline(async () =>
        {
            await using var connection = (await listener.AcceptAsync(CancellationToken.None))!;
            var output = new MemoryStream();
            var buffer = new byte[65_536];
            int n;
            while ((n = await connection.Stream.ReadAsync(buffer)) > 0) await output.WriteAsync(buffer.AsMemory(0, n));
            return output.ToArray();
        });
        var sent = UtpWorld.RunInline(async () =>
        {
            await using var connection = await client.ConnectAsync(server.LocalEndPoint, CancellationToken.None);
            await connection.Stream.WriteAsync(data);
            return 0;
        });
        world.Await(sent);
        var intact = SHA256.HashData(world.Await(received)).AsSpan().SequenceEqual(SHA256.HashData(data));
        world.Dispose();
        return (receiver!, intact);
    }

    [Fact]
    public void A_burst_of_data_packets_is_acked_once_at_the_end_of_the_receive_batch()
    {
        var (batched, intact) = Transfer(batching: true);
        Assert.True(intact);
        Assert.True(batched.DataReceived > 2_500, $"{batched.DataReceived} data packets");
        Assert.True(batched.StatesSent * 3 < batched.DataReceived, $"{batched.StatesSent} ACKs for {batched.DataReceived} data packets");

        // The same transfer to a socket without batch ends: every data packet is acked.
        var (unbatched, intactToo) = Transfer(batching: false);
        Assert.True(intactToo);
        Assert.True(unbatched.StatesSent >= unbatched.DataReceived, $"{unbatched.StatesSent} ACKs for {unbatched.DataReceived} data packets");
    }
}
