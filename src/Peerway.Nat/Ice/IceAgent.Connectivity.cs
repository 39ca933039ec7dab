using System.Net;
using System.Text;
using Peerway.Nat.Stun;
using Peerway.Net;

namespace Peerway.Nat.Ice;

/// <summary>IceAgent, incoming datagrams: connectivity-check requests and responses (RFC 8445 §7.2, §7.3), selection.</summary>
public sealed partial class IceAgent
{
    /// <summary>Where a datagram came in: the relay, the primary socket or an additional host socket (1-based).</summary>
    private const int FromRelay = -1;
    private const int FromPrimary = 0;

    private IceCandidate? LocalFor(int source) => source switch
    {
        FromRelay => _relay,
        FromPrimary => _host,
        _ => _extraHosts[source - 1].Candidate,
    };

    private void OnHostDatagram(ReadOnlySpan<byte> datagram, IPEndPoint remote) => OnDatagram(FromPrimary, datagram, remote);

    private void OnRelayDatagram(ReadOnlySpan<byte> datagram, IPEndPoint peer) => OnDatagram(FromRelay, datagram, peer);

    private void OnDatagram(int source, ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        if (!StunMessage.LooksLikeStun(datagram))
        {
            DatagramHandler? handler = null;
            lock (_gate)
            {
                // RFC 8445 §12.2 (and pion's validateNonSTUNTraffic): data is taken from the selected pair's remote and from
                // the remote of any other valid (succeeded) pair on this local candidate. The peer's agent may send over a
                // pair of its own choosing among the valid ones (werift, controlling, with two host candidates on one
                // machine): dropping those datagrams left its DTLS server's flights unanswered until the connect timeout.
                if (_selected is { } s && _state is IceState.Connected or IceState.Disconnected &&
                    ((s.Remote.Address.Equals(remote) && s.Local == LocalFor(source)) || IsValidRemoteLocked(source, remote)))
                {
                    handler = _path.Handler;
                }
            }

            handler?.Invoke(datagram, remote);
            return;
        }

        if (!StunMessage.TryDecode(datagram, out var message, out _) || message!.Method != StunMethod.Binding) return;
        var events = new List<Action>();
        lock (_gate)
        {
            if (_disposed) return;
            var local = LocalFor(source);
            if (local is null) return;
            if (message.Class == StunClass.Request) HandleRequest(local, message, remote, events);
            else if (message.Class is StunClass.SuccessResponse or StunClass.ErrorResponse) HandleResponse(message, remote, events);
        }

        Raise(events);
    }

    /// <summary>Whether <paramref name="remote"/> is the remote of a succeeded pair on the local candidate of <paramref name="source"/>.</summary>
    private bool IsValidRemoteLocked(int source, IPEndPoint remote)
    {
        var local = LocalFor(source);
        foreach (var p in _pairs)
        {
            if (p.State == PairState.Succeeded && p.Local == local && p.Remote.Address.Equals(remote)) return true;
        }

        return false;
    }

