using System.Buffers;
using System.Net;
using System.Net.Sockets;

namespace Peerway.Net;

/// <summary>An <see cref="IDatagramSocket"/> over a real UDP socket (IPv4 or IPv6).</summary>
public sealed class UdpDatagramSocket : IDatagramSocket
{
    /// <summary>Largest datagram received; larger ones are truncated by the OS and dropped here.</summary>
    public const int MaxDatagramSize = 65_535;

    /// <summary>Remote addresses remembered by <see cref="EndPointCache"/> before it starts over (memory bound).</summary>
    internal const int MaxCachedEndPoints = 4_096;

    private readonly Socket _socket;
    private readonly EndPointCache _endPoints = new();
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;
    private long _sendErrors;
    private int _handlerThread;

    public UdpDatagramSocket(IPEndPoint bind)
        : this(bind, reusePort: false)
    {
    }

    /// <param name="reusePort">Linux SO_REUSEPORT: several sockets share the port and the kernel spreads flows over
    /// them (one receive loop each), for servers that scale over cores.</param>
    public UdpDatagramSocket(IPEndPoint bind, bool reusePort)
    {
        ArgumentNullException.ThrowIfNull(bind);
        _socket = new Socket(bind.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        if (reusePort && OperatingSystem.IsLinux()) _socket.SetRawSocketOption(1 /* SOL_SOCKET */, 15 /* SO_REUSEPORT */, [1, 0, 0, 0]);
        if (bind.AddressFamily == AddressFamily.InterNetworkV6) _socket.DualMode = false;
        _socket.ReceiveBufferSize = 4 * 1024 * 1024;
        _socket.SendBufferSize = 4 * 1024 * 1024;
        if (OperatingSystem.IsWindows())
        {
            // Windows reports ICMP port-unreachable as a receive error; ignore it (SIO_UDP_CONNRESET).
            _socket.IOControl(unchecked((int)0x9800000C), [0, 0, 0, 0], null);
        }

        _socket.Bind(bind);
        LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
    }

    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Datagrams the OS refused to send (e.g. no route).</summary>
    public long SendErrors => Interlocked.Read(ref _sendErrors);

    public void Start(DatagramHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        if (_loop is not null) throw new InvalidOperationException("The socket is already started.");
        _loop = Task.Run(() => ReceiveLoopAsync(handler, _stop.Token));
    }

    private async Task ReceiveLoopAsync(DatagramHandler handler, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(MaxDatagramSize);
        var memory = buffer.AsMemory();
        // The SocketAddress overload fills one reusable address instead of allocating an EndPoint per datagram; the
        // cache turns it into the same IPEndPoint instance for every datagram from a known remote.
        var from = new SocketAddress(LocalEndPoint.AddressFamily, SocketAddress.GetMaximumAddressSize(LocalEndPoint.AddressFamily));
        try
        {
            while (!ct.IsCancellationRequested)
            {
                int received;
                try
                {
                    received = await _socket.ReceiveFromAsync(memory, SocketFlags.None, from, ct);
                }
                catch (SocketException)
                {
                    // ICMP errors from an earlier send surface here on some platforms: not fatal for UDP.
                    continue;
                }

                Volatile.Write(ref _handlerThread, Environment.CurrentManagedThreadId);
                handler(buffer.AsSpan(0, received), _endPoints.GetOrAdd(from));
                Volatile.Write(ref _handlerThread, 0);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Disposed.
        }
        catch (ObjectDisposedException) when (ct.IsCancellationRequested)
        {
            // Disposed.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        ArgumentNullException.ThrowIfNull(remote);
        if (remote.AddressFamily != LocalEndPoint.AddressFamily)
        {
            Interlocked.Increment(ref _sendErrors);
            return;
        }

        try
        {
            _socket.SendTo(datagram, SocketFlags.None, _endPoints.GetSocketAddress(remote));
        }
        catch (SocketException)
        {
            Interlocked.Increment(ref _sendErrors);
        }
        catch (ObjectDisposedException)
        {
            Interlocked.Increment(ref _sendErrors);
        }
    }

    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _socket.Dispose();
        try
        {
            // A handler may dispose its own socket (a transaction completing inline ends its owner): the loop then
            // ends when the handler returns, and waiting for it here would wait for ourselves.
            if (Volatile.Read(ref _handlerThread) != Environment.CurrentManagedThreadId) _loop?.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // The loop ends by cancellation; nothing else to report at dispose.
        }

        _stop.Dispose();
    }

    /// <summary>
    /// Bounded two-way map between remote <see cref="IPEndPoint"/>s and their serialized <see cref="SocketAddress"/>, so
    /// neither receiving nor sending allocates per datagram for remotes seen before. Receives come from one loop but
    /// sends from any thread: guarded by a lock (uncontended in the common case).
    /// </summary>
    private sealed class EndPointCache
    {
        private readonly Lock _gate = new();
        private readonly Dictionary<SocketAddress, IPEndPoint> _byAddress = new(AddressBytesComparer.Instance);
        private readonly Dictionary<IPEndPoint, SocketAddress> _byEndPoint = [];

        /// <summary>The endpoint for a just-received address (which is reused by the next receive: never stored).</summary>
        public IPEndPoint GetOrAdd(SocketAddress received)
        {
            lock (_gate)
            {
                if (_byAddress.TryGetValue(received, out var known)) return known;
            }

            var key = new SocketAddress(received.Family, received.Size);
            received.Buffer.Span[..received.Size].CopyTo(key.Buffer.Span);
            var endPoint = (IPEndPoint)new IPEndPoint(IPAddress.Any, 0).Create(key);
            if (endPoint.Address.IsIPv4MappedToIPv6) endPoint = new IPEndPoint(endPoint.Address.MapToIPv4(), endPoint.Port);
            lock (_gate)
            {
                MakeRoom();
                _byAddress[key] = endPoint;
                if (endPoint.AddressFamily == key.Family) _byEndPoint.TryAdd(endPoint, key);
            }

            return endPoint;
        }

        public SocketAddress GetSocketAddress(IPEndPoint remote)
        {
            lock (_gate)
            {
                if (_byEndPoint.TryGetValue(remote, out var known)) return known;
            }

            var address = remote.Serialize();
            lock (_gate)
            {
                MakeRoom();
                _byEndPoint[remote] = address;
            }

            return address;
        }

        /// <summary>
        /// Compares the address bytes themselves: SocketAddress caches its hash code, and the socket rewrites the
        /// receive address in place without invalidating it, so its own GetHashCode cannot key a lookup.
        /// </summary>
        private sealed class AddressBytesComparer : IEqualityComparer<SocketAddress>
        {
            public static readonly AddressBytesComparer Instance = new();

            public bool Equals(SocketAddress? x, SocketAddress? y) =>
                x is not null && y is not null && x.Buffer.Span[..x.Size].SequenceEqual(y.Buffer.Span[..y.Size]);

            public int GetHashCode(SocketAddress obj)
            {
                var hash = default(HashCode);
                hash.AddBytes(obj.Buffer.Span[..obj.Size]);
                return hash.ToHashCode();
            }
        }

        private void MakeRoom()
        {
            // Memory bound: start over rather than track recency (a server talking to more remotes than this pays
            // one allocation per new remote, as without the cache).
            if (_byAddress.Count >= MaxCachedEndPoints) _byAddress.Clear();
            if (_byEndPoint.Count >= MaxCachedEndPoints) _byEndPoint.Clear();
        }
    }
}
