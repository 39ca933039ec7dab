using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Nat.Stun;
using Peerway.Net;

namespace Peerway.Nat.Turn;

/// <summary>Creates the relay sockets of allocations (real UDP ports in a range, or virtual ones in tests).</summary>
public interface IRelaySocketFactory
{
    /// <summary>Whether relay sockets of <paramref name="family"/> can be created (440 Address Family not Supported if not).</summary>
    bool Supports(AddressFamily family);

    /// <summary>A new socket bound to a relay address, or null when none is free.</summary>
    IDatagramSocket? TryCreate(AddressFamily family);
}

/// <summary>Counters of a <see cref="TurnServer"/>.</summary>
public sealed class TurnServerStats
{
    internal long RequestsValue;
    internal long ErrorsValue;
    internal long DroppedValue;
    internal long AmplificationDropsValue;
    internal long RelayedToPeerValue;
    internal long RelayedToClientValue;
    internal long RateLimitedValue;
    internal long StrangersLimitedValue;

    /// <summary>STUN requests received (all methods, authenticated or not).</summary>
    public long Requests => Interlocked.Read(ref RequestsValue);

    /// <summary>Error responses sent.</summary>
    public long Errors => Interlocked.Read(ref ErrorsValue);

    /// <summary>Datagrams/frames discarded: malformed, bad FINGERPRINT, no allocation or permission.</summary>
    public long Dropped => Interlocked.Read(ref DroppedValue);

    /// <summary>Answers to unauthenticated requests not sent because they would be larger than the request.</summary>
    public long AmplificationDrops => Interlocked.Read(ref AmplificationDropsValue);

    /// <summary>Datagrams relayed from clients to peers (Send indications and ChannelData).</summary>
    public long RelayedToPeer => Interlocked.Read(ref RelayedToPeerValue);

    /// <summary>Datagrams relayed from peers to clients (Data indications and ChannelData).</summary>
    public long RelayedToClient => Interlocked.Read(ref RelayedToClientValue);

    /// <summary>Packets dropped by the per-allocation bandwidth cap.</summary>
    public long RateLimited => Interlocked.Read(ref RateLimitedValue);

    /// <summary>Binding answers and 401/438 challenges over UDP not sent because their source exceeded
    /// <see cref="TurnServerOptions.MaxUnauthenticatedPerIpPerSecond"/>.</summary>
    public long StrangersLimited => Interlocked.Read(ref StrangersLimitedValue);
}

/// <summary>
/// A TURN server (RFC 8656): Allocate, Refresh, CreatePermission, ChannelBind, Send/Data indications and ChannelData,
/// for clients over UDP (<see cref="IDatagramSocket"/> listeners) and TCP (<see cref="ReceiveStream"/>), with
/// long-term or REST credentials, expiring nonces, quotas, lifetimes, a peer address policy and a per-allocation
/// bandwidth cap. Also answers STUN Binding requests. All state is guarded by one lock; sends happen outside it.
/// </summary>
public sealed partial class TurnServer : IDisposable
{
    /// <summary>RFC 8656 §14.4: "the server MUST reject a REQUESTED-TRANSPORT other than UDP (17)".</summary>
    private const byte UdpProtocol = 17;

    /// <summary>RFC 8656 §12: channel numbers 0x4000 through 0x4FFF; RFC 5766 allowed up to 0x7FFF and clients such
    /// as coturn's still pick from that range, so it is accepted (the first two bits stay 01: no clash with STUN).</summary>
    private const ushort MinChannel = 0x4000;

    private const ushort MaxChannel = 0x7FFF;

    /// <summary>Bound on permissions and channels per allocation.</summary>
    private const int MaxPermissionsPerAllocation = 256;

    private const int ResponseBufferSize = 1024;

