using System.Buffers;
using System.Net;

namespace Peerway.Torrent.Utp;

internal enum UtpState
{
    /// <summary>SYN sent, waiting for its ST_STATE.</summary>
    SynSent,

    Connected,

    /// <summary>Our FIN was acked and the remote's FIN seen (or the linger ran out): nothing more to do.</summary>
    Closed,

    /// <summary>Reset, timed out or aborted.</summary>
    Error,
}

/// <summary>What a connection has measured, for tests and diagnostics.</summary>
internal readonly record struct UtpConnectionStats(
    int CongestionWindow,
    bool SlowStart,
    int RttMilliseconds,
    int QueuingDelayMicroseconds,
    int PayloadSize,
    int BytesInFlight,
    long PacketsSent,
    long PacketsResent,
    long FastResends,
    long Timeouts);

/// <summary>
/// What limited a connection and what it lost, counted over its life and logged at debug level when it ends (issue 15
/// item 7: why uTP's wall time trails its CPU time on a real link).
/// </summary>
internal sealed class UtpCounters
{
    /// <summary>Datagrams received for the connection, and DATA packets among them that arrived past a hole.</summary>
    public long Received { get; set; }

    public long OutOfOrder { get; set; }

    /// <summary>DATA packets seen before (already acked): the peer resent what we had.</summary>
    public long Duplicates { get; set; }

    /// <summary>DATA packets dropped unacked: beyond the window we advertised, or further than the reorder buffer.</summary>
    public long DroppedBeyondWindow { get; set; }

    /// <summary>ST_STATE packets sent (pure ACKs, probes and keep-alives), and those among them sent because reading
    /// opened the receive window.</summary>
    public long AcksSent { get; set; }

    public long WindowUpdates { get; set; }

    /// <summary>Times sending stopped at the congestion window, and at the peer's receive window.</summary>
    public long CwndLimited { get; set; }

    public long RwndLimited { get; set; }

    /// <summary>Window halvings on loss (at most one per 100 ms), and ACKs whose delay was at or above the target.</summary>
    public long LossCuts { get; set; }

    public long OverTarget { get; set; }

    public int MaxWindow { get; set; }

    public int MaxDelayMicros { get; set; }

    public override string ToString() =>
        $"received {Received} (out of order {OutOfOrder}, duplicates {Duplicates}, dropped {DroppedBeyondWindow}), acks sent {AcksSent} (window updates {WindowUpdates}), " +
        $"cwnd-limited {CwndLimited}, rwnd-limited {RwndLimited}, loss cuts {LossCuts}, delay over target {OverTarget}, " +
        $"max cwnd {MaxWindow}, max queuing delay {MaxDelayMicros} us";
}

/// <summary>
/// One uTP connection (BEP 29), sans I/O: it is handed decoded packets and clock readings by its
/// <see cref="UtpTransport"/> (which holds the lock all calls run under) and sends through a delegate. It owns the
/// sequence space, the send and receive buffers, retransmission, the selective-ACK logic, MTU probing and the LEDBAT
/// window (<see cref="UtpLedbat"/>).
/// </summary>
internal sealed class UtpConnection
{
    /// <summary>libtorrent dup_ack_limit: 3 duplicate ACKs (or 3 SACKed packets past a hole) mean the hole was lost.</summary>
    private const int DupAckLimit = 3;

    /// <summary>Out-of-order packets further than this past ack_nr are dropped (bounds the reorder buffer and what a
    /// SACK can describe).</summary>
    private const int MaxReorderDistance = 1024;

    /// <summary>Bytes of SACK bitmask we send at most (libtorrent sends up to its reorder window).</summary>
    private const int MaxSackSend = 32;

    /// <summary>Probing stops once the largest size known to pass and the smallest known to fail are this close.</summary>
    private const int ProbeGranularity = 16;

    /// <summary>A padded probe unanswered this long (at least) was lost (RFC 8899 §5.1.1 PROBE_TIMER, shortened: a probe
    /// answered late still counts, see <see cref="OnProbeOption"/>).</summary>
    private const long MinProbeTimeoutMicros = 100_000;

    /// <summary>Consecutive timeouts of the first unacked packet, when it is larger than the safe
    /// <see cref="UtpOptions.InitialPayload"/>, after which the path is taken to have become an MTU black hole
    /// (<see cref="FallBackToSafePayload"/>).</summary>
    private const int BlackHoleTimeouts = 2;

    /// <summary>Path MTUs tried before the binary search (RFC 8899 §5.3.2 lets a search use common plateaus): jumbo
    /// Ethernet and Ethernet. The agreed maximum (loopback's 65,536 carries it) is tried first.</summary>
    private static ReadOnlySpan<int> MtuPlateaus => [9_000, 1_500];

    /// <summary>Bytes a datagram carries beyond its payload at most: header, SACK extension, Peerway extension.</summary>
    private const int MaxOverhead = UtpHeader.Length + 2 + MaxSackSend + UtpPacket.PeerwayOverhead;

    private sealed class OutPacket
    {
        public required UtpPacketType Type { get; init; }
        /// <summary>Rented from the shared pool (returned once acked); <see cref="Length"/> bytes are the payload.</summary>
        public required byte[] Buffer { get; init; }

        public required int Length { get; init; }

        public ReadOnlySpan<byte> Payload => Buffer.AsSpan(0, Length);
        public long SentAt { get; set; }
        public int Transmissions { get; set; }
        public bool NeedResend { get; set; }
        public bool FastResent { get; set; }
        public bool MtuProbe { get; set; }
    }

