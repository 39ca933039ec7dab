namespace Peerway.WebRtc.Sctp;

/// <summary>Outgoing data: fragmentation, congestion control, SACK processing, retransmission, abandonment (RFC 3758).</summary>
internal sealed partial class SctpAssociation
{
    /// <summary>Bytes of a DATA chunk header plus the packet header: the payload room is Mtu minus this.</summary>
    private const int DataOverhead = SctpPacket.HeaderSize + SctpChunk.HeaderSize + DataChunk.DataHeaderSize;

    private readonly List<OutChunk> _outbound = []; // every chunk not yet cumulatively acknowledged, in TSN order
    private readonly List<SctpChunk> _control = [];
    private readonly Dictionary<ushort, ushort> _nextSsn = [];
    private readonly Dictionary<ushort, long> _buffered = [];
    private uint _nextTsn;

    // Every chunk of _outbound at or after this index has never been sent (chunks go out in TSN order; an abandoned
    // unsent one is passed over), so the loops over what is in flight stop here instead of walking the whole queue.
    private int _unsentFrom;
    private uint _highestSent;
    private long _fastRetransmits;
    private long _timeouts;
    private long _retransmittedChunks;
    private uint _cumulativeAckPoint;
    private uint _advancedPeerAckPoint;
    private bool _ackPointSet;
    private long _cwnd;
    private long _ssthresh;
    private long _partialBytesAcked;
    private bool _fastRecovery;
    private uint _fastRecoveryExit;
    private TimeSpan _rto;
    private TimeSpan? _srtt;
    private TimeSpan _rttvar;
    private DateTimeOffset? _t3Due;
    private bool _forwardTsnNeeded;

    private sealed class OutMessage(ushort stream, long size, int? maxRetransmits, DateTimeOffset? expires)
    {
        public ushort Stream { get; } = stream;

        public long Size { get; } = size;

        public int? MaxRetransmits { get; } = maxRetransmits;

        public DateTimeOffset? Expires { get; } = expires;

        public int ChunksLeft { get; set; }

        public bool Abandoned { get; set; }
    }

    private sealed class OutChunk(DataChunk data, OutMessage message)
    {
        public DataChunk Data { get; } = data;

        public OutMessage Message { get; } = message;

        public uint Tsn => Data.Tsn;

        public int Size => Data.Payload.Length;

        public int Transmissions { get; set; }

        public DateTimeOffset SentAt { get; set; }

        public bool Acked { get; set; }

        public bool Retransmit { get; set; }

        public int MissReports { get; set; }

        public bool FastRetransmitted { get; set; }

        /// <summary>Counted in the flight size: sent, neither acknowledged, abandoned nor waiting for retransmission.</summary>
        public bool InFlight => Transmissions > 0 && !Acked && !Retransmit && !Message.Abandoned;
    }

    private static bool Before(uint a, uint b) => (int)(a - b) < 0;

    private static bool AtOrBefore(uint a, uint b) => (int)(a - b) <= 0;

    private long FlightSize()
    {
        long n = 0;
        for (var i = 0; i < _unsentFrom; i++)
        {
            var c = _outbound[i];
            if (c.InFlight) n += c.Size;
        }

        return n;
    }

    /// <summary>Diagnostics: the smoothed round-trip time (RFC 9260 §6.3.1 SRTT), null before the first sample.</summary>
    internal TimeSpan? SmoothedRtt
    {
        get
        {
            lock (_gate) return _srtt;
        }
    }

    /// <summary>Diagnostics: fast retransmit events, T3 timeouts, chunks sent again.</summary>
    internal (long FastRetransmits, long Timeouts, long RetransmittedChunks) Retransmissions
    {
        get
        {
            lock (_gate) return (_fastRetransmits, _timeouts, _retransmittedChunks);
        }
    }

    /// <summary>Bytes of <paramref name="stream"/>'s messages neither acknowledged nor abandoned yet.</summary>
    public long BufferedAmount(ushort stream)
    {
        lock (_gate) return _buffered.GetValueOrDefault(stream);
    }