    private static readonly HashSet<ushort> Known =
    [
        StunAttributeType.Username, StunAttributeType.MessageIntegrity, StunAttributeType.MessageIntegritySha256,
        StunAttributeType.Realm, StunAttributeType.Nonce, StunAttributeType.UserHash, StunAttributeType.Lifetime,
        StunAttributeType.RequestedTransport, StunAttributeType.DontFragment, StunAttributeType.EvenPort,
        StunAttributeType.RequestedAddressFamily, StunAttributeType.XorPeerAddress, StunAttributeType.ChannelNumber,
        StunAttributeType.Data, StunAttributeType.Padding, StunAttributeType.Priority, StunAttributeType.UseCandidate,
    ];

    private readonly IReadOnlyList<IDatagramSocket> _listeners;
    private readonly IRelaySocketFactory _relays;
    private readonly TimeProvider _time;
    private readonly TurnServerOptions _options;
    private readonly ILogger _log;
    private readonly TurnAuthenticator _auth;
    private readonly PeerAddressPolicy _policy;
    private readonly Lock _gate = new();
    private readonly Dictionary<ClientId, Allocation> _allocations = [];
    private readonly Dictionary<string, int> _perUser = new(StringComparer.Ordinal);
    private readonly RateLimiter? _strangers; // guarded by _gate
    private ITimer? _sweep;
    private bool _disposed;

    /// <summary>Creates a server; it owns <paramref name="listeners"/> and receives nothing until <see cref="Start"/>.</summary>
    /// <param name="listeners">The UDP sockets clients send to.</param>
    /// <param name="relays">Creates the relay socket of each allocation.</param>
    /// <param name="time">Clock for lifetimes, nonces and the sweep timer.</param>
    /// <param name="options">Server options; validated here.</param>
    /// <param name="log">Logger; null logs nothing.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid.</exception>
    public TurnServer(IReadOnlyList<IDatagramSocket> listeners, IRelaySocketFactory relays, TimeProvider time, TurnServerOptions options, ILogger<TurnServer>? log = null)
    {
        ArgumentNullException.ThrowIfNull(listeners);
        ArgumentNullException.ThrowIfNull(relays);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _listeners = listeners;
        _relays = relays;
        _time = time;
        _options = options;
        _log = log ?? NullLogger<TurnServer>.Instance;
        _auth = new TurnAuthenticator(options, time);
        _policy = new PeerAddressPolicy(options.AllowedPeers, options.DeniedPeers);
        if (options.MaxUnauthenticatedPerIpPerSecond > 0) _strangers = new RateLimiter(options.MaxUnauthenticatedPerIpPerSecond, options.UnauthenticatedBurst);
    }

    /// <summary>The server's counters.</summary>
    public TurnServerStats Stats { get; } = new();

    /// <summary>Allocations currently live.</summary>
    public int AllocationCount
    {
        get
        {
            lock (_gate) return _allocations.Count;
        }
    }

    /// <summary>Starts receiving on every listener and the sweep of expired allocations, permissions and channels.</summary>
    public void Start()
    {
        for (var i = 0; i < _listeners.Count; i++)
        {
            var index = i;
            _listeners[i].Start((data, remote) => Receive(new ClientId(remote, index, null), data));
        }

        _sweep = _time.CreateTimer(_ => Sweep(), null, _options.SweepInterval, _options.SweepInterval);
    }

    /// <summary>One frame (STUN or padded ChannelData) from a TCP client.</summary>
    public void ReceiveStream(IStreamLink link, ReadOnlySpan<byte> frame)
    {
        ArgumentNullException.ThrowIfNull(link);
        Receive(new ClientId(link.RemoteEndPoint, -1, link), frame);
    }

    /// <summary>RFC 8656 §3.1: an allocation over TCP ends with its connection.</summary>
    public void StreamClosed(IStreamLink link)
    {
        ArgumentNullException.ThrowIfNull(link);
        lock (_gate) Remove(new ClientId(link.RemoteEndPoint, -1, link));
    }