    private readonly Action<ReadOnlySpan<byte>, IPEndPoint> _send;
    private readonly UtpOptions _options;
    private readonly Action<UtpConnection> _changed;
    private readonly Func<UtpConnection, bool> _deferAck;
    private bool _ackPending;
    private readonly byte[] _scratch;
    private readonly Dictionary<ushort, OutPacket> _outbuf = [];
    private readonly UtpByteQueue _sendBuffer = new();
    private readonly UtpByteQueue _receiveBuffer = new();
    private readonly Dictionary<ushort, (byte[] Buffer, int Length)> _reorder = [];
    private readonly UtpLedbat _ledbat;
    private readonly UtpRttEstimator _rtt = new();
    private readonly UtpDelayHistory _delayHistory = new();
    private readonly uint[] _recentDelays = [uint.MaxValue, uint.MaxValue, uint.MaxValue];
    private int _recentDelayIndex;
    private long _lastHistoryStep;
    private int _reorderBytes;
    private ushort _seqNr;
    private ushort _ackNr;
    private ushort _ackedSeqNr;
    private int _bytesInFlight;
    private int _advertisedWindow;
    private uint _replyMicro;
    private int _duplicateAcks;
    private long _timeoutAt;
    /// <summary>Data waits on a receive window smaller than a packet with nothing in flight: <see cref="_timeoutAt"/>
    /// times the zero-window probe.</summary>
    private bool _windowStalled;
    private int _numTimeouts;
    private long _lastSend;
    private long _lastReceive;
    private bool _confirmed;
    private int? _remoteFinSeq;
    private bool _remoteFinReceived;
    private bool _closeRequested;
    private OutPacket? _fin;
    private bool _finAcked;
    private long _lingerUntil;
    private int _mtuFloor;
    private int _mtuCeiling;
    private int _mtuProbeSeq = -1;
    private readonly int _largeOffer;
    private int _largeAgreed;
    private int _padProbeSize;
    private long _padProbeDeadline;
    private int _lastDelay;
    private long _sent;
    private long _resent;
    private long _fastResends;
    private long _timeouts;
    /// <summary>The receive window the last packet we sent advertised.</summary>
    private int _windowSent;
    private readonly UtpCounters _counters = new();

    private UtpConnection(IPEndPoint remote, ushort recvId, ushort sendId, UtpOptions options, Action<ReadOnlySpan<byte>, IPEndPoint> send,
        Action<UtpConnection> changed, byte[] scratch, Func<UtpConnection, bool> deferAck)
    {
        Remote = remote;
        _deferAck = deferAck;
        RecvId = recvId;
        SendId = sendId;
        _options = options;
        _send = send;
        _changed = changed;
        _scratch = scratch;
        _largeOffer = options.LargePayload == 0 ? 0 : Math.Min(options.LargePayload, options.ReceiveBuffer);
        _mtuFloor = options.InitialPayload;
        _mtuCeiling = options.MaxPayload;
        _ledbat = new UtpLedbat(options, options.InitialPayload);
        _advertisedWindow = options.InitialPayload;
    }

    public IPEndPoint Remote { get; }

    /// <summary>The id packets to us carry (the demultiplexing key with <see cref="Remote"/>).</summary>
    public ushort RecvId { get; }

    public ushort SendId { get; }

    public UtpState State { get; private set; }

    /// <summary>Why the connection is in <see cref="UtpState.Error"/>.</summary>
    public string? Error { get; private set; }

    /// <summary>The user disposed the stream (a finished connection can then be forgotten).</summary>
    public bool Released { get; set; }

    /// <summary>Waiters the transport completes when <see cref="_changed"/> reports this connection.</summary>
    public TaskCompletionSource? ReadWaiter { get; set; }

    public TaskCompletionSource? WriteWaiter { get; set; }

    public TaskCompletionSource? ConnectWaiter { get; set; }

    public int Readable => _receiveBuffer.Count;

    /// <summary>A packet other than the SYN came from the peer: its address is not spoofed (libtorrent m_confirmed).</summary>
    public bool Confirmed => _confirmed;

    /// <summary>All data was read and the remote's FIN reached: reads return 0.</summary>
    public bool EndOfStream => _receiveBuffer.Count == 0 && _remoteFinReceived;

    public int SendSpace => Math.Max(0, _options.SendBuffer - _sendBuffer.Count);

    /// <summary>Bytes of the buffer a transport shares among its connections (all run under its lock) for encoding.</summary>
    public static int ScratchSize(UtpOptions options) => MaxOverhead + Math.Max(options.MaxPayload, options.LargePayload);

    /// <summary>The peer agreed to large packets (Peerway's extension): the payload both take at most, else 0.</summary>
    public int LargeAgreed => _largeAgreed;

    /// <summary>A one-line summary of the counters, for the debug log at the end of the connection.</summary>
    public string Describe() =>
        $"sent {_sent} (resent {_resent}, fast {_fastResends}), timeouts {_timeouts}, {_counters}, cwnd {_ledbat.Window}, rtt {_rtt.Mean} ms, payload {_mtuFloor}";

    public UtpConnectionStats Stats => new(_ledbat.Window, _ledbat.SlowStart, _rtt.Mean, _lastDelay, _mtuFloor, _bytesInFlight, _sent, _resent, _fastResends,
        _timeouts);

