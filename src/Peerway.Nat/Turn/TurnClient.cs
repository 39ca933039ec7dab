using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using Peerway.Nat.Stun;
using Peerway.Net;

namespace Peerway.Nat.Turn;

/// <summary>Long-term credentials for a TURN server.</summary>
public sealed record TurnCredentials(string Username, string Password);

/// <summary>A TURN error response (RFC 8656 §19 codes).</summary>
public sealed class TurnException : Exception
{
    /// <summary>An error response: <paramref name="code"/> (RFC 8656 §19) and the server's reason phrase.</summary>
    public TurnException(int code, string reason) : base($"TURN error {code} {reason}".TrimEnd())
    {
        Code = code;
    }

    /// <summary>Creates an exception with the default message and <see cref="Code"/> 0.</summary>
    public TurnException()
    {
    }

    /// <summary>Creates an exception with <paramref name="message"/> and <see cref="Code"/> 0.</summary>
    public TurnException(string message) : base(message)
    {
    }

    /// <summary>Creates an exception with <paramref name="message"/> caused by <paramref name="innerException"/>, and <see cref="Code"/> 0.</summary>
    public TurnException(string message, Exception innerException) : base(message, innerException)
    {
    }

    /// <summary>The STUN/TURN error code of the response (see <see cref="StunErrorCode"/>); 0 when the error was not a response.</summary>
    public int Code { get; }
}

/// <summary>Data relayed from a peer: the payload (valid during the call) and the peer's address.</summary>
public delegate void TurnDataHandler(ReadOnlySpan<byte> data, IPEndPoint peer);

/// <summary>
/// A TURN client over UDP (RFC 8656 §7-12): allocate, refresh, permissions, channels, send and receive. Requests use
/// the RFC 8489 retransmission schedule (<see cref="StunClient"/>) and long-term credentials, answering the 401
/// challenge and 438 Stale Nonce by retrying with the server's realm and nonce.
/// </summary>
public sealed class TurnClient : IDisposable
{
    private readonly StunClient _stun;
    private readonly IPEndPoint _server;
    private readonly TurnCredentials _credentials;
    private readonly TurnDataHandler? _onData;
    private readonly DatagramHandler? _onOther;
    private readonly Lock _gate = new();
    private readonly Dictionary<IPEndPoint, ushort> _channelsByPeer = [];
    private readonly Dictionary<ushort, IPEndPoint> _peersByChannel = [];
    private string? _realm;
    private string? _nonce;
    private byte[]? _key;
    private ushort _nextChannel = 0x4000;

