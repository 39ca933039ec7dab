using System.Buffers.Binary;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Peerway.WebRtc.Sctp;

/// <summary>RFC 9260 §4 association states (the subset a data channel goes through).</summary>
internal enum SctpState
{
    Closed,
    CookieWait,
    CookieEchoed,
    Established,
    ShutdownPending,
    ShutdownSent,
    ShutdownReceived,
    ShutdownAckSent,
}

/// <summary>What the association tells its owner; raised outside the lock, in order.</summary>
internal interface ISctpHandler
{
    void OnEstablished();

    /// <summary>
    /// A complete message. True when the handler keeps it for the application: its bytes then count against our
    /// receive window until <see cref="SctpAssociation.Consumed(int)"/> (RFC 9260 §6.2: the window closes while the
    /// application does not read, which throttles the sender); false releases them at once.
    /// </summary>
    bool OnMessage(ushort stream, uint ppid, byte[] data);

    /// <summary>RFC 6525: the peer reset its outgoing stream (our incoming one).</summary>
    void OnIncomingStreamReset(ushort stream);

    /// <summary>RFC 6525: the peer confirmed our reset of an outgoing stream.</summary>
    void OnOutgoingStreamReset(ushort stream);

    /// <summary>Bytes of a stream's messages not yet acknowledged (or abandoned) went down.</summary>
    void OnBufferedAmountLow(ushort stream);

    void OnClosed(string reason);
}

/// <summary>
/// An SCTP association (RFC 9260), sans I/O, as WebRTC runs it over DTLS (RFC 8261): the four-way handshake with a
/// signed state cookie, DATA/SACK with gap blocks, fragmentation and reassembly, congestion control with fast
/// retransmit and an RTO (Karn), HEARTBEAT, ABORT/SHUTDOWN, partial reliability (RFC 3758 FORWARD-TSN) and outgoing
/// stream reset (RFC 6525). Packets go out through the output delegate; time comes from the TimeProvider. One lock
/// guards the state; handler callbacks run after it is released.
/// </summary>
internal sealed partial class SctpAssociation : IDisposable
{
    private readonly SctpOptions _options;
    private readonly TimeProvider _time;
    private readonly Action<byte[]> _output;
    private readonly ISctpHandler _handler;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly byte[] _cookieKey = RandomNumberGenerator.GetBytes(32);
    private readonly ITimer _timer;
    private readonly List<Action> _events = [];
    private SctpState _state = SctpState.Closed;
    private readonly uint _localTag;
    private uint _peerTag;
    private uint _peerRwnd;
    private bool _peerForwardTsn;
    private bool _peerReconfig;
    private byte[]? _initPacket;
    private int _initSent;
    private DateTimeOffset? _t1Due;
    private DateTimeOffset? _t2Due;
    private int _t2Sent;
    private DateTimeOffset _heartbeatDue;
    private int _heartbeatsUnanswered;
    private int _errorCount;
    private bool _disposed;

    public SctpAssociation(SctpOptions options, TimeProvider time, Action<byte[]> output, ISctpHandler handler, ILogger? log = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _time = time;
        _output = output;
        _handler = handler;
        _log = log ?? NullLogger.Instance;
        _localTag = NonZeroRandom();
        _nextTsn = NonZeroRandom();
        _myReconfigSeq = _nextTsn;
        _rto = options.InitialRto;
        _advertisedRwnd = (uint)options.ReceiveWindow;
        _cwnd = Math.Min(4 * options.Mtu, Math.Max(2 * options.Mtu, 4380));
        _ssthresh = uint.MaxValue;
        _timer = time.CreateTimer(static s => ((SctpAssociation)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public SctpState State
    {
        get
        {
            lock (_gate) return _state;
        }
    }

    /// <summary>Our verification tag (tests craft packets the association accepts).</summary>
    internal uint LocalTag
    {
        get
        {
            lock (_gate) return _localTag;
        }
    }

    /// <summary>Whether the peer takes FORWARD-TSN (partial reliability needs it).</summary>
    public bool PeerSupportsForwardTsn
    {
        get
        {
            lock (_gate) return _peerForwardTsn;
        }
    }

    /// <summary>Diagnostics: congestion window, slow-start threshold, bytes in flight, RTO.</summary>
    internal (long Cwnd, long Ssthresh, long Flight, TimeSpan Rto) Congestion
    {
        get
        {
            lock (_gate) return (_cwnd, _ssthresh, FlightSize(), _rto);
        }
    }

    private static uint NonZeroRandom()
    {
        uint v;
        do v = BinaryPrimitives.ReadUInt32BigEndian(RandomNumberGenerator.GetBytes(4));
        while (v == 0);
        return v;
    }

    /// <summary>RFC 9260 §5.1: sends INIT and waits in COOKIE-WAIT. Both WebRTC ends may do it at once (§5.2.1).</summary>
    public void Connect()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_state != SctpState.Closed) return;
            var init = new InitChunk(false, _localTag, (uint)_options.ReceiveWindow, _options.Streams, _options.Streams, _nextTsn, null, true, true);

            // RFC 9260 §8.5.1: an INIT goes with verification tag 0.
            _initPacket = Packet(0, init);
            _state = SctpState.CookieWait;
            SendInitLike();
        }

        Raise();
    }