    /// <summary>
    /// Queues one message on <paramref name="stream"/> (RFC 9260 §6.9: fragmented to the path MTU). Partial
    /// reliability (RFC 3758 §3.5): <paramref name="maxRetransmits"/> or <paramref name="lifetime"/> bound its
    /// retransmissions. Returns false when the association is not up or the message is larger than allowed.
    /// A control message (<paramref name="applicationData"/> false: DCEP's OPEN and ACK) is not counted in
    /// <see cref="BufferedAmount"/>, which counts what the application queued (W3C WebRTC, <c>bufferedAmount</c>).
    /// </summary>
    public bool Send(ushort stream, uint ppid, ReadOnlyMemory<byte> data, bool unordered, int? maxRetransmits = null, TimeSpan? lifetime = null, bool applicationData = true)
    {
        if (data.Length == 0 || data.Length > _options.MaxMessageSize) return false;
        lock (_gate)
        {
            if (_state != SctpState.Established) return false;
            var now = _time.GetUtcNow();
            var message = new OutMessage(stream, applicationData ? data.Length : 0, _peerForwardTsn ? maxRetransmits : null, _peerForwardTsn && lifetime is { } l ? now + l : null);
            ushort ssn = 0;
            if (!unordered)
            {
                ssn = _nextSsn.GetValueOrDefault(stream);
                _nextSsn[stream] = (ushort)(ssn + 1);
            }

            // The message is copied once: the caller may reuse its buffer as soon as this returns.
            ReadOnlyMemory<byte> owned = data.ToArray();
            var room = _options.Mtu - DataOverhead;
            for (var offset = 0; offset < owned.Length; offset += room)
            {
                var n = Math.Min(room, owned.Length - offset);
                var chunk = new DataChunk(_nextTsn++, stream, ssn, ppid, unordered, offset == 0, offset + n == owned.Length, owned.Slice(offset, n));
                _outbound.Add(new OutChunk(chunk, message));
                message.ChunksLeft++;
            }

            if (applicationData) _buffered[stream] = _buffered.GetValueOrDefault(stream) + data.Length;
            Flush();
        }

        Raise();
        return true;
    }

    /// <summary>Sends what is due: control chunks, a SACK, FORWARD-TSN, retransmissions, then new data within cwnd and rwnd.</summary>
    private void Flush()
    {
        if (_closedForGood || _state == SctpState.Closed) return;
        var now = _time.GetUtcNow();
        var mtu = _options.Mtu;
        var packet = new List<SctpChunk>();
        var size = SctpPacket.HeaderSize;

        void Add(SctpChunk c)
        {
            if (size + c.PaddedLength > mtu && packet.Count > 0)
            {
                _output(Packet(_peerTag, [.. packet]));
                packet.Clear();
                size = SctpPacket.HeaderSize;
            }

            packet.Add(c);
            size += c.PaddedLength;
        }

        foreach (var c in _control) Add(c);
        _control.Clear();
        if (IsUp && _sackNow)
        {
            Add(BuildSack());
            _sackNow = false;
            _sackDue = null;
            _packetsSinceSack = 0;
        }

        if (IsUp && _forwardTsnNeeded)
        {
            Add(BuildForwardTsn());
            _forwardTsnNeeded = false;
        }

        if (IsUp)
        {
            // RFC 9260 §7.2.4 / §6.3.3: chunks marked for retransmission go first; after a timeout only one packet's
            // worth goes out (cwnd is one MTU), after fast retransmit one packet regardless of cwnd.
            var flight = FlightSize();
            var sentAny = false;
            for (var i = 0; i < _unsentFrom; i++)
            {
                var c = _outbound[i];
                if (!c.Retransmit || c.Acked || c.Message.Abandoned) continue;
                if (AbandonIfDue(c, now)) continue;
                if (flight >= _cwnd && !c.FastRetransmitted) break;
                c.Retransmit = false;
                c.Transmissions++;
                c.SentAt = now;
                flight += c.Size;
                _retransmittedChunks++;
                Add(c.Data);
                sentAny = true;
            }

            // RFC 9260 §6.1 A/B: new data only while the flight is below cwnd and the peer's window has room (one
            // chunk may probe a zero window when nothing is in flight).
            for (; _unsentFrom < _outbound.Count; _unsentFrom++)
            {
                var c = _outbound[_unsentFrom];
                if (c.Transmissions > 0 || c.Message.Abandoned) continue;
                if (c.Message.Expires is { } e && now >= e)
                {
                    Abandon(c.Message);
                    continue;
                }

                if (flight >= _cwnd) break;
                if (flight + c.Size > _peerRwnd && flight > 0) break;
                c.Transmissions = 1;
                c.SentAt = now;
                _highestSent = c.Tsn;
                flight += c.Size;
                _peerRwnd = _peerRwnd > (uint)c.Size ? _peerRwnd - (uint)c.Size : 0;
                Add(c.Data);
                sentAny = true;
            }

            if ((sentAny || Before(_cumulativeAckPoint, _advancedPeerAckPoint)) && _t3Due is null) _t3Due = now + _rto;
            if (_forwardTsnNeeded)
            {
                Add(BuildForwardTsn());
                _forwardTsnNeeded = false;
            }
        }

        if (packet.Count > 0) _output(Packet(_peerTag, [.. packet]));
        MaybeSendShutdown();
        if (_state == SctpState.ShutdownReceived) MaybeSendShutdownAck();
        Arm();
    }