    private void Receive(ClientId client, ReadOnlySpan<byte> data)
    {
        if (data.Length >= 4 && (data[0] & 0xC0) == 0x40)
        {
            OnChannelData(client, data);
            return;
        }

        if (!StunMessage.TryDecode(data, out var message, out _))
        {
            Interlocked.Increment(ref Stats.DroppedValue);
            return;
        }

        if (message!.FingerprintIndex >= 0 && !StunAttributes.VerifyFingerprint(message))
        {
            Interlocked.Increment(ref Stats.DroppedValue);
            return;
        }

        if (message.Class == StunClass.Indication && message.Method == StunMethod.Send)
        {
            OnSendIndication(client, message);
            return;
        }

        if (message.Class != StunClass.Request)
        {
            Interlocked.Increment(ref Stats.DroppedValue);
            return;
        }

        Interlocked.Increment(ref Stats.RequestsValue);
        Span<byte> response = stackalloc byte[ResponseBufferSize];
        var length = HandleRequest(client, message, response, out var exempt, out var authenticated);
        if (length == 0) return;
        // No unauthenticated answer over UDP larger than its request: a spoofed source must not turn the server into
        // an amplifier. Exempt are Binding and the compact 401/438 challenge (48 bytes + REALM) that RFC 8656 §6.2
        // requires before any client can authenticate (coturn's uclient opens with a 52-byte Allocate). TCP needs no
        // such rule: its handshake proves the source address.
        if (!exempt && client.Link is null && message.Method != StunMethod.Binding && length > data.Length)
        {
            Interlocked.Increment(ref Stats.AmplificationDropsValue);
            return;
        }

        // The exempt answers to strangers (Binding, the challenge) are up to about twice their request: a per-source
        // token bucket bounds what a spoofed source can reflect (RFC 8489, security considerations: "DDoS against a
        // Target").
        if (client.Link is null && !authenticated && _strangers is not null && !TryAcquireStranger(client.Remote.Address))
        {
            Interlocked.Increment(ref Stats.StrangersLimitedValue);
            return;
        }

        SendToClient(client, response[..length]);
    }

    private bool TryAcquireStranger(IPAddress source)
    {
        lock (_gate) return _strangers!.TryAcquire(source, _time.GetUtcNow());
    }

    /// <param name="client">Where the request came from (transport and address).</param>
    /// <param name="request">The decoded STUN request.</param>
    /// <param name="response">Buffer the answer is written to.</param>
    /// <param name="exempt">True when the answer may be larger than the request: authenticated, a Binding response or
    /// the 401/438 challenge.</param>
    /// <param name="authenticated">True when the request passed the long-term credential checks.</param>
    private int HandleRequest(ClientId client, StunMessage request, Span<byte> response, out bool exempt, out bool authenticated)
    {
        exempt = false;
        authenticated = false;
        var unknown = StunAttributes.UnknownComprehensionRequired(request, Known);
        if (unknown.Length > 0) return Error(request, StunErrorCode.UnknownAttribute, null, response, unknown);
        exempt = request.Method == StunMethod.Binding;
        if (exempt) return Binding(client, request, response);
        if (request.Method is not (StunMethod.Allocate or StunMethod.Refresh or StunMethod.CreatePermission or StunMethod.ChannelBind))
        {
            return Error(request, StunErrorCode.BadRequest, null, response);
        }

        // RFC 8489 §9.2.4: the long-term credential checks, in order.
        if (request.IntegrityIndex < 0) return Challenge(out exempt, request, client, StunErrorCode.Unauthenticated, response);
        if (!request.TryGetText(StunAttributeType.Username, StunLimits.MaxUsernameBytes, out var username) ||
            !request.TryGetText(StunAttributeType.Realm, StunLimits.MaxRealmBytes, out var realm) ||
            !request.TryGetText(StunAttributeType.Nonce, StunLimits.MaxNonceBytes, out var nonce))
        {
            return Error(request, StunErrorCode.BadRequest, null, response);
        }

        if (!_auth.IsNonceValid(nonce, client.Remote.Address) || realm != _options.Realm)
        {
            return Challenge(out exempt, request, client, StunErrorCode.StaleNonce, response);
        }

        var key = _auth.KeyFor(username);
        if (key is null || !StunAttributes.VerifyIntegrity(request, key))
        {
            return Challenge(out exempt, request, client, StunErrorCode.Unauthenticated, response);
        }

        exempt = true;
        authenticated = true;
        lock (_gate)
        {
            _allocations.TryGetValue(client, out var allocation);
            if (allocation is not null && request.Method != StunMethod.Allocate && allocation.Username != username)
            {
                return Error(request, StunErrorCode.WrongCredentials, key, response);
            }

            return request.Method switch
            {
                StunMethod.Allocate => Allocate(client, request, username, key, allocation, response),
                StunMethod.Refresh => Refresh(client, request, key, allocation, response),
                StunMethod.CreatePermission => CreatePermission(request, key, allocation, response),
                _ => ChannelBind(request, key, allocation, response),
            };
        }
    }