    private void SendInitLike()
    {
        _initSent++;
        _output(_initPacket!);
        _t1Due = _time.GetUtcNow() + Backoff(_options.InitialRto, _initSent - 1);
        Arm();
    }

    private TimeSpan Backoff(TimeSpan rto, int times)
    {
        var r = rto;
        for (var i = 0; i < times && r < _options.MaxRto; i++) r *= 2;
        return r > _options.MaxRto ? _options.MaxRto : r;
    }

    private byte[] Packet(uint tag, params SctpChunk[] chunks) => new SctpPacket(_options.Port, _options.Port, tag, chunks).Encode();

    /// <summary>Feeds one packet received from the peer (the payload of one DTLS record). Bad packets are dropped.</summary>
    public void Receive(ReadOnlySpan<byte> data)
    {
        if (!SctpPacket.TryDecode(data, out var packet, out var error))
        {
            LogDropped(error.ToString());
            return;
        }

        lock (_gate)
        {
            if (_disposed || _state == SctpState.Closed && _closedForGood) return;
            HandlePacket(packet!);
            Flush();
        }

        Raise();
    }

    private bool _closedForGood;

    private void HandlePacket(SctpPacket packet)
    {
        var chunks = packet.Chunks;
        var first = chunks[0];

        // RFC 9260 §8.5.1: INIT with tag 0 alone in its packet; ABORT/SHUTDOWN COMPLETE with T may carry the peer's
        // tag; COOKIE ECHO is checked against the cookie; everything else must carry our tag.
        if (first is InitChunk { Ack: false } init)
        {
            if (packet.VerificationTag != 0 || chunks.Count != 1) return;
            HandleInit(init);
            return;
        }

        var reflected = first is AbortChunk { Error: false, TagReflected: true };
        if (first is not CookieEchoChunk && packet.VerificationTag != (reflected ? _peerTag : _localTag)) return;

        var hadData = false;
        foreach (var chunk in chunks)
        {
            switch (chunk)
            {
                case InitChunk { Ack: true } ack:
                    HandleInitAck(ack);
                    break;
                case CookieEchoChunk echo:
                    if (!HandleCookieEcho(echo, packet.VerificationTag)) return;
                    break;
                case ControlChunk { Kind: SctpChunkType.CookieAck }:
                    if (_state == SctpState.CookieEchoed) Establish();
                    break;
                case DataChunk d:
                    if (_state is SctpState.Established or SctpState.ShutdownPending or SctpState.ShutdownSent)
                    {
                        HandleData(d);
                        hadData = true;
                    }

                    break;
                case SackChunk sack:
                    if (IsUp) HandleSack(sack);
                    break;
                case ForwardTsnChunk forward:
                    if (IsUp) HandleForwardTsn(forward);
                    hadData = true;
                    break;
                case ReconfigChunk reconfig:
                    if (IsUp) HandleReconfig(reconfig);
                    break;
                case HeartbeatChunk { Ack: false } hb:
                    // RFC 9260 §8.3: echo the Heartbeat Info as it came.
                    if (IsUp) _control.Add(new HeartbeatChunk(true, hb.Info.ToArray()));
                    break;
                case HeartbeatChunk { Ack: true }:
                    _heartbeatsUnanswered = 0;
                    _errorCount = 0;
                    break;
                case AbortChunk { Error: false } abort:
                    Close("aborted by the peer" + AbortReason(abort.Causes.Span), sendAbort: false);
                    return;
                case ControlChunk { Kind: SctpChunkType.Shutdown } shutdown:
                    HandleShutdown(shutdown.CumulativeTsn);
                    break;
                case ControlChunk { Kind: SctpChunkType.ShutdownAck }:
                    // RFC 9260 §9.2: answer with SHUTDOWN COMPLETE and close.
                    _output(Packet(_peerTag, new ControlChunk(SctpChunkType.ShutdownComplete)));
                    Close("shut down", sendAbort: false);
                    return;
                case ControlChunk { Kind: SctpChunkType.ShutdownComplete }:
                    if (_state == SctpState.ShutdownAckSent) Close("shut down", sendAbort: false);
                    return;
                case UnknownChunk u:
                    // RFC 9260 §3.2: high bits 00 stop processing; 01 stop and report; 10 skip; 11 skip and report.
                    if ((u.RawType & 0x80) == 0) return;
                    break;
            }
        }

        if (hadData) ScheduleSack();
    }

