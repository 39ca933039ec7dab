using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Nat.Stun;
using Peerway.Nat.Turn;
using Peerway.Net;

namespace Peerway.Nat.Ice;

/// <summary>The agent failed: no pair worked, or consent expired (RFC 7675).</summary>
public sealed class IceFailedException : Exception
{
    public IceFailedException()
    {
    }

    public IceFailedException(string message) : base(message)
    {
    }

    public IceFailedException(string message, Exception innerException) : base(message, innerException)
    {
    }
}

/// <summary>The selected pair: local candidate (as the peer sees it) and remote candidate.</summary>
public sealed record IceSelectedPair(IceCandidate Local, IceCandidate Remote)
{
    /// <summary>How the path runs: "relay" if either end is relayed, "host" if both are host, else "srflx".</summary>
    public string Kind => Local.Type == IceCandidateType.Relay || Remote.Type == IceCandidateType.Relay ? "relay"
        : Local.Type == IceCandidateType.Host && Remote.Type == IceCandidateType.Host ? "host" : "srflx";
}

/// <summary>
/// A full ICE agent (RFC 8445) for one component over UDP: gathers host, server-reflexive (STUN) and relayed (TURN)
/// candidates on one socket, pairs them with trickled remote candidates, runs connectivity checks paced by Ta with
/// triggered checks and role-conflict repair, nominates regularly, then keeps consent fresh (RFC 7675). Once a pair is
/// selected, <see cref="Connected"/> yields an <see cref="IDatagramSocket"/> that carries application datagrams over it,
/// directly or through the TURN relay. Thread-safe: one lock guards the state; timers come from the TimeProvider.
/// </summary>
public sealed partial class IceAgent : IDisposable, IAsyncDisposable
{
    // RFC 8445 §5.3: ufrag at least 24 bits of randomness, password at least 128 bits.
    private const int UfragBytes = 6;
    private const int PasswordBytes = 18;

    /// <summary>How long <see cref="DisposeAsync"/> waits for the TURN server to confirm the allocation's deletion.</summary>
    private static readonly TimeSpan ReleaseTimeout = TimeSpan.FromSeconds(2);

    private readonly IceAgentOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly StunClient _stun;
    private readonly TurnClient? _turn;
    private readonly IDatagramSocket _socket;
    private readonly Lock _gate = new();
    private readonly List<IceCandidate> _locals = [];
    private readonly List<IceCandidate> _remotes = [];
    private readonly List<Pair> _pairs = [];
    private readonly Queue<Pair> _triggered = new();
    private readonly Dictionary<TxKey, Check> _checks = [];
    private readonly HashSet<IPAddress> _permissions = [];
    private readonly TaskCompletionSource<IDatagramSocket> _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ulong _tieBreaker;
    private readonly IcePath _path;
    private IceCandidate? _host;
    private readonly HostSocket[] _extraHosts;
    private IceCandidate? _relay;
    private ITimer? _timer;
    private IceRole _role;
    private IceState _state = IceState.New;
    private string? _remoteUfrag;
    private byte[]? _remotePassword;
    private bool _remoteEnd;
    private readonly TaskCompletionSource _remoteEndSignalled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _gathersPending;
    private Pair? _selected;
    private Pair? _nominating;
    private DateTimeOffset _startedAt;
    private DateTimeOffset? _firstValidAt;
    private DateTimeOffset _lastConsent;
    private DateTimeOffset _nextConsent;
    private DateTimeOffset _nextTurnRefresh;
    private bool _lastWasTriggered;
    private int _idleTicks;
    private bool _disposed;

