using System.Buffers.Binary;
using System.Net;
using Peerway.Net;
using Peerway.Torrent.Utp;

namespace Peerway.Torrent.Tests.Utp;

/// <summary>
/// A receiver whose reader lags holds its sender back by the receive window; once reading has doubled a window it last
/// advertised at most half open, it says so at once (an ST_STATE, as a TCP receiver's window update, RFC 1122
/// §4.2.3.3), and the sender does not take that update for a duplicate ACK.
/// </summary>
public sealed class UtpWindowUpdateTests
{
    /// <summary>Records the wnd_size of each ST_STATE the wrapped socket sends.</summary>
    private sealed class StateRecorder(IDatagramSocket inner) : IDatagramSocket
    {
        public List<uint> Windows { get; } = [];

        public IPEndPoint LocalEndPoint => inner.LocalEndPoint;

        public void Start(DatagramHandler handler) => inner.Start(handler);

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
            // BEP 29 header: type in the high nibble of byte 0, wnd_size at bytes 12-15.
            if (datagram[0] >> 4 == (int)UtpPacketType.State) Windows.Add(BinaryPrimitives.ReadUInt32BigEndian(datagram[12..]));
            inner.Send(datagram, remote);
        }

        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public void Reading_that_doubles_a_window_advertised_at_most_half_open_sends_a_window_update_at_once()
    {
        const int buffer = 64 * 1024;
        var world = new UtpWorld(latency: TimeSpan.FromMilliseconds(5));
        var options = new UtpOptions { ReceiveBuffer = buffer, LargePayload = 0 };
        StateRecorder? recorder = null;
        var server = world.Transport(1, options, wrap: s => recorder = new StateRecorder(s));
        var client = world.Transport(2, options);
        var listener = world.Await(UtpWorld.RunInline(() => server.ListenAsync(server.LocalEndPoint, CancellationToken.None).AsTask()));
        var accepted = UtpWorld.RunInline(async () => (await listener.AcceptAsync(CancellationToken.None))!);
        var connection = world.Await(UtpWorld.RunInline(() => client.ConnectAsync(server.LocalEndPoint, CancellationToken.None).AsTask()));
        var reader = world.Await(accepted);

        // 48 KiB arrive and are not read: the last ACK advertises 16 KiB, a quarter of the buffer.
        var data = new byte[48 * 1024];
        new Random(3).NextBytes(data);
        world.Await(UtpWorld.RunInline(async () =>
        {
            await connection.Stream.WriteAsync(data);
            return 0;
        }));
        Assert.True(world.RunUntil(() => recorder!.Windows.Count > 0 && recorder.Windows[^1] == buffer - data.Length, TimeSpan.FromSeconds(5)),
            $"last window advertised: {string.Join(", ", recorder!.Windows.TakeLast(3))}");
        var statesBefore = recorder.Windows.Count;

        // Reading 8 KiB (window 24 KiB, less than double) says nothing; reading 8 KiB more (32 KiB) announces it, at
        // the same instant, before any further data could come.
        var chunk = new byte[8 * 1024];
        Assert.Equal(chunk.Length, world.Await(UtpWorld.RunInline(() => reader.Stream.ReadAsync(chunk).AsTask())));
        Assert.Equal(statesBefore, recorder.Windows.Count);
        Assert.Equal(chunk.Length, world.Await(UtpWorld.RunInline(() => reader.Stream.ReadAsync(chunk).AsTask())));
        Assert.Equal(statesBefore + 1, recorder.Windows.Count);
        Assert.Equal((uint)(buffer - data.Length + (2 * chunk.Length)), recorder.Windows[^1]);

        // The sender took it as a window, not as a duplicate ACK: nothing was resent on this lossless link.
        var more = new byte[256 * 1024];
        var sent = UtpWorld.RunInline(async () =>
        {
            await connection.Stream.WriteAsync(more);
            return 0;
        });
        var read = UtpWorld.RunInline(async () =>
        {
            var total = 0;
            var small = new byte[4 * 1024]; // a slow reader: many window updates while the sender has data in flight
            while (total < data.Length - (2 * chunk.Length) + more.Length) total += await reader.Stream.ReadAsync(small);
            return total;
        });
        world.Await(sent);
        world.Await(read);
        var stats = ((UtpStreamConnection)connection).Stats;
        Assert.Equal(0, stats.FastResends);
        Assert.Equal(0, stats.PacketsResent);
        world.Dispose();
    }

    [Fact]
    public void An_ack_whose_window_grew_is_no_duplicate_ack_but_three_that_repeat_the_window_are()
    {
        var options = new UtpOptions { LargePayload = 0 };
        var remote = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 6881);
        var scratch = new byte[UtpConnection.ScratchSize(options)];
        var sent = new List<byte[]>();
        const ushort ourSeq = 100;
        var c = UtpConnection.Connect(remote, 7, ourSeq, 0, options, (d, _) => sent.Add(d.ToArray()), _ => { }, scratch, _ => false);

        void Deliver(uint window, long now)
        {
            // An ST_STATE from the peer: its seq_nr 500, acking our SYN (seq 100) and nothing after it.
            var bytes = new byte[UtpHeader.Length];
            var n = UtpPacket.Encode(bytes, new UtpHeader(UtpPacketType.State, 0, 7, 1_000, 0, window, 500, ourSeq), [], []);
            Assert.Equal(UtpDecodeError.None, UtpPacket.TryDecode(bytes.AsSpan(0, n), out var packet));
            c.OnPacket(packet, now);
        }

        Deliver(64 * 1024, 1_000);
        Assert.Equal(UtpState.Connected, c.State);
        Assert.True(c.Write(new byte[8 * 1024], 2_000) > 0);
        Assert.True(c.Stats.BytesInFlight > 0);

        // Three ACKs of the SYN alone, each with a larger window (a reader's window updates): nothing is resent.
        Deliver(80 * 1024, 3_000);
        Deliver(96 * 1024, 3_100);
        Deliver(128 * 1024, 3_200);
        Assert.Equal(0, c.Stats.FastResends);

        // Three that repeat the window: duplicate ACKs, the first unacked packet is resent at once.
        Deliver(128 * 1024, 3_300);
        Deliver(128 * 1024, 3_400);
        Deliver(128 * 1024, 3_500);
        Assert.Equal(1, c.Stats.FastResends);
    }
}