    private void HandleRequest(IceCandidate local, StunMessage request, IPEndPoint source, List<Action> events)
    {
        // RFC 8445 §7.3 / RFC 8489 §9.1.3: FINGERPRINT, USERNAME "ours:theirs" and short-term MESSAGE-INTEGRITY.
        var key = Encoding.UTF8.GetBytes(LocalPassword);
        if (!StunAttributes.VerifyFingerprint(request) ||
            !request.TryGetText(StunAttributeType.Username, StunLimits.MaxUsernameBytes, out var username) ||
            !username.StartsWith(LocalUfrag + ":", StringComparison.Ordinal) ||
            !StunAttributes.VerifyIntegrity(request, key))
        {
            LogBadRequest(source);
            return;
        }

        _firstRequestAt ??= _time.GetUtcNow();

        // RFC 8445 §7.3.1.1: role conflict.
        var theyControl = request.TryGetUInt64(StunAttributeType.IceControlling, out var theirTie);
        var theyAreControlled = request.TryGetUInt64(StunAttributeType.IceControlled, out var theirTie2);
        if (_role == IceRole.Controlling && theyControl)
        {
            if (_tieBreaker >= theirTie)
            {
                Respond(local, request, source, key, StunErrorCode.RoleConflict);
                return;
            }

            SwitchRole(IceRole.Controlled);
        }
        else if (_role == IceRole.Controlled && theyAreControlled)
        {
            // RFC 8445 §6.1.1: a lite agent is always controlled; the full peer must switch.
            if (_tieBreaker >= theirTie2 && !_options.Lite) SwitchRole(IceRole.Controlling);
            else
            {
                Respond(local, request, source, key, StunErrorCode.RoleConflict);
                return;
            }
        }

        Respond(local, request, source, key, 0);
        if (_state is IceState.Failed or IceState.Closed) return;

        // RFC 8445 §7.3.1.3: an unknown source is a peer-reflexive remote candidate.
        var remote = _remotes.Find(r => r.Address.Equals(source));
        if (remote is null)
        {
            if (_remotes.Count >= _options.MaxRemoteCandidates) return;
            request.TryGetUInt32(StunAttributeType.Priority, out var priority);
            remote = new IceCandidate("prflx" + _remotes.Count, priority == 0 ? IceCandidate.ComputePriority(IceCandidateType.PeerReflexive) : priority, source, IceCandidateType.PeerReflexive);
            _remotes.Add(remote);
        }

        var pair = AddPair(local, remote, PairState.Waiting);
        if (pair is null) return;
        var useCandidate = request.Has(StunAttributeType.UseCandidate) && _role == IceRole.Controlled;
        if (_options.Lite)
        {
            // RFC 8445 §7.3.1.5 / §8.2: a lite agent checks nothing itself; a request it answered makes the pair valid,
            // USE-CANDIDATE selects it, and the full peer's checks on the selected pair are its consent (RFC 7675).
            pair.ValidLocal ??= local;
            pair.State = PairState.Succeeded;
            if (useCandidate) Select(pair, events);
            if (pair == _selected)
            {
                _lastConsent = _time.GetUtcNow();
                if (_state == IceState.Disconnected) SetState(IceState.Connected, events);
            }

            return;
        }

        // RFC 8445 §7.3.1.4: triggered check, unless the pair already succeeded.
        if (pair.State == PairState.Succeeded)
        {
            if (useCandidate) Select(pair, events);
            return;
        }

        if (useCandidate) pair.NominateOnSuccess = true;

        // A retransmission of a request we already answered (RFC 8489 §6.3.1) does not trigger another check: else
        // the peer's retransmissions would revive a failed pair again and again.
        var tx = TxKey.From(request.TransactionId);
        if (pair.LastTrigger == tx) return;
        pair.LastTrigger = tx;
        if (pair.State == PairState.InProgress)
        {
            // RFC 8445 §7.3.1.4: an In-Progress check is cancelled (no more retransmissions, no failure for want of an
            // answer, a late answer still counts) and the pair is checked again at once. This is hole punching's
            // simultaneous open: our first check was dropped by the peer's NAT before the peer had sent anything;
            // its request shows that its NAT now lets us in, so the new check passes without waiting an RTO for the
            // retransmission (the NAT lab saw 500 ms lost so). A nominating check is left alone: its USE-CANDIDATE
            // must get through.
            var checks = _checks.Values.Where(c => c.Pair == pair && !c.Consent).ToList();
            if (checks.Any(c => c.UseCandidate)) return;
            foreach (var c in checks) c.Cancelled = true;
        }

        pair.State = PairState.Waiting;
        Trigger(pair);
        SendTriggeredNow(_time.GetUtcNow());
    }

    private void Respond(IceCandidate local, StunMessage request, IPEndPoint source, byte[] key, int error)
    {
        var buffer = new byte[256];
        var w = new StunWriter(buffer, StunMethod.Binding, error == 0 ? StunClass.SuccessResponse : StunClass.ErrorResponse, request.TransactionId);
        if (error == 0) w.AddXorAddress(StunAttributeType.XorMappedAddress, source);
        else w.AddErrorCode(error);
        w.AddMessageIntegrity(key);
        w.AddFingerprint();
        Transmit(local, w.Written, source);
    }