    private int Binding(ClientId client, StunMessage request, Span<byte> response)
    {
        var w = new StunWriter(response, StunMethod.Binding, StunClass.SuccessResponse, request.TransactionId);
        w.AddXorAddress(StunAttributeType.XorMappedAddress, client.Remote);
        if (_options.Software is not null) w.AddUtf8(StunAttributeType.Software, _options.Software);
        if (request.FingerprintIndex >= 0) w.AddFingerprint();
        return w.Length;
    }

    private int Allocate(ClientId client, StunMessage request, string username, byte[] key, Allocation? existing, Span<byte> response)
    {
        if (existing is not null)
        {
            // RFC 8656 §7.2: a retransmitted Allocate gets the same answer; any other is 437.
            if (existing.AllocateTransaction.AsSpan().SequenceEqual(request.TransactionId))
            {
                existing.AllocateResponse.CopyTo(response);
                return existing.AllocateResponse.Length;
            }

            return Error(request, StunErrorCode.AllocationMismatch, key, response);
        }

        if (!request.TryGet(StunAttributeType.RequestedTransport, out var transport) || transport.Length != 4)
        {
            return Error(request, StunErrorCode.BadRequest, key, response);
        }

        if (request.Raw[transport.Offset] != UdpProtocol) return Error(request, StunErrorCode.UnsupportedTransportProtocol, key, response);

        var family = AddressFamily.InterNetwork;
        if (request.TryGet(StunAttributeType.RequestedAddressFamily, out var requestedFamily))
        {
            // RFC 8656 §14.1: 0x01 IPv4, 0x02 IPv6.
            family = requestedFamily.Length == 4 ? request.Raw[requestedFamily.Offset] switch
            {
                1 => AddressFamily.InterNetwork,
                2 => AddressFamily.InterNetworkV6,
                _ => AddressFamily.Unknown,
            } : AddressFamily.Unknown;
            if (family == AddressFamily.Unknown) return Error(request, StunErrorCode.BadRequest, key, response);
        }

        if (!_relays.Supports(family)) return Error(request, StunErrorCode.AddressFamilyNotSupported, key, response);

        var quotaName = TurnAuthenticator.QuotaName(username);
        _perUser.TryGetValue(quotaName, out var userCount);
        if (userCount >= _options.UserQuota) return Error(request, StunErrorCode.AllocationQuotaReached, key, response);
        if (_allocations.Count >= _options.TotalQuota) return Error(request, StunErrorCode.InsufficientCapacity, key, response);

        var relay = _relays.TryCreate(family);
        if (relay is null) return Error(request, StunErrorCode.InsufficientCapacity, key, response);

        var lifetime = Lifetime(request, allowZero: false);
        var allocation = new Allocation(client, username, quotaName, key, relay, _time.GetUtcNow() + lifetime, Bucket());
        _allocations[client] = allocation;
        _perUser[quotaName] = userCount + 1;
        relay.Start((data, peer) => OnPeerData(allocation, data, peer));

        var w = new StunWriter(response, StunMethod.Allocate, StunClass.SuccessResponse, request.TransactionId);
        w.AddXorAddress(StunAttributeType.XorRelayedAddress, relay.LocalEndPoint);
        w.AddUInt32(StunAttributeType.Lifetime, (uint)lifetime.TotalSeconds);
        w.AddXorAddress(StunAttributeType.XorMappedAddress, client.Remote);
        var length = Finish(ref w, request, key);
        allocation.AllocateTransaction = request.TransactionId.ToArray();
        allocation.AllocateResponse = response[..length].ToArray();
        LogAllocated(client.Remote, relay.LocalEndPoint, username);
        return length;
    }

