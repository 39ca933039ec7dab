using System.Net;
using System.Net.Sockets;

namespace Peerway.Net;

/// <summary>
/// One host of a <see cref="VirtualStreamNetwork"/>: an <see cref="IStreamTransport"/> whose listeners bind ports of
/// <see cref="Address"/> and whose connections share this endpoint's upload and download rates.
/// </summary>
public sealed class VirtualStreamEndpoint : IStreamTransport
{
    private const int FirstEphemeralPort = 49152; // RFC 6335 §6: the dynamic range

    private readonly VirtualStreamNetwork _network;
    private int _nextPort = FirstEphemeralPort;
    internal VirtualLink Uplink;
    internal VirtualLink Downlink;

    internal VirtualStreamEndpoint(VirtualStreamNetwork network, IPAddress address, VirtualEndpointOptions options)
    {
        _network = network;
        Address = address;
        Options = options;
        Uplink = new VirtualLink(options.UploadBytesPerSecond, network.Options.SegmentSize);
        Downlink = new VirtualLink(options.DownloadBytesPerSecond, network.Options.SegmentSize);
    }

    /// <summary>This endpoint's address.</summary>
    public IPAddress Address { get; }

    /// <summary>This endpoint's rates.</summary>
    public VirtualEndpointOptions Options { get; }

    /// <inheritdoc/>
    public StreamTransportKind Kind => StreamTransportKind.Virtual;

    /// <summary>Binds <paramref name="localEndPoint"/>: this endpoint's address or a wildcard, and a port (0: a free
    /// one).</summary>
    public ValueTask<IStreamListener> ListenAsync(IPEndPoint localEndPoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(localEndPoint);
        cancellationToken.ThrowIfCancellationRequested();
        var address = localEndPoint.Address;
        if (!address.Equals(Address) && !address.Equals(IPAddress.Any) && !address.Equals(IPAddress.IPv6Any))
        {
            throw new IOException($"cannot bind {localEndPoint}: Cannot assign requested address");
        }

        lock (_network.Gate)
        {
            var bound = new IPEndPoint(Address, localEndPoint.Port == 0 ? NextFreePort() : localEndPoint.Port);
            var listener = new VirtualStreamListener(_network, bound);
            _network.Bind(listener);
            return ValueTask.FromResult<IStreamListener>(listener);
        }
    }

    /// <summary>Connects after a round trip; nobody listening at <paramref name="remoteEndPoint"/> (or no endpoint at
    /// its address) refuses the connection after one: <see cref="IOException"/> with a
    /// <see cref="SocketException"/> (<see cref="SocketError.ConnectionRefused"/>) inside.</summary>
    public ValueTask<IStreamConnection> ConnectAsync(IPEndPoint remoteEndPoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(remoteEndPoint);
        cancellationToken.ThrowIfCancellationRequested();
        var remote = remoteEndPoint.Address.IsIPv4MappedToIPv6
            ? new IPEndPoint(remoteEndPoint.Address.MapToIPv4(), remoteEndPoint.Port)
            : remoteEndPoint;
        ConnectAttempt attempt;
        lock (_network.Gate) attempt = new ConnectAttempt(_network, this, new IPEndPoint(Address, NextFreePort()), remote);
        if (cancellationToken.CanBeCanceled) attempt.CancelOn(cancellationToken);
        lock (_network.Gate) attempt.Start();
        return new ValueTask<IStreamConnection>(attempt.Task);
    }

    /// <summary>The next port of the dynamic range not bound by a listener here. Caller holds the gate.</summary>
    private int NextFreePort()
    {
        for (var tries = 0; tries < 65536 - FirstEphemeralPort; tries++)
        {
            var port = _nextPort;
            _nextPort = port == 65535 ? FirstEphemeralPort : port + 1;
            if (!_network.IsBound(new IPEndPoint(Address, port))) return port;
        }

        throw new IOException($"{Address}: no free port left");
    }

    /// <summary>A connect in progress: the SYN's trip to the listener and the answer's trip back.</summary>
    private sealed class ConnectAttempt(VirtualStreamNetwork network, VirtualStreamEndpoint from, IPEndPoint local, IPEndPoint remote)
    {
        private readonly TaskCompletionSource<IStreamConnection> _done = new();
        private readonly long _forwardTicks = network.LatencyTicks(local.Address, remote.Address);
        private readonly long _backwardTicks = network.LatencyTicks(remote.Address, local.Address);
        private VirtualStreamConnection? _client;
        private bool _cancelled;
        private CancellationTokenRegistration _registration;

