using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Net;

namespace Peerway.Nat.Stun;

/// <summary>Options of <see cref="StunServer"/>.</summary>
public sealed record StunServerOptions
{
    /// <summary>SOFTWARE attribute in responses (RFC 8489 §14.14); null leaves it out.</summary>
    public string? Software { get; init; } = "Peerway";

    /// <summary>
    /// UDP requests answered per second per source IP (token bucket); 0 answers every request. A Binding response is
    /// about twice its request, so without a limit a spoofed source turns the server into an amplifier (the reflection
    /// attack of RFC 8489's security considerations, "DDoS against a Target"). A client needs a handful of requests per
    /// gathering or RFC 5780 probe, retransmissions included; 20/s with a burst of 40 leaves room for many of them
    /// behind one NAT.
    /// </summary>
    public double MaxRequestsPerIpPerSecond { get; init; } = 20;

    /// <summary>Requests a source may send at once before the per-second rate applies.</summary>
    public int RateLimitBurst { get; init; } = 40;

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentException">Software is longer than 127 characters, MaxRequestsPerIpPerSecond is negative or not finite, or RateLimitBurst is below 1.</exception>
    public void Validate()
    {
        if (Software is { Length: > 127 }) throw new ArgumentException("SOFTWARE is limited to 127 characters (RFC 8489 §14.14).");
        if (!double.IsFinite(MaxRequestsPerIpPerSecond) || MaxRequestsPerIpPerSecond < 0) throw new ArgumentException("MaxRequestsPerIpPerSecond must be ≥ 0 (0: no limit).");
        if (RateLimitBurst < 1) throw new ArgumentException("RateLimitBurst must be at least 1.");
    }
}

/// <summary>
/// A STUN Binding server (RFC 8489 §8) with RFC 5780 behaviour discovery. Given one socket it answers Binding
/// requests; given four (primary IP/port, primary IP/alternate port, alternate IP/primary port, alternate IP and
/// port, in that order) it honours CHANGE-REQUEST and reports OTHER-ADDRESS and RESPONSE-ORIGIN.
/// </summary>
public sealed partial class StunServer : IDisposable
{
    /// <summary>Largest response we build (a Binding response is well under 200 bytes).</summary>
    public const int MaxResponseSize = 512;

    // RFC 5780 §7.2: CHANGE-REQUEST flags.
    private const uint ChangeIp = 0x04;
    private const uint ChangePort = 0x02;

    private static readonly HashSet<ushort> Known =
    [
        StunAttributeType.ChangeRequest, StunAttributeType.Padding, StunAttributeType.ResponsePort, StunAttributeType.Username,
        StunAttributeType.MessageIntegrity, StunAttributeType.MessageIntegritySha256, StunAttributeType.UserHash,
        StunAttributeType.Realm, StunAttributeType.Nonce, StunAttributeType.Priority, StunAttributeType.UseCandidate,
    ];

    private readonly IReadOnlyList<IDatagramSocket> _sockets;
    private readonly StunServerOptions _options;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly RateLimiter? _limiter; // guarded by _limiterGate: the sockets' handlers may run concurrently
    private readonly Lock _limiterGate = new();
    private long _answered;
    private long _dropped;
    private long _rateLimited;

    /// <summary>
    /// Creates a server on one socket, or on four for RFC 5780 (see the class remarks for their order). It owns the sockets
    /// and receives nothing until <see cref="Start"/>.
    /// </summary>
    /// <param name="sockets">One socket, or four: primary, alternate port, alternate IP, alternate IP and port.</param>
    /// <param name="options">Server options; validated here.</param>
    /// <param name="log">Logger; null logs nothing.</param>
    /// <param name="time">Clock for the rate limiter; null is <see cref="TimeProvider.System"/>.</param>
    /// <exception cref="ArgumentException">Not 1 or 4 sockets, or <paramref name="options"/> is invalid.</exception>
    public StunServer(IReadOnlyList<IDatagramSocket> sockets, StunServerOptions options, ILogger<StunServer>? log = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(sockets);
        ArgumentNullException.ThrowIfNull(options);
        if (sockets.Count is not (1 or 4)) throw new ArgumentException("A STUN server takes 1 socket, or 4 for RFC 5780.", nameof(sockets));
        options.Validate();
        _sockets = sockets;
        _options = options;
        _log = log ?? NullLogger<StunServer>.Instance;
        _time = time ?? TimeProvider.System;
        if (options.MaxRequestsPerIpPerSecond > 0) _limiter = new RateLimiter(options.MaxRequestsPerIpPerSecond, options.RateLimitBurst);
    }