    private bool IsUp => _state is SctpState.Established or SctpState.ShutdownPending or SctpState.ShutdownSent or SctpState.ShutdownReceived or SctpState.ShutdownAckSent;

    private static string AbortReason(ReadOnlySpan<byte> causes)
    {
        // RFC 9260 §3.3.10.13: cause 12 (user-initiated abort) carries text.
        if (causes.Length < 4 || BinaryPrimitives.ReadUInt16BigEndian(causes) != 12) return "";
        var length = Math.Min(BinaryPrimitives.ReadUInt16BigEndian(causes[2..]), causes.Length);
        if (length <= 4) return "";
        var text = System.Text.Encoding.UTF8.GetString(causes[4..length]);
        return ": " + new string([.. text.Take(200).Where(c => !char.IsControl(c))]);
    }

    private void HandleInit(InitChunk init)
    {
        // RFC 9260 §5.1 B / §5.2.1: answer with INIT ACK carrying our tag and a cookie; no state kept until the echo.
        // In COOKIE-WAIT/ECHOED (both ends initiating at once) we keep our tag and initial TSN.
        if (IsUp && _state != SctpState.Established) return;
        var cookie = MakeCookie(init);
        var ack = new InitChunk(true, _localTag, (uint)_options.ReceiveWindow, _options.Streams, _options.Streams, _initialTsn ?? _nextTsn, cookie, true, true);
        _output(Packet(init.InitiateTag, ack));
    }

    private uint? _initialTsn;

    private void HandleInitAck(InitChunk ack)
    {
        if (_state != SctpState.CookieWait || ack.Cookie is null) return;
        SetPeer(ack.InitiateTag, ack.InitialTsn, ack.ARwnd, ack.ForwardTsnSupported, ack.ReconfigSupported);

        // RFC 9260 §5.1 C: echo the cookie and wait in COOKIE-ECHOED.
        _state = SctpState.CookieEchoed;
        _initPacket = Packet(_peerTag, new CookieEchoChunk(ack.Cookie));
        _initSent = 0;
        SendInitLike();
    }

    private void SetPeer(uint tag, uint initialTsn, uint rwnd, bool forwardTsn, bool reconfig)
    {
        _peerTag = tag;
        _cumulativeIn = initialTsn - 1;
        _peerReconfigSeq = initialTsn;
        _peerRwnd = rwnd;
        _peerForwardTsn = forwardTsn;
        _peerReconfig = reconfig;
    }

    // RFC 9260 §5.1.3: the state cookie — what we need to build the association, a timestamp and a MAC over them.
    private const int CookieBodySize = 4 + 4 + 4 + 4 + 1 + 8;
    private const int CookieSize = CookieBodySize + 32;

