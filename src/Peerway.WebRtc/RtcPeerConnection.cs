using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Nat.Ice;
using Peerway.Net;
using Peerway.WebRtc.DataChannels;
using Peerway.WebRtc.Dtls;
using Peerway.WebRtc.Sctp;
using Peerway.WebRtc.Sdp;

namespace Peerway.WebRtc;

/// <summary>An SDP offer or answer was refused; <see cref="Error"/> says why.</summary>
public sealed class SdpException : Exception
{
    /// <summary>A refused SDP with no message.</summary>
    public SdpException()
    {
    }

    /// <summary>A refused SDP described by <paramref name="message"/>.</summary>
    public SdpException(string message) : base(message)
    {
    }

    /// <summary>A refused SDP described by <paramref name="message"/>, caused by <paramref name="innerException"/>.</summary>
    public SdpException(string message, Exception innerException) : base(message, innerException)
    {
    }

    /// <summary>An SDP refused for <paramref name="error"/>; <paramref name="detail"/> is the message (empty: the error's name).</summary>
    public SdpException(SdpError error, string detail) : base(string.IsNullOrEmpty(detail) ? $"malformed SDP ({error})" : $"malformed SDP: {detail}") => Error = error;

    /// <summary>Why the SDP was refused (<see cref="SdpError.None"/> when not given).</summary>
    public SdpError Error { get; }
}

/// <summary>The states of a peer connection, as the browser's RTCPeerConnectionState.</summary>
public enum RtcConnectionState
{
    /// <summary>Created; no offer or answer applied yet.</summary>
    New,
    /// <summary>ICE, DTLS and SCTP are being set up.</summary>
    Connecting,
    /// <summary>ICE, DTLS and SCTP are up: channels can open.</summary>
    Connected,
    /// <summary>Set-up failed or timed out, or the transport was lost.</summary>
    Failed,
    /// <summary>Closed by <see cref="RtcPeerConnection.DisposeAsync"/> or by the peer.</summary>
    Closed,
}

/// <summary>
/// A WebRTC peer connection for data channels (RFC 8831), shaped like the browser's RTCPeerConnection: create an
/// offer or accept one, then channels — created here or opened by the remote (<see cref="DataChannelOpened"/>) — run
/// over SCTP (RFC 9260) over DTLS 1.2 (RFC 8261) over the path Peerway's <see cref="IceAgent"/> selected. The offer and
/// answer are complete SDP (non-trickle): they carry every candidate gathered. The socket is owned from here on.
/// </summary>
public sealed class RtcPeerConnection : IAsyncDisposable, ISctpHandler
{
    /// <summary>How long the DTLS client waits for the peer's INIT before sending its own.</summary>
    private static readonly TimeSpan ClientInitDelay = TimeSpan.FromSeconds(3);

    private readonly IDatagramSocket _socket;
    private readonly TimeProvider _time;
    private readonly RtcConfiguration _config;
    private readonly ILoggerFactory _logs;
    private readonly ILogger _log;
    private readonly DtlsCertificate _certificate;
    private readonly Lock _gate = new();
    private readonly Dictionary<ushort, RtcDataChannel> _channels = [];
    private readonly Channel<RtcDataChannel> _incoming = Channel.CreateUnbounded<RtcDataChannel>();
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _established = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _closing = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IceAgent? _agent;
    private DtlsSession? _dtls;
    private SctpAssociation? _sctp;
    private bool _dtlsClient;
    private bool _pathOnly;
    private Task _run = Task.CompletedTask;
    private RtcConnectionState _state;
    private int _disposed;
    private readonly DateTimeOffset _createdAt;
    private DateTimeOffset? _remoteAt;
    private DateTimeOffset? _localAt;
    private DateTimeOffset? _dtlsAt;
    private DateTimeOffset? _sctpAt;