    private int Refresh(ClientId client, StunMessage request, byte[] key, Allocation? allocation, Span<byte> response)
    {
        if (allocation is null) return Error(request, StunErrorCode.AllocationMismatch, key, response);
        var lifetime = Lifetime(request, allowZero: true);
        if (lifetime == TimeSpan.Zero) Remove(client);
        else allocation.ExpiresAt = _time.GetUtcNow() + lifetime;
        var w = new StunWriter(response, StunMethod.Refresh, StunClass.SuccessResponse, request.TransactionId);
        w.AddUInt32(StunAttributeType.Lifetime, (uint)lifetime.TotalSeconds);
        return Finish(ref w, request, key);
    }

    private int CreatePermission(StunMessage request, byte[] key, Allocation? allocation, Span<byte> response)
    {
        if (allocation is null) return Error(request, StunErrorCode.AllocationMismatch, key, response);
        var peers = new List<IPAddress>();
        foreach (var a in request.Attributes)
        {
            if (a.Type != StunAttributeType.XorPeerAddress) continue;
            if (!StunAttributes.TryReadXorAddress(request.GetValue(a), request.TransactionId, out var peer)) return Error(request, StunErrorCode.BadRequest, key, response);
            if (peer!.AddressFamily != allocation.Family) return Error(request, StunErrorCode.PeerAddressFamilyMismatch, key, response);
            if (!_policy.IsAllowed(peer.Address)) return Error(request, StunErrorCode.Forbidden, key, response);
            peers.Add(peer.Address);
        }

        if (peers.Count == 0) return Error(request, StunErrorCode.BadRequest, key, response);
        if (allocation.Permissions.Count + peers.Count > MaxPermissionsPerAllocation) return Error(request, StunErrorCode.InsufficientCapacity, key, response);
        var until = _time.GetUtcNow() + _options.PermissionLifetime;
        foreach (var p in peers) allocation.Permissions[p] = until;
        var w = new StunWriter(response, StunMethod.CreatePermission, StunClass.SuccessResponse, request.TransactionId);
        return Finish(ref w, request, key);
    }

    private int ChannelBind(StunMessage request, byte[] key, Allocation? allocation, Span<byte> response)
    {
        if (allocation is null) return Error(request, StunErrorCode.AllocationMismatch, key, response);
        if (!request.TryGet(StunAttributeType.ChannelNumber, out var cn) || cn.Length != 4 ||
            !request.TryGetXorAddress(StunAttributeType.XorPeerAddress, out var peer))
        {
            return Error(request, StunErrorCode.BadRequest, key, response);
        }

        var number = BinaryPrimitives.ReadUInt16BigEndian(request.GetValue(cn));
        if (number is < MinChannel or > MaxChannel) return Error(request, StunErrorCode.BadRequest, key, response);
        if (peer!.AddressFamily != allocation.Family) return Error(request, StunErrorCode.PeerAddressFamilyMismatch, key, response);
        if (!_policy.IsAllowed(peer.Address)) return Error(request, StunErrorCode.Forbidden, key, response);
        // RFC 8656 §11.2: a channel is bound to one peer and a peer to one channel.
        if (allocation.ChannelsByNumber.TryGetValue(number, out var bound) && !bound.Peer.Equals(peer)) return Error(request, StunErrorCode.BadRequest, key, response);
        if (allocation.ChannelsByPeer.TryGetValue(peer, out var other) && other.Number != number) return Error(request, StunErrorCode.BadRequest, key, response);
        if (bound is null && allocation.ChannelsByNumber.Count >= MaxPermissionsPerAllocation) return Error(request, StunErrorCode.InsufficientCapacity, key, response);

        var now = _time.GetUtcNow();
        var channel = bound ?? new Channel(number, peer);
        channel.ExpiresAt = now + _options.ChannelLifetime;
        allocation.ChannelsByNumber[number] = channel;
        allocation.ChannelsByPeer[peer] = channel;
        // RFC 8656 §11.2: binding a channel also installs or refreshes the permission.
        allocation.Permissions[peer.Address] = now + _options.PermissionLifetime;
        var w = new StunWriter(response, StunMethod.ChannelBind, StunClass.SuccessResponse, request.TransactionId);
        return Finish(ref w, request, key);
    }