    private void Trigger(Pair pair)
    {
        if (pair.Queued) return;
        pair.Queued = true;
        _triggered.Enqueue(pair);
    }

    private void SwitchRole(IceRole role)
    {
        LogRoleSwitch(role);
        _role = role;
        RecomputePriorities();
    }

    private void HandleResponse(StunMessage response, IPEndPoint source, List<Action> events)
    {
        var key = TxKey.From(response.TransactionId);
        if (!_checks.TryGetValue(key, out var check)) return;
        if (_remotePassword is null || !StunAttributes.VerifyIntegrity(response, _remotePassword)) return;
        _checks.Remove(key);
        var pair = check.Pair;
        var now = _time.GetUtcNow();

        // RFC 8445 §7.2.5.2.1: the response must come from where the request went.
        if (!source.Equals(pair.Remote.Address))
        {
            if (!check.Consent) pair.State = PairState.Failed;
            return;
        }

        if (check.Consent)
        {
            if (response.Class != StunClass.SuccessResponse) return;
            _lastConsent = now;
            if (_state == IceState.Disconnected) SetState(IceState.Connected, events);
            return;
        }

        if (response.Class == StunClass.ErrorResponse)
        {
            response.TryGetErrorCode(out var code, out _);
            if (code == StunErrorCode.RoleConflict)
            {
                // RFC 8445 §7.2.5.1: switch role (if not switched already) and retry the pair as a triggered check.
                if (_role == check.Role) SwitchRole(check.Role == IceRole.Controlling ? IceRole.Controlled : IceRole.Controlling);
                pair.State = PairState.Waiting;
                if (pair == _nominating) _nominating = null;
                Trigger(pair);
                return;
            }

            pair.State = PairState.Failed;
            if (pair == _nominating) _nominating = null;
            CheckForFailure(now, events);
            return;
        }

        if (!response.TryGetXorAddress(StunAttributeType.XorMappedAddress, out var mapped)) return;

        // RFC 8445 §7.2.5.3.1: the valid pair's local candidate is the one the mapped address names, else a new
        // peer-reflexive candidate.
        var validLocal = _locals.Find(l => l.Address.Equals(mapped));
        if (validLocal is null)
        {
            validLocal = new IceCandidate("prflx", IceCandidate.ComputePriority(IceCandidateType.PeerReflexive), mapped!, IceCandidateType.PeerReflexive, pair.Local.Address);
            _locals.Add(validLocal);
        }

        pair.ValidLocal = validLocal;
        pair.State = PairState.Succeeded;
        _firstSucceededAt ??= now;
        LogPairSucceeded(pair.Local.Address, pair.Remote.Address);

        // RFC 8445 §7.2.5.3.3: unfreeze pairs with the same foundation.
        foreach (var p in _pairs.Where(p => p.State == PairState.Frozen && p.Foundation == pair.Foundation)) p.State = PairState.Waiting;

        if ((check.UseCandidate && check.Role == IceRole.Controlling) || (pair.NominateOnSuccess && _role == IceRole.Controlled)) Select(pair, events);
    }

    private void Select(Pair pair, List<Action> events)
    {
        // RFC 8445 §8.1.1: the controlled agent uses the highest-priority nominated pair.
        if (_selected is not null && _selected.Priority >= pair.Priority) return;
        pair.Nominated = true;
        var first = _selected is null;
        _selected = pair;
        _nominating = null;
        var now = _time.GetUtcNow();
        _selectedAt ??= now;
        _lastConsent = now;
        _nextConsent = now + _options.ConsentInterval;
        LogSelected(pair.ValidLocal?.Type ?? pair.Local.Type, pair.Remote.Type, pair.Remote.Address);
        SetState(IceState.Connected, events);
        if (first) events.Add(() => _connected.TrySetResult(_path));
    }
}
