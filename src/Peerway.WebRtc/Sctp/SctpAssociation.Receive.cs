namespace Peerway.WebRtc.Sctp;

/// <summary>Incoming data: TSN tracking, SACK generation, reassembly, ordered delivery, FORWARD-TSN (RFC 3758 §3.6).</summary>
internal sealed partial class SctpAssociation
{
    /// <summary>Bound on how far ahead of the cumulative TSN a DATA chunk may be (gap offsets are 16-bit).</summary>
    private const uint MaxTsnAhead = 16384;

    /// <summary>Bound on gap blocks and duplicates reported in one SACK (it must fit one packet).</summary>
    private const int MaxSackEntries = 64;

    private readonly HashSet<uint> _receivedAbove = []; // TSNs received beyond the cumulative TSN
    private readonly Dictionary<uint, DataChunk> _fragments = []; // chunks of messages not yet complete
    private readonly Dictionary<ushort, InStream> _inStreams = [];
    private readonly List<uint> _duplicates = [];
    private uint _cumulativeIn;
    private uint _highestIn; // the highest TSN in _receivedAbove while it is not empty
    private long _bufferedIn;
    private long _heldByApp; // charged for delivered messages the application has not read yet (see Consumed)
    private uint _advertisedRwnd;
    private long _chunksIn;
    private long _duplicatesIn;
    private long _refusedIn;
    private long _sacksOut;
    private long _windowUpdates;

    /// <summary>Diagnostics: DATA chunks received, duplicates, chunks refused (no room), SACKs sent, of them window updates.</summary>
    internal (long Chunks, long Duplicates, long Refused, long Sacks, long WindowUpdates) ReceiveStats
    {
        get
        {
            lock (_gate) return (_chunksIn, _duplicatesIn, _refusedIn, _sacksOut, _windowUpdates);
        }
    }
    private bool _sackNow;
    private DateTimeOffset? _sackDue;
    private int _packetsSinceSack;

    private sealed class InStream
    {
        public ushort NextSsn { get; set; }

        public SortedDictionary<ushort, (uint Ppid, byte[] Data)> Pending { get; } = [];
    }

    /// <summary>What a message held by the application costs in the receive window: its bytes plus bookkeeping, so
    /// that a flood of tiny messages is bounded too.</summary>
    internal const int HeldMessageOverhead = 64;

    /// <summary>Bytes held for reassembly and in-order delivery plus those delivered and not yet read.</summary>
    private long InUse => _bufferedIn + _heldByApp;

    private uint ReceiveWindowLeft => InUse >= _options.ReceiveWindow ? 0 : (uint)(_options.ReceiveWindow - InUse);

    /// <summary>Diagnostics: bytes the receive window holds (reassembly, reordering, and messages not yet read).</summary>
    internal long ReceiveBuffered
    {
        get
        {
            lock (_gate) return InUse;
        }
    }

    /// <summary>
    /// The application read a message of <paramref name="length"/> bytes that its handler kept: the receive window
    /// opens again. RFC 9260 §6.2: once it opened noticeably since the a_rwnd last advertised was small, a SACK tells
    /// the sender at once (a window update) instead of leaving it to its retransmission timer.
    /// </summary>
    public void Consumed(int length)
    {
        lock (_gate)
        {
            _heldByApp = Math.Max(0, _heldByApp - (length + HeldMessageOverhead));
            if (!IsUp || _closedForGood) return;
            var window = _options.ReceiveWindow;
            if (_advertisedRwnd >= window / 2 || ReceiveWindowLeft < _advertisedRwnd + Math.Min(window / 4, 8 * _options.Mtu)) return;
            _sackNow = true;
            _windowUpdates++;
            Flush();
        }

        Raise();
    }