    /// <summary>A connection over <paramref name="socket"/> (owned from here on), timed by <paramref name="time"/>. Throws <see cref="ArgumentNullException"/> for a null argument and <see cref="ArgumentException"/> for an invalid <paramref name="configuration"/>.</summary>
    public RtcPeerConnection(IDatagramSocket socket, TimeProvider time, RtcConfiguration configuration, ILoggerFactory? logs = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(configuration);
        configuration.Validate();
        _createdAt = time.GetUtcNow();
        _socket = socket;
        _time = time;
        _config = configuration;
        _logs = logs ?? NullLoggerFactory.Instance;
        _log = _logs.CreateLogger<RtcPeerConnection>();
        _certificate = configuration.Certificate ?? DtlsCertificate.Generate(time);
        MaxMessageSize = configuration.Sctp.MaxMessageSize;
    }

    /// <summary>A channel opened by the remote (RFC 8832 DATA_CHANNEL_OPEN), already open.</summary>
    public event EventHandler<RtcDataChannel>? DataChannelOpened;

    /// <summary>A channel reached "closed" (both streams reset, or the connection ended).</summary>
    public event EventHandler<RtcDataChannel>? DataChannelClosed;

    /// <summary>The connection's state now. Thread-safe.</summary>
    public RtcConnectionState State
    {
        get
        {
            lock (_gate) return _state;
        }
    }

    /// <summary>Completes when ICE, DTLS and SCTP are up; faults when any of them fails or times out.</summary>
    public Task Connected => _connected.Task;

    /// <summary>Completes when the connection has ended (SCTP closed or aborted, DTLS closed, or disposed).</summary>
    public Task Closed => _closed.Task;

    /// <summary>Largest message either side takes (ours, or less if the peer's <c>a=max-message-size</c> says so).</summary>
    public int MaxMessageSize { get; private set; }

    /// <summary>The ICE agent (selected pair, state), once an offer or answer exists.</summary>
    public IceAgent? Ice => _agent;

    /// <summary>The SRTP profile DTLS negotiated (RFC 5764 use_srtp; no SRTP runs), -1 if none or not connected yet.</summary>
    internal int SrtpProfile => _dtls?.SrtpProfile ?? -1;

    /// <summary>The SCTP association once connected (diagnostics: congestion window, RTT, retransmissions).</summary>
    internal SctpAssociation? Sctp => _sctp;

    /// <summary>When each set-up step happened so far (diagnostics).</summary>
    public RtcSetupTimings Timings
    {
        get
        {
            lock (_gate)
            {
                return new RtcSetupTimings(_createdAt)
                {
                    RemoteDescription = _remoteAt,
                    LocalDescription = _localAt,
                    Ice = _agent?.Timings,
                    DtlsConnected = _dtlsAt,
                    SctpEstablished = _sctpAt,
                };
            }
        }
    }

    private void Mark(ref DateTimeOffset? step)
    {
        var now = _time.GetUtcNow();
        lock (_gate) step ??= now;
    }

    /// <summary>Our certificate's fingerprint as in the SDP.</summary>
    public string LocalFingerprint => _certificate.FingerprintSdp;

    /// <summary>The JSEP offer (RFC 8829 §5.2): ICE controlling, <c>a=setup:actpass</c>, every candidate included.</summary>
    public async Task<string> CreateOfferAsync(CancellationToken cancellationToken = default)
    {
        var agent = StartAgent(IceRole.Controlling);
        await GatheredAsync(agent, cancellationToken).ConfigureAwait(false);
        Mark(ref _localAt);
        return LocalDescription(agent, SdpSetup.ActPass, "0").ToSdp();
    }

    /// <summary>Applies the remote answer to our offer and starts connecting (see <see cref="Connected"/>).</summary>
    public void SetAnswer(string answer)
    {
        var agent = _agent ?? throw new InvalidOperationException("Create an offer first.");
        var remote = Parse(answer);
        if (remote.Setup == SdpSetup.ActPass) throw new SdpException(SdpError.BadSetup, "an answer's a=setup is active or passive");
        if (remote.IceLite && _config.IceLite) throw new SdpException(SdpError.BadSetup, "both ends are ICE-lite (RFC 8445 §6.1.1: one must be a full agent)");

        // RFC 8842 §5.3: the answerer picks; active is the DTLS client, so we are the server, and vice versa.
        _dtlsClient = remote.Setup == SdpSetup.Passive;
        Mark(ref _remoteAt);
        ApplyRemote(agent, remote);
        _run = RunAsync(agent, remote);
    }