    private void OnSendIndication(ClientId client, StunMessage message)
    {
        // RFC 8656 §10.2: drop a Send indication without XOR-PEER-ADDRESS or DATA, or without a permission.
        if (!message.TryGetXorAddress(StunAttributeType.XorPeerAddress, out var peer) || !message.TryGet(StunAttributeType.Data, out var data))
        {
            Interlocked.Increment(ref Stats.DroppedValue);
            return;
        }

        IDatagramSocket? relay = null;
        lock (_gate)
        {
            if (_allocations.TryGetValue(client, out var allocation) && HasPermission(allocation, peer!.Address, _time.GetUtcNow()) && allocation.Bucket.TryTake(data.Length))
            {
                relay = allocation.Relay;
            }
        }

        if (relay is null)
        {
            Interlocked.Increment(ref Stats.DroppedValue);
            return;
        }

        relay.Send(message.GetValue(data), peer!);
        Interlocked.Increment(ref Stats.RelayedToPeerValue);
    }

    private void OnChannelData(ClientId client, ReadOnlySpan<byte> frame)
    {
        // RFC 8656 §12.4: channel number, length, data (padding over streams is not counted in the length).
        var number = BinaryPrimitives.ReadUInt16BigEndian(frame);
        var length = BinaryPrimitives.ReadUInt16BigEndian(frame[2..]);
        if (length > frame.Length - 4)
        {
            Interlocked.Increment(ref Stats.DroppedValue);
            return;
        }

        IDatagramSocket? relay = null;
        IPEndPoint? peer = null;
        var now = _time.GetUtcNow(); // once per datagram: a clock read is a large part of the managed work here
        lock (_gate)
        {
            if (_allocations.TryGetValue(client, out var allocation) &&
                allocation.ChannelsByNumber.TryGetValue(number, out var channel) &&
                channel.ExpiresAt > now && HasPermission(allocation, channel.Peer.Address, now))
            {
                if (allocation.Bucket.TryTake(length))
                {
                    relay = allocation.Relay;
                    peer = channel.Peer;
                }
                else
                {
                    Interlocked.Increment(ref Stats.RateLimitedValue);
                    return;
                }
            }
        }

        if (relay is null)
        {
            Interlocked.Increment(ref Stats.DroppedValue);
            return;
        }

        relay.Send(frame.Slice(4, length), peer!);
        Interlocked.Increment(ref Stats.RelayedToPeerValue);
    }