    /// <param name="socket">The local socket the allocation is made from.</param>
    /// <param name="server">The TURN server's address.</param>
    /// <param name="credentials">Long-term credentials (RFC 8489 §9.2).</param>
    /// <param name="time">The clock of transactions and refreshes.</param>
    /// <param name="onData">Datagrams relayed from peers, with the peer's address.</param>
    /// <param name="options">STUN transaction timers; defaults when null.</param>
    /// <param name="onOther">Datagrams that are neither TURN data nor responses (e.g. STUN checks from the server's side).</param>
    public TurnClient(IDatagramSocket socket, IPEndPoint server, TurnCredentials credentials, TimeProvider time, TurnDataHandler? onData, StunClientOptions? options = null, DatagramHandler? onOther = null)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(credentials);
        _server = server;
        _credentials = credentials;
        _onData = onData;
        _onOther = onOther;
        _stun = new StunClient(socket, time, options ?? new StunClientOptions(), OnDatagram);
    }

    /// <summary>The TURN server's address.</summary>
    public IPEndPoint Server => _server;

    /// <summary>The local socket's address.</summary>
    public IPEndPoint LocalEndPoint => _stun.LocalEndPoint;

    /// <summary>The relayed transport address (XOR-RELAYED-ADDRESS); null until <see cref="AllocateAsync"/> succeeds.</summary>
    public IPEndPoint? RelayedAddress { get; private set; }

    /// <summary>This client's server-reflexive address as the TURN server saw it (XOR-MAPPED-ADDRESS); null until allocated.</summary>
    public IPEndPoint? MappedAddress { get; private set; }

    /// <summary>The allocation's lifetime granted by the last Allocate or Refresh (LIFETIME); zero before.</summary>
    public TimeSpan Lifetime { get; private set; }

    /// <summary>RFC 8656 §7.1: Allocate with REQUESTED-TRANSPORT UDP; returns the relayed transport address.</summary>
    public async Task<IPEndPoint> AllocateAsync(TimeSpan? lifetime = null, CancellationToken cancellationToken = default)
    {
        var response = await RequestAsync(StunMethod.Allocate, (ref StunWriter w) =>
        {
            w.AddUInt32(StunAttributeType.RequestedTransport, 17u << 24);
            if (lifetime is { } l) w.AddUInt32(StunAttributeType.Lifetime, (uint)l.TotalSeconds);
        }, cancellationToken).ConfigureAwait(false);
        if (!response.TryGetXorAddress(StunAttributeType.XorRelayedAddress, out var relayed)) throw new TurnException("The Allocate response has no XOR-RELAYED-ADDRESS.");
        response.TryGetXorAddress(StunAttributeType.XorMappedAddress, out var mapped);
        response.TryGetUInt32(StunAttributeType.Lifetime, out var seconds);
        RelayedAddress = relayed;
        MappedAddress = mapped;
        Lifetime = TimeSpan.FromSeconds(seconds);
        return relayed!;
    }

    /// <summary>RFC 8656 §7.3: Refresh; a zero lifetime deletes the allocation.</summary>
    public async Task<TimeSpan> RefreshAsync(TimeSpan lifetime, CancellationToken cancellationToken = default)
    {
        var response = await RequestAsync(StunMethod.Refresh, (ref StunWriter w) => w.AddUInt32(StunAttributeType.Lifetime, (uint)lifetime.TotalSeconds), cancellationToken).ConfigureAwait(false);
        response.TryGetUInt32(StunAttributeType.Lifetime, out var seconds);
        Lifetime = TimeSpan.FromSeconds(seconds);
        return Lifetime;
    }

    /// <summary>RFC 8656 §9: installs or refreshes permissions for the peers' IP addresses.</summary>
    public Task CreatePermissionAsync(IReadOnlyList<IPEndPoint> peers, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(peers);
        return RequestAsync(StunMethod.CreatePermission, (ref StunWriter w) =>
        {
            foreach (var p in peers) w.AddXorAddress(StunAttributeType.XorPeerAddress, p);
        }, cancellationToken);
    }

    /// <summary>RFC 8656 §11: binds (or refreshes) a channel to <paramref name="peer"/>; returns its number.</summary>
    public async Task<ushort> BindChannelAsync(IPEndPoint peer, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ushort number;
        lock (_gate)
        {
            if (!_channelsByPeer.TryGetValue(peer, out number))
            {
                if (_nextChannel > 0x4FFF) throw new InvalidOperationException("No channel numbers left.");
                number = _nextChannel++;
            }
        }

        await RequestAsync(StunMethod.ChannelBind, (ref StunWriter w) =>
        {
            w.AddUInt32(StunAttributeType.ChannelNumber, (uint)number << 16);
            w.AddXorAddress(StunAttributeType.XorPeerAddress, peer);
        }, cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            _channelsByPeer[peer] = number;
            _peersByChannel[number] = peer;
        }

        return number;
    }

    /// <summary>Sends to a peer through the relay: ChannelData when a channel is bound, else a Send indication.</summary>
    public void Send(ReadOnlySpan<byte> data, IPEndPoint peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ushort channel;
        lock (_gate) _channelsByPeer.TryGetValue(peer, out channel);
        var buffer = ArrayPool<byte>.Shared.Rent(data.Length + 64);
        try
        {
            int length;
            if (channel != 0)
            {
                BinaryPrimitives.WriteUInt16BigEndian(buffer, channel);
                BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(2), (ushort)data.Length);
                data.CopyTo(buffer.AsSpan(4));
                length = 4 + data.Length;
            }
            else
            {
                var w = new StunWriter(buffer, StunMethod.Send, StunClass.Indication, StunClient.NewTransactionId());
                w.AddXorAddress(StunAttributeType.XorPeerAddress, peer);
                w.Add(StunAttributeType.Data, data);
                length = w.Length;
            }

            _stun.Socket.Send(buffer.AsSpan(0, length), _server);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Sends a raw datagram to <paramref name="remote"/> from the client's socket (not relayed).</summary>
    public void SendDirect(ReadOnlySpan<byte> data, IPEndPoint remote) => _stun.Socket.Send(data, remote);

    /// <summary>The underlying STUN client (for Binding requests on the same socket).</summary>
    public StunClient Stun => _stun;

    private const string UnauthenticatedSoftware =
        "Peerway TURN client                                                                                              ";

    private delegate void Attributes(ref StunWriter writer);

    private async Task<StunMessage> RequestAsync(StunMethod method, Attributes add, CancellationToken cancellationToken)
    {
        // RFC 8489 §9.2.3: first without credentials (or with the cached nonce), then answer 401/438 once each.
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var request = Build(method, add);
            var response = await _stun.SendRequestAsync(request, _server, cancellationToken).ConfigureAwait(false);
            if (response.Class == StunClass.SuccessResponse) return response;
            response.TryGetErrorCode(out var code, out var reason);
            if (code is StunErrorCode.Unauthenticated or StunErrorCode.StaleNonce &&
                response.TryGetText(StunAttributeType.Nonce, StunLimits.MaxNonceBytes, out var nonce) &&
                response.TryGetText(StunAttributeType.Realm, StunLimits.MaxRealmBytes, out var realm) &&
                (code == StunErrorCode.StaleNonce || _key is null || _realm != realm))
            {
                lock (_gate)
                {
                    _nonce = nonce;
                    if (_realm != realm || _key is null)
                    {
                        _realm = realm;
                        _key = StunAttributes.LongTermKey(_credentials.Username, realm, _credentials.Password);
                    }
                }

                continue;
            }

            throw new TurnException(code, reason);
        }

        throw new TurnException(StunErrorCode.Unauthenticated, "credentials refused");
    }

    private byte[] Build(StunMethod method, Attributes add)
    {
        var buffer = new byte[1024];
        var w = new StunWriter(buffer, method, StunClass.Request, StunClient.NewTransactionId());
        add(ref w);
        string? realm, nonce;
        byte[]? key;
        lock (_gate)
        {
            realm = _realm;
            nonce = _nonce;
            key = _key;
        }

        if (key is not null)
        {
            w.AddUtf8(StunAttributeType.Username, _credentials.Username);
            w.AddUtf8(StunAttributeType.Realm, realm!);
            w.AddUtf8(StunAttributeType.Nonce, nonce!);
            w.AddMessageIntegrity(key);
        }
        else
        {
            // Servers that refuse to answer an unauthenticated request with more bytes than it carried (ours does)
            // need room for the 401 challenge: SOFTWARE (comprehension-optional, RFC 8489 §14.14) provides it.
            w.AddUtf8(StunAttributeType.Software, UnauthenticatedSoftware);
        }

        w.AddFingerprint();
        return buffer[..w.Length];
    }

    private void OnDatagram(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        if (remote.Equals(_server) && datagram.Length >= 4 && (datagram[0] & 0xC0) == 0x40)
        {
            // RFC 8656 §12.6: ChannelData from the server.
            var number = BinaryPrimitives.ReadUInt16BigEndian(datagram);
            var length = BinaryPrimitives.ReadUInt16BigEndian(datagram[2..]);
            IPEndPoint? peer;
            lock (_gate) _peersByChannel.TryGetValue(number, out peer);
            if (peer is not null && length <= datagram.Length - 4) _onData?.Invoke(datagram.Slice(4, length), peer);
            return;
        }

        if (remote.Equals(_server) && StunMessage.LooksLikeStun(datagram) &&
            StunMessage.TryDecode(datagram, out var message, out _) &&
            message!.Class == StunClass.Indication && message.Method == StunMethod.Data)
        {
            // RFC 8656 §10.4: a Data indication carries XOR-PEER-ADDRESS and DATA.
            if (message.TryGetXorAddress(StunAttributeType.XorPeerAddress, out var peer) && message.TryGet(StunAttributeType.Data, out var data))
            {
                _onData?.Invoke(message.GetValue(data), peer!);
            }

            return;
        }

        _onOther?.Invoke(datagram, remote);
    }

    /// <summary>Disposes the socket and fails the requests under way; does not delete the allocation (it expires on the server).</summary>
    public void Dispose() => _stun.Dispose();
}