    /// <summary>A connection we initiate: BEP 29 "conn_id_recv = rand(); conn_id_send = conn_id_recv + 1", and the
    /// SYN carries conn_id_recv.</summary>
    public static UtpConnection Connect(IPEndPoint remote, ushort recvId, ushort initialSeq, long now, UtpOptions options,
        Action<ReadOnlySpan<byte>, IPEndPoint> send, Action<UtpConnection> changed, byte[] scratch, Func<UtpConnection, bool> deferAck)
    {
        var c = new UtpConnection(remote, recvId, unchecked((ushort)(recvId + 1)), options, send, changed, scratch, deferAck)
        {
            State = UtpState.SynSent,
            _seqNr = initialSeq,
            _ackedSeqNr = unchecked((ushort)(initialSeq - 1)),
        };
        c._lastReceive = now;
        c.SendNew(UtpPacketType.Syn, [], 0, now);
        c._timeoutAt = now + options.ConnectTimeout.Ticks / 10;
        return c;
    }

    /// <summary>A connection a SYN asked for: BEP 29 "conn_id_recv = c.conn_id + 1; conn_id_send = c.conn_id";
    /// ack_nr = the SYN's seq_nr; our seq_nr starts at random; the ST_STATE reply does not consume it.</summary>
    public static UtpConnection Accept(IPEndPoint remote, in UtpPacket synPacket, ushort initialSeq, long now, UtpOptions options,
        Action<ReadOnlySpan<byte>, IPEndPoint> send, Action<UtpConnection> changed, byte[] scratch, Func<UtpConnection, bool> deferAck)
    {
        var syn = synPacket.Header;
        var c = new UtpConnection(remote, unchecked((ushort)(syn.ConnectionId + 1)), syn.ConnectionId, options, send, changed, scratch, deferAck)
        {
            State = UtpState.Connected,
            _seqNr = initialSeq,
            _ackedSeqNr = unchecked((ushort)(initialSeq - 1)),
            _ackNr = syn.SequenceNumber,
            _advertisedWindow = (int)Math.Min(syn.WindowSize, int.MaxValue),
            _lastReceive = now,
        };
        c._replyMicro = unchecked((uint)now - syn.TimestampMicroseconds);
        if (synPacket.Option == UtpPeerwayOption.LargePackets) c.AgreeLarge(synPacket.OptionValue);
        c.SendSynAck(now, synPacket.DatagramLength);
        return c;
    }

    /// <summary>Whether a packet arriving for this connection's key repeats its SYN (answered again, not re-created).</summary>
    public void OnDuplicateSyn(long now, int synLength) => SendSynAck(now, synLength);

    /// <summary>The peer offered large packets: both now take payloads up to the smaller offer, and padded probes
    /// (not data) find what the path carries.</summary>
    private void AgreeLarge(ushort peerOffer)
    {
        if (_largeOffer == 0) return;
        _largeAgreed = Math.Max(_mtuFloor, Math.Min(_largeOffer, peerOffer));
        _mtuCeiling = _largeAgreed;
    }

    /// <summary>The ST_STATE answering a SYN: it repeats our large-packet offer when the SYN made one (and only if the
    /// answer is no larger than the SYN: no amplification).</summary>
    private void SendSynAck(long now, int synLength)
    {
        if (_largeAgreed > 0 && synLength >= UtpHeader.Length + UtpPacket.PeerwayOverhead) Send(UtpPacketType.State, _seqNr, [], now, UtpPeerwayOption.LargePackets, (ushort)_largeOffer);
        else SendState(now);
    }

    // ---- the user side ----

    public int Write(ReadOnlySpan<byte> data, long now)
    {
        if (State == UtpState.Error || _closeRequested) return 0;
        var n = Math.Min(data.Length, SendSpace);
        _sendBuffer.Enqueue(data[..n]);
        if (State == UtpState.Connected) Flush(now);
        return n;
    }

    public int Read(Span<byte> destination, long now)
    {
        var windowBefore = ReceiveWindow;
        var n = _receiveBuffer.Dequeue(destination);
        if (n == 0 || State != UtpState.Connected) return n;

        // A window that was closed (less than a packet) and opens again is announced at once, otherwise a sender
        // waiting on it would only learn of it from its zero-window probe. And, as a TCP receiver does (RFC 1122
        // §4.2.3.3; Linux tcp_cleanup_rbuf), a window the sender last heard to be at most half the buffer is announced
        // once reading has doubled it: a sender held by the window learns of the space at once, not one ACK later.
        var window = ReceiveWindow;
        if ((windowBefore < _mtuCeiling && window >= _mtuCeiling)
            || (_windowSent <= _options.ReceiveBuffer / 2 && window >= 2L * _windowSent && window >= _mtuFloor))
        {
            _counters.WindowUpdates++;
            SendState(now);
        }

        return n;
    }

    /// <summary>Orderly close: ST_FIN after the buffered data (BEP 29).</summary>
    public void Close(long now)
    {
        if (_closeRequested || State is UtpState.Error or UtpState.Closed) return;
        _closeRequested = true;
        _lingerUntil = now + _options.LingerTimeout.Ticks / 10;
        if (State == UtpState.Connected) Flush(now);
    }

    /// <summary>Reset: ST_RESET to the peer, and every pending read and write fails.</summary>
    public void Abort(long now)
    {
        if (State is UtpState.Error or UtpState.Closed) return;
        if (State == UtpState.Connected) SendHeaderOnly(UtpPacketType.Reset, unchecked((ushort)Random.Shared.Next(ushort.MaxValue + 1)), now);
        Fail("aborted");
    }

    // ---- the network side ----

    private int ReceiveWindow => Math.Max(0, _options.ReceiveBuffer - _receiveBuffer.Count - _reorderBytes);