    /// <summary>True with four sockets: the server honours CHANGE-REQUEST and sends OTHER-ADDRESS (RFC 5780).</summary>
    public bool SupportsBehaviorDiscovery => _sockets.Count == 4;

    /// <summary>Requests answered so far (success and error responses).</summary>
    public long Answered => Interlocked.Read(ref _answered);

    /// <summary>Datagrams that were not a well-formed STUN request (discarded, RFC 8489 §6.3).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>UDP requests left unanswered because their source exceeded <see cref="StunServerOptions.MaxRequestsPerIpPerSecond"/>.</summary>
    public long RateLimited => Interlocked.Read(ref _rateLimited);

    /// <summary>The local address of the first (primary) socket.</summary>
    public IPEndPoint PrimaryEndPoint => _sockets[0].LocalEndPoint;

    /// <summary>Starts receiving on every socket.</summary>
    public void Start()
    {
        for (var i = 0; i < _sockets.Count; i++)
        {
            var index = i;
            _sockets[i].Start((datagram, remote) => OnDatagram(index, datagram, remote));
        }
    }

    private void OnDatagram(int index, ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        // Every datagram from a source costs a token, so a flood is cut off before any work is done for it.
        if (_limiter is not null && !TryAcquire(remote.Address))
        {
            Interlocked.Increment(ref _rateLimited);
            return;
        }

        Span<byte> response = stackalloc byte[MaxResponseSize];
        var written = Respond(datagram, remote, index, allowChange: true, response, out var from, out var to);
        if (written == 0) return;
        _sockets[from].Send(response[..written], to);
    }

    private bool TryAcquire(IPAddress source)
    {
        lock (_limiterGate) return _limiter!.TryAcquire(source, _time.GetUtcNow());
    }

    /// <summary>
    /// The sans-I/O core: the response to <paramref name="request"/> received on socket <paramref name="localIndex"/>
    /// from <paramref name="remote"/>, written to <paramref name="response"/>; 0 when nothing is to be sent.
    /// <paramref name="fromIndex"/> is the socket to send it from (differs under CHANGE-REQUEST) and
    /// <paramref name="to"/> the destination (differs under RESPONSE-PORT).
    /// </summary>
    public int Respond(ReadOnlySpan<byte> request, IPEndPoint remote, int localIndex, bool allowChange, Span<byte> response, out int fromIndex, out IPEndPoint to)
    {
        ArgumentNullException.ThrowIfNull(remote);
        fromIndex = localIndex;
        to = remote;
        var fast = TryRespondFast(request, remote, localIndex, response);
        if (fast >= 0) return fast;
        if (!StunMessage.TryDecode(request, out var message, out _) || message!.Class != StunClass.Request)
        {
            Interlocked.Increment(ref _dropped);
            return 0;
        }

        // RFC 8489 §7.3: a FINGERPRINT that does not match means this is not a STUN message for us.
        if (message.FingerprintIndex >= 0 && !StunAttributes.VerifyFingerprint(message))
        {
            Interlocked.Increment(ref _dropped);
            return 0;
        }

        var withFingerprint = message.FingerprintIndex >= 0;
        if (message.Method != StunMethod.Binding)
        {
            return Error(message, StunErrorCode.BadRequest, null, withFingerprint, response);
        }

        var unknown = StunAttributes.UnknownComprehensionRequired(message, Known);
        if (unknown.Length > 0) return Error(message, StunErrorCode.UnknownAttribute, unknown, withFingerprint, response);

        if (message.Has(StunAttributeType.ChangeRequest))
        {
            // RFC 5780 §6.1: without an alternate address the server answers 420; a malformed value is a 400.
            if (!SupportsBehaviorDiscovery || !allowChange) return Error(message, StunErrorCode.UnknownAttribute, [StunAttributeType.ChangeRequest], withFingerprint, response);
            if (!message.TryGetUInt32(StunAttributeType.ChangeRequest, out var flags)) return Error(message, StunErrorCode.BadRequest, null, withFingerprint, response);
            fromIndex = localIndex ^ ((flags & ChangeIp) != 0 ? 2 : 0) ^ ((flags & ChangePort) != 0 ? 1 : 0);
        }

        if (message.TryGet(StunAttributeType.ResponsePort, out var responsePort))
        {
            // RFC 5780 §7.5: RESPONSE-PORT (UDP only) names the port the response goes to, at the source IP.
            if (!allowChange) return Error(message, StunErrorCode.UnknownAttribute, [StunAttributeType.ResponsePort], withFingerprint, response);
            if (responsePort.Length != 4) return Error(message, StunErrorCode.BadRequest, null, withFingerprint, response);
            var port = (message.Raw[responsePort.Offset] << 8) | message.Raw[responsePort.Offset + 1];
            if (port == 0) return Error(message, StunErrorCode.BadRequest, null, withFingerprint, response);
            to = new IPEndPoint(remote.Address, port);
        }

        // RFC 8489 §8.1 (Binding success): XOR-MAPPED-ADDRESS is the request's source transport address.
        var w = new StunWriter(response, StunMethod.Binding, StunClass.SuccessResponse, message.TransactionId);
        w.AddXorAddress(StunAttributeType.XorMappedAddress, remote);
        if (SupportsBehaviorDiscovery)
        {
            // RFC 5780 §6.1: MAPPED-ADDRESS for old clients, RESPONSE-ORIGIN and OTHER-ADDRESS.
            w.AddAddress(StunAttributeType.MappedAddress, remote);
            w.AddAddress(StunAttributeType.ResponseOrigin, _sockets[fromIndex].LocalEndPoint);
            w.AddAddress(StunAttributeType.OtherAddress, _sockets[localIndex ^ 3].LocalEndPoint);
        }

        if (_options.Software is not null) w.AddUtf8(StunAttributeType.Software, _options.Software);
        if (withFingerprint) w.AddFingerprint();
        Interlocked.Increment(ref _answered);
        return w.Length;
    }

