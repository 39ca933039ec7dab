using System.Net;
using System.Security.Cryptography;
using Peerway.Nat.Stun;

namespace Peerway.Nat.Ice;

/// <summary>IceAgent, the checklist: pacing by Ta, retransmissions, nomination, failure and consent (RFC 8445 §6, §8; RFC 7675).</summary>
public sealed partial class IceAgent
{
    private void OnTick()
    {
        var events = new List<Action>();
        var refreshTurn = false;
        List<IPAddress>? permits = null;
        lock (_gate)
        {
            if (_disposed) return;
            var now = _time.GetUtcNow();
            RetransmitDue(now, events);
            switch (_state)
            {
                case IceState.Checking:
                    RunChecklist(now, events);
                    break;
                case IceState.Connected or IceState.Disconnected:
                    RunConsent(now, events);
                    break;
            }

            if (_relay is not null && now >= _nextTurnRefresh && _state is not (IceState.Failed or IceState.Closed))
            {
                // RFC 8656 §7.3 / §9: refresh the allocation before it expires, permissions before 5 minutes.
                _nextTurnRefresh = now + TimeSpan.FromMinutes(4);
                refreshTurn = true;
                permits = [.. _permissions];
            }
        }

        Raise(events);
        if (refreshTurn)
        {
            _background.Track(RefreshTurnAsync());
            foreach (var ip in permits!) _background.Track(PermitAsync(ip));
        }
    }

    private void RetransmitDue(DateTimeOffset now, List<Action> events)
    {
        List<TxKey>? expired = null;
        foreach (var (key, check) in _checks)
        {
            if (now < check.Due) continue;
            if (check.Cancelled || check.Sent >= (check.Consent ? 1 : _options.MaxCheckAttempts))
            {
                (expired ??= []).Add(key);
                continue;
            }

            check.Sent++;
            check.Rto = check.Rto * 2 > _options.MaxCheckRto ? _options.MaxCheckRto : check.Rto * 2;
            check.Due = now + check.Rto;
            Transmit(check.Pair.Local, check.Request, check.Pair.Remote.Address);
        }

        if (expired is null) return;
        foreach (var key in expired)
        {
            _checks.Remove(key, out var check);
            if (check!.Consent || check.Cancelled) continue;
            check.Pair.State = PairState.Failed;
            if (check.Pair == _nominating) _nominating = null;
            LogPairFailed(check.Pair.Local.Address, check.Pair.Remote.Address);
        }

        CheckForFailure(now, events);
    }

    private void RunChecklist(DateTimeOffset now, List<Action> events)
    {
        if (now - _startedAt > _options.ConnectTimeout)
        {
            Fail("no candidate pair succeeded in time", events);
            return;
        }

        // RFC 8445 §2.5: a lite agent sends no checks; it waits for the full peer's.
        if (_remotePassword is null || _options.Lite) return;

        // A check sent between ticks (a triggered one that found the pace free, see SendTriggeredNow) takes this tick's
        // turn, so that no two checks go out closer than Ta / 2 (RFC 8445 §14.2: Ta is 50 ms here; 5 ms is its floor).
        if (_lastCheckAt is { } last && now - last < _options.Ta / 2) _idleTicks++;
        else
        {
            var next = NextCheck();
            if (next is not null && _selected is null) SendCheck(next, useCandidate: false, now);
            else _idleTicks++;
        }

        if (_role == IceRole.Controlling && _nominating is null && _selected is null)
        {
            // RFC 8445 §8.1.1: regular nomination — pick the best valid pair once better pairs are done (or after a delay).
            var best = _pairs.Where(p => p.State == PairState.Succeeded).MaxBy(p => p.Priority);
            if (best is not null)
            {
                _firstValidAt ??= now;
                var betterPending = _pairs.Any(p => p.Priority > best.Priority && p.State is PairState.Waiting or PairState.InProgress or PairState.Frozen);
                if (!betterPending || now - _firstValidAt >= NominationDelayFor(best))
                {
                    _nominating = best;
                    SendCheck(best, useCandidate: true, now);
                }
            }
        }
    }

    /// <summary>
    /// The pair to check next: RFC 8445 §6.1.4.2, a triggered check first, else the best Waiting pair, else unfreeze.
    /// Triggered and ordinary checks alternate when both are due, so that a chain of triggered checks (each answer from
    /// a symmetric NAT opens yet another mapping) cannot starve the relay pairs.
    /// </summary>
    private Pair? NextCheck()
    {
        Pair? next = null;
        if (!_lastWasTriggered || !HasOrdinary())
        {
            while (next is null && _triggered.TryDequeue(out var t))
            {
                t.Queued = false;
                if (t.State is PairState.Waiting or PairState.Frozen or PairState.Failed) next = t;
            }
        }

        // Ordinary checks go to signalled candidates; peer-reflexive pairs are checked by their triggered checks
        // (RFC 8445 §7.3.1.4), so a flood of them cannot push the signalled pairs (the relay) out of turn.
        _lastWasTriggered = next is not null;
        next ??= _pairs.Where(p => p.State == PairState.Waiting && p.Remote.Type != IceCandidateType.PeerReflexive).MaxBy(p => p.Priority)
            ?? _pairs.Where(p => p.State == PairState.Frozen).MaxBy(p => p.Priority);
        return next;
    }

