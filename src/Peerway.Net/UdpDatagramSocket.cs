using System.Buffers;
using System.Net;
using System.Net.Sockets;

namespace Peerway.Net;

/// <summary>An <see cref="IDatagramSocket"/> over a real UDP socket (IPv4 or IPv6).</summary>
/// <remarks>
/// Two receive modes. By default one asynchronous loop on the thread pool (cheap per socket: a TURN server holds one
/// per allocation). With <c>dedicatedThread</c>, a thread of its own that on 64-bit Linux moves datagrams in batches:
/// recvmmsg(2) takes up to <see cref="BatchSize"/> per system call, and what handlers send from that thread, on this
/// socket or any other, goes out after the batch in one sendmmsg(2) per socket, runs of equal-size datagrams to one
/// destination as one UDP GSO message (for busy server sockets: STUN, the TURN listener). A
/// <see cref="UdpReceiveGroup"/> thread batches its handlers' sends the same way.
/// </remarks>
public sealed partial class UdpDatagramSocket : IBatchingDatagramSocket
{
    /// <summary>Largest datagram received; larger ones are truncated by the OS and dropped here.</summary>
    public const int MaxDatagramSize = 65_535;

    /// <summary>Datagrams moved per recvmmsg/sendmmsg call on a dedicated thread.</summary>
    public const int BatchSize = 32;

    /// <summary>Remote addresses remembered by <see cref="EndPointCache"/> before it starts over (memory bound).</summary>
    internal const int MaxCachedEndPoints = 4_096;

    private readonly Socket _socket;
    private readonly EndPointCache _endPoints = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly bool _dedicatedThread;
    private readonly UdpReceiveGroup? _group;
    private DatagramHandler? _groupHandler;
    private Action? _batchEnd;
    private RawEndPointCache? _groupEndPoints;
    private int _groupFd = -1;
    private bool _groupRef;
    private int _groupClosed;
    private Task? _loop;
    private Thread? _thread;
    private BatchedIo? _batch;
    private BatchedIo? _spareSendQueue;
    private long _sendErrors;
    private long _batchedSends;
    private long _handlerFaults;
    private long _coalescedDatagrams;
    private int _handlerThread;
    private int _disposed;

    /// <summary>
    /// The send queue of the I/O thread running this code (a dedicated receive thread or a group thread), set for
    /// that thread's lifetime; null on every other thread. What a handler sends, on any socket, joins it and leaves
    /// in one sendmmsg per socket when the thread has delivered its batch (before it waits again).
    /// </summary>
    /// <remarks>Per thread, not shared: only this class's own I/O threads set it, for their lifetime.</remarks>
    [ThreadStatic]
    private static BatchedIo? t_sendBatch;

    /// <summary>A socket bound to <paramref name="bind"/> (port 0: a free port); datagrams reach the handler given to <see cref="Start(DatagramHandler)"/>. Throws <see cref="System.Net.Sockets.SocketException"/> when the address cannot be bound.</summary>
    public UdpDatagramSocket(IPEndPoint bind)
        : this(bind, reusePort: false)
    {
    }

    /// <param name="bind">The local address and port (port 0: any free one).</param>
    /// <param name="reusePort">Linux SO_REUSEPORT: several sockets share the port and the kernel spreads flows over
    /// them (one receive loop each), for servers that scale over cores.</param>
    public UdpDatagramSocket(IPEndPoint bind, bool reusePort)
        : this(bind, reusePort, dedicatedThread: false)
    {
    }