    /// <summary>
    /// Answers a remote offer: ICE controlled (controlling if the offerer is ICE-lite), <c>a=setup:active</c> (RFC 8842
    /// §5.3: we are the DTLS client), every candidate included; connecting starts at once.
    /// </summary>
    public async Task<string> AcceptOfferAsync(string offer, CancellationToken cancellationToken = default)
    {
        Mark(ref _remoteAt);
        var remote = Parse(offer);
        if (remote.Setup == SdpSetup.Active) throw new SdpException(SdpError.BadSetup, "an offer's a=setup is actpass or passive");
        if (remote.IceLite && _config.IceLite) throw new SdpException(SdpError.BadSetup, "both ends are ICE-lite (RFC 8445 §6.1.1: one must be a full agent)");

        // RFC 8445 §6.1.1: with a lite peer the full agent controls, whichever side offered.
        var agent = StartAgent(remote.IceLite ? IceRole.Controlling : IceRole.Controlled);
        ApplyRemote(agent, remote);
        _dtlsClient = true;
        await GatheredAsync(agent, cancellationToken).ConfigureAwait(false);
        var answer = LocalDescription(agent, SdpSetup.Active, remote.Mid).ToSdp();
        Mark(ref _localAt);
        _run = RunAsync(agent, remote);
        return answer;
    }

    /// <summary>
    /// Runs DTLS and SCTP over the socket given to the constructor as a path that is already selected — e.g. the
    /// <see cref="IceAgent.Connected"/> path of an agent driven by its own signaling, as <c>peerway connect
    /// --datachannel</c> does — with no SDP: the peer's <paramref name="remoteFingerprint"/> (<c>sha-256 AB:CD:…</c>,
    /// RFC 8122 §5) came another way. The DTLS role is the caller's (both ends must agree, e.g. by ICE role). Then
    /// <see cref="Connected"/> and channels work as after an offer/answer. The path stays the caller's: disposing this
    /// connection does not dispose it.
    /// </summary>
    public void ConnectOverPath(string remoteFingerprint, bool dtlsClient)
    {
        ArgumentNullException.ThrowIfNull(remoteFingerprint);
        if (!SdpDescription.TryParseFingerprint(remoteFingerprint, out _, out var digest)) throw new SdpException(SdpError.BadFingerprint, "the fingerprint must be sha-256 with 32 hex pairs");
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            if (_agent is not null || _pathOnly) throw new InvalidOperationException("This connection already has a description.");
            _pathOnly = true;
            _dtlsClient = dtlsClient;
            _state = RtcConnectionState.Connecting;
        }