    /// <summary>
    /// The common case without allocating: a Binding request carrying only comprehension-optional attributes
    /// (typically none, or SOFTWARE and FINGERPRINT). Returns -1 to fall back to the full path.
    /// </summary>
    private int TryRespondFast(ReadOnlySpan<byte> request, IPEndPoint remote, int localIndex, Span<byte> response)
    {
        if (request.Length < StunLimits.HeaderSize || request[0] != 0x00 || request[1] != 0x01) return -1;
        if (StunMessage.Validate(request, out _) != StunDecodeError.None) return -1;
        var fingerprintAt = -1;
        for (var pos = StunLimits.HeaderSize; pos < request.Length;)
        {
            var type = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(request[pos..]);
            var length = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(request[(pos + 2)..]);
            if (StunAttributeType.IsComprehensionRequired(type)) return -1;
            if (type == StunAttributeType.Fingerprint)
            {
                if (length != 4) return -1;
                fingerprintAt = pos;
            }

            pos += 4 + StunMessage.Pad4(length);
        }

        if (fingerprintAt >= 0)
        {
            // RFC 8489 §14.7: FINGERPRINT is last, so the header length already counts it.
            var crc = System.IO.Hashing.Crc32.HashToUInt32(request[..fingerprintAt]) ^ StunLimits.FingerprintXor;
            if (crc != System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(request[(fingerprintAt + 4)..]))
            {
                Interlocked.Increment(ref _dropped);
                return 0;
            }
        }

        var w = new StunWriter(response, StunMethod.Binding, StunClass.SuccessResponse, request.Slice(8, StunLimits.TransactionIdSize));
        w.AddXorAddress(StunAttributeType.XorMappedAddress, remote);
        if (SupportsBehaviorDiscovery)
        {
            w.AddAddress(StunAttributeType.MappedAddress, remote);
            w.AddAddress(StunAttributeType.ResponseOrigin, _sockets[localIndex].LocalEndPoint);
            w.AddAddress(StunAttributeType.OtherAddress, _sockets[localIndex ^ 3].LocalEndPoint);
        }

        if (_options.Software is not null) w.AddUtf8(StunAttributeType.Software, _options.Software);
        if (fingerprintAt >= 0) w.AddFingerprint();
        Interlocked.Increment(ref _answered);
        return w.Length;
    }

    private int Error(StunMessage request, int code, ushort[]? unknown, bool withFingerprint, Span<byte> response)
    {
        LogError(code, request.Method);
        var w = new StunWriter(response, request.Method, StunClass.ErrorResponse, request.TransactionId);
        w.AddErrorCode(code);
        if (unknown is not null) w.AddUnknownAttributes(unknown.AsSpan(0, Math.Min(unknown.Length, 32)));
        if (withFingerprint) w.AddFingerprint();
        return w.Length;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "STUN error {Code} for {Method}")]
    private partial void LogError(int code, StunMethod method);

    /// <summary>Disposes the sockets.</summary>
    public void Dispose()
    {
        foreach (var s in _sockets) s.Dispose();
    }
}