    /// <param name="bind">The local address and port (port 0: any free one).</param>
    /// <param name="reusePort">Linux SO_REUSEPORT (see the constructor above).</param>
    /// <param name="dedicatedThread">Receive on a thread of its own, batching system calls on Linux (see remarks).</param>
    public UdpDatagramSocket(IPEndPoint bind, bool reusePort, bool dedicatedThread)
    {
        ArgumentNullException.ThrowIfNull(bind);
        _dedicatedThread = dedicatedThread;
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

    /// <summary>Receives on the shared thread of <paramref name="group"/> (or, where that is not supported, on an
    /// asynchronous loop of its own, as the default mode).</summary>
    public UdpDatagramSocket(IPEndPoint bind, UdpReceiveGroup group)
        : this(bind, reusePort: false, dedicatedThread: false)
    {
        ArgumentNullException.ThrowIfNull(group);
        _group = group;
    }

    /// <inheritdoc/>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>This socket's epoll token in its group.</summary>
    internal ulong GroupToken { get; set; }

    /// <summary>Whether this socket is served by a <see cref="UdpReceiveGroup"/> thread.</summary>
    internal bool InGroup => _groupHandler is not null;

    /// <summary>The handle, for the batched calls of <see cref="BatchedIo"/>.</summary>
    internal SafeSocketHandle Handle => _socket.SafeHandle;

    /// <summary>Whether batched sends may merge datagrams with UDP GSO (off once the kernel refused it).</summary>
    internal bool GsoEnabled { get; set; } = true;

    /// <summary>Whether the kernel may coalesce received datagrams for this socket (UDP_GRO, see <see cref="TryEnableGro"/>).</summary>
    internal bool GroEnabled { get; private set; }

    /// <summary>Datagrams that arrived coalesced with others in one receive (UDP_GRO) and were cut apart, for tests.</summary>
    internal long CoalescedDatagrams => Interlocked.Read(ref _coalescedDatagrams);

    /// <summary>Whether the batched Linux calls (recvmmsg, sendmmsg, GSO) are used on this platform, for tests.</summary>
    internal static bool BatchedIoSupported => LinuxUdp.IsSupported;

    /// <summary>The socket itself, for tests that set options on it.</summary>
    internal Socket RawSocket => _socket;

    internal void CountSendErrors(int count) => Interlocked.Add(ref _sendErrors, count);

    /// <summary>Datagrams this socket sent from an I/O thread's send queue (sendmmsg), for tests.</summary>
    internal long BatchedSends => Interlocked.Read(ref _batchedSends);

    internal void CountBatchedSends(int count) => Interlocked.Add(ref _batchedSends, count);

    /// <summary>
    /// Sets the DF bit on every datagram and ignores the kernel's path MTU cache (Linux IP_MTU_DISCOVER /
    /// IPV6_MTU_DISCOVER = IP_PMTUDISC_PROBE), for protocols that find the path MTU by probing themselves (RFC 8899, uTP):
    /// a datagram the path cannot carry is dropped (or refused with EMSGSIZE, counted in <see cref="SendErrors"/>),
    /// never fragmented. False where the platform does not support it.
    /// </summary>
    public bool TrySetDontFragment()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            if (LocalEndPoint.AddressFamily == AddressFamily.InterNetworkV6) _socket.SetRawSocketOption(41 /* IPPROTO_IPV6 */, 23 /* IPV6_MTU_DISCOVER */, [3, 0, 0, 0]);
            else _socket.SetRawSocketOption(0 /* IPPROTO_IP */, 10 /* IP_MTU_DISCOVER */, [3 /* IP_PMTUDISC_PROBE */, 0, 0, 0]);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Datagrams the OS refused to send (e.g. no route).</summary>
    public long SendErrors => Interlocked.Read(ref _sendErrors);

    /// <summary>Datagrams whose handler threw on a dedicated thread (counted; the thread keeps receiving).</summary>
    public long HandlerFaults => Interlocked.Read(ref _handlerFaults);

    /// <summary>As <see cref="Start(DatagramHandler)"/>; <paramref name="batchEnd"/> runs after each recvmmsg batch (a
    /// dedicated thread or a group), or after a datagram when no other is waiting (FIONREAD, the other loops).</summary>
    public void Start(DatagramHandler handler, Action batchEnd)
    {
        ArgumentNullException.ThrowIfNull(batchEnd);
        _batchEnd = batchEnd;
        Start(handler);
    }

    /// <inheritdoc/>
    public void Start(DatagramHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        if (_loop is not null || _thread is not null || _groupHandler is not null) throw new InvalidOperationException("The socket is already started.");
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_group is { IsSupported: true } && TryJoinGroup(_group, handler)) return;
        if (!_dedicatedThread)
        {
            _loop = Task.Run(() => ReceiveLoopAsync(handler, _stop.Token));
            return;
        }

        if (LinuxUdp.IsSupported)
        {
            _batch = new BatchedIo();
            TryEnableGro();
        }

        _thread = new Thread(() => ReceiveThread(handler)) { IsBackground = true, Name = $"udp {LocalEndPoint}" };
        _thread.Start();
    }