    private void OnPeerData(Allocation allocation, ReadOnlySpan<byte> data, IPEndPoint peer)
    {
        ushort channelNumber = 0;
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            if (allocation.Removed || !HasPermission(allocation, peer.Address, now))
            {
                Interlocked.Increment(ref Stats.DroppedValue);
                return;
            }

            if (!allocation.Bucket.TryTake(data.Length))
            {
                Interlocked.Increment(ref Stats.RateLimitedValue);
                return;
            }

            if (allocation.ChannelsByPeer.TryGetValue(peer, out var channel) && channel.ExpiresAt > now) channelNumber = channel.Number;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(data.Length + 64);
        try
        {
            int length;
            if (channelNumber != 0)
            {
                // RFC 8656 §12.5: ChannelData; padded to 4 bytes over TCP.
                BinaryPrimitives.WriteUInt16BigEndian(buffer, channelNumber);
                BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(2), (ushort)data.Length);
                data.CopyTo(buffer.AsSpan(4));
                length = 4 + data.Length;
                if (allocation.Client.Link is not null)
                {
                    var padded = StunMessage.Pad4(length);
                    buffer.AsSpan(length, padded - length).Clear();
                    length = padded;
                }
            }
            else
            {
                // RFC 8656 §11.3: a Data indication with XOR-PEER-ADDRESS and DATA.
                var w = new StunWriter(buffer, StunMethod.Data, StunClass.Indication, StunClient.NewTransactionId());
                w.AddXorAddress(StunAttributeType.XorPeerAddress, peer);
                w.Add(StunAttributeType.Data, data);
                length = w.Length;
            }

            SendToClient(allocation.Client, buffer.AsSpan(0, length));
            Interlocked.Increment(ref Stats.RelayedToClientValue);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static bool HasPermission(Allocation allocation, IPAddress peer, DateTimeOffset now) =>
        allocation.Permissions.TryGetValue(peer, out var until) && until > now;

    private TimeSpan Lifetime(StunMessage request, bool allowZero)
    {
        if (!request.TryGetUInt32(StunAttributeType.Lifetime, out var seconds)) return _options.DefaultLifetime;
        if (seconds == 0 && allowZero) return TimeSpan.Zero;
        // RFC 8656 §7.2: min(requested, maximum), and not below the default.
        var requested = TimeSpan.FromSeconds(seconds);
        if (requested > _options.MaxLifetime) requested = _options.MaxLifetime;
        return requested < _options.DefaultLifetime ? _options.DefaultLifetime : requested;
    }

    private TokenBucket Bucket() => new(_options.MaxBytesPerSecond, _time);

    private int Challenge(out bool exempt, StunMessage request, ClientId client, int code, Span<byte> response)
    {
        exempt = true;
        Interlocked.Increment(ref Stats.ErrorsValue);
        // Compact on purpose: no reason phrase, a 12-character nonce, so it is no larger than a typical Allocate.
        var w = new StunWriter(response, request.Method, StunClass.ErrorResponse, request.TransactionId);
        w.AddErrorCode(code, string.Empty);
        w.AddUtf8(StunAttributeType.Realm, _options.Realm);
        w.AddUtf8(StunAttributeType.Nonce, _auth.NewNonce(client.Remote.Address));
        return w.Length;
    }

    private int Error(StunMessage request, int code, byte[]? key, Span<byte> response, ushort[]? unknown = null)
    {
        Interlocked.Increment(ref Stats.ErrorsValue);
        LogError(code, request.Method);
        var w = new StunWriter(response, request.Method, StunClass.ErrorResponse, request.TransactionId);
        w.AddErrorCode(code, key is null ? string.Empty : null);
        if (unknown is not null) w.AddUnknownAttributes(unknown.AsSpan(0, Math.Min(unknown.Length, 16)));
        return key is null ? w.Length : Finish(ref w, request, key);
    }

    private int Finish(ref StunWriter w, StunMessage request, byte[] key)
    {
        if (_options.Software is not null && w.Length + 200 < ResponseBufferSize) w.AddUtf8(StunAttributeType.Software, _options.Software);
        w.AddMessageIntegrity(key);
        if (request.FingerprintIndex >= 0) w.AddFingerprint();
        return w.Length;
    }

    private void SendToClient(ClientId client, ReadOnlySpan<byte> data)
    {
        if (client.Link is { } link) link.Send(data);
        else _listeners[client.Listener].Send(data, client.Remote);
    }

    private void Remove(ClientId client)
    {
        if (!_allocations.Remove(client, out var allocation)) return;
        allocation.Removed = true;
        if (_perUser.TryGetValue(allocation.QuotaName, out var n))
        {
            if (n <= 1) _perUser.Remove(allocation.QuotaName);
            else _perUser[allocation.QuotaName] = n - 1;
        }

        allocation.Relay.Dispose();
    }

    private void Sweep()
    {
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            if (_disposed) return;
            List<ClientId>? expired = null;
            foreach (var (client, a) in _allocations)
            {
                if (a.ExpiresAt <= now)
                {
                    (expired ??= []).Add(client);
                    continue;
                }

                List<IPAddress>? stale = null;
                foreach (var (peer, until) in a.Permissions)
                {
                    if (until <= now) (stale ??= []).Add(peer);
                }

                if (stale is not null)
                {
                    foreach (var p in stale) a.Permissions.Remove(p);
                }

                List<Channel>? old = null;
                foreach (var c in a.ChannelsByNumber.Values)
                {
                    if (c.ExpiresAt <= now) (old ??= []).Add(c);
                }

                if (old is not null)
                {
                    foreach (var c in old)
                    {
                        a.ChannelsByNumber.Remove(c.Number);
                        a.ChannelsByPeer.Remove(c.Peer);
                    }
                }
            }

            if (expired is not null)
            {
                foreach (var c in expired) Remove(c);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "TURN error {Code} for {Method}")]
    private partial void LogError(int code, StunMethod method);

    [LoggerMessage(Level = LogLevel.Information, Message = "TURN allocation for {Client}: relay {Relay} (user {User})")]
    private partial void LogAllocated(IPEndPoint client, IPEndPoint relay, string user);

    /// <summary>Deletes every allocation (closing its relay socket), stops the sweep and disposes the listeners.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var c in _allocations.Keys.ToList()) Remove(c);
        }

