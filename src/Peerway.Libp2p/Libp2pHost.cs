using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Libp2p.Noise;
using Peerway.Libp2p.Protocols;
using Peerway.Libp2p.Yamux;
using Peerway.Net;

namespace Peerway.Libp2p;

/// <summary>Options of a <see cref="Libp2pHost"/>.</summary>
public sealed record Libp2pHostOptions
{
    /// <summary>Connections at once (inbound and outbound); more inbound ones are closed at once.</summary>
    public int MaxConnections { get; init; } = 256;

    /// <summary>Time a new connection has to finish multistream-select, Noise and the muxer selection.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Time an inbound stream has to name its protocol.</summary>
    public TimeSpan StreamNegotiationTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>What identify reports as the agent.</summary>
    public string AgentVersion { get; init; } = "peerway/0.1.0";

    /// <summary>Yamux limits per connection.</summary>
    public YamuxOptions Yamux { get; init; } = new();

    /// <summary>Checks the options.</summary>
    public Libp2pHostOptions Validated()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConnections, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(HandshakeTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(StreamNegotiationTimeout, TimeSpan.Zero);
        Yamux.Validated();
        return this;
    }
}

/// <summary>
/// A libp2p host over a stream transport: each connection is upgraded as js-libp2p and go-libp2p do it —
/// multistream-select <c>/noise</c>, the Noise XX handshake (the remote's peer id proven by its signature),
/// multistream-select <c>/yamux/1.0.0</c> — and then carries streams whose protocol is chosen by multistream-select
/// again. Identify (<c>/ipfs/id/1.0.0</c>, push) and ping (<c>/ipfs/ping/1.0.0</c>) are built in; applications add
/// handlers with <see cref="Handle"/>. The host owns its listener, connections and every task it starts.
/// </summary>
public sealed class Libp2pHost : IAsyncDisposable
{
    /// <summary>identify's protocolVersion for IPFS peers.</summary>
    public const string IpfsProtocolVersion = "ipfs/0.1.0";

    private readonly PeerKey _key;
    private readonly IStreamTransport _transport;
    private readonly Libp2pHostOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<string, Func<Stream, Libp2pConnection, CancellationToken, Task>> _handlers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Libp2pConnection, byte> _connections = new();
    private readonly CancellationTokenSource _cts = new();
    private readonly Lock _tasksGate = new();
    private readonly List<Task> _tasks = [];
    private IStreamListener? _listener;
    private IReadOnlyList<Multiaddr> _transportAddresses = [];
    private int _disposed;

    /// <summary>Creates a host with the identity <paramref name="key"/> (the host does not own the key).</summary>
    public Libp2pHost(PeerKey key, IStreamTransport transport, Libp2pHostOptions? options = null, TimeProvider? time = null, ILogger? log = null)
    {
        _key = key ?? throw new ArgumentNullException(nameof(key));
        _transport = transport ?? throw new ArgumentNullException(nameof(transport));
        _options = (options ?? new Libp2pHostOptions()).Validated();
        _time = time ?? TimeProvider.System;
        _log = log ?? NullLogger.Instance;
        _handlers[IdentifyInfo.ProtocolId] = (s, c, ct) => ServeIdentifyAsync(s, c, ct);
        _handlers[IdentifyInfo.PushProtocolId] = ReceiveIdentifyPushAsync;
        _handlers[PingProtocol.ProtocolId] = (s, _, ct) => PingProtocol.ServeAsync(s, ct);
    }

    /// <summary>The clock the host's round trips are measured with.</summary>
    public TimeProvider Time => _time;

    /// <summary>This host's peer id.</summary>
    public PeerId PeerId => _key.Id;

    /// <summary>The addresses the host listens on (with <c>/p2p/…</c>).</summary>
    public IReadOnlyList<Multiaddr> ListenAddresses { get; private set; } = [];

    /// <summary>Open connections.</summary>
    public IReadOnlyCollection<Libp2pConnection> Connections => [.. _connections.Keys.Where(c => !c.Closed.IsCompleted)];

    /// <summary>The protocols this host handles.</summary>
    public IReadOnlyList<string> Protocols => [.. _handlers.Keys.Order(StringComparer.Ordinal)];

    /// <summary>The agent version identify announces.</summary>
    public string AgentVersion => _options.AgentVersion;

    /// <summary>Raised when a connection is up (after identify has been asked for).</summary>
    public event Action<Libp2pConnection>? Connected;

    /// <summary>Handles inbound streams of <paramref name="protocol"/>; the stream is disposed when the handler returns.</summary>
    public void Handle(string protocol, Func<Stream, Libp2pConnection, CancellationToken, Task> handler)
    {
        ArgumentException.ThrowIfNullOrEmpty(protocol);
        ArgumentNullException.ThrowIfNull(handler);
        _handlers[protocol] = handler;
    }

