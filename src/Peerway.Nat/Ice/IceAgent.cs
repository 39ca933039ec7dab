using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core.Threading;
using Peerway.Nat.Stun;
using Peerway.Nat.Turn;
using Peerway.Net;

namespace Peerway.Nat.Ice;

/// <summary>The agent failed: no pair worked, or consent expired (RFC 7675).</summary>
public sealed class IceFailedException : Exception
{
    /// <summary>Creates an exception with the default message.</summary>
    public IceFailedException()
    {
    }

    /// <summary>Creates an exception with <paramref name="message"/>.</summary>
    public IceFailedException(string message) : base(message)
    {
    }

    /// <summary>Creates an exception with <paramref name="message"/> caused by <paramref name="innerException"/>.</summary>
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
/// When an agent's connectivity steps first happened (diagnostics, as a browser's <c>getStats()</c> candidate-pair
/// timestamps): null for a step not reached yet.
/// </summary>
public sealed record IceTimings(DateTimeOffset Started, DateTimeOffset? FirstCheckSent, DateTimeOffset? FirstRequestReceived, DateTimeOffset? FirstPairSucceeded, DateTimeOffset? Selected);

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

    // Gathering, permission and refresh transactions run in the background; DisposeAsync awaits them.
    private readonly BackgroundTasks _background = new();
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
    private DateTimeOffset? _firstCheckAt;
    private DateTimeOffset? _lastCheckAt;
    private DateTimeOffset? _firstRequestAt;
    private DateTimeOffset? _firstSucceededAt;
    private DateTimeOffset? _selectedAt;
    private DateTimeOffset _lastConsent;
    private DateTimeOffset _nextConsent;
    private DateTimeOffset _nextTurnRefresh;
    private bool _lastWasTriggered;
    private int _idleTicks;
    private bool _disposed;

    /// <param name="socket">The socket of the primary host candidate; it also serves STUN and TURN.</param>
    /// <param name="time">The clock of every pacing, timeout and consent timer.</param>
    /// <param name="options">Role, credentials, STUN/TURN servers and timers.</param>
    /// <param name="log">Optional logger.</param>
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

    /// <summary>RFC 8445 §5.3: this agent's password, sent to the peer over signaling; it keys the checks' MESSAGE-INTEGRITY.</summary>
    public string LocalPassword { get; }

    /// <summary>The current role; starts as <see cref="IceAgentOptions.Role"/> and switches on a role conflict (RFC 8445 §7.3.1.1).</summary>
    public IceRole Role
    {
        get
        {
            lock (_gate) return _role;
        }
    }

    /// <summary>The current connection state.</summary>
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

    /// <summary>A snapshot of the local candidates gathered so far.</summary>
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

    /// <summary>The state changed; the argument is the new state.</summary>
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
        if (_options.StunServer is { } stun) _background.Track(GatherServerReflexiveAsync(stun));
        if (_turn is not null) _background.Track(GatherRelayAsync());
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

        if (permit is not null) _background.Track(PermitAsync(permit));
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

    /// <summary>When the first check went out, the first valid request came in, the first pair succeeded and a pair was
    /// selected (diagnostics).</summary>
    public IceTimings Timings
    {
        get
        {
            lock (_gate) return new IceTimings(_startedAt, _firstCheckAt, _firstRequestAt, _firstSucceededAt, _selectedAt);
        }
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

    /// <summary>Gathering, permission and refresh transactions still under way.</summary>
    internal int BackgroundTaskCount => _background.Count;

    /// <summary>
    /// Closes the agent without deleting its TURN allocation (see <see cref="DisposeAsync"/>): <see cref="Connected"/>
    /// faults with <see cref="IceFailedException"/> if still pending, the state becomes <see cref="IceState.Closed"/> and the sockets are disposed.
    /// </summary>
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

        // Disposing the STUN/TURN client fails their outstanding transactions, so these finish promptly.
        await _background.WhenAllAsync().ConfigureAwait(false);
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
}