        _sweep?.Dispose();
        foreach (var l in _listeners) l.Dispose();
    }

    private readonly record struct ClientId(IPEndPoint Remote, int Listener, IStreamLink? Link);

    private sealed class Channel(ushort number, IPEndPoint peer)
    {
        public ushort Number { get; } = number;

        public IPEndPoint Peer { get; } = peer;

        public DateTimeOffset ExpiresAt { get; set; }
    }

    private sealed class Allocation(ClientId client, string username, string quotaName, byte[] key, IDatagramSocket relay, DateTimeOffset expiresAt, TokenBucket bucket)
    {
        public ClientId Client { get; } = client;

        public string Username { get; } = username;

        public string QuotaName { get; } = quotaName;

        public byte[] Key { get; } = key;

        public IDatagramSocket Relay { get; } = relay;

        public AddressFamily Family => Relay.LocalEndPoint.AddressFamily;

        public DateTimeOffset ExpiresAt { get; set; } = expiresAt;

        public TokenBucket Bucket { get; } = bucket;

        public Dictionary<IPAddress, DateTimeOffset> Permissions { get; } = [];

        public Dictionary<ushort, Channel> ChannelsByNumber { get; } = [];

        public Dictionary<IPEndPoint, Channel> ChannelsByPeer { get; } = [];

        public byte[] AllocateTransaction { get; set; } = [];

        public byte[] AllocateResponse { get; set; } = [];

        public bool Removed { get; set; }
    }

    /// <summary>Bytes per second with a one-second burst; rate 0 means unlimited. Used under the server lock.</summary>
    private sealed class TokenBucket(long rate, TimeProvider time)
    {
        private double _tokens = rate;
        private long _last = time.GetTimestamp();

        public bool TryTake(int bytes)
        {
            if (rate == 0) return true;
            var now = time.GetTimestamp();
            _tokens = Math.Min(rate, _tokens + time.GetElapsedTime(_last, now).TotalSeconds * rate);
            _last = now;
            if (_tokens < bytes) return false;
            _tokens -= bytes;
            return true;
        }
    }
}