    public void OnPacket(in UtpPacket packet, long now)
    {
        if (State is UtpState.Error or UtpState.Closed) return;
        var h = packet.Header;
        if (h.Type == UtpPacketType.Syn) // a repeated SYN for an accepted connection: its STATE was lost
        {
            SendSynAck(now, packet.DatagramLength);
            return;
        }

        // BEP 29/libtorrent: an ack_nr beyond what we sent is bogus (spoofed or a confused peer): ignore the packet.
        var lastSent = unchecked((ushort)(_seqNr - 1));
        if (UtpSeq.Less(lastSent, h.AckNumber)) return;
        if (h.Type == UtpPacketType.Reset)
        {
            Fail("connection reset by peer");
            return;
        }

        _lastReceive = now;
        _confirmed = true;
        _counters.Received++;
        _replyMicro = unchecked((uint)now - h.TimestampMicroseconds);
        var windowGrew = h.WindowSize > (uint)_advertisedWindow;
        _advertisedWindow = (int)Math.Min(h.WindowSize, int.MaxValue);

        if (State == UtpState.SynSent)
        {
            // libtorrent: a STATE answering the SYN carries the acceptor's next seq_nr, so we have seen seq_nr - 1.
            _ackNr = unchecked((ushort)(h.SequenceNumber - 1));
            State = UtpState.Connected;
            if (packet.Option == UtpPeerwayOption.LargePackets) AgreeLarge(packet.OptionValue);
            _changed(this);
        }

        ProcessAcks(packet, now, windowGrew);
        var mustAck = false;
        if (h.Type is UtpPacketType.Data or UtpPacketType.Fin) mustAck = ProcessIncoming(packet, now);
        if (h.Type == UtpPacketType.State && _largeAgreed > 0) OnProbeOption(packet, now);
        // libtorrent defers the ACK to the end of the socket's receive batch (one ST_STATE for a burst); a packet we
        // send meanwhile carries ack_nr anyway. Without batch ends from the socket, every packet is acked at once.
        if (mustAck && !_ackPending)
        {
            if (_deferAck(this)) _ackPending = true;
            else SendState(now);
        }

        Flush(now);
        MaybeProbe(now);
        if (_closeRequested && _finAcked && (_remoteFinReceived || now >= _lingerUntil))
        {
            State = UtpState.Closed;
            _changed(this);
        }
    }

    private void ProcessAcks(in UtpPacket packet, long now, bool windowGrew)
    {
        var h = packet.Header;
        var prevInFlight = _bytesInFlight;
        var acked = 0;
        var minRtt = uint.MaxValue;

        // The one-way delay sample (BEP 29 "timestamp_difference_microseconds"); libtorrent ignores 0 and INT_MAX
        // (a uTorrent bug).
        var sample = h.TimestampDifferenceMicroseconds == int.MaxValue ? 0u : h.TimestampDifferenceMicroseconds;
        var delay = 0u;
        if (sample != 0)
        {
            var step = now - _lastHistoryStep > 60_000_000;
            if (step) _lastHistoryStep = now;
            delay = _delayHistory.AddSample(sample, step);
            _recentDelays[_recentDelayIndex] = delay;
            _recentDelayIndex = (_recentDelayIndex + 1) % _recentDelays.Length;
        }

        // A probe or its answer is no duplicate ACK (it is sent whatever the data does), nor is a window update (RFC 5681
        // §2: a duplicate ACK does not change the advertised window; a receiver sends an update when reading opened it,
        // while packets past a hole only shrink it).
        if (h.AckNumber == _ackedSeqNr && _outbuf.Count > 0 && h.Type == UtpPacketType.State && packet.Option == UtpPeerwayOption.None && !windowGrew)
        {
            _duplicateAcks++;
        }

        // Cumulative ACK: everything up to ack_nr arrived.
        while (UtpSeq.Less(_ackedSeqNr, h.AckNumber))
        {
            _ackedSeqNr = unchecked((ushort)(_ackedSeqNr + 1));
            if (_outbuf.Remove(_ackedSeqNr, out var p))
            {
                acked += AckPacket(_ackedSeqNr, p, now, ref minRtt);
                _duplicateAcks = 0;
            }
        }

        // Selective ACK: bit i is packet ack_nr + 2 + i. Three SACKed packets past a hole mean the hole was lost.
        if (!packet.Sack.IsEmpty)
        {
            var above = 0;
            for (var i = packet.Sack.Length * 8 - 1; i >= 0; i--)
            {
                if (!UtpPacket.SackBit(packet.Sack, i)) continue;
                var seq = unchecked((ushort)(h.AckNumber + 2 + i));
                if (!UtpSeq.Less(seq, _seqNr)) continue;
                above++;
                if (_outbuf.Remove(seq, out var p)) acked += AckPacket(seq, p, now, ref minRtt);
            }

            if (above >= DupAckLimit)
            {
                // Fast retransmit the holes below the SACKed packets (those not already resent fast).
                for (var seq = unchecked((ushort)(h.AckNumber + 1)); UtpSeq.Less(seq, _seqNr); seq = unchecked((ushort)(seq + 1)))
                {
                    var bit = (ushort)(seq - h.AckNumber - 2);
                    if (bit < packet.Sack.Length * 8 && seq != unchecked((ushort)(h.AckNumber + 1)) && UtpPacket.SackBit(packet.Sack, bit)) break;
                    if (_outbuf.TryGetValue(seq, out var lost) && !lost.FastResent) FastResend(seq, lost, now);
                }
            }
        }

        if (_outbuf.Count == 0) _duplicateAcks = 0;
        if (acked > 0)
        {
            _numTimeouts = 0;
            _timeoutAt = now + PacketTimeoutMicros();
        }

        if (_duplicateAcks >= DupAckLimit)
        {
            var next = unchecked((ushort)(_ackedSeqNr + 1));
            if (_outbuf.TryGetValue(next, out var lost) && !lost.FastResent) FastResend(next, lost, now);
        }

        // libtorrent: only the minimum of the last 3 samples, never above the RTT, drives the window.
        if (sample != 0 && acked > 0 && prevInFlight > 0)
        {
            var d = _recentDelays.Min();
            if (d > minRtt) d = minRtt;
            _lastDelay = (int)Math.Min(d, int.MaxValue);
            _ledbat.OnAck(acked, _lastDelay, prevInFlight, _bytesInFlight);
            if (_lastDelay >= _options.TargetDelay.Ticks / 10) _counters.OverTarget++;
            _counters.MaxDelayMicros = Math.Max(_counters.MaxDelayMicros, _lastDelay);
            _counters.MaxWindow = Math.Max(_counters.MaxWindow, _ledbat.Window);
        }

        if (acked > 0) _changed(this); // send space may have opened
    }

