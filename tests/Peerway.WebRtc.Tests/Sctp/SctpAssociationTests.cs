using System.Net;
using Peerway.Net;
using Peerway.WebRtc.Sctp;

namespace Peerway.WebRtc.Tests.Sctp;

public sealed class SctpAssociationTests
{
    private sealed class Recorder : ISctpHandler
    {
        public bool Established { get; private set; }

        public string? Closed { get; private set; }

        public List<(ushort Stream, uint Ppid, byte[] Data)> Messages { get; } = [];

        public List<ushort> IncomingResets { get; } = [];

        public List<ushort> OutgoingResets { get; } = [];

        public void OnEstablished() => Established = true;

        public bool OnMessage(ushort stream, uint ppid, byte[] data)
        {
            Messages.Add((stream, ppid, data));
            return false;
        }

        public void OnIncomingStreamReset(ushort stream) => IncomingResets.Add(stream);

        public void OnOutgoingStreamReset(ushort stream) => OutgoingResets.Add(stream);

        public void OnBufferedAmountLow(ushort stream)
        {
        }

        public void OnClosed(string reason) => Closed = reason;
    }

    /// <summary>Two associations joined by a stepped virtual network (each packet one datagram, as over DTLS).</summary>
    private sealed class Pair
    {
        /// <param name="tapA">Sees every packet A sends; false drops it.</param>
        /// <param name="watchA">Sees every packet A sends (before the network).</param>
        /// <param name="tapB">Sees every packet B sends (also while <see cref="Silent"/>).</param>
        public Pair(SteppedNetwork net, SctpOptions? options = null, bool bSilent = false, SctpOptions? optionsB = null, Func<byte[], bool>? tapA = null,
            Action<byte[]>? tapB = null, Action<byte[]>? watchA = null)
        {
            Net = net;
            var sa = net.Socket(1);
            var sb = net.Socket(2);
            var ea = sa.LocalEndPoint;
            var eb = sb.LocalEndPoint;
            A = new SctpAssociation(options ?? new SctpOptions(), net.Time, p => { watchA?.Invoke(p); if (tapA?.Invoke(p) != false) sa.Send(p, eb); }, RecA);
            B = new SctpAssociation(optionsB ?? options ?? new SctpOptions(), net.Time, p => { tapB?.Invoke(p); if (!Silent) sb.Send(p, ea); }, RecB);
            Silent = bSilent;
            sa.Start((d, _) => A.Receive(d));
            sb.Start((d, _) => B.Receive(d));
        }

        public bool Silent { get; set; }

        public SteppedNetwork Net { get; }

        public Recorder RecA { get; } = new();

        public Recorder RecB { get; } = new();

        public SctpAssociation A { get; }

        public SctpAssociation B { get; }

        public void Connect(bool both = true)
        {
            A.Connect();
            if (both) B.Connect();
            Assert.True(Net.RunUntil(() => RecA.Established && RecB.Established, TimeSpan.FromSeconds(30)), "handshake");
        }
    }