    /// <summary>RFC 3758 §3.5 A1/A2: a chunk past its lifetime or its retransmission budget is abandoned with its message.</summary>
    private bool AbandonIfDue(OutChunk c, DateTimeOffset now)
    {
        var m = c.Message;
        if ((m.MaxRetransmits is { } max && c.Transmissions > max) || (m.Expires is { } e && now >= e))
        {
            Abandon(m);
            return true;
        }

        return false;
    }

    private void Abandon(OutMessage m)
    {
        if (m.Abandoned) return;
        m.Abandoned = true;
        Release(m.Stream, m.Size);
        AdvancePeerAckPoint();
    }

    private void Release(ushort stream, long bytes)
    {
        if (bytes == 0) return; // a control message: never counted
        var left = _buffered.GetValueOrDefault(stream) - bytes;
        if (left <= 0) _buffered.Remove(stream);
        else _buffered[stream] = left;
        _events.Add(() => _handler.OnBufferedAmountLow(stream));
    }

    /// <summary>RFC 3758 §3.5 C: move the advanced peer ack point over abandoned chunks; a FORWARD-TSN tells the peer.</summary>
    private void AdvancePeerAckPoint()
    {
        if (!_ackPointSet) return;
        var moved = false;
        foreach (var c in _outbound)
        {
            if (AtOrBefore(c.Tsn, _advancedPeerAckPoint)) continue;
            if (c.Tsn != _advancedPeerAckPoint + 1 || !c.Message.Abandoned) break;
            _advancedPeerAckPoint = c.Tsn;
            moved = true;
        }

        if (moved) _forwardTsnNeeded = true;
    }

    private ForwardTsnChunk BuildForwardTsn()
    {
        // RFC 3758 §3.2: per ordered stream, the largest SSN skipped.
        var streams = new Dictionary<ushort, ushort>();
        foreach (var c in _outbound)
        {
            if (!AtOrBefore(c.Tsn, _advancedPeerAckPoint)) break;
            if (!c.Data.Unordered && c.Message.Abandoned) streams[c.Data.StreamId] = c.Data.Ssn;
        }

        return new ForwardTsnChunk(_advancedPeerAckPoint, [.. streams.Select(kv => (kv.Key, kv.Value))]);
    }