    private int AckPacket(ushort seq, OutPacket p, long now, ref uint minRtt)
    {
        if (!p.NeedResend) _bytesInFlight -= p.Length; // a timed-out packet no longer counts as in flight
        if (p.Transmissions == 1 && !p.NeedResend)
        {
            // Karn: only packets sent once give an RTT sample.
            var rtt = (uint)Math.Max(0, now - p.SentAt);
            _rtt.Add((int)(rtt / 1000));
            minRtt = Math.Min(minRtt, rtt);
        }

        if (p.MtuProbe && seq == _mtuProbeSeq)
        {
            _mtuFloor = Math.Max(_mtuFloor, p.Length);
            _ledbat.Packet = _mtuFloor;
            _mtuProbeSeq = -1;
        }

        if (p == _fin) _finAcked = true;
        if (p.Length > 0) ArrayPool<byte>.Shared.Return(p.Buffer);
        return p.Length;
    }

    private void FastResend(ushort seq, OutPacket p, long now)
    {
        p.FastResent = true;
        _fastResends++;
        if (p.MtuProbe && seq == _mtuProbeSeq) ProbeLost(p);
        else if (_ledbat.OnLoss(now)) _counters.LossCuts++;
        _duplicateAcks = 0;
        Resend(seq, p, now);
    }

    /// <summary>Sends a packet again; one that timed out counts as in flight again.</summary>
    private void Resend(ushort seq, OutPacket p, long now)
    {
        if (p.NeedResend)
        {
            p.NeedResend = false;
            _bytesInFlight += p.Length;
        }

        Transmit(seq, p, now);
    }

    private void ProbeLost(OutPacket p)
    {
        _mtuCeiling = Math.Max(_mtuFloor, p.Length - 1);
        _mtuProbeSeq = -1;
        p.MtuProbe = false;
    }

    /// <summary>Takes a DATA or FIN; returns whether it must be acked.</summary>
    private bool ProcessIncoming(in UtpPacket packet, long now)
    {
        var seq = packet.Header.SequenceNumber;
        if (packet.Header.Type == UtpPacketType.Fin)
        {
            if (_remoteFinSeq is null && UtpSeq.Less(_ackNr, seq)) _remoteFinSeq = seq;
        }

        if (!UtpSeq.Less(_ackNr, seq))
        {
            _counters.Duplicates++;
            return true; // a duplicate: ack again
        }

        if ((ushort)(seq - _ackNr) > MaxReorderDistance)
        {
            _counters.DroppedBeyondWindow++;
            return false;
        }

        if (_remoteFinSeq is { } fin && UtpSeq.Less((ushort)fin, seq)) return false; // nothing comes after the FIN
        var payload = packet.Payload;
        // The packet that fills the hole is taken whenever the reader left room for it: the packets held past the hole
        // count against the window, and refusing the one packet that lets them out because of them would wait forever
        // (a small receive buffer full of reordered packets, the hole's resend dropped as beyond the window each time).
        // What is buffered stays bounded: the reorder buffer never holds more than the window it was advertised.
        var inOrder = seq == unchecked((ushort)(_ackNr + 1));
        var room = inOrder ? _options.ReceiveBuffer - _receiveBuffer.Count : ReceiveWindow;
        if (payload.Length > room)
        {
            _counters.DroppedBeyondWindow++;
            return false; // beyond the window we advertised: dropped, not acked
        }

        if (seq == unchecked((ushort)(_ackNr + 1)))
        {
            _receiveBuffer.Enqueue(payload);
            _ackNr = seq;
            while (_reorder.Remove(unchecked((ushort)(_ackNr + 1)), out var next))
            {
                _reorderBytes -= next.Length;
                _receiveBuffer.Enqueue(next.Buffer.AsSpan(0, next.Length));
                if (next.Length > 0) ArrayPool<byte>.Shared.Return(next.Buffer);
                _ackNr = unchecked((ushort)(_ackNr + 1));
            }

            if (_remoteFinSeq is { } f && _ackNr == (ushort)f) _remoteFinReceived = true;
            if (payload.Length > 0 || _remoteFinReceived) _changed(this);
        }
        else if (packet.Header.Type == UtpPacketType.Data && !_reorder.ContainsKey(seq))
        {
            _counters.OutOfOrder++;
            var copy = payload.Length == 0 ? [] : ArrayPool<byte>.Shared.Rent(payload.Length);
            payload.CopyTo(copy);
            _reorder[seq] = (copy, payload.Length);
            _reorderBytes += payload.Length;
        }
        else if (packet.Header.Type == UtpPacketType.Fin)
        {
            _reorder.TryAdd(seq, ([], 0));
        }

        return true;
    }

