using System.Buffers.Binary;
using Peerway.WebRtc.Sctp;

namespace Peerway.WebRtc.Tests.Sctp;

/// <summary>
/// Receive-side flow control (RFC 9260 §6.2): messages the application has not read stay charged to the receive
/// window, so a slow reader closes it and the sender waits — nothing is dropped on a reliable stream and the memory a
/// connection holds stays within the window, however far ahead the sender queued.
/// </summary>
public sealed class SctpBackPressureTests
{
    /// <summary>Keeps every message for the application (OnMessage true) until <see cref="Read"/> takes it.</summary>
    private sealed class SlowReader : ISctpHandler
    {
        private readonly Queue<byte[]> _unread = new();

        public SctpAssociation? Association { get; set; }

        public bool Established { get; private set; }

        public string? Closed { get; private set; }

        public int Next { get; private set; }

        public bool InOrder { get; private set; } = true;

        public long UnreadBytes { get; private set; }

        public long PeakUnreadBytes { get; private set; }

        public void OnEstablished() => Established = true;

        public bool OnMessage(ushort stream, uint ppid, byte[] data)
        {
            _unread.Enqueue(data);
            UnreadBytes += data.Length;
            PeakUnreadBytes = Math.Max(PeakUnreadBytes, UnreadBytes);
            return true;
        }

        /// <summary>The application reads up to <paramref name="n"/> messages.</summary>
        public void Read(int n)
        {
            for (var i = 0; i < n && _unread.TryDequeue(out var m); i++)
            {
                UnreadBytes -= m.Length;
                if (BinaryPrimitives.ReadInt32BigEndian(m) != Next++) InOrder = false;
                Association!.Consumed(m.Length);
            }
        }

        public void OnIncomingStreamReset(ushort stream)
        {
        }

        public void OnOutgoingStreamReset(ushort stream)
        {
        }

        public void OnBufferedAmountLow(ushort stream)
        {
        }

        public void OnClosed(string reason) => Closed = reason;
    }

    private sealed class Sender : ISctpHandler
    {
        public bool Established { get; private set; }

        public string? Closed { get; private set; }

        public void OnEstablished() => Established = true;

        public bool OnMessage(ushort stream, uint ppid, byte[] data) => false;

        public void OnIncomingStreamReset(ushort stream)
        {
        }

        public void OnOutgoingStreamReset(ushort stream)
        {
        }

        public void OnBufferedAmountLow(ushort stream)
        {
        }

        public void OnClosed(string reason) => Closed = reason;
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.01)]
    public void A_slow_reader_receives_every_one_of_100000_messages_in_order_within_the_window(double loss)
    {
        const int count = 100_000;
        const int size = 100;
        const int window = 64 * 1024;
        var net = new SteppedNetwork(loss, 0, TimeSpan.FromMilliseconds(2));
        var options = new SctpOptions { ReceiveWindow = window, MaxMessageSize = 16 * 1024 };
        var sa = net.Socket(1);
        var sb = net.Socket(2);
        var sender = new Sender();
        var reader = new SlowReader();
        var a = new SctpAssociation(options, net.Time, p => sa.Send(p, sb.LocalEndPoint), sender);
        var b = new SctpAssociation(options, net.Time, p => sb.Send(p, sa.LocalEndPoint), reader);
        reader.Association = b;
        sa.Start((d, _) => a.Receive(d));
        sb.Start((d, _) => b.Receive(d));
        a.Connect();
        Assert.True(net.RunUntil(() => sender.Established && reader.Established, TimeSpan.FromSeconds(30)), "handshake");

        // The sender queues all of it at once: 10 MB, 150 windows.
        for (var i = 0; i < count; i++)
        {
            var m = new byte[size];
            BinaryPrimitives.WriteInt32BigEndian(m, i);
            Assert.True(a.Send(1, 53, m, unordered: false));
        }

        // First the application reads nothing for five minutes: the window closes, the sender keeps probing it, and
        // the association stays up (refused probes answered with a closed window are not errors, RFC 9260 §6.1 A).
        long peakHeld = 0;
        net.RunUntil(() =>
        {
            peakHeld = Math.Max(peakHeld, b.ReceiveBuffered);
            return false;
        }, TimeSpan.FromMinutes(5));
        Assert.Null(sender.Closed);
        Assert.Null(reader.Closed);
        Assert.Equal(0, reader.Next);
        Assert.True(reader.UnreadBytes >= window / 2, $"the window filled ({reader.UnreadBytes} bytes unread)");

        // Then it reads 20 messages per millisecond (2 MB/s, far below what the path carries).
        Assert.True(net.RunUntil(() =>
        {
            reader.Read(20);
            peakHeld = Math.Max(peakHeld, b.ReceiveBuffered);
            return reader.Next == count;
        }, TimeSpan.FromMinutes(10)), $"read {reader.Next} of {count}");

        Assert.True(reader.InOrder);
        Assert.Null(sender.Closed);
        Assert.Null(reader.Closed);

        // Memory held by the receiver (reassembly + unread messages, with their bookkeeping) never went beyond the
        // window plus the one-packet slack (and the second window a gap fill may use under loss).
        Assert.InRange(peakHeld, window / 2, 2L * window + options.Mtu);
        Assert.InRange(reader.PeakUnreadBytes, window / 4, 2L * window);
        net.RunUntil(() => a.BufferedAmount(1) == 0, TimeSpan.FromSeconds(30));
        Assert.Equal(0, a.BufferedAmount(1));
    }
}