    /// <param name="socket">The socket of the primary host candidate; it also serves STUN and TURN.</param>
    /// <param name="additionalHostSockets">
    /// Sockets on the host's other addresses (RFC 8445 §5.1.1.1: a host candidate per interface), e.g. a second LAN the
    /// peer shares. They carry host checks and data only; the agent starts and disposes them.
    /// </param>
    public IceAgent(IDatagramSocket socket, TimeProvider time, IceAgentOptions options, ILogger<IceAgent>? log = null, IReadOnlyList<IDatagramSocket>? additionalHostSockets = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _time = time;
        _log = log ?? NullLogger<IceAgent>.Instance;
        _role = options.Role;
        _tieBreaker = BinaryPrimitives.ReadUInt64BigEndian(RandomNumberGenerator.GetBytes(8));
        LocalUfrag = Convert.ToHexString(RandomNumberGenerator.GetBytes(UfragBytes)).ToLowerInvariant();
        LocalPassword = Convert.ToBase64String(RandomNumberGenerator.GetBytes(PasswordBytes));
        _socket = socket;
        _path = new IcePath(this);
        _extraHosts = [.. (additionalHostSockets ?? []).Select(s => new HostSocket(s))];
        for (var i = 0; i < _extraHosts.Length; i++)
        {
            var source = i + 1;
            _extraHosts[i].Socket.Start((d, r) => OnDatagram(source, d, r));
        }

        if (options.TurnServer is { } turnServer)
        {
            // One socket serves host checks, the STUN Binding and the TURN allocation.
            _turn = new TurnClient(socket, turnServer, options.TurnCredentials!, time, OnRelayDatagram, options.Gathering, OnHostDatagram);
            _stun = _turn.Stun;
        }
        else
        {
            _stun = new StunClient(socket, time, options.Gathering, OnHostDatagram);
        }
    }

    /// <summary>RFC 8445 §5.3: this agent's username fragment, sent to the peer over signaling.</summary>
    public string LocalUfrag { get; }

    public string LocalPassword { get; }

    public IceRole Role
    {
        get
        {
            lock (_gate) return _role;
        }
    }

    public IceState State
    {
        get
        {
            lock (_gate) return _state;
        }
    }

    /// <summary>The pair in use, once connected.</summary>
    public IceSelectedPair? SelectedPair
    {
        get
        {
            lock (_gate) return _selected is null ? null : new IceSelectedPair(_selected.ValidLocal ?? _selected.Local, _selected.Remote);
        }
    }

    public IReadOnlyList<IceCandidate> LocalCandidates
    {
        get
        {
            lock (_gate) return [.. _locals];
        }
    }

    /// <summary>
    /// Completes when the peer has signalled end-of-candidates (RFC 8838 §8.2). By then every peer-reflexive remote
    /// candidate that was really one of the peer's signalled candidates has been replaced by it (RFC 8838 §11.4), so
    /// <see cref="SelectedPair"/> reports the candidate types the peer announced.
    /// </summary>
    public Task RemoteCandidatesComplete => _remoteEndSignalled.Task;

    /// <summary>Completes with the datagram path once a pair is selected; faults with <see cref="IceFailedException"/>.</summary>
    public Task<IDatagramSocket> Connected => _connected.Task;

    /// <summary>A local candidate was gathered (trickle it to the peer).</summary>
    public event EventHandler<IceCandidate>? LocalCandidateGathered;

    /// <summary>Gathering ended (signal end-of-candidates).</summary>
    public event EventHandler? GatheringComplete;

    public event EventHandler<IceState>? StateChanged;

    /// <summary>Starts gathering and the check timer. Call once.</summary>
    public void Start()
    {
        var events = new List<Action>();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_state != IceState.New) throw new InvalidOperationException("The agent is already started.");
            _startedAt = _time.GetUtcNow();
            SetState(IceState.Checking, events);
            var local = _socket.LocalEndPoint;
            if (!local.Address.Equals(IPAddress.Any) && !local.Address.Equals(IPAddress.IPv6Any))
            {
                _host = new IceCandidate(IceCandidate.ComputeFoundation(IceCandidateType.Host, local.Address, null), IceCandidate.ComputePriority(IceCandidateType.Host), local, IceCandidateType.Host);
                AddLocal(_host, events);
            }

            // RFC 8445 §5.1.2.1: distinct local preferences keep every host candidate's priority unique.
            for (var i = 0; i < _extraHosts.Length; i++)
            {
                var address = _extraHosts[i].Socket.LocalEndPoint;
                if (address.Address.Equals(IPAddress.Any) || address.Address.Equals(IPAddress.IPv6Any) || _locals.Any(l => l.Address.Equals(address))) continue;
                var candidate = new IceCandidate(IceCandidate.ComputeFoundation(IceCandidateType.Host, address.Address, null), IceCandidate.ComputePriority(IceCandidateType.Host, 65534 - Math.Min(i, 1000)), address, IceCandidateType.Host);
                _extraHosts[i].Candidate = candidate;
                AddLocal(candidate, events);
            }