    /// <summary>Timers: retransmission timeout, SYN and FIN resends, keep-alive, linger.</summary>
    public void OnTick(long now)
    {
        if (State is UtpState.Error or UtpState.Closed) return;
        // A connection a SYN opened but the peer never followed up (a spoofed or flooded SYN) does not hold a slot.
        if (!_confirmed && State == UtpState.Connected && now - _lastReceive > _options.ConnectTimeout.Ticks / 10)
        {
            Fail("half-open connection timed out");
            return;
        }

        if (State == UtpState.SynSent)
        {
            if (now < _timeoutAt) return;
            if (++_numTimeouts > _options.SynResends)
            {
                Fail("connection timed out");
                return;
            }

            _timeouts++;
            var synSeq = unchecked((ushort)(_ackedSeqNr + 1));
            Transmit(synSeq, _outbuf[synSeq], now);
            _timeoutAt = now + (_options.ConnectTimeout.Ticks / 10 << _numTimeouts);
            return;
        }

        if (_padProbeSize != 0 && now >= _padProbeDeadline)
        {
            // RFC 8899 §4.3/§5.2: a lost probe says the path does not carry that size; it is no congestion signal.
            _mtuCeiling = Math.Max(_mtuFloor, _padProbeSize - 1);
            _padProbeSize = 0;
            MaybeProbe(now);
        }

        if (_closeRequested && now >= _lingerUntil)
        {
            State = _finAcked ? UtpState.Closed : UtpState.Error;
            Error ??= _finAcked ? null : "FIN not acknowledged";
            _changed(this);
            return;
        }

        if (now >= _timeoutAt && (_outbuf.Count > 0 || (_windowStalled && _sendBuffer.Count > 0 && _advertisedWindow < _mtuFloor)))
        {
            _timeouts++;
            var first = unchecked((ushort)(_ackedSeqNr + 1));
            _outbuf.TryGetValue(first, out var head);
            var onlyProbe = head is { MtuProbe: true } && _outbuf.Count == 1;
            if (onlyProbe) ProbeLost(head!);
            else _numTimeouts++;

            // libtorrent: a peer never heard from fails at the first timeout; others after MaxResends.
            if (_numTimeouts > _options.MaxResends || (_numTimeouts > 0 && !_confirmed))
            {
                Fail("connection timed out");
                return;
            }

            if (!onlyProbe) _ledbat.OnTimeout(idle: _bytesInFlight == 0);
            if (_mtuProbeSeq >= 0 && _outbuf.TryGetValue((ushort)_mtuProbeSeq, out var probe)) ProbeLost(probe);
            foreach (var p in _outbuf.Values)
            {
                p.FastResent = false; // a new round: each may be fast-resent once more
                if (!p.NeedResend)
                {
                    p.NeedResend = true;
                    _bytesInFlight -= p.Length;
                }
            }

            _timeoutAt = now + PacketTimeoutMicros();
            var suspectBlackHole = !onlyProbe && head is not null && _largeAgreed > 0 && head.Length > _options.InitialPayload;
            // Silence is no evidence of a black hole: a peer whose ACKs are lost (a loaded host, a congested return path)
            // may hold every packet, and cutting them again under the same numbers would give it other bytes under
            // numbers it already took (a corrupt stream). The fallback needs the peer heard from since the head last
            // left, its ACK still below the head: the small probe sent at each such timeout asks for that answer.
            if (suspectBlackHole && _numTimeouts >= BlackHoleTimeouts && _lastReceive > head!.SentAt && FallBackToSafePayload(first, head.Length))
            {
                _timeoutAt = now + PacketTimeoutMicros();
                Flush(now);
                return;
            }

            if (suspectBlackHole) AskForAck(now);
            if (head is not null) Resend(first, head, now); // the first packet goes whatever the window
            else if (_sendBuffer.Count > 0) _advertisedWindow = Math.Max(_advertisedWindow, _mtuFloor); // zero-window probe
            Flush(now);
            return;
        }

        if (State == UtpState.Connected && now - _lastSend >= _options.KeepAliveInterval.Ticks / 10) SendState(now);
    }

    /// <summary>
    /// MTU black-hole detection (RFC 8899 §4.3 black-hole detection; libtorrent utp_stream.cpp update_mtu_limits and
    /// resend_packet: repeated losses of full-size packets lower the MTU and restart the search). The path stopped
    /// carrying packets of the size probing had found (a route or tunnel changed), so the payload falls back to the safe
    /// <see cref="UtpOptions.InitialPayload"/>, the ceiling to below the size that was lost, and padded probes search
    /// again. The packets sent since can never pass and a uTP packet keeps its sequence number, so they are taken back
    /// and sent again, cut to the new size, under the same numbers: that is done only when the peer, heard from since the
    /// first of them last left (the caller checks: silence may be lost ACKs), reported none of them (nothing selectively
    /// acked past the first), i.e. it holds none of them: a peer acks every data packet it gets, with ST_STATEs small
    /// enough for any path. Returns whether the packets were taken back.
    /// </summary>
    private bool FallBackToSafePayload(ushort first, int lostLength)
    {
        _mtuFloor = _options.InitialPayload;
        _mtuCeiling = Math.Max(_mtuFloor, lostLength - 1);
        _ledbat.Packet = _mtuFloor;
        _padProbeSize = 0;
        _mtuProbeSeq = -1;
        var count = (ushort)(_seqNr - first);
        if (_outbuf.Count != count) return false; // the peer holds some of them: their numbers are taken
        var bytes = 0;
        foreach (var p in _outbuf.Values) bytes += p.Length;
        var taken = ArrayPool<byte>.Shared.Rent(Math.Max(1, bytes));
        var at = 0;
        for (var seq = first; seq != _seqNr; seq = unchecked((ushort)(seq + 1)))
        {
            var p = _outbuf[seq];
            p.Payload.CopyTo(taken.AsSpan(at));
            at += p.Length;
            if (p.Length > 0) ArrayPool<byte>.Shared.Return(p.Buffer);
            if (p == _fin) _fin = null; // sent again after the data
        }

        _outbuf.Clear();
        _bytesInFlight = 0;
        _duplicateAcks = 0;
        _numTimeouts = 0;
        _seqNr = first;
        _sendBuffer.Prepend(taken.AsSpan(0, bytes));
        ArrayPool<byte>.Shared.Return(taken);
        return true;
    }