    private byte[] MakeCookie(InitChunk init)
    {
        var cookie = new byte[CookieSize];
        var s = cookie.AsSpan();
        BinaryPrimitives.WriteUInt32BigEndian(s, init.InitiateTag);
        BinaryPrimitives.WriteUInt32BigEndian(s[4..], init.InitialTsn);
        BinaryPrimitives.WriteUInt32BigEndian(s[8..], init.ARwnd);
        BinaryPrimitives.WriteUInt32BigEndian(s[12..], _localTag);
        s[16] = (byte)((init.ForwardTsnSupported ? 1 : 0) | (init.ReconfigSupported ? 2 : 0));
        BinaryPrimitives.WriteInt64BigEndian(s[17..], _time.GetUtcNow().ToUnixTimeMilliseconds());
        HMACSHA256.HashData(_cookieKey, s[..CookieBodySize], s[CookieBodySize..]);
        return cookie;
    }

    private bool HandleCookieEcho(CookieEchoChunk echo, uint packetTag)
    {
        var c = echo.Cookie.AsSpan();
        if (c.Length != CookieSize) return false;
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_cookieKey, c[..CookieBodySize], mac);
        if (!CryptographicOperations.FixedTimeEquals(mac, c[CookieBodySize..])) return false;

        // RFC 9260 §5.1.5: a stale cookie is refused; the packet carries the tag the cookie gave us.
        var age = _time.GetUtcNow().ToUnixTimeMilliseconds() - BinaryPrimitives.ReadInt64BigEndian(c[17..]);
        if (age < -1000 || age > _options.CookieLifetime.TotalMilliseconds) return false;
        var ourTag = BinaryPrimitives.ReadUInt32BigEndian(c[12..]);
        if (ourTag != _localTag || packetTag != _localTag) return false;
        var peerTag = BinaryPrimitives.ReadUInt32BigEndian(c);
        if (_state == SctpState.Established)
        {
            // RFC 9260 §5.2.4 D: a repeated echo of the same association just gets another COOKIE ACK.
            if (peerTag == _peerTag) _control.Add(new ControlChunk(SctpChunkType.CookieAck));
            return true;
        }