            // Remote candidates trickled before Start wait for the host candidates to pair with (RFC 8445 §6.1.2.2).
            foreach (var r in _remotes)
            {
                foreach (var l in PairableLocals()) AddPair(l, r, PairState.Waiting);
            }

            _gathersPending = (_options.StunServer is null ? 0 : 1) + (_turn is null ? 0 : 1);
            if (_gathersPending == 0) events.Add(() => GatheringComplete?.Invoke(this, EventArgs.Empty));
            _timer = _time.CreateTimer(static s => ((IceAgent)s!).OnTick(), this, _options.Ta, _options.Ta);
        }

        Raise(events);
        if (_options.StunServer is { } stun) _ = GatherServerReflexiveAsync(stun);
        if (_turn is not null) _ = GatherRelayAsync();
    }

    /// <summary>RFC 8445 §5.3: the peer's ufrag and password (from signaling). Checks start once they are known.</summary>
    public void SetRemoteCredentials(string ufrag, string password)
    {
        ArgumentException.ThrowIfNullOrEmpty(ufrag);
        ArgumentException.ThrowIfNullOrEmpty(password);
        lock (_gate)
        {
            _remoteUfrag = ufrag;
            _remotePassword = Encoding.UTF8.GetBytes(password);
        }
    }

    /// <summary>Adds a trickled remote candidate (any time, before or after Start).</summary>
    public void AddRemoteCandidate(IceCandidate candidate)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        IPAddress? permit = null;
        lock (_gate)
        {
            if (_disposed || _remotes.Count >= _options.MaxRemoteCandidates) return;
            var existing = _remotes.FindIndex(r => r.Address.Equals(candidate.Address));
            if (existing >= 0)
            {
                // RFC 8838 §11.4: a signalled candidate replaces a peer-reflexive one learnt earlier.
                if (_remotes[existing].Type != IceCandidateType.PeerReflexive) return;
                var old = _remotes[existing];
                _remotes[existing] = candidate;
                foreach (var p in _pairs.Where(p => p.Remote == old)) p.Remote = candidate;
                RecomputePriorities();
            }
            else
            {
                _remotes.Add(candidate);
                foreach (var local in PairableLocals()) AddPair(local, candidate, PairState.Waiting);
            }

            if (_relay is not null && _permissions.Add(candidate.Address.Address)) permit = candidate.Address.Address;
        }

        if (permit is not null) _ = PermitAsync(permit);
    }

    /// <summary>RFC 8838 §8.2: the peer has sent all its candidates.</summary>
    public void AddRemoteEndOfCandidates()
    {
        lock (_gate) _remoteEnd = true;
        _remoteEndSignalled.TrySetResult();
    }

    private IEnumerable<IceCandidate> PairableLocals()
    {
        // RFC 8445 §6.1.2.4: server-reflexive candidates are replaced by their base, so pairs use host and relay.
        if (_host is not null) yield return _host;
        foreach (var h in _extraHosts)
        {
            if (h.Candidate is not null) yield return h.Candidate;
        }

        if (_relay is not null) yield return _relay;
    }

    private void AddLocal(IceCandidate candidate, List<Action> events)
    {
        if (_locals.Any(l => l.Address.Equals(candidate.Address) && l.Type == candidate.Type)) return;
        _locals.Add(candidate);
        events.Add(() => LocalCandidateGathered?.Invoke(this, candidate));
    }

    private Pair? AddPair(IceCandidate local, IceCandidate remote, PairState state)
    {
        if (local.Address.AddressFamily != remote.Address.AddressFamily) return null;
        var existing = _pairs.Find(p => p.Local == local && p.Remote.Address.Equals(remote.Address));
        if (existing is not null) return existing;
        if (_pairs.Count >= _options.MaxPairs) return null;

        // RFC 8445 §6.1.2.6: one pair per foundation starts Waiting; the others wait Frozen for it to succeed.
        var foundation = local.Foundation + ":" + remote.Foundation;
        if (state == PairState.Waiting && _pairs.Any(p => p.Foundation == foundation && p.State is PairState.Waiting or PairState.InProgress)) state = PairState.Frozen;
        var pair = new Pair(local, remote, foundation) { State = state };
        pair.Priority = PairPriorityOf(pair);
        _pairs.Add(pair);
        return pair;
    }

    private ulong PairPriorityOf(Pair p) => _role == IceRole.Controlling
        ? IceCandidate.PairPriority(p.Local.Priority, p.Remote.Priority)
        : IceCandidate.PairPriority(p.Remote.Priority, p.Local.Priority);

    private void RecomputePriorities()
    {
        foreach (var p in _pairs) p.Priority = PairPriorityOf(p);
    }

    private async Task GatherServerReflexiveAsync(IPEndPoint server)
    {
        try
        {
            var response = await _stun.BindingAsync(server).ConfigureAwait(false);
            if (response.Class == StunClass.SuccessResponse && response.TryGetXorAddress(StunAttributeType.XorMappedAddress, out var mapped))
            {
                AddServerReflexive(mapped!, server);
            }
        }
        catch (Exception ex) when (ex is TimeoutException or ObjectDisposedException or InvalidOperationException)
        {
            LogGatherFailed("srflx", server, ex.Message);
        }
        finally
        {
            GatherDone();
        }
    }

    private async Task GatherRelayAsync()
    {
        var turn = _turn!;
        try
        {
            var relayed = await turn.AllocateAsync().ConfigureAwait(false);
            var events = new List<Action>();
            List<IPAddress> permits;
            lock (_gate)
            {
                if (_disposed) return;
                var baseAddress = turn.LocalEndPoint.Address;
                _relay = new IceCandidate(IceCandidate.ComputeFoundation(IceCandidateType.Relay, baseAddress, turn.Server), IceCandidate.ComputePriority(IceCandidateType.Relay), relayed, IceCandidateType.Relay, turn.MappedAddress);
                AddLocal(_relay, events);
                foreach (var r in _remotes) AddPair(_relay, r, PairState.Waiting);
                permits = [.. _remotes.Select(r => r.Address.Address).Where(_permissions.Add)];
                _nextTurnRefresh = _time.GetUtcNow() + turn.Lifetime / 2;
            }

            Raise(events);
            if (turn.MappedAddress is { } mapped && _options.StunServer is null) AddServerReflexive(mapped, turn.Server);
            foreach (var ip in permits) _ = PermitAsync(ip);
        }
        catch (Exception ex) when (ex is TimeoutException or ObjectDisposedException or InvalidOperationException or TurnException)
        {
            LogGatherFailed("relay", turn.Server, ex.Message);
        }
        finally
        {
            GatherDone();
        }
    }

    private void AddServerReflexive(IPEndPoint mapped, IPEndPoint server)
    {
        var events = new List<Action>();
        lock (_gate)
        {
            if (_disposed || (_host is not null && mapped.Equals(_host.Address))) return;
            var baseAddress = _socket.LocalEndPoint;
            AddLocal(new IceCandidate(IceCandidate.ComputeFoundation(IceCandidateType.ServerReflexive, baseAddress.Address, server), IceCandidate.ComputePriority(IceCandidateType.ServerReflexive), mapped, IceCandidateType.ServerReflexive, baseAddress), events);
        }

        Raise(events);
    }

    private void GatherDone()
    {
        bool done;
        lock (_gate) done = --_gathersPending == 0 && !_disposed;
        if (done) GatheringComplete?.Invoke(this, EventArgs.Empty);
    }

    /// <summary>RFC 8656 §9: the peer's IP must be permitted before the relay passes its datagrams either way.</summary>
    private async Task PermitAsync(IPAddress ip)
    {
        try
        {
            await _turn!.CreatePermissionAsync([new IPEndPoint(ip, 0)]).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or ObjectDisposedException or InvalidOperationException or TurnException)
        {
            LogPermissionFailed(ip, ex.Message);
        }
    }

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
            _ = RefreshTurnAsync();
            foreach (var ip in permits!) _ = PermitAsync(ip);
        }
    }

    private async Task RefreshTurnAsync()
    {
        try
        {
            await _turn!.RefreshAsync(TimeSpan.FromMinutes(10)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or ObjectDisposedException or InvalidOperationException or TurnException)
        {
            LogGatherFailed("refresh", _turn!.Server, ex.Message);
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

        if (_remotePassword is null) return;

        // RFC 8445 §6.1.4.2: one check per Ta — a triggered check first, else the best Waiting pair, else unfreeze.
        // Triggered and ordinary checks alternate when both are due, so that a chain of triggered checks (each answer
        // from a symmetric NAT opens yet another mapping) cannot starve the relay pairs.
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
        if (next is not null && _selected is null) SendCheck(next, useCandidate: false, now);
        else _idleTicks++;

        if (_role == IceRole.Controlling && _nominating is null && _selected is null)
        {
            // RFC 8445 §8.1.1: regular nomination — pick the best valid pair once better pairs are done (or after a delay).
            var best = _pairs.Where(p => p.State == PairState.Succeeded).MaxBy(p => p.Priority);
            if (best is not null)
            {
                _firstValidAt ??= now;
                var betterPending = _pairs.Any(p => p.Priority > best.Priority && p.State is PairState.Waiting or PairState.InProgress or PairState.Frozen);
                if (!betterPending || now - _firstValidAt >= _options.NominationDelay)
                {
                    _nominating = best;
                    SendCheck(best, useCandidate: true, now);
                }
            }
        }
    }

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
        if (now < _nextConsent) return;

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
        _checks[TxKey.From(tid)] = new Check(pair, request, useCandidate, consent, _role) { Sent = 1, Rto = _options.CheckRto, Due = now + _options.CheckRto };
        Transmit(pair.Local, request, pair.Remote.Address);
    }

    private void Transmit(IceCandidate local, ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        if (local.Type == IceCandidateType.Relay) _turn!.Send(datagram, remote);
        else (Array.Find(_extraHosts, h => h.Candidate == local)?.Socket ?? _socket).Send(datagram, remote);
    }

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
                if (_selected is { } s && s.Remote.Address.Equals(remote) && s.Local == LocalFor(source) && _state is IceState.Connected or IceState.Disconnected)
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
            if (_tieBreaker >= theirTie2) SwitchRole(IceRole.Controlling);
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
        _lastConsent = now;
        _nextConsent = now + _options.ConsentInterval;
        LogSelected(pair.ValidLocal?.Type ?? pair.Local.Type, pair.Remote.Type, pair.Remote.Address);
        SetState(IceState.Connected, events);
        if (first) events.Add(() => _connected.TrySetResult(_path));
    }

    /// <summary>Why the agent failed (diagnostics).</summary>
    internal string? FailureReason { get; private set; }

    /// <summary>Diagnostics: the checklist, one line per pair.</summary>
    internal string DescribeChecklist()
    {
        lock (_gate)
        {
            return $"idle {_idleTicks} triggered {_triggered.Count} checks {_checks.Count} role {_role}\n" + string.Join('\n', _pairs.OrderByDescending(p => p.Priority).Select(p => $"{p.Local.Type} {p.Local.Address} -> {p.Remote.Type} {p.Remote.Address} {p.State}{(p.Nominated ? " nominated" : "")}"));
        }
    }

    private static void Raise(List<Action> events)
    {
        foreach (var e in events) e();
    }

    internal void SendData(ReadOnlySpan<byte> datagram)
    {
        lock (_gate)
        {
            // RFC 7675 §5.1: no data without consent.
            if (_selected is null || _state is not (IceState.Connected or IceState.Disconnected)) return;
            Transmit(_selected.Local, datagram, _selected.Remote.Address);
        }
    }

    internal IPEndPoint PathLocalEndPoint
    {
        get
        {
            lock (_gate) return _selected?.Local.Address ?? _socket.LocalEndPoint;
        }
    }

    public void Dispose()
    {
        var events = new List<Action>();
        lock (_gate)
        {
            if (_disposed) return;
            SetState(IceState.Closed, events);
            _disposed = true;
            _timer?.Dispose();
            _checks.Clear();
        }

        _connected.TrySetException(new IceFailedException("ICE agent closed."));
        if (_turn is not null) _turn.Dispose();
        else _stun.Dispose();
        foreach (var h in _extraHosts) h.Socket.Dispose();
        Raise(events);
    }

    /// <summary>
    /// Closes the agent after deleting its TURN allocation, if it has one (RFC 8656 §7.3: a Refresh with LIFETIME 0),
    /// so that the allocation does not count against the user's quota until it expires (10 minutes by default). Waits
    /// at most 2 s for the server's answer.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        bool release;
        lock (_gate) release = !_disposed && _turn?.RelayedAddress is not null;
        if (release)
        {
            using var timeout = new CancellationTokenSource(ReleaseTimeout, _time);
            try
            {
                await _turn!.RefreshAsync(TimeSpan.Zero, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException or ObjectDisposedException or InvalidOperationException or TurnException)
            {
                LogGatherFailed("release", _turn!.Server, ex.Message);
            }
        }

        Dispose();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "ICE gathering {Kind} from {Server} failed: {Reason}")]
    private partial void LogGatherFailed(string kind, IPEndPoint server, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "TURN permission for {Peer} failed: {Reason}")]
    private partial void LogPermissionFailed(IPAddress peer, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "ICE check {Local} -> {Remote} failed")]
    private partial void LogPairFailed(IPEndPoint local, IPEndPoint remote);

    [LoggerMessage(Level = LogLevel.Debug, Message = "ICE check {Local} -> {Remote} succeeded")]
    private partial void LogPairSucceeded(IPEndPoint local, IPEndPoint remote);

    [LoggerMessage(Level = LogLevel.Debug, Message = "ICE dropped a bad check from {Source}")]
    private partial void LogBadRequest(IPEndPoint source);

    [LoggerMessage(Level = LogLevel.Information, Message = "ICE role conflict: now {Role}")]
    private partial void LogRoleSwitch(IceRole role);

    [LoggerMessage(Level = LogLevel.Information, Message = "ICE selected {Local} -> {Remote} at {Address}")]
    private partial void LogSelected(IceCandidateType local, IceCandidateType remote, IPEndPoint address);

    [LoggerMessage(Level = LogLevel.Information, Message = "ICE failed: {Reason}")]
    private partial void LogFailed(string reason);

    private enum PairState
    {
        Frozen,
        Waiting,
        InProgress,
        Succeeded,
        Failed,
    }

    private sealed class Pair(IceCandidate local, IceCandidate remote, string foundation)
    {
        public IceCandidate Local { get; } = local;

        public IceCandidate Remote { get; set; } = remote;

        public string Foundation { get; } = foundation;

        public PairState State { get; set; }

        public ulong Priority { get; set; }

        public IceCandidate? ValidLocal { get; set; }

        public bool Nominated { get; set; }

        public bool NominateOnSuccess { get; set; }

        public TxKey? LastTrigger { get; set; }

        public bool Queued { get; set; }
    }

    /// <summary>An additional host socket and, once started, its host candidate.</summary>
    private sealed class HostSocket(IDatagramSocket socket)
    {
        public IDatagramSocket Socket { get; } = socket;

        public IceCandidate? Candidate { get; set; }
    }

    private sealed class Check(Pair pair, byte[] request, bool useCandidate, bool consent, IceRole role)
    {
        public Pair Pair { get; } = pair;

        public byte[] Request { get; } = request;

        public bool UseCandidate { get; } = useCandidate;

        public bool Consent { get; } = consent;

        public IceRole Role { get; } = role;

        public int Sent { get; set; }

        public TimeSpan Rto { get; set; }

        public DateTimeOffset Due { get; set; }

        /// <summary>RFC 8445 §7.3.1.4: replaced by a triggered check; not retransmitted, its answer still counts.</summary>
        public bool Cancelled { get; set; }
    }

    private readonly record struct TxKey(ulong High, uint Low)
    {
        public static TxKey From(ReadOnlySpan<byte> id) =>
            new(BinaryPrimitives.ReadUInt64BigEndian(id), BinaryPrimitives.ReadUInt32BigEndian(id[8..]));
    }

    /// <summary>The datagram path handed to the caller: sends to the selected remote, delivers its non-STUN datagrams.</summary>
    private sealed class IcePath(IceAgent agent) : IDatagramSocket
    {
        public DatagramHandler? Handler { get; private set; }

        public IPEndPoint LocalEndPoint => agent.PathLocalEndPoint;

        public void Start(DatagramHandler handler)
        {
            ArgumentNullException.ThrowIfNull(handler);
            if (Handler is not null) throw new InvalidOperationException("The path is already started.");
            Handler = handler;
        }

        /// <summary>Sends to the selected remote candidate; <paramref name="remote"/> is ignored.</summary>
        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote) => agent.SendData(datagram);

        public void Dispose() => agent.Dispose();
    }
}