    private void HandleSack(SackChunk sack)
    {
        var now = _time.GetUtcNow();
        if (!_ackPointSet) return;

        // RFC 9260 §6.2.1 D i: a SACK older than the cumulative ack point is stale.
        if (Before(sack.CumulativeTsn, _cumulativeAckPoint)) return;
        if (!Before(sack.CumulativeTsn, _nextTsn)) return; // acknowledges what we never sent
        var flightBefore = FlightSize();
        long bytesAcked = 0;
        TimeSpan? rtt = null;
        var cumAdvanced = Before(_cumulativeAckPoint, sack.CumulativeTsn);

        // Cumulatively acknowledged chunks leave the queue.
        var removed = 0;
        while (removed < _outbound.Count && AtOrBefore(_outbound[removed].Tsn, sack.CumulativeTsn))
        {
            var c = _outbound[removed++];
            if (!c.Acked && !c.Message.Abandoned)
            {
                bytesAcked += c.Size;

                // RFC 9260 §6.3.1 C5 (Karn): only chunks sent once give an RTT sample.
                if (c.Transmissions == 1 && !c.Retransmit) rtt = now - c.SentAt;
            }

            if (--c.Message.ChunksLeft == 0 && !c.Message.Abandoned) Release(c.Message.Stream, c.Message.Size);
        }

        _outbound.RemoveRange(0, removed);
        _unsentFrom = Math.Max(0, _unsentFrom - removed);
        _cumulativeAckPoint = sack.CumulativeTsn;
        if (Before(_advancedPeerAckPoint, _cumulativeAckPoint)) _advancedPeerAckPoint = _cumulativeAckPoint;

        // Gap ack blocks (RFC 9260 §3.3.4): offsets from the cumulative TSN.
        uint highestNewlyAcked = sack.CumulativeTsn;
        var gapIndex = 0;
        for (var i = 0; i < _unsentFrom; i++)
        {
            var c = _outbound[i];
            var offset = c.Tsn - sack.CumulativeTsn;
            var inGap = false;
            while (gapIndex < sack.Gaps.Count && sack.Gaps[gapIndex].End < offset) gapIndex++;
            if (gapIndex < sack.Gaps.Count && offset >= sack.Gaps[gapIndex].Start && offset <= sack.Gaps[gapIndex].End) inGap = true;
            if (inGap && !c.Acked)
            {
                c.Acked = true;
                c.Retransmit = false;
                if (!c.Message.Abandoned) bytesAcked += c.Size;
                if (c.Transmissions == 1) rtt ??= now - c.SentAt;
                highestNewlyAcked = c.Tsn;
            }
            else if (inGap)
            {
                highestNewlyAcked = c.Tsn;
            }
            else if (c.Acked)
            {
                // RFC 9260 §6.2.1 D iv: the peer reneged; the chunk is outstanding again.
                c.Acked = false;
            }
        }

        if (rtt is { } sample) UpdateRto(sample);

        // RFC 9260 §7.2.4 (HTNA): a chunk below the highest newly acked TSN that is still missing gets a miss report;
        // in fast recovery, once the cumulative TSN advanced, every chunk reported missing does (up to the last gap
        // block's end). Three reports trigger fast retransmit (once per chunk), entering fast recovery if not in it.
        var fastRetransmit = false;
        if (sack.Gaps.Count > 0)
        {
            var reportUpTo = _fastRecovery && cumAdvanced ? sack.CumulativeTsn + sack.Gaps[^1].End : highestNewlyAcked;
            for (var i = 0; i < _unsentFrom; i++)
            {
                var c = _outbound[i];
                if (!Before(c.Tsn, reportUpTo)) break;
                if (c.Acked || c.Message.Abandoned || c.Transmissions == 0 || c.FastRetransmitted) continue;
                if (++c.MissReports >= 3)
                {
                    c.MissReports = 0;
                    c.Retransmit = true;
                    c.FastRetransmitted = true;
                    fastRetransmit = true;
                }
            }
        }

        if (fastRetransmit) _fastRetransmits++;
        if (fastRetransmit && !_fastRecovery)
        {
            // RFC 9260 §7.2.4 / §7.2.3: halve once per recovery; it ends when the highest TSN outstanding at its start
            // (sent, not merely queued: TSNs are assigned when a message is queued) is acknowledged.
            _ssthresh = Math.Max(_cwnd / 2, 4L * _options.Mtu);
            _cwnd = _ssthresh;
            _partialBytesAcked = 0;
            _fastRecovery = true;
            _fastRecoveryExit = _highestSent;
        }

        if (_fastRecovery && AtOrBefore(_fastRecoveryExit, sack.CumulativeTsn)) _fastRecovery = false;

        // RFC 9260 §7.2.1 / §7.2.2: slow start and congestion avoidance grow cwnd only when the cumulative TSN
        // advanced and the window was in use, and not during fast recovery.
        if (cumAdvanced && !_fastRecovery && bytesAcked > 0 && flightBefore >= _cwnd - _options.Mtu)
        {
            if (_cwnd <= _ssthresh)
            {
                _cwnd += Math.Min(bytesAcked, _options.Mtu);
            }
            else
            {
                _partialBytesAcked += bytesAcked;
                if (_partialBytesAcked >= _cwnd)
                {
                    _partialBytesAcked -= _cwnd;
                    _cwnd += _options.Mtu;
                }
            }
        }

        // RFC 9260 §6.2.1 D iii: the peer's window less what is still in flight.
        var flight = FlightSize();
        _peerRwnd = sack.ARwnd > flight ? (uint)(sack.ARwnd - flight) : 0;
        // RFC 9260 §6.1 A: while the peer keeps answering with a closed window (its application does not read), the
        // probes it refuses are not errors: the receiver may keep its window closed for an indefinite time.
        if (cumAdvanced || sack.ARwnd < _options.Mtu)
        {
            _errorCount = 0;
            _heartbeatsUnanswered = 0;
        }

        // RFC 9260 §6.3.2 R2/R3: stop T3 when nothing is outstanding, restart it when the cumulative TSN advanced.
        AdvancePeerAckPoint();

        // RFC 3758 §3.5 C2: while the peer lags behind the advanced ack point, FORWARD-TSN again.
        if (Before(_cumulativeAckPoint, _advancedPeerAckPoint)) _forwardTsnNeeded = true;
        if (!Outstanding() && !_forwardTsnNeeded) _t3Due = null;
        else if (cumAdvanced) _t3Due = now + _rto;
        _heartbeatDue = now + _options.HeartbeatInterval;
    }