    private void HandleData(DataChunk d)
    {
        var tsn = d.Tsn;
        _chunksIn++;

        // RFC 9260 §6.2: a duplicate is reported and the SACK goes at once.
        if (AtOrBefore(tsn, _cumulativeIn) || _receivedAbove.Contains(tsn))
        {
            if (_duplicates.Count < MaxSackEntries) _duplicates.Add(tsn);
            _duplicatesIn++;
            _sackNow = true;
            return;
        }

        // RFC 9260 §6.2: with no room the chunk is dropped (the peer retransmits). The next in sequence is still taken
        // within one packet beyond the window: with the window full of chunks held behind a hole, refusing the chunk
        // that fills it would stall the association for good (§6.2 lets the receiver make room for a TSN below the
        // highest it holds); the slack bounds memory when the window is smaller than a chunk or a peer never stops.
        // A chunk that fills any gap below the highest TSN held is taken too, up to a second window: a sender may
        // overshoot a_rwnd by a packet, and with several holes the first to be retransmitted need not be the next one.
        // Messages delivered and not yet read count too (InUse): a slow reader closes the window.
        var nextInSequence = tsn == _cumulativeIn + 1;
        var limit = _options.ReceiveWindow + (nextInSequence ? _options.Mtu : 0);
        var fillsGap = _receivedAbove.Count > 0 && Before(tsn, _highestIn) && InUse + d.Payload.Length <= 2L * _options.ReceiveWindow;
        if (tsn - _cumulativeIn > MaxTsnAhead || (InUse + d.Payload.Length > limit && !fillsGap && !(nextInSequence && InUse == 0)))
        {
            _refusedIn++;
            _sackNow = true;
            return;
        }

        if (tsn == _cumulativeIn + 1)
        {
            _cumulativeIn = tsn;
            while (_receivedAbove.Remove(_cumulativeIn + 1)) _cumulativeIn++;
        }
        else
        {
            if (_receivedAbove.Count == 0 || Before(_highestIn, tsn)) _highestIn = tsn;
            _receivedAbove.Add(tsn);
            _sackNow = true; // RFC 9260 §6.7: a gap is reported immediately
        }

        if (d.ImmediateSack) _sackNow = true;
        if (d.Beginning && d.Ending)
        {
            // A message in one chunk (most small messages): straight to delivery, no reassembly bookkeeping.
            Complete(d, d.Payload.Length <= _options.MaxMessageSize ? d.Payload.ToArray() : null);
            return;
        }

        var copy = d with { Payload = d.Payload.ToArray() };
        _fragments[tsn] = copy;
        _bufferedIn += d.Payload.Length;
        TryComplete(copy);
    }

    /// <summary>RFC 9260 §6.9: the fragments of a message have consecutive TSNs from the B chunk to the E chunk.</summary>
    private void TryComplete(DataChunk d)
    {
        var first = d.Tsn;
        var firstChunk = d;
        while (!firstChunk.Beginning)
        {
            if (!_fragments.TryGetValue(first - 1, out var prev) || !SameMessage(prev, d)) return;
            first--;
            firstChunk = prev;
        }

        var last = d.Tsn;
        var lastChunk = d;
        while (!lastChunk.Ending)
        {
            if (!_fragments.TryGetValue(last + 1, out var next) || !SameMessage(next, d) || next.Beginning) return;
            last++;
            lastChunk = next;
        }

        long size = 0;
        for (var t = first; ; t++)
        {
            size += _fragments[t].Payload.Length;
            if (t == last) break;
        }

        byte[]? message = size <= _options.MaxMessageSize ? new byte[size] : null;
        var at = 0;
        for (var t = first; ; t++)
        {
            _fragments.Remove(t, out var f);
            if (message is not null) f!.Payload.Span.CopyTo(message.AsSpan(at));
            at += f!.Payload.Length;
            if (t == last) break;
        }

        _bufferedIn -= size;
        Complete(d, message);
    }

    /// <summary>A whole message (null: over max-message-size): delivered, or held for in-order delivery.</summary>
    private void Complete(DataChunk d, byte[]? message)
    {
        if (message is null)
        {
            // A message over max-message-size is dropped alone (RFC 8831 §6.6 lets the receiver refuse it).
            LogDropped("message over max-message-size");
            if (!d.Unordered) SkipOrdered(d.StreamId, d.Ssn);
            return;
        }

        if (d.Unordered)
        {
            Deliver(d.StreamId, d.Ppid, message);
            return;
        }

        var stream = InStreamOf(d.StreamId);
        if (d.Ssn == stream.NextSsn && stream.Pending.Count == 0)
        {
            // The next in order with nothing waiting behind a gap: delivered at once.
            stream.NextSsn++;
            Deliver(d.StreamId, d.Ppid, message);
            return;
        }

        if (stream.Pending.Count >= MaxTsnAhead) return;
        stream.Pending[d.Ssn] = (d.Ppid, message);
        _bufferedIn += message.Length;
        DeliverOrdered(d.StreamId, stream);
    }

