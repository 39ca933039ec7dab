namespace Peerway.WebRtc.Sctp;

/// <summary>Stream reset (RFC 6525): outgoing SSN reset requests both ways, one request in flight at a time.</summary>
internal sealed partial class SctpAssociation
{
    private readonly SortedSet<ushort> _resetQueue = [];
    private OutgoingResetRequest? _resetInFlight;
    private DateTimeOffset? _reconfigDue;
    private uint _myReconfigSeq;
    private uint _peerReconfigSeq;
    private uint _lastPeerResult;

    /// <summary>RFC 6525 §5.1.2: asks the peer to reset our outgoing <paramref name="streams"/> (a data channel's close).</summary>
    public void ResetStreams(IEnumerable<ushort> streams)
    {
        lock (_gate)
        {
            if (!IsUp) return;
            foreach (var s in streams)
            {
                if (!_peerReconfig)
                {
                    _events.Add(() => _handler.OnOutgoingStreamReset(s));
                    continue;
                }

                _resetQueue.Add(s);
            }

            SendNextReset();
            Flush();
        }

        Raise();
    }

    private void SendNextReset()
    {
        if (_resetInFlight is not null || _resetQueue.Count == 0) return;

        // RFC 6525 §4.1: the last TSN we assigned, so the peer resets after everything before it arrived.
        _resetInFlight = new OutgoingResetRequest(_myReconfigSeq, _peerReconfigSeq - 1, _nextTsn - 1, [.. _resetQueue.Take(256)]);
        foreach (var s in _resetInFlight.Streams) _resetQueue.Remove(s);
        _control.Add(new ReconfigChunk([_resetInFlight]));
        _reconfigDue = _time.GetUtcNow() + _rto;
    }

    private void ResendReconfig(DateTimeOffset now)
    {
        _reconfigDue = null;
        if (_resetInFlight is null) return;
        _control.Add(new ReconfigChunk([_resetInFlight]));
        _reconfigDue = now + _rto;
    }

    private void HandleReconfig(ReconfigChunk chunk)
    {
        foreach (var p in chunk.Parameters)
        {
            switch (p)
            {
                case OutgoingResetRequest request:
                    _control.Add(new ReconfigChunk([new ReconfigResponse(request.RequestSeq, AnswerReset(request))]));
                    break;
                case IncomingResetRequest incoming:
                    // RFC 6525 §5.2.3: we would reset our outgoing streams; browsers never ask, so decline.
                    _control.Add(new ReconfigChunk([new ReconfigResponse(incoming.RequestSeq, ReconfigResponse.Denied)]));
                    break;
                case ReconfigResponse response when _resetInFlight is { } sent && response.ResponseSeq == sent.RequestSeq:
                    if (response.Result == ReconfigResponse.InProgress)
                    {
                        _reconfigDue = _time.GetUtcNow() + _rto;
                        break;
                    }

                    // RFC 6525 §5.2.7: on success the stream's SSN starts again at 0; on a refusal the channel is
                    // closed all the same (nothing more will be sent on it).
                    foreach (var s in sent.Streams)
                    {
                        _nextSsn.Remove(s);
                        _events.Add(() => _handler.OnOutgoingStreamReset(s));
                    }

                    _myReconfigSeq++;
                    _resetInFlight = null;
                    _reconfigDue = null;
                    SendNextReset();
                    break;
            }
        }
    }

    private uint AnswerReset(OutgoingResetRequest request)
    {
        // RFC 6525 §5.2.2: the expected sequence number is processed; a repeat of the previous one gets the same answer.
        if (request.RequestSeq == _peerReconfigSeq - 1) return _lastPeerResult;
        if (request.RequestSeq != _peerReconfigSeq) return ReconfigResponse.ErrorBadSequence;

        // E2: not everything up to the sender's last TSN has arrived yet — "in progress", the sender asks again.
        if (Before(_cumulativeIn, request.LastTsn)) return ReconfigResponse.InProgress;
        foreach (var s in request.Streams)
        {
            _inStreams.Remove(s, out var stream);
            if (stream is not null) _bufferedIn -= stream.Pending.Sum(m => m.Value.Data.Length);
            _events.Add(() => _handler.OnIncomingStreamReset(s));
        }

        _peerReconfigSeq++;
        _lastPeerResult = ReconfigResponse.SuccessPerformed;
        return _lastPeerResult;
    }
}