        if (_state is not (SctpState.Closed or SctpState.CookieWait or SctpState.CookieEchoed)) return false;
        SetPeer(peerTag, BinaryPrimitives.ReadUInt32BigEndian(c[4..]), BinaryPrimitives.ReadUInt32BigEndian(c[8..]), (c[16] & 1) != 0, (c[16] & 2) != 0);
        Establish();
        _control.Add(new ControlChunk(SctpChunkType.CookieAck));
        return true;
    }

    private void Establish()
    {
        if (_state == SctpState.Established) return;
        _state = SctpState.Established;
        _initialTsn ??= _nextTsn;
        _cumulativeAckPoint = _initialTsn.Value - 1;
        _advancedPeerAckPoint = _cumulativeAckPoint;
        _ackPointSet = true;
        _t1Due = null;
        _initPacket = null;
        _heartbeatDue = _time.GetUtcNow() + _options.HeartbeatInterval;
        Arm();
        _events.Add(_handler.OnEstablished);
    }

    /// <summary>RFC 9260 §9.2: graceful close — once everything sent is acknowledged, SHUTDOWN.</summary>
    public void Shutdown()
    {
        lock (_gate)
        {
            if (_state != SctpState.Established) return;
            _state = SctpState.ShutdownPending;
            MaybeSendShutdown();
            Flush();
        }

        Raise();
    }

    private void MaybeSendShutdown()
    {
        if (_state is not (SctpState.ShutdownPending or SctpState.ShutdownSent) || _outbound.Count > 0) return;
        _state = SctpState.ShutdownSent;
        _t2Sent++;
        if (_t2Sent > _options.MaxRetransmits)
        {
            Close("shutdown not acknowledged", sendAbort: true);
            return;
        }

        _output(Packet(_peerTag, new ControlChunk(SctpChunkType.Shutdown, _cumulativeIn)));
        _t2Due = _time.GetUtcNow() + _rto;
        Arm();
    }

    private void HandleShutdown(uint cumulativeTsn)
    {
        if (!IsUp) return;
        HandleSack(new SackChunk(cumulativeTsn, _peerRwnd, [], []));

        // RFC 9260 §9.2: once our outstanding data is acknowledged, SHUTDOWN ACK (again on T2); SHUTDOWN COMPLETE closes.
        if (_state != SctpState.ShutdownAckSent) _state = SctpState.ShutdownReceived;
        MaybeSendShutdownAck();
    }

    private void MaybeSendShutdownAck()
    {
        if (_state is not (SctpState.ShutdownReceived or SctpState.ShutdownAckSent) || _outbound.Count > 0) return;
        _state = SctpState.ShutdownAckSent;
        if (++_t2Sent > _options.MaxRetransmits)
        {
            Close("shutdown not completed", sendAbort: false);
            return;
        }

        _output(Packet(_peerTag, new ControlChunk(SctpChunkType.ShutdownAck)));
        _t2Due = _time.GetUtcNow() + _rto;
        Arm();
    }

    /// <summary>RFC 9260 §9.1: ABORT with a user-initiated reason, then closed.</summary>
    public void Abort(string reason)
    {
        lock (_gate) Close(reason, sendAbort: true);
        Raise();
    }

    private void Close(string reason, bool sendAbort)
    {
        if (_closedForGood) return;
        if (sendAbort && _state != SctpState.Closed) _output(Packet(_peerTag, AbortChunk.UserInitiated(reason)));
        _closedForGood = true;
        _state = SctpState.Closed;
        _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        LogClosed(reason);
        _events.Add(() => _handler.OnClosed(reason));
    }

    private void Arm()
    {
        if (_closedForGood) return;
        DateTimeOffset? due = null;
        void Take(DateTimeOffset? d)
        {
            if (d is { } v && (due is null || v < due)) due = v;
        }

        Take(_t1Due);
        Take(_t2Due);
        Take(_t3Due);
        Take(_sackDue);
        Take(_reconfigDue);
        if (_state == SctpState.Established) Take(_heartbeatDue);
        if (due is null || due == _armedFor) return;
        _armedFor = due;
        var delay = due.Value - _time.GetUtcNow();
        _timer.Change(delay < TimeSpan.Zero ? TimeSpan.Zero : delay, Timeout.InfiniteTimeSpan);
    }

    private DateTimeOffset? _armedFor;

    private void OnTimer()
    {
        lock (_gate)
        {
            if (_disposed || _closedForGood) return;
            _armedFor = null;
            var now = _time.GetUtcNow();
            if (_t1Due <= now)
            {
                // RFC 9260 §5.1 / §6.3.3: T1-init or T1-cookie expired: resend with backoff, give up after Max.Init.Retransmits.
                if (_initSent > _options.MaxInitRetransmits) Close("no answer to INIT", sendAbort: false);
                else SendInitLike();
            }

            if (_t2Due <= now)
            {
                _t2Due = null;
                if (_state == SctpState.ShutdownAckSent) MaybeSendShutdownAck();
                else
                {
                    _state = SctpState.ShutdownPending;
                    MaybeSendShutdown();
                }
            }

            if (_t3Due <= now) OnRetransmissionTimeout(now);
            if (_sackDue <= now) _sackNow = true;
            if (_reconfigDue <= now) ResendReconfig(now);
            if (_state == SctpState.Established && _heartbeatDue <= now) SendHeartbeat(now);
            if (!_closedForGood) Flush();
        }

        Raise();
    }

    private void SendHeartbeat(DateTimeOffset now)
    {
        // RFC 9260 §8.3: an idle path is probed every HB.interval; unanswered probes count as errors (§8.1).
        _heartbeatDue = now + _options.HeartbeatInterval + _rto;
        if (++_heartbeatsUnanswered > _options.MaxRetransmits)
        {
            Close("peer stopped answering heartbeats", sendAbort: true);
            return;
        }

        var info = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(info, 1);
        BinaryPrimitives.WriteUInt16BigEndian(info.AsSpan(2), 12);
        BinaryPrimitives.WriteInt64BigEndian(info.AsSpan(4), now.ToUnixTimeMilliseconds());
        _control.Add(new HeartbeatChunk(false, info));
    }

    private void Raise()
    {
        List<Action> events;
        lock (_gate)
        {
            if (_events.Count == 0) return;
            events = [.. _events];
            _events.Clear();
        }

        foreach (var e in events) e();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _closedForGood = true;
        }

        _timer.Dispose();
    }

    private void LogDropped(string why) => _log.LogDebug("SCTP dropped a packet: {Reason}", why);

    private void LogClosed(string why) => _log.LogDebug("SCTP association closed: {Reason}", why);
}