    private bool Outstanding()
    {
        for (var i = 0; i < _unsentFrom; i++)
        {
            var c = _outbound[i];
            if (c.Transmissions > 0 && !c.Acked && !c.Message.Abandoned) return true;
        }

        return false;
    }

    private void UpdateRto(TimeSpan r)
    {
        // RFC 9260 §6.3.1 C2/C3: RTTVAR and SRTT with α = 1/8, β = 1/4; RTO = SRTT + 4·RTTVAR, clamped.
        if (_srtt is not { } srtt)
        {
            _srtt = r;
            _rttvar = r / 2;
        }
        else
        {
            _rttvar = (_rttvar * 3 / 4) + ((srtt - r).Duration() / 4);
            _srtt = (srtt * 7 / 8) + (r / 8);
        }

        var rto = _srtt.Value + 4 * _rttvar;
        _rto = rto < _options.MinRto ? _options.MinRto : rto > _options.MaxRto ? _options.MaxRto : rto;
    }

    private void OnRetransmissionTimeout(DateTimeOffset now)
    {
        // RFC 9260 §6.3.3: E1 ssthresh = max(cwnd/2, 4·MTU), cwnd = 1 MTU; E2 back off the RTO; E3 retransmit.
        _t3Due = null;
        _timeouts++;
        if (++_errorCount > _options.MaxRetransmits)
        {
            Close("peer stopped acknowledging data", sendAbort: true);
            return;
        }

        _ssthresh = Math.Max(_cwnd / 2, 4L * _options.Mtu);
        _cwnd = _options.Mtu;
        _partialBytesAcked = 0;
        _fastRecovery = false;
        _rto = _rto * 2 > _options.MaxRto ? _options.MaxRto : _rto * 2;
        for (var i = 0; i < _unsentFrom; i++)
        {
            var c = _outbound[i];
            if (c.Transmissions == 0 || c.Acked || c.Message.Abandoned) continue;
            c.Retransmit = true;
            c.FastRetransmitted = false;
            AbandonIfDue(c, now);
        }

        if (Before(_cumulativeAckPoint, _advancedPeerAckPoint)) _forwardTsnNeeded = true;
        _t3Due = now + _rto;
    }
}