        _run = RunAsync(Task.FromResult(_socket), digest!);
    }

    private static SdpDescription Parse(string sdp) =>
        SdpDescription.TryParse(sdp, out var d, out var error, out var detail) ? d! : throw new SdpException(error, detail);

    private IceAgent StartAgent(IceRole role)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            if (_agent is not null || _pathOnly) throw new InvalidOperationException("This connection already has a description.");
            _agent = new IceAgent(_socket, _time, new IceAgentOptions
            {
                // RFC 8445 §6.1.1: a lite agent is always controlled.
                Role = _config.IceLite ? IceRole.Controlled : role,
                Lite = _config.IceLite,
                StunServer = _config.StunServer,
                TurnServer = _config.TurnServer,
                TurnCredentials = _config.TurnCredentials,
                ConnectTimeout = _config.ConnectTimeout,
            }, _logs.CreateLogger<IceAgent>());
            _state = RtcConnectionState.Connecting;
            return _agent;
        }
    }

    private static async Task GatheredAsync(IceAgent agent, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        agent.GatheringComplete += (_, _) => done.TrySetResult();
        agent.Start();
        await done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private SdpDescription LocalDescription(IceAgent agent, SdpSetup setup, string mid) => new()
    {
        IceUfrag = agent.LocalUfrag,
        IcePwd = agent.LocalPassword,
        Candidates = agent.LocalCandidates,
        FingerprintAlgorithm = "sha-256",
        Fingerprint = _certificate.Fingerprint,
        Setup = setup,
        Mid = mid,
        SctpPort = _config.Sctp.Port,
        MaxMessageSize = _config.Sctp.MaxMessageSize,
        IceLite = _config.IceLite,
    };

    private void ApplyRemote(IceAgent agent, SdpDescription remote)
    {
        agent.SetRemoteCredentials(remote.IceUfrag, remote.IcePwd);

        // RFC 8839 §5.1: .local (mDNS) candidates were skipped by the parser; the peer's checks reveal its address as
        // a peer-reflexive candidate (RFC 8445 §7.3.1.3), which is how browsers on one host reach us.
        foreach (var c in remote.Candidates) agent.AddRemoteCandidate(c);
        if (remote.EndOfCandidates) agent.AddRemoteEndOfCandidates();
        MaxMessageSize = remote.MaxMessageSize == 0 ? _config.Sctp.MaxMessageSize : Math.Min(_config.Sctp.MaxMessageSize, remote.MaxMessageSize);
    }

    private Task RunAsync(IceAgent agent, SdpDescription remote) => RunAsync(agent.Connected, remote.Fingerprint);

    private async Task RunAsync(Task<IDatagramSocket> selected, byte[] remoteFingerprint)
    {
        using var timeout = new CancellationTokenSource(_config.ConnectTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _closing.Token);
        try
        {
            var path = await selected.WaitAsync(linked.Token).ConfigureAwait(false);
            var dtls = await DtlsSession.HandshakeAsync(path, _certificate, remoteFingerprint, _dtlsClient, _config.ConnectTimeout, _log, linked.Token).ConfigureAwait(false);
            Mark(ref _dtlsAt);
            SctpAssociation sctp;
            lock (_gate)
            {
                if (_disposed != 0)
                {
                    dtls.Dispose();
                    return;
                }

                _dtls = dtls;
                _sctp = sctp = new SctpAssociation(_config.Sctp, _time, p => dtls.Send(p), this, _logs.CreateLogger<SctpAssociation>());
            }

            dtls.Start(data => sctp.Receive(data.Span), reason => sctp.Abort("DTLS " + reason));

            // RFC 9260 §5.2.1 lets both ends send INIT (browsers do), but werift decides who initiates from its ICE
            // role: once its DTLS transport is up (which needs a negotiated use_srtp profile, see DtlsSession) the
            // controlling side sends INIT and ignores the peer's; until then it takes an INIT as the server would and
            // breaks (it then opens its channels with no stream id). The DTLS server finishes its handshake first, so
            // it sends INIT at once; the DTLS client answers the peer's INIT (werift's, as offerer, comes within
            // milliseconds) and sends its own only if nothing came within 3 s (a collision still resolves to one
            // association).
            if (!_dtlsClient) sctp.Connect();
            else
            {
                var waited = await Task.WhenAny(_established.Task, Task.Delay(ClientInitDelay, _time, linked.Token)).ConfigureAwait(false);
                if (waited != _established.Task && sctp.State == SctpState.Closed) sctp.Connect();
            }

            await _established.Task.WaitAsync(linked.Token).ConfigureAwait(false);
            lock (_gate) _state = RtcConnectionState.Connected;
            _log.LogDebug("WebRTC connected: {Timings}", Timings);
            _connected.TrySetResult();
        }
        catch (Exception ex) when (ex is OperationCanceledException or IceFailedException or DtlsHandshakeException or InvalidOperationException)
        {
            var why = ex is OperationCanceledException ? (_closing.IsCancellationRequested ? "closed" : "timed out") : ex.Message;
            lock (_gate)
            {
                if (_state != RtcConnectionState.Closed) _state = RtcConnectionState.Failed;
            }

            _log.LogInformation("WebRTC connection failed: {Reason}", why);
            _connected.TrySetException(new InvalidOperationException("WebRTC connection failed: " + why, ex));
            _closed.TrySetResult();
        }
    }

    /// <summary>Waits for the next channel the remote opens; null once the connection is closed.</summary>
    public async Task<RtcDataChannel?> AcceptDataChannelAsync(CancellationToken cancellationToken = default)
    {
        while (await _incoming.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (_incoming.Reader.TryRead(out var c)) return c;
        }

        return null;
    }

    /// <summary>
    /// Opens a channel (RFC 8832 §6: DATA_CHANNEL_OPEN on a stream of our parity — even for the DTLS client, odd for
    /// the server — usable at once, ordered until the ACK). Waits until the connection is up.
    /// </summary>
    public async Task<RtcDataChannel> CreateDataChannelAsync(string label, RtcDataChannelInit? init = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(label);
        init ??= new RtcDataChannelInit();
        init.Validate();
        if (System.Text.Encoding.UTF8.GetByteCount(label) > DcepOpen.MaxText) throw new ArgumentException("Label too long.", nameof(label));
        await _connected.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        RtcDataChannel channel;
        SctpAssociation sctp;
        lock (_gate)
        {
            sctp = _sctp ?? throw new InvalidOperationException("Not connected.");
            if (_channels.Count >= _config.MaxChannels) throw new InvalidOperationException("Too many data channels.");
            var id = init.Id ?? FreeId();
            if (_channels.ContainsKey(id)) throw new InvalidOperationException($"Stream {id} is in use.");
            channel = new RtcDataChannel(this, id, label, init with { Id = id }, _config.MaxQueuedMessages) { Acknowledged = init.Negotiated };
            _channels[id] = channel;
        }

        if (!init.Negotiated)
        {
            var open = new DcepOpen(init.ChannelType, 0, init.Reliability, label, init.Protocol);
            if (!sctp.Send(channel.Id, Ppid.Dcep, open.Encode(), unordered: false, applicationData: false)) throw new InvalidOperationException("The connection is closed.");
        }

        channel.SetOpen();
        return channel;
    }

    private ushort FreeId()
    {
        for (var id = _dtlsClient ? 0 : 1; id < 65535; id += 2)
        {
            if (!_channels.ContainsKey((ushort)id)) return (ushort)id;
        }

        throw new InvalidOperationException("No free stream id.");
    }

    internal long BufferedAmount(ushort id) => _sctp?.BufferedAmount(id) ?? 0;

    internal bool SendOnChannel(RtcDataChannel channel, uint ppid, ReadOnlyMemory<byte> data)
    {
        var sctp = _sctp;
        if (sctp is null) return false;
        var unordered = !channel.Ordered && channel.Acknowledged;
        return sctp.Send(channel.Id, ppid, data, unordered, channel.MaxRetransmits, channel.MaxPacketLifeTime);
    }

    internal void ResetOutgoing(RtcDataChannel channel) => _sctp?.ResetStreams([channel.Id]);

    void ISctpHandler.OnEstablished()
    {
        Mark(ref _sctpAt);
        _established.TrySetResult();
    }

    bool ISctpHandler.OnMessage(ushort stream, uint ppid, byte[] data)
    {
        RtcDataChannel? channel;
        lock (_gate) _channels.TryGetValue(stream, out channel);
        if (ppid == Ppid.Dcep)
        {
            OnDcep(stream, data, channel);
            return false;
        }

        if (channel is null) return false;
        var message = ppid switch
        {
            Ppid.String => new RtcMessage(data, true),
            Ppid.StringEmpty => new RtcMessage(ReadOnlyMemory<byte>.Empty, true),
            Ppid.BinaryEmpty => new RtcMessage(ReadOnlyMemory<byte>.Empty, false),
            _ => new RtcMessage(data, false),
        };
        return channel.Deliver(message, data.Length);
    }

    /// <summary>The application read a message the association charged to its receive window (see <see cref="ISctpHandler.OnMessage"/>).</summary>
    internal void Consumed(int wireLength) => _sctp?.Consumed(wireLength);

    private void OnDcep(ushort stream, byte[] data, RtcDataChannel? existing)
    {
        if (data.Length == 1 && data[0] == DcepOpen.AckType)
        {
            if (existing is not null) existing.Acknowledged = true;
            return;
        }

        // RFC 8832 §6: the peer opens on a stream of its parity; a bad or duplicate OPEN or one over the limit is
        // refused by resetting the stream.
        if (!DcepOpen.TryDecode(data, out var open) || existing is not null || (stream % 2 == 0) == _dtlsClient)
        {
            _log.LogDebug("Refused a DATA_CHANNEL_OPEN on stream {Stream}", stream);
            if (existing is null) _sctp?.ResetStreams([stream]);
            return;
        }

        RtcDataChannel channel;
        lock (_gate)
        {
            if (_channels.Count >= _config.MaxChannels)
            {
                _sctp?.ResetStreams([stream]);
                return;
            }

            channel = new RtcDataChannel(this, stream, open!.Label, RtcDataChannelInit.FromOpen(open, stream), _config.MaxQueuedMessages) { Acknowledged = true };
            _channels[stream] = channel;
        }

        _sctp?.Send(stream, Ppid.Dcep, DcepOpen.EncodeAck(), unordered: false, applicationData: false);
        channel.SetOpen();
        _incoming.Writer.TryWrite(channel);
        DataChannelOpened?.Invoke(this, channel);
    }

    void ISctpHandler.OnIncomingStreamReset(ushort stream)
    {
        RtcDataChannel? channel;
        lock (_gate) _channels.TryGetValue(stream, out channel);
        if (channel is null) return;
        if (channel.OnIncomingReset()) ResetOutgoing(channel);
        CheckClosed(channel);
    }

    void ISctpHandler.OnOutgoingStreamReset(ushort stream)
    {
        RtcDataChannel? channel;
        lock (_gate) _channels.TryGetValue(stream, out channel);
        if (channel is null) return;
        channel.OnOutgoingReset();
        CheckClosed(channel);
    }

    private void CheckClosed(RtcDataChannel channel)
    {
        if (channel.State != RtcDataChannelState.Closed) return;

        // The stream id is free again only now that both directions are reset.
        lock (_gate)
        {
            if (!_channels.Remove(channel.Id, out var c) || c != channel) return;
        }

        DataChannelClosed?.Invoke(this, channel);
    }

    void ISctpHandler.OnBufferedAmountLow(ushort stream)
    {
        RtcDataChannel? channel;
        lock (_gate) _channels.TryGetValue(stream, out channel);
        channel?.OnBufferedAmountLow();
    }

    void ISctpHandler.OnClosed(string reason)
    {
        _log.LogInformation("WebRTC association closed: {Reason}", reason);
        _established.TrySetException(new InvalidOperationException(reason));
        _ = _established.Task.Exception;
        CloseChannels();
    }

    private void CloseChannels()
    {
        List<RtcDataChannel> channels;
        lock (_gate)
        {
            channels = [.. _channels.Values];
            _channels.Clear();
            if (_state is RtcConnectionState.Connected or RtcConnectionState.Connecting) _state = RtcConnectionState.Closed;
        }

        _incoming.Writer.TryComplete();
        _closed.TrySetResult();
        foreach (var c in channels)
        {
            c.Abort();
            DataChannelClosed?.Invoke(this, c);
        }
    }

    /// <summary>Closes everything: SCTP ABORT, DTLS close_notify, the ICE agent (and its socket).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _closing.CancelAsync().ConfigureAwait(false);

        // The connect task ends on the cancellation above (it catches its own failures); it is awaited, not left behind.
        await _run.ConfigureAwait(false);
        SctpAssociation? sctp;
        DtlsSession? dtls;
        lock (_gate)
        {
            sctp = _sctp;
            dtls = _dtls;
            _state = RtcConnectionState.Closed;
        }

        sctp?.Abort("closed");
        sctp?.Dispose();
        dtls?.Dispose();
        CloseChannels();
        _connected.TrySetException(new InvalidOperationException("The connection is closed."));
        _ = _connected.Task.Exception;
        if (_agent is not null) await _agent.DisposeAsync().ConfigureAwait(false);
        else if (!_pathOnly) _socket.Dispose();
        _closing.Dispose();
    }
}