    private static byte[] Message(int index, int size)
    {
        var data = new byte[size];
        new Random(index).NextBytes(data);
        data[0] = (byte)index;
        return data;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Handshake_completes_whether_one_or_both_ends_send_INIT(bool both)
    {
        var pair = new Pair(new SteppedNetwork());
        pair.Connect(both);
        Assert.Equal(SctpState.Established, pair.A.State);
        Assert.Equal(SctpState.Established, pair.B.State);
        Assert.True(pair.A.PeerSupportsForwardTsn);
    }

    [Theory]
    [InlineData(0.0, 0.0, 0)]
    [InlineData(0.05, 0.05, 20)]
    [InlineData(0.15, 0.1, 30)]
    public void Ordered_messages_arrive_once_and_in_order_over_loss_duplication_and_reordering(double loss, double dup, int jitterMs)
    {
        var net = new SteppedNetwork(loss, dup, TimeSpan.FromMilliseconds(jitterMs));
        var pair = new Pair(net);
        pair.Connect();
        int[] sizes = [1, 1000, 1172, 1173, 16 * 1024, 64 * 1024, 256 * 1024, 3, 5000];
        var sent = new List<byte[]>();
        for (var i = 0; i < 40; i++)
        {
            var m = Message(i, sizes[i % sizes.Length]);
            sent.Add(m);
            Assert.True(pair.A.Send(1, 53, m, unordered: false));
        }

        Assert.True(net.RunUntil(() => pair.RecB.Messages.Count >= sent.Count, TimeSpan.FromMinutes(10)), $"delivered {pair.RecB.Messages.Count} of {sent.Count}");
        net.RunUntil(() => false, TimeSpan.FromSeconds(5));
        Assert.Equal(sent.Count, pair.RecB.Messages.Count);
        for (var i = 0; i < sent.Count; i++) Assert.Equal(sent[i], pair.RecB.Messages[i].Data);
        Assert.Equal(0, pair.A.BufferedAmount(1));
        if (dup > 0) Assert.True(net.Duplicated > 0);
    }

    [Fact]
    public void Unordered_messages_with_zero_retransmits_are_dropped_under_loss_and_the_association_goes_on()
    {
        var net = new SteppedNetwork(0.2, 0, TimeSpan.FromMilliseconds(5));
        var pair = new Pair(net);
        pair.Connect();
        for (var i = 0; i < 200; i++) Assert.True(pair.A.Send(2, 53, Message(i, 3000), unordered: true, maxRetransmits: 0));

        // A reliable ordered message after them still arrives: FORWARD-TSN moved the peer past the abandoned ones.
        Assert.True(pair.A.Send(4, 51, "done"u8.ToArray(), unordered: false));
        Assert.True(net.RunUntil(() => pair.RecB.Messages.Any(m => m.Stream == 4), TimeSpan.FromMinutes(5)));
        net.RunUntil(() => false, TimeSpan.FromSeconds(5));
        var unordered = pair.RecB.Messages.Where(m => m.Stream == 2).ToList();
        Assert.InRange(unordered.Count, 1, 199);
        Assert.Equal(unordered.Count, unordered.Select(m => m.Data[0] + (m.Data[1] << 8)).Distinct().Count());
        Assert.Equal(0, pair.A.BufferedAmount(2));
    }

    [Fact]
    public void A_stream_reset_reaches_both_sides()
    {
        var pair = new Pair(new SteppedNetwork());
        pair.Connect();
        Assert.True(pair.A.Send(6, 51, "bye"u8.ToArray(), unordered: false));
        pair.A.ResetStreams([6]);
        Assert.True(pair.Net.RunUntil(() => pair.RecB.IncomingResets.Contains(6) && pair.RecA.OutgoingResets.Contains(6), TimeSpan.FromSeconds(30)));
        Assert.Single(pair.RecB.Messages);

        // The stream starts again at SSN 0 (RFC 6525 §5.2.2), so it can be reused.
        Assert.True(pair.A.Send(6, 51, "again"u8.ToArray(), unordered: false));
        Assert.True(pair.Net.RunUntil(() => pair.RecB.Messages.Count == 2, TimeSpan.FromSeconds(30)));
    }

    /// <summary>
    /// RFC 9260 §7.2.4: fast recovery ends once the highest TSN *sent* when it began is acknowledged, not when every
    /// TSN queued behind it is (TSNs are assigned at queueing). One DATA packet dropped in a 4 MiB transfer is repaired
    /// by fast retransmit, and cwnd grows again (above ssthresh, congestion avoidance) while most of the queue is
    /// still waiting; before, cwnd stayed frozen at ssthresh until the whole queue was acknowledged.
    /// </summary>
    [Fact]
    public void Fast_recovery_ends_at_the_highest_TSN_sent_and_cwnd_grows_again_while_data_is_queued()
    {
        var packets = 0;

        // The 200th packet from A (a DATA packet well into slow start) is lost once.
        var pair = new Pair(new SteppedNetwork(), tapA: _ => ++packets != 200);
        pair.Connect(both: false);
        var (net, a, recB) = (pair.Net, pair.A, pair.RecB);
        for (var i = 0; i < 64; i++) Assert.True(a.Send(1, 53, Message(i, 64 * 1024), unordered: false));

        var grewWhileQueued = false;
        Assert.True(net.RunUntil(() =>
        {
            var c = a.Congestion;
            if (packets > 200 && c.Cwnd > c.Ssthresh && a.BufferedAmount(1) > 1024 * 1024) grewWhileQueued = true;
            return recB.Messages.Count == 64;
        }, TimeSpan.FromMinutes(5)));
        Assert.True(grewWhileQueued, $"cwnd {a.Congestion.Cwnd}, ssthresh {a.Congestion.Ssthresh}");
        var (fast, timeouts, retransmitted) = a.Retransmissions;
        Assert.True(fast >= 1 && retransmitted >= 1, $"fast retransmits {fast}, chunks {retransmitted}");
        Assert.Equal(0, timeouts);
        for (var i = 0; i < 64; i++) Assert.Equal(Message(i, 64 * 1024), recB.Messages[i].Data);
    }

    /// <summary>
    /// A receive window full of data held behind a gap still takes the chunk that fills the gap (RFC 9260 §6.2):
    /// dropping it, as before, stalled the association for good (seen with Chromium as sender on loopback).
    /// </summary>
    [Fact]
    public void A_window_full_of_data_behind_a_gap_still_takes_the_chunk_that_fills_it()
    {
        uint? firstTsn = null;
        var pair = new Pair(new SteppedNetwork(), optionsB: new SctpOptions { ReceiveWindow = 8192, MaxMessageSize = 8192 }, tapA: p =>
        {
            if (SctpPacket.TryDecode(p, out var packet, out _) && packet!.Chunks.OfType<DataChunk>().FirstOrDefault() is { } d) firstTsn ??= d.Tsn;
            return true;
        });
        pair.Connect(both: false);
        var (net, a, b, recB) = (pair.Net, pair.A, pair.B, pair.RecB);
        Assert.True(a.Send(1, 53, new byte[] { 0 }, unordered: false));
        Assert.True(net.RunUntil(() => recB.Messages.Count == 1, TimeSpan.FromSeconds(10)));
        var t0 = firstTsn!.Value;

        // A peer overshooting the window: ordered messages 2..9 (1000 bytes each) arrive before message 1, which
        // leaves B 8000 of its 8192 bytes held; then message 1 fills the gap.
        byte[] Data(uint tsn, ushort ssn) => new SctpPacket(5000, 5000, b.LocalTag, [new DataChunk(tsn, 1, ssn, 53, false, true, true, Message(ssn, 1000))]).Encode();
        for (ushort ssn = 2; ssn <= 9; ssn++) b.Receive(Data(t0 + ssn, ssn));
        Assert.Single(recB.Messages);
        b.Receive(Data(t0 + 1, 1));
        Assert.Equal(10, recB.Messages.Count);
        for (ushort ssn = 1; ssn <= 9; ssn++) Assert.Equal(Message(ssn, 1000), recB.Messages[ssn].Data);
    }

    /// <summary>A caller may reuse its buffer once Send returns: the queued message is the bytes as they were.</summary>
    [Fact]
    public void A_sent_buffer_reused_by_the_caller_does_not_change_the_message()
    {
        var pair = new Pair(new SteppedNetwork());
        pair.Connect();
        var buffer = Message(1, 5000);
        var original = buffer.ToArray();
        Assert.True(pair.A.Send(1, 53, buffer, unordered: false));
        Array.Clear(buffer);
        Assert.True(pair.Net.RunUntil(() => pair.RecB.Messages.Count == 1, TimeSpan.FromSeconds(10)));
        Assert.Equal(original, pair.RecB.Messages[0].Data);
    }

    [Fact]
    public void A_peer_that_never_acknowledges_is_given_up_on()
    {
        var pair = new Pair(new SteppedNetwork());
        pair.Connect();
        pair.Silent = true;
        Assert.True(pair.A.Send(1, 53, Message(1, 10_000), unordered: false));
        Assert.True(pair.Net.RunUntil(() => pair.RecA.Closed is not null, TimeSpan.FromMinutes(30)));
        Assert.Contains("acknowledg", pair.RecA.Closed);
    }

    /// <summary>
    /// A peer that completes the handshake and then never SACKs: our sender puts at most the initial congestion window
    /// on the wire before the first retransmission timeout (RFC 9260 §7.2.1: min(4·MTU, max(2·MTU, 4380)) bytes), then
    /// one MTU at a time (§7.2.3: cwnd = 1 MTU after a T3-rtx timeout), so the distinct data sent stays bounded however
    /// much the application queued; after Association.Max.Retrans timeouts it gives up.
    /// </summary>
    [Fact]
    public void A_peer_that_never_sacks_gets_no_more_than_the_congestion_window_and_is_timed_out()
    {
        var options = new SctpOptions();
        var tsns = new HashSet<uint>();
        long firstFlight = 0;
        var timedOut = false;
        var pair = new Pair(new SteppedNetwork(), options, watchA: p =>
        {
            if (!SctpPacket.TryDecode(p, out var packet, out _)) return;
            foreach (var d in packet!.Chunks.OfType<DataChunk>())
            {
                if (tsns.Add(d.Tsn) && !timedOut) firstFlight += d.Payload.Length;
            }
        });
        pair.Connect(both: false);
        pair.Silent = true;
        var (a, recA, net) = (pair.A, pair.RecA, pair.Net);

        // 1 MiB queued at once.
        for (var i = 0; i < 64; i++) Assert.True(a.Send(1, 53, Message(i, 16384), unordered: false));

        // Up to just before RTO.Initial (1 s): only the initial window went out (RFC 9260 §6.1 rule B lets a new
        // transmission exceed cwnd by up to PMTU - 1 bytes while cwnd is not yet exceeded).
        net.RunUntil(() => false, options.InitialRto - TimeSpan.FromMilliseconds(50));
        var initialCwnd = Math.Min(4 * options.Mtu, Math.Max(2 * options.Mtu, 4380));
        Assert.True(firstFlight > 0 && firstFlight <= initialCwnd + options.Mtu - 1, $"{firstFlight} bytes of DATA before the first timeout; the initial cwnd is {initialCwnd}");
        timedOut = true;

        Assert.True(net.RunUntil(() => recA.Closed is not null, TimeSpan.FromMinutes(30)));
        Assert.Contains("acknowledg", recA.Closed);

        // Every timeout allows one MTU of new data at most: far from the megabyte queued.
        Assert.InRange(tsns.Count, 1, (initialCwnd / 100) + options.MaxRetransmits + 2);
        Assert.True(tsns.Count < 64 * 16384 / options.Mtu / 4, $"{tsns.Count} distinct DATA chunks were sent to a peer that never acknowledged");
    }

    /// <summary>
    /// A peer that ignores our advertised window (RFC 9260 §6.2: a_rwnd) and floods DATA past a hole, so nothing can
    /// be delivered: we keep at most ReceiveWindow bytes (the rest is dropped, not buffered), our SACKs report the window
    /// closed, and once the hole is filled the association delivers what it kept and goes on.
    /// </summary>
    [Fact]
    public void A_peer_that_ignores_our_receive_window_gets_its_excess_dropped()
    {
        var options = new SctpOptions { ReceiveWindow = 100_000, MaxMessageSize = 50_000 };
        SackChunk? lastSack = null;
        var pair = new Pair(new SteppedNetwork(), options, tapB: p =>
        {
            if (SctpPacket.TryDecode(p, out var packet, out _) && packet!.Chunks.OfType<SackChunk>().LastOrDefault() is { } sack) lastSack = sack;
        });
        pair.Connect(both: false);
        var (a, b, recB, net) = (pair.A, pair.B, pair.RecB, pair.Net);
        Assert.True(a.Send(1, 53, Message(1, 100), unordered: false));
        Assert.True(net.RunUntil(() => recB.Messages.Count == 1 && lastSack is not null, TimeSpan.FromSeconds(10)));
        var cum = lastSack!.CumulativeTsn;

        // 2,000 one-kB ordered messages on stream 3 after a hole at cum + 1 (its first message, SSN 0): none can be
        // delivered before the hole, 2 MB against a 100 kB window. (Unordered ones would be delivered at once.)
        for (uint i = 0; i < 2000; i++)
        {
            var data = new DataChunk(cum + 2 + i, 3, (ushort)(i + 1), 53, false, true, true, Message((int)i, 1000));
            b.Receive(new SctpPacket(5000, 5000, b.LocalTag, [data]).Encode());
        }

        net.RunUntil(() => false, TimeSpan.FromMilliseconds(300));
        Assert.Equal(cum, lastSack!.CumulativeTsn);
        var kept = lastSack.Gaps.Sum(g => g.End - g.Start + 1);
        Assert.InRange(kept, 1, options.ReceiveWindow / 1000);
        Assert.True(lastSack.ARwnd < 1000, $"a_rwnd {lastSack.ARwnd} with the window full");

        // The hole filled: what was kept is delivered, the connection goes on.
        var hole = new DataChunk(cum + 1, 3, 0, 53, false, true, true, Message(9999, 10));
        b.Receive(new SctpPacket(5000, 5000, b.LocalTag, [hole]).Encode());
        Assert.True(net.RunUntil(() => recB.Messages.Count == 1 + 1 + kept, TimeSpan.FromSeconds(10)), $"{recB.Messages.Count} messages delivered, expected {2 + kept}");
        Assert.Null(recB.Closed);
    }

    [Fact]
    public void Shutdown_closes_both_ends_after_the_data_is_delivered()
    {
        var pair = new Pair(new SteppedNetwork(0.1, 0, TimeSpan.FromMilliseconds(5)));
        pair.Connect();
        Assert.True(pair.A.Send(1, 53, Message(1, 50_000), unordered: false));
        pair.A.Shutdown();
        Assert.True(pair.Net.RunUntil(() => pair.RecA.Closed is not null && pair.RecB.Closed is not null, TimeSpan.FromMinutes(5)));
        Assert.Single(pair.RecB.Messages);
    }

    [Fact]
    public void Abort_reaches_the_peer_with_its_reason()
    {
        var pair = new Pair(new SteppedNetwork());
        pair.Connect();
        pair.A.Abort("going away");
        Assert.True(pair.Net.RunUntil(() => pair.RecB.Closed is not null, TimeSpan.FromSeconds(5)));
        Assert.Contains("going away", pair.RecB.Closed);
    }

    [Fact]
    public void A_message_larger_than_the_limit_is_refused()
    {
        var pair = new Pair(new SteppedNetwork(), new SctpOptions { MaxMessageSize = 1000, ReceiveWindow = 100_000 });
        pair.Connect();
        Assert.False(pair.A.Send(1, 53, new byte[1001], unordered: false));
    }

    [Fact]
    public void A_received_message_over_the_limit_is_dropped_alone()
    {
        var pair = new Pair(new SteppedNetwork(), new SctpOptions { MaxMessageSize = 100_000 }, optionsB: new SctpOptions { MaxMessageSize = 10_000, ReceiveWindow = 200_000 });
        pair.Connect(both: false);
        var (a, recB, net) = (pair.A, pair.RecB, pair.Net);
        Assert.True(a.Send(1, 53, Message(1, 50_000), unordered: false));
        Assert.True(a.Send(1, 53, Message(2, 500), unordered: false));
        Assert.True(net.RunUntil(() => recB.Messages.Count == 1, TimeSpan.FromSeconds(10)));
        Assert.Equal(Message(2, 500), recB.Messages[0].Data);
        Assert.Null(recB.Closed);
    }

    [Fact]
    public void Garbage_packets_into_an_established_association_never_throw_and_it_keeps_working()
    {
        var pair = new Pair(new SteppedNetwork());
        pair.Connect();
        var random = new Random(9);
        // Valid packets for B (its tag, a good checksum) of every chunk kind, with bits flipped past the header.
        SctpChunk[] chunks =
        [
            new DataChunk(1, 1, 0, 53, false, true, true, new byte[] { 1, 2, 3 }),
            new SackChunk(5, 1000, [(1, 2)], [3u]),
            new ForwardTsnChunk(9, [(1, 1)]),
            new ReconfigChunk([new OutgoingResetRequest(1, 2, 3, [1])]),
            new HeartbeatChunk(false, new byte[] { 0, 1, 0, 8, 1, 2, 3, 4 }),
            new CookieEchoChunk(new byte[56]),
        ];
        var seeds = chunks.Select(c => new SctpPacket(5000, 5000, pair.B.LocalTag, [c]).Encode()).ToArray();
        for (var i = 0; i < 100_000; i++)
        {
            var b = (byte[])seeds[i % seeds.Length].Clone();
            b[12 + random.Next(b.Length - 12)] ^= (byte)(1 << random.Next(8));

            // A flip that turns the chunk into ABORT or SHUTDOWN* is an authentic close under B's tag: not garbage.
            if (b[12] is 6 or 7 or 8 or 14) continue;
            b.AsSpan(8, 4).Clear();
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), Crc32C.Compute(b));
            pair.B.Receive(b);
        }

        Assert.True(pair.A.Send(3, 51, "ok"u8.ToArray(), unordered: false));
        Assert.True(pair.Net.RunUntil(() => pair.RecB.Messages.Any(m => m.Stream == 3), TimeSpan.FromSeconds(30)));
        Assert.Null(pair.RecB.Closed);
    }
}