    private bool TryJoinGroup(UdpReceiveGroup group, DatagramHandler handler)
    {
        // The reference keeps the descriptor number ours while the group thread may use it; released on close.
        var handle = _socket.SafeHandle;
        var added = false;
        handle.DangerousAddRef(ref added);
        _groupRef = added;
        _groupFd = (int)handle.DangerousGetHandle();
        _groupEndPoints = new RawEndPointCache();
        _groupHandler = handler;
        if (group.TryAdd(this, _groupFd)) return true;
        _groupHandler = null;
        _groupEndPoints = null;
        if (added) handle.DangerousRelease();
        _groupRef = false;
        return false;
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
                if (_batchEnd is { } end && NothingWaiting()) end();
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

    private void ReceiveThread(DatagramHandler handler)
    {
        try
        {
            if (_batch is not null) ReceiveBatches(handler, _batch);
            else ReceiveBlocking(handler);
        }
        finally
        {
            // The thread owns the socket's end: Dispose may have been called from a handler on this very thread.
            _socket.Dispose();
            _batch?.Dispose();
        }
    }

    /// <summary>The portable dedicated-thread loop: blocking receives into one buffer and one reused address.</summary>
    private void ReceiveBlocking(DatagramHandler handler)
    {
        var buffer = new byte[MaxDatagramSize];
        var from = new SocketAddress(LocalEndPoint.AddressFamily, SocketAddress.GetMaximumAddressSize(LocalEndPoint.AddressFamily));
        while (!_stop.IsCancellationRequested)
        {
            int received;
            try
            {
                received = _socket.ReceiveFrom(buffer, SocketFlags.None, from);
            }
            catch (SocketException) when (!_stop.IsCancellationRequested)
            {
                continue;
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return;
            }

            Deliver(handler, buffer.AsSpan(0, received), _endPoints.GetOrAdd(from));
            if (_batchEnd is not null && NothingWaiting()) EndBatch();
        }
    }

    private bool NothingWaiting()
    {
        try
        {
            return _socket.Available == 0;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    /// <summary>Tells the handler's owner the batch ended; a fault is counted like a handler's.</summary>
    private void EndBatch()
    {
        if (_batchEnd is not { } end) return;
        try
        {
            end();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Interlocked.Increment(ref _handlerFaults);
        }
    }

    private void Deliver(DatagramHandler handler, ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        try
        {
            handler(datagram, remote);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A bug in the engine must not end the server's only receive thread (nor the process).
            Interlocked.Increment(ref _handlerFaults);
        }
    }

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        ArgumentNullException.ThrowIfNull(remote);
        if (remote.AddressFamily != LocalEndPoint.AddressFamily || Volatile.Read(ref _disposed) != 0)
        {
            Interlocked.Increment(ref _sendErrors);
            return;
        }

        if (t_sendBatch is { } queue)
        {
            // From a handler on one of our I/O threads: the datagram joins that thread's batch (sendmmsg after it).
            if (queue.TryQueue(this, datagram, remote)) return;
            queue.Flush(); // what this thread queued before leaves first
        }

        if (_batch is not null || _groupHandler is not null)
        {
            // A batched or group socket (64-bit Linux): sendto with an address built on the stack, no lock, no
            // SocketAddress.
            if (!BatchedIo.SendNow(_socket.SafeHandle, datagram, remote)) Interlocked.Increment(ref _sendErrors);
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

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;

        // Sent before Dispose on this thread, still queued: let it leave first (a dedicated socket is shut down below
        // to wake its thread, and a shut-down socket sends nothing more).
        if (t_sendBatch is { Queued: > 0 } queue) queue.Flush();
        Interlocked.Exchange(ref _spareSendQueue, null)?.Dispose();
        _stop.Cancel();
        if (_group is not null && _groupHandler is not null)
        {
            // The group thread closes the socket (never waited for here: see UdpReceiveGroup.Remove).
            _group.Remove(this);
            return;
        }

        if (_thread is { } thread)
        {
            if (_batch is not null)
            {
                try
                {
                    LinuxUdp.Wake(_socket.SafeHandle);
                }
                catch (ObjectDisposedException)
                {
                    // Already closed by the thread.
                }
            }
            else
            {
                _socket.Dispose();
            }

            // From a handler on the receive thread, the thread ends (and closes the socket) once the handler returns.
            if (thread != Thread.CurrentThread && !thread.Join(TimeSpan.FromSeconds(5))) _socket.Dispose();
            return;
        }

        _socket.Dispose();
        try
        {
            // A handler may dispose its own socket (a transaction completing inline ends its owner): the loop then
            // ends when the handler returns, and waiting for it here would wait for ourselves.
#pragma warning disable VSTHRD002 // Dispose is synchronous by contract; the loop runs on the thread pool (never this thread, checked), bounded wait
            if (Volatile.Read(ref _handlerThread) != Environment.CurrentManagedThreadId) _loop?.Wait(TimeSpan.FromSeconds(5));
#pragma warning restore VSTHRD002
        }
        catch (AggregateException)
        {
            // The loop ends by cancellation; nothing else to report at dispose.
        }
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