    /// <summary>
    /// Sends the triggered check just queued at once when the pace allows (no check for Ta), instead of at the next tick:
    /// the peer's check is waiting on it (RFC 8445 §7.3.1.4), and as the controlled agent our nomination of its pair
    /// completes only when this check succeeds — up to Ta (50 ms) saved on every connection a browser opens to us.
    /// </summary>
    private void SendTriggeredNow(DateTimeOffset now)
    {
        if (_state != IceState.Checking || _remotePassword is null || _options.Lite || _selected is not null) return;
        if (_lastCheckAt is { } last && now - last < _options.Ta) return;
        if (_triggered.Count == 0) return;
        var next = NextCheck();
        if (next is not null) SendCheck(next, useCandidate: false, now);
    }

    /// <summary>How long regular nomination waits for better pending pairs when <paramref name="best"/> is the best valid
    /// pair: <see cref="IceAgentOptions.NominationDelay"/> for a relayed pair, at most
    /// <see cref="IceAgentOptions.DirectNominationDelay"/> for a direct one.</summary>
    private TimeSpan NominationDelayFor(Pair best) =>
        best.Local.Type == IceCandidateType.Relay || best.Remote.Type == IceCandidateType.Relay
            ? _options.NominationDelay
            : TimeSpan.FromTicks(Math.Min(_options.DirectNominationDelay.Ticks, _options.NominationDelay.Ticks));

    private bool HasOrdinary() => _pairs.Any(p => (p.State == PairState.Waiting && p.Remote.Type != IceCandidateType.PeerReflexive) || p.State == PairState.Frozen);

    private void CheckForFailure(DateTimeOffset now, List<Action> events)
    {
        if (_state != IceState.Checking) return;
        if (_remoteEnd && _gathersPending == 0 && _pairs.Count > 0 && _pairs.All(p => p.State == PairState.Failed) && _checks.Count == 0)
        {
            Fail("every candidate pair failed", events);
        }
        else if (now - _startedAt > _options.ConnectTimeout)
        {
            Fail("no candidate pair succeeded in time", events);
        }
    }

    private void RunConsent(DateTimeOffset now, List<Action> events)
    {
        var silence = now - _lastConsent;
        if (silence >= _options.ConsentTimeout)
        {
            // RFC 7675 §5.1: consent expired — stop sending on this pair.
            Fail("consent expired", events);
            return;
        }

        if (silence >= _options.DisconnectedAfter) SetState(IceState.Disconnected, events);
        if (now < _nextConsent || _options.Lite) return;

        // RFC 7675 §5.1: a consent check every 5 s, randomised to 0.8..1.2 of that.
        var jitter = 0.8 + 0.4 * RandomNumberGenerator.GetInt32(1001) / 1000.0;
        _nextConsent = now + _options.ConsentInterval * jitter;
        SendCheck(_selected!, useCandidate: false, now, consent: true);
    }

    private void Fail(string why, List<Action> events)
    {
        LogFailed(why);
        FailureReason ??= why + " at " + _time.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture);
        foreach (var c in _checks.Values) c.Pair.State = c.Pair.State == PairState.InProgress ? PairState.Failed : c.Pair.State;
        _checks.Clear();
        SetState(IceState.Failed, events);
        events.Add(() => _connected.TrySetException(new IceFailedException($"ICE failed: {why}.")));
    }

    private void SetState(IceState state, List<Action> events)
    {
        if (_state == state || _state is IceState.Failed or IceState.Closed) return;
        _state = state;
        events.Add(() => StateChanged?.Invoke(this, state));
    }

    private void SendCheck(Pair pair, bool useCandidate, DateTimeOffset now, bool consent = false)
    {
        // RFC 8445 §7.2.2: USERNAME "remote:local", PRIORITY of a peer-reflexive candidate of this base, the role with
        // our tie-breaker, USE-CANDIDATE when nominating, MESSAGE-INTEGRITY with the peer's password, FINGERPRINT.
        var tid = StunClient.NewTransactionId();
        var buffer = new byte[256];
        var w = new StunWriter(buffer, StunMethod.Binding, StunClass.Request, tid);
        w.AddUtf8(StunAttributeType.Username, _remoteUfrag + ":" + LocalUfrag);
        w.AddUInt32(StunAttributeType.Priority, IceCandidate.ComputePriority(IceCandidateType.PeerReflexive));
        w.AddUInt64(_role == IceRole.Controlling ? StunAttributeType.IceControlling : StunAttributeType.IceControlled, _tieBreaker);
        if (useCandidate) w.AddFlag(StunAttributeType.UseCandidate);
        w.AddMessageIntegrity(_remotePassword);
        w.AddFingerprint();
        var request = buffer[..w.Length];
        if (!consent) pair.State = PairState.InProgress;
        _firstCheckAt ??= now;
        _lastCheckAt = now;
        _checks[TxKey.From(tid)] = new Check(pair, request, useCandidate, consent, _role) { Sent = 1, Rto = _options.CheckRto, Due = now + _options.CheckRto };
        Transmit(pair.Local, request, pair.Remote.Address);
    }

    private void Transmit(IceCandidate local, ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        if (local.Type == IceCandidateType.Relay) _turn!.Send(datagram, remote);
        else (Array.Find(_extraHosts, h => h.Candidate == local)?.Socket ?? _socket).Send(datagram, remote);
    }
}