    /// <summary>
    /// A small ST_STATE with Peerway's probe option and the safe payload as its value (no padding: it passes any path): a
    /// Peerway peer answers every probe at once (<see cref="OnProbeOption"/>), and the answer carries its ack_nr and SACK.
    /// </summary>
    private void AskForAck(long now) => Send(UtpPacketType.State, _seqNr, [], now, UtpPeerwayOption.Probe, (ushort)_options.InitialPayload);

    /// <summary>libtorrent packet_timeout(): max(min timeout, rtt + 4 deviations... 2 in libtorrent) plus a doubling
    /// back-off per consecutive timeout, capped at a minute.</summary>
    private long PacketTimeoutMicros()
    {
        if (_numTimeouts >= 7) return 60_000_000;
        long ms = Math.Max((long)(_options.MinTimeout.Ticks / 10_000), _rtt.Mean + _rtt.Deviation * 2L);
        if (_numTimeouts > 0) ms += (1L << (_numTimeouts - 1)) * 1000;
        return Math.Min(ms, 60_000) * 1000;
    }

    private void Fail(string reason)
    {
        State = UtpState.Error;
        Error = reason;
        _changed(this);
    }

    // ---- sending ----

    /// <summary>Sends what the windows allow: resends first, then new data in packets of the current size (an MTU
    /// probe when due), holding a partial packet back while data is unacked (Nagle), then the FIN. An accepted
    /// connection sends nothing but ST_STATE until the peer's first packet after its SYN confirms its address (no
    /// amplification towards a spoofed source; libtorrent's acceptor likewise writes only after the peer's handshake).</summary>
    private void Flush(long now)
    {
        if (State != UtpState.Connected || !_confirmed) return;
        var window = Math.Min(_ledbat.Window, _advertisedWindow);
        for (var seq = unchecked((ushort)(_ackedSeqNr + 1)); UtpSeq.Less(seq, _seqNr); seq = unchecked((ushort)(seq + 1)))
        {
            if (!_outbuf.TryGetValue(seq, out var p) || !p.NeedResend) continue;
            if (_bytesInFlight > 0 && _bytesInFlight + p.Length > window)
            {
                CountWindowLimit();
                return;
            }
            Resend(seq, p, now);
        }

        while (_sendBuffer.Count > 0)
        {
            // libtorrent: probe the midpoint size when the window holds three floor-sized packets around it.
            // Between Peerway peers padded probes do this instead (MaybeProbe): a lost data probe cannot be resent smaller.
            var probe = _largeAgreed == 0 && _mtuProbeSeq < 0 && _mtuCeiling - _mtuFloor > 32 && _ledbat.Window > _mtuFloor * 3;
            var size = probe ? (_mtuFloor + _mtuCeiling) / 2 : _mtuFloor;
            if (probe && _sendBuffer.Count < size)
            {
                probe = false;
                size = _mtuFloor;
            }

            size = Math.Min(size, _sendBuffer.Count);
            if (_bytesInFlight > 0 && _bytesInFlight + size > window)
            {
                CountWindowLimit();
                return;
            }
            if (_bytesInFlight == 0 && _advertisedWindow < Math.Min(size, _mtuFloor))
            {
                // Zero window: probe when the timer runs out, counted from now (not from an earlier, stale deadline:
                // libtorrent's SYN advertises a window of 0, and the first write after accepting must not time out).
                if (!_windowStalled && _outbuf.Count == 0)
                {
                    _windowStalled = true;
                    _timeoutAt = now + PacketTimeoutMicros();
                }

                return;
            }

            if (_options.Nagle && size < _mtuFloor && _bytesInFlight > 0) return;
            var payload = ArrayPool<byte>.Shared.Rent(size);
            _sendBuffer.Dequeue(payload.AsSpan(0, size));
            if (probe) _mtuProbeSeq = _seqNr;
            var packet = SendNew(UtpPacketType.Data, payload, size, now);
            packet.MtuProbe = probe;
            _changed(this); // send space opened
        }

        if (_closeRequested && _fin is null)
        {
            _fin = SendNew(UtpPacketType.Fin, [], 0, now);
        }
    }

    private void CountWindowLimit()
    {
        if (_ledbat.Window <= _advertisedWindow) _counters.CwndLimited++;
        else _counters.RwndLimited++;
    }

    private OutPacket SendNew(UtpPacketType type, byte[] buffer, int length, long now)
    {
        var p = new OutPacket { Type = type, Buffer = buffer, Length = length };
        _windowStalled = false;
        var seq = _seqNr;
        _seqNr = unchecked((ushort)(_seqNr + 1));
        _outbuf[seq] = p;
        if (_bytesInFlight == 0 && _outbuf.Count == 1) _timeoutAt = now + PacketTimeoutMicros();
        _bytesInFlight += length;
        Transmit(seq, p, now);
        return p;
    }

    private void Transmit(ushort seq, OutPacket p, long now)
    {
        if (p.Transmissions > 0) _resent++;
        p.Transmissions++;
        p.SentAt = now;
        Send(p.Type, seq, p.Payload, now);
    }