        public Task<IStreamConnection> Task => _done.Task;

        /// <summary>Sends the SYN. Caller holds the gate.</summary>
        public void Start() => network.ScheduleAt(network.NowTicks + _forwardTicks, SynArrives);

        public void CancelOn(CancellationToken cancellationToken)
        {
            _registration = cancellationToken.Register(() =>
            {
                lock (network.Gate) _cancelled = true;
                _done.TrySetCanceled(cancellationToken);
            });
        }

        private void SynArrives()
        {
            lock (network.Gate)
            {
                network.CountEvent();
                if (_cancelled) return;
                var listener = network.ListenerAt(remote);
                var to = network.EndpointAt(remote.Address);
                if (listener is null || to is null || !listener.HasRoom)
                {
                    // RFC 9293 §3.10.7.1: a SYN to a closed port is answered with RST.
                    network.ScheduleAt(network.NowTicks + _backwardTicks, Refused);
                    return;
                }

                var (client, server) = VirtualStreamConnection.CreatePair(network, from, local, to, remote, _forwardTicks, _backwardTicks);
                _client = client;
                listener.Offer(server);
                network.ScheduleAt(network.NowTicks + _backwardTicks, SynAckArrives);
            }

            network.FlushWakeups();
        }

        private void SynAckArrives()
        {
            var client = _client!;
            bool cancelled;
            lock (network.Gate)
            {
                network.CountEvent();
                cancelled = _cancelled;
                if (cancelled) client.AbortAndForget(); // the dialler gave up: reset the side the listener has
            }

            network.FlushWakeups();
            _registration.Dispose();
            if (!cancelled && !_done.TrySetResult(client))
            {
                lock (network.Gate) client.AbortAndForget();
                network.FlushWakeups();
            }
        }

        private void Refused()
        {
            lock (network.Gate) network.CountEvent();
            _registration.Dispose();
            _done.TrySetException(new IOException($"connect to {remote}: Connection refused", new SocketException((int)SocketError.ConnectionRefused)));
        }
    }
}

/// <summary>A bound port of a <see cref="VirtualStreamEndpoint"/>.</summary>
internal sealed class VirtualStreamListener(VirtualStreamNetwork network, IPEndPoint localEndPoint) : IStreamListener
{
    private readonly Queue<VirtualStreamConnection> _backlog = new();
    private TaskCompletionSource<IStreamConnection?>? _waiter;
    private bool _disposed;

    public IPEndPoint LocalEndPoint { get; } = localEndPoint;

    /// <summary>Whether a new connection may be queued. Caller holds the gate.</summary>
    internal bool HasRoom => !_disposed && _backlog.Count < network.Options.Backlog;

    /// <summary>Hands <paramref name="connection"/> to a waiting accept or queues it. Caller holds the gate.</summary>
    internal void Offer(VirtualStreamConnection connection)
    {
        if (_waiter is { } waiter)
        {
            _waiter = null;
            network.Wake(() => waiter.TrySetResult(connection));
            return;
        }

        _backlog.Enqueue(connection);
    }

    public async ValueTask<IStreamConnection?> AcceptAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        TaskCompletionSource<IStreamConnection?> waiter;
        lock (network.Gate)
        {
            if (_disposed) return null;
            if (_backlog.TryDequeue(out var queued)) return queued;
            if (_waiter is not null) throw new InvalidOperationException("Another AcceptAsync is already waiting.");
            waiter = _waiter = new TaskCompletionSource<IStreamConnection?>();
        }

        using var registration = cancellationToken.CanBeCanceled
            ? cancellationToken.Register(() =>
            {
                lock (network.Gate)
                {
                    if (_waiter == waiter) _waiter = null;
                }

                waiter.TrySetCanceled(cancellationToken);
            })
            : default;
        return await waiter.Task.ConfigureAwait(false);
    }

    public ValueTask DisposeAsync()
    {
        lock (network.Gate)
        {
            if (_disposed) return ValueTask.CompletedTask;
            _disposed = true;
            network.Unbind(this);
            if (_waiter is { } waiter)
            {
                _waiter = null;
                network.Wake(() => waiter.TrySetResult(null));
            }

            // Connections nobody accepted are reset, as the kernel does when a listening socket closes.
            while (_backlog.TryDequeue(out var orphan)) orphan.AbortAndForget();
        }

        network.FlushWakeups();
        return ValueTask.CompletedTask;
    }
}