    private static bool SameMessage(DataChunk a, DataChunk b) => a.StreamId == b.StreamId && a.Unordered == b.Unordered && (a.Unordered || a.Ssn == b.Ssn);

    private InStream InStreamOf(ushort id)
    {
        if (!_inStreams.TryGetValue(id, out var s)) _inStreams[id] = s = new InStream();
        return s;
    }

    private void DeliverOrdered(ushort id, InStream stream)
    {
        while (stream.Pending.Remove(stream.NextSsn, out var m))
        {
            _bufferedIn -= m.Data.Length;
            stream.NextSsn++;
            Deliver(id, m.Ppid, m.Data);
        }
    }

    private void SkipOrdered(ushort id, ushort ssn)
    {
        var stream = InStreamOf(id);
        if ((short)(ushort)(ssn - stream.NextSsn) < 0) return;
        foreach (var key in stream.Pending.Keys.Where(k => (short)(ushort)(k - ssn) <= 0 && (short)(ushort)(k - stream.NextSsn) >= 0).ToList())
        {
            _bufferedIn -= stream.Pending[key].Data.Length;
            stream.Pending.Remove(key);
        }

        stream.NextSsn = (ushort)(ssn + 1);
        DeliverOrdered(id, stream);
    }

    private void Deliver(ushort stream, uint ppid, byte[] data)
    {
        // Charged until the application reads it (or at once, when the handler does not keep it).
        _heldByApp += data.Length + HeldMessageOverhead;
        _events.Add(() =>
        {
            if (!_handler.OnMessage(stream, ppid, data)) Consumed(data.Length);
        });
    }

    private void HandleForwardTsn(ForwardTsnChunk f)
    {
        // RFC 3758 §3.6: move the cumulative TSN to the new one, drop fragments up to it, and for each ordered stream
        // skip the listed SSN and deliver what waited behind it.
        _sackNow = true;
        if (!Before(_cumulativeIn, f.NewCumulativeTsn) || f.NewCumulativeTsn - _cumulativeIn > MaxTsnAhead) return;
        for (var t = _cumulativeIn + 1; ; t++)
        {
            _receivedAbove.Remove(t);
            if (_fragments.Remove(t, out var frag)) _bufferedIn -= frag.Payload.Length;
            if (t == f.NewCumulativeTsn) break;
        }

        _cumulativeIn = f.NewCumulativeTsn;
        while (_receivedAbove.Remove(_cumulativeIn + 1)) _cumulativeIn++;
        foreach (var (stream, ssn) in f.Streams) SkipOrdered(stream, ssn);
    }

    private void ScheduleSack()
    {
        // RFC 9260 §6.2: a SACK for at least every second packet with DATA, else within the delayed-ack time.
        if (++_packetsSinceSack >= 2) _sackNow = true;
        if (!_sackNow) _sackDue ??= _time.GetUtcNow() + _options.DelayedAck;
    }

    private SackChunk BuildSack()
    {
        var gaps = new List<(ushort, ushort)>();
        if (_receivedAbove.Count > 0)
        {
            var offsets = _receivedAbove.Select(t => t - _cumulativeIn).Order().ToList();
            var start = offsets[0];
            var end = start;
            foreach (var o in offsets.Skip(1))
            {
                if (o == end + 1)
                {
                    end = o;
                    continue;
                }

                gaps.Add(((ushort)start, (ushort)end));
                start = end = o;
                if (gaps.Count >= MaxSackEntries) break;
            }

            if (gaps.Count < MaxSackEntries) gaps.Add(((ushort)start, (ushort)end));
        }

        _advertisedRwnd = ReceiveWindowLeft;
        _sacksOut++;
        var sack = new SackChunk(_cumulativeIn, _advertisedRwnd, gaps, [.. _duplicates]);
        _duplicates.Clear();
        return sack;
    }
}