    /// <summary>ST_STATE: an ACK (with SACK when packets wait out of order); seq_nr is the next one we will send.</summary>
    private void SendState(long now) => Send(UtpPacketType.State, _seqNr, [], now);

    /// <summary>The socket's receive batch ended: the deferred ACK goes now, unless a packet sent since carried it.</summary>
    public void FlushAck(long now)
    {
        if (!_ackPending) return;
        _ackPending = false;
        if (State != UtpState.Error) SendState(now);
    }

    /// <summary>
    /// Packetization-layer path MTU discovery (RFC 8899) between Peerway peers: while there is data to send, an ST_STATE
    /// padded to the size a data packet of the probed payload could reach (SACK included) goes out; the peer's answer
    /// raises the payload of every later packet, silence for <see cref="ProbeTimeoutMicros"/> lowers the ceiling
    /// (binary search). With the socket's DF bit set (IP_PMTUDISC_PROBE) the path, not fragmentation, decides.
    /// </summary>
    private void MaybeProbe(long now)
    {
        if (_largeAgreed == 0 || _padProbeSize != 0 || State != UtpState.Connected || !_confirmed || _closeRequested) return;
        if (_mtuCeiling - _mtuFloor <= ProbeGranularity || (_sendBuffer.Count == 0 && _bytesInFlight == 0)) return;
        var size = (_mtuFloor + _mtuCeiling + 1) / 2;
        var ipOverhead = Remote.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? 48 : 28;
        if (_mtuCeiling == _largeAgreed)
        {
            size = _mtuCeiling;
        }
        else
        {
            foreach (var mtu in MtuPlateaus)
            {
                var plateau = mtu - ipOverhead - UtpHeader.Length - 2 - MaxSackSend;
                if (plateau > _mtuFloor && plateau <= _mtuCeiling)
                {
                    size = plateau;
                    break;
                }
            }
        }

        _padProbeSize = size;
        _padProbeDeadline = now + ProbeTimeoutMicros();
        _windowSent = ReceiveWindow;
        var header = new UtpHeader(UtpPacketType.State, 0, SendId, unchecked((uint)now), _replyMicro, (uint)_windowSent, _seqNr, _ackNr);
        var n = UtpPacket.Encode(_scratch, header, [], UtpPeerwayOption.Probe, (ushort)size, []);
        var total = UtpHeader.Length + 2 + MaxSackSend + size;
        _scratch.AsSpan(n, total - n).Clear();
        _send(_scratch.AsSpan(0, total), Remote);
        _sent++;
        _lastSend = now;
    }

    private long ProbeTimeoutMicros() => Math.Max(MinProbeTimeoutMicros, 2000L * (_rtt.Mean + (4L * _rtt.Deviation)));

    /// <summary>A probe is answered at once; an answer raises the floor (and, arriving after its timer, the ceiling
    /// again: it was late, not lost).</summary>
    private void OnProbeOption(in UtpPacket packet, long now)
    {
        var size = packet.OptionValue;
        if (packet.Option == UtpPeerwayOption.Probe)
        {
            Send(UtpPacketType.State, _seqNr, [], now, UtpPeerwayOption.ProbeAck, size);
        }
        else if (packet.Option == UtpPeerwayOption.ProbeAck && size > _mtuFloor && size <= _largeAgreed)
        {
            _mtuFloor = size;
            _ledbat.Packet = size;
            if (_mtuCeiling < size) _mtuCeiling = _largeAgreed;
            if (size == _padProbeSize) _padProbeSize = 0;
        }
    }

    private void SendHeaderOnly(UtpPacketType type, ushort seq, long now)
    {
        var header = new UtpHeader(type, 0, SendId, unchecked((uint)now), _replyMicro, 0, seq, _ackNr);
        header.Write(_scratch);
        _send(_scratch.AsSpan(0, UtpHeader.Length), Remote);
    }

    private void Send(UtpPacketType type, ushort seq, ReadOnlySpan<byte> payload, long now,
        UtpPeerwayOption option = UtpPeerwayOption.None, ushort optionValue = 0)
    {
        Span<byte> sack = stackalloc byte[MaxSackSend];
        var sackLength = BuildSack(sack);
        if (type == UtpPacketType.Syn && _largeOffer > 0)
        {
            option = UtpPeerwayOption.LargePackets; // every SYN (resends too) offers large packets
            optionValue = (ushort)_largeOffer;
        }

        _windowSent = ReceiveWindow;
        var header = new UtpHeader(type, 0, type == UtpPacketType.Syn ? RecvId : SendId, unchecked((uint)now), _replyMicro, (uint)_windowSent, seq,
            _ackNr);
        var n = UtpPacket.Encode(_scratch, header, sack[..sackLength], option, optionValue, payload);
        _ackPending = false; // every packet carries ack_nr (and the SACK)
        if (type == UtpPacketType.State) _counters.AcksSent++;
        _send(_scratch.AsSpan(0, n), Remote);
        _sent++;
        _lastSend = now;
    }

    /// <summary>BEP 29: bit i of the bitmask is packet ack_nr + 2 + i; the length is a multiple of 4.</summary>
    private int BuildSack(Span<byte> sack)
    {
        if (_reorder.Count == 0) return 0;
        sack.Clear();
        var last = -1;
        foreach (var seq in _reorder.Keys)
        {
            var bit = (ushort)(seq - _ackNr - 2);
            if (bit >= sack.Length * 8) continue;
            sack[bit >> 3] |= (byte)(1 << (bit & 7));
            last = Math.Max(last, bit);
        }

        return last < 0 ? 0 : ((last >> 5) + 1) * 4;
    }
}