    /// <summary>Listens on <paramref name="endPoint"/> and accepts connections until disposed.</summary>
    public async Task StartAsync(IPEndPoint endPoint, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        _listener = await _transport.ListenAsync(endPoint, ct).ConfigureAwait(false);
        _transportAddresses = [Multiaddr.FromTcp(_listener.LocalEndPoint)];
        ListenAddresses = [.. _transportAddresses.Select(a => a.WithPeer(PeerId))];
        Track(AcceptLoopAsync(_listener, _cts.Token));
    }

    /// <summary>Dials <paramref name="address"/> (<c>/ip4|ip6/…/tcp/…[/p2p/…]</c>); a peer id in it must match the remote's.</summary>
    public async Task<Libp2pConnection> DialAsync(Multiaddr address, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (!address.TryGetTcpEndPoint(out var endPoint)) throw new ArgumentException($"not a dialable TCP multiaddr: {address}", nameof(address));
        var raw = await _transport.ConnectAsync(endPoint!, ct).ConfigureAwait(false);
        try
        {
            var connection = await UpgradeAsync(raw, initiator: true, ct).ConfigureAwait(false);
            if (address.PeerId is { } expected && !expected.Equals(connection.RemotePeer))
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                throw new Libp2pProtocolException(Libp2pError.BadPeerId, $"dialled {expected}, reached {connection.RemotePeer}");
            }

            return connection;
        }
        catch
        {
            raw.Abort();
            await raw.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task AcceptLoopAsync(IStreamListener listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            IStreamConnection? raw;
            try
            {
                raw = await listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (raw is null) return;
            if (_connections.Count >= _options.MaxConnections)
            {
                _log.LogDebug("libp2p: {Max} connections open; closing one from {Remote}", _options.MaxConnections, raw.RemoteEndPoint);
                raw.Abort();
                await raw.DisposeAsync().ConfigureAwait(false);
                continue;
            }

            Track(AcceptOneAsync(raw, ct));
        }
    }

    private async Task AcceptOneAsync(IStreamConnection raw, CancellationToken ct)
    {
        try
        {
            await UpgradeAsync(raw, initiator: false, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or TimeoutException or CryptographicException or ObjectDisposedException)
        {
            _log.LogDebug("libp2p: inbound connection from {Remote} failed: {Message}", raw.RemoteEndPoint, ex.Message);
            raw.Abort();
            await raw.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<Libp2pConnection> UpgradeAsync(IStreamConnection raw, bool initiator, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.HandshakeTimeout);
        var t = timeout.Token;
        var stream = raw.Stream;
        if (initiator)
        {
            if (await Multistream.SelectAsync(stream, [NoiseHandshake.ProtocolId], t).ConfigureAwait(false) is null)
                throw new Libp2pProtocolException(Libp2pError.BadLine, "the peer does not speak /noise");
        }
        else
        {
            await Multistream.HandleAsync(stream, p => p == NoiseHandshake.ProtocolId, t).ConfigureAwait(false);
        }

        var (secure, remote) = await NoiseHandshake.RunAsync(stream, _key, initiator, t).ConfigureAwait(false);
        if (initiator)
        {
            if (await Multistream.SelectAsync(secure, [YamuxSession.ProtocolId], t).ConfigureAwait(false) is null)
                throw new Libp2pProtocolException(Libp2pError.BadLine, "the peer does not speak /yamux/1.0.0");
        }
        else
        {
            await Multistream.HandleAsync(secure, p => p == YamuxSession.ProtocolId, t).ConfigureAwait(false);
        }

        var session = new YamuxSession(secure, client: initiator, _options.Yamux, _log, _time);
        var connection = new Libp2pConnection(this, session, remote, Multiaddr.FromTcp(raw.RemoteEndPoint), raw);
        _connections[connection] = 0;
        session.Start();
        Track(ServeStreamsAsync(connection, _cts.Token));
        Track(IdentifyRemoteAsync(connection, _cts.Token));
        _log.LogDebug("libp2p: connected to {Peer} at {Address} ({Direction})", remote, connection.RemoteAddress, initiator ? "out" : "in");
        return connection;
    }

    private async Task ServeStreamsAsync(Libp2pConnection connection, CancellationToken ct)
    {
        try
        {
            while (await connection.Session.AcceptStreamAsync(ct).ConfigureAwait(false) is { } stream)
            {
                Track(ServeStreamAsync(connection, stream, ct));
            }
        }
        catch (OperationCanceledException)
        {
            // Disposing.
        }
        finally
        {
            _connections.TryRemove(connection, out _);
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task ServeStreamAsync(Libp2pConnection connection, YamuxStream stream, CancellationToken ct)
    {
        try
        {
            string protocol;
            using (var negotiation = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                negotiation.CancelAfter(_options.StreamNegotiationTimeout);
                protocol = await Multistream.HandleAsync(stream, _handlers.ContainsKey, negotiation.Token).ConfigureAwait(false);
            }

            stream.Protocol = protocol;
            await _handlers[protocol](stream, connection, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or EndOfStreamException or ObjectDisposedException)
        {
            _log.LogDebug("libp2p: stream {Id} from {Peer} ended: {Message}", stream.Id, connection.RemotePeer, ex.Message);
            stream.Reset();
        }
        finally
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task IdentifyRemoteAsync(Libp2pConnection connection, CancellationToken ct)
    {
        try
        {
            await using var stream = await connection.OpenStreamAsync(IdentifyInfo.ProtocolId, ct).ConfigureAwait(false);
            var message = await ReadToEndAsync(stream, IdentifyInfo.MaxMessage + 16, ct).ConfigureAwait(false);
            connection.SetIdentify(ParseIdentify(message, connection));
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or EndOfStreamException or ObjectDisposedException)
        {
            _log.LogDebug("libp2p: identify of {Peer} failed: {Message}", connection.RemotePeer, ex.Message);
            connection.SetIdentify(null);
        }

        Connected?.Invoke(connection);
    }

    private IdentifyInfo? ParseIdentify(byte[] prefixed, Libp2pConnection connection)
    {
        // One varint-length-prefixed message (identify/README.md); go-libp2p and js-libp2p write exactly one.
        if (Core.Multiformats.Varint.TryRead(prefixed, out var length, out var n) != Core.Multiformats.MultiformatError.None ||
            length > IdentifyInfo.MaxMessage || (ulong)(prefixed.Length - n) < length)
        {
            _log.LogDebug("libp2p: a malformed identify message from {Peer}", connection.RemotePeer);
            return null;
        }

        var error = IdentifyInfo.TryDecode(prefixed.AsSpan(n, (int)length), out var info);
        if (error != Libp2pError.None || info is null) return null;
        // The key in identify must be the one the Noise handshake proved.
        return info.PublicKey.Length == 0 || connection.RemotePeer.Matches(info.PublicKey) ? info : null;
    }

    private static async Task<byte[]> ReadToEndAsync(Stream stream, int max, CancellationToken ct)
    {
        using var ms = new MemoryStream();
        var buffer = new byte[4096];
        while (true)
        {
            var n = await stream.ReadAsync(buffer, ct).ConfigureAwait(false);
            if (n == 0) return ms.ToArray();
            if (ms.Length + n > max) throw new Libp2pProtocolException(Libp2pError.TooLong, "identify message too large");
            await ms.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
        }
    }

    private IdentifyInfo OurIdentify(Libp2pConnection connection) => new()
    {
        ProtocolVersion = IpfsProtocolVersion,
        AgentVersion = _options.AgentVersion,
        PublicKey = _key.EncodedPublicKey,
        ListenAddresses = _transportAddresses,
        ObservedAddress = connection.RemoteAddress,
        Protocols = Protocols,
    };

    private async Task ServeIdentifyAsync(Stream stream, Libp2pConnection connection, CancellationToken ct) =>
        await LengthPrefixed.WriteAsync(stream, OurIdentify(connection).Encode(), ct).ConfigureAwait(false);

    private async Task ReceiveIdentifyPushAsync(Stream stream, Libp2pConnection connection, CancellationToken ct)
    {
        var message = await ReadToEndAsync(stream, IdentifyInfo.MaxMessage + 16, ct).ConfigureAwait(false);
        if (ParseIdentify(message, connection) is { } info) connection.SetIdentify(info);
    }

    private void Track(Task task)
    {
        lock (_tasksGate)
        {
            _tasks.RemoveAll(t => t.IsCompleted);
            _tasks.Add(task);
        }
    }

    internal void OnClosed(Libp2pConnection connection) => _connections.TryRemove(connection, out _);

    /// <summary>Closes the listener and every connection, and waits for every task the host started.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _cts.CancelAsync().ConfigureAwait(false);
        if (_listener is not null) await _listener.DisposeAsync().ConfigureAwait(false);
        foreach (var c in _connections.Keys) await c.DisposeAsync().ConfigureAwait(false);
        Task[] tasks;
        lock (_tasksGate) tasks = [.. _tasks];
        await Task.WhenAll(tasks).ConfigureAwait(false);
        _cts.Dispose();
    }
}

/// <summary>A secured, multiplexed connection to one peer.</summary>
public sealed class Libp2pConnection : IAsyncDisposable
{
    private readonly Libp2pHost _host;
    private readonly IStreamConnection _raw;
    private readonly TaskCompletionSource<IdentifyInfo?> _identify = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;

    internal Libp2pConnection(Libp2pHost host, YamuxSession session, PeerId remote, Multiaddr address, IStreamConnection raw)
    {
        _host = host;
        Session = session;
        RemotePeer = remote;
        RemoteAddress = address;
        _raw = raw;
    }

    internal YamuxSession Session { get; }

    /// <summary>The remote peer, as proven by the Noise handshake.</summary>
    public PeerId RemotePeer { get; }

    /// <summary>The remote transport address.</summary>
    public Multiaddr RemoteAddress { get; }

    /// <summary>What the remote said over identify (null if it did not answer or answered badly).</summary>
    public Task<IdentifyInfo?> Identify => _identify.Task;

    /// <summary>Completes when the connection has closed.</summary>
    public Task Closed => Session.Closed;

    /// <summary>The latest identify information (an identify push replaces the first answer).</summary>
    public IdentifyInfo? LatestIdentify { get; private set; }

    internal void SetIdentify(IdentifyInfo? info)
    {
        if (info is not null) LatestIdentify = info;
        _identify.TrySetResult(info);
    }

    /// <summary>Opens a stream and selects <paramref name="protocol"/> on it; throws when the peer does not handle it.</summary>
    public Task<Stream> OpenStreamAsync(string protocol, CancellationToken ct) => OpenStreamAsync([protocol], ct);

    /// <summary>
    /// Opens a stream and selects the first of <paramref name="protocols"/> the peer handles (multistream-select, in
    /// order); throws when it handles none.
    /// </summary>
    public async Task<Stream> OpenStreamAsync(IReadOnlyList<string> protocols, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(protocols);
        ArgumentOutOfRangeException.ThrowIfZero(protocols.Count);
        var stream = await Session.OpenStreamAsync(ct).ConfigureAwait(false);
        try
        {
            var chosen = await Multistream.SelectAsync(stream, protocols, ct).ConfigureAwait(false)
                ?? throw new Libp2pProtocolException(Libp2pError.BadLine, $"{RemotePeer} does not handle {string.Join(", ", protocols)}");
            stream.Protocol = chosen;
            return stream;
        }
        catch
        {
            stream.Reset();
            throw;
        }
    }

    /// <summary>One round trip of <c>/ipfs/ping/1.0.0</c>.</summary>
    public async Task<TimeSpan> PingAsync(TimeProvider time, CancellationToken ct)
    {
        await using var stream = await OpenStreamAsync(PingProtocol.ProtocolId, ct).ConfigureAwait(false);
        return await PingProtocol.PingAsync(stream, time, ct).ConfigureAwait(false);
    }

    /// <summary>Closes the connection (yamux go-away, then the socket).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _host.OnClosed(this);
        _identify.TrySetResult(null);
        await Session.DisposeAsync().ConfigureAwait(false);
        await _raw.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>libp2p ping (specs, ping/ping.md): 32 random bytes echoed back, on one stream, as often as the dialer likes.</summary>
internal static class PingProtocol
{
    public const string ProtocolId = "/ipfs/ping/1.0.0";
    public const int Size = 32;

    public static async Task ServeAsync(Stream stream, CancellationToken ct)
    {
        var buffer = new byte[Size];
        while (true)
        {
            var n = await stream.ReadAtLeastAsync(buffer, Size, throwOnEndOfStream: false, ct).ConfigureAwait(false);
            if (n < Size) return;
            await stream.WriteAsync(buffer, ct).ConfigureAwait(false);
            await stream.FlushAsync(ct).ConfigureAwait(false);
        }
    }

    public static async Task<TimeSpan> PingAsync(Stream stream, TimeProvider time, CancellationToken ct)
    {
        var payload = RandomNumberGenerator.GetBytes(Size);
        var start = time.GetTimestamp();
        await stream.WriteAsync(payload, ct).ConfigureAwait(false);
        await stream.FlushAsync(ct).ConfigureAwait(false);
        var echo = new byte[Size];
        await stream.ReadExactlyAsync(echo, ct).ConfigureAwait(false);
        var rtt = time.GetElapsedTime(start);
        return echo.AsSpan().SequenceEqual(payload) ? rtt : throw new Libp2pProtocolException(Libp2pError.BadFrame, "ping: the echo differs");
    }
}
