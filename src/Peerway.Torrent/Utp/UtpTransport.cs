using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Net;

namespace Peerway.Torrent.Utp;

/// <summary>
/// uTP (BEP 29) over one <see cref="IDatagramSocket"/>: the socket manager that demultiplexes packets to connections by
/// (remote endpoint, connection id), accepts SYNs for its listener, answers packets of unknown connections with
/// ST_RESET (rate-limited, never larger than what it answers), and drives every connection's timers from one
/// <see cref="TimeProvider"/> timer. All connection state is touched under one lock; waiters are completed after it
/// is released.
/// </summary>
/// <remarks>
/// To share the UDP port with the DHT and the UDP tracker client, create it with <c>startSocket: false</c> and hand it
/// the datagrams for which <see cref="IsUtp"/> holds through <see cref="Receive"/>.
/// </remarks>
public sealed class UtpTransport : IStreamTransport, IAsyncDisposable, IDisposable
{
    private static readonly TimeSpan TickInterval = TimeSpan.FromMilliseconds(50);

    private readonly IDatagramSocket _socket;
    private readonly TimeProvider _time;
    private readonly UtpOptions _options;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly Dictionary<(IPEndPoint Remote, ushort Id), UtpConnection> _connections = [];
    private readonly List<UtpConnection> _changed = [];
    private readonly Random _random;
    private readonly ITimer _timer;
    private readonly byte[] _scratch;
    private readonly List<UtpConnection> _pendingAcks = [];
    private readonly Func<UtpConnection, bool> _deferAck;
    private bool _batchedAcks;
    /// <summary>Under the lock: a DATA packet was sent since the last <see cref="IBatchingDatagramSocket.FlushSends"/>.</summary>
    private bool _dataQueued;
    private UtpListener? _listener;
    private long? _resetWindowStart;
    private int _resetsInWindow;
    private long _resets;
    private bool _disposed;

    /// <summary>uTP (BEP 29) over <paramref name="socket"/>, timed by <paramref name="time"/>; <paramref name="startSocket"/> false: the socket is not started here (a port shared with the DHT, see the class remarks).</summary>
    public UtpTransport(IDatagramSocket socket, TimeProvider time, UtpOptions options, ILogger? logger = null, bool startSocket = true)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _socket = socket;
        _time = time;
        _options = options;
        _log = logger ?? NullLogger.Instance;
        _random = options.RandomSeed is { } seed ? new Random(seed) : new Random();
        _scratch = new byte[UtpConnection.ScratchSize(options)];
        _deferAck = DeferAck;
        _timer = time.CreateTimer(_ => Tick(), null, TickInterval, TickInterval);
        if (!startSocket) return;
        if (socket is IBatchingDatagramSocket batching) batching.Start(Receive, EndOfBatch);
        else socket.Start(Receive);
    }

    /// <inheritdoc/>
    public StreamTransportKind Kind => StreamTransportKind.Utp;

    /// <summary>The UDP socket's local address.</summary>
    public IPEndPoint LocalEndPoint => _socket.LocalEndPoint;

    /// <summary>Resets sent to packets of unknown connections.</summary>
    public long Resets => Interlocked.Read(ref _resets);

    /// <summary>Connections the transport tracks (open, half-open or closing).</summary>
    public int ConnectionCount
    {
        get
        {
            lock (_gate) return _connections.Count;
        }
    }

    /// <summary>A datagram on a shared port is uTP when this holds (see <see cref="UtpPacket.LooksLikeUtp"/>).</summary>
    public static bool IsUtp(ReadOnlySpan<byte> datagram) => UtpPacket.LooksLikeUtp(datagram);

    private long Now => _time.GetElapsedTime(0, _time.GetTimestamp()).Ticks / 10;

    /// <inheritdoc/>
    public ValueTask<IStreamListener> ListenAsync(IPEndPoint localEndPoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(localEndPoint);
        cancellationToken.ThrowIfCancellationRequested();
        if (localEndPoint.Port != 0 && localEndPoint.Port != _socket.LocalEndPoint.Port)
        {
            throw new IOException($"this uTP transport is bound to {_socket.LocalEndPoint}, not {localEndPoint}");
        }

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_listener is not null) throw new IOException($"uTP endpoint {_socket.LocalEndPoint} already has a listener");
            _listener = new UtpListener(this);
            return ValueTask.FromResult<IStreamListener>(_listener);
        }
    }

    /// <inheritdoc/>
    public async ValueTask<IStreamConnection> ConnectAsync(IPEndPoint remoteEndPoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(remoteEndPoint);
        UtpConnection connection;
        TaskCompletionSource connected;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_connections.Count >= _options.MaxConnections) throw new IOException("too many uTP connections");
            ushort id;
            do id = (ushort)_random.Next(ushort.MaxValue + 1);
            while (_connections.ContainsKey((remoteEndPoint, id)));
            connected = NewWaiter();
            connection = UtpConnection.Connect(remoteEndPoint, id, InitialSequence(), Now, _options, Send, Changed, _scratch, _deferAck);
            connection.ConnectWaiter = connected;
            _connections[(remoteEndPoint, id)] = connection;
        }

        CompleteChanged();
        try
        {
            await connected.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Abort(connection);
            throw;
        }

        lock (_gate)
        {
            if (connection.State != UtpState.Connected) throw new IOException($"uTP connect to {remoteEndPoint} failed: {connection.Error}");
        }

        return new UtpStreamConnection(this, connection);
    }

    /// <summary>Handles one datagram (the socket's handler, or the demux of a shared port).</summary>
    public void Receive(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        var error = UtpPacket.TryDecode(datagram, out var packet);
        if (error != UtpDecodeError.None) return;
        lock (_gate)
        {
            if (_disposed) return;
            var now = Now;
            var h = packet.Header;
            if (_connections.TryGetValue((remote, h.ConnectionId), out var connection))
            {
                connection.OnPacket(packet, now);

                // Data this packet let out (an ACK opening the window) was queued on the receiving thread's batch: it
                // leaves before the lock is released, or a writer taking the lock next would send later sequence
                // numbers first, and the reordering would read as loss (three SACKed past a hole: a needless
                // retransmission and a halved window).
                if (_dataQueued && _socket is IBatchingDatagramSocket batching) batching.FlushSends();
                _dataQueued = false;
            }
            else if (h.Type == UtpPacketType.Syn)
            {
                // BEP 29: the acceptor's conn_id_recv is the SYN's id + 1.
                var key = (remote, unchecked((ushort)(h.ConnectionId + 1)));
                if (_connections.TryGetValue(key, out var existing)) existing.OnDuplicateSyn(now, packet.DatagramLength);
                else if (_listener is { } listener && _connections.Count < _options.MaxConnections && listener.Pending < _options.MaxPendingAccepts)
                {
                    var accepted = UtpConnection.Accept(remote, packet, InitialSequence(), now, _options, Send, Changed, _scratch, _deferAck);
                    _connections[key] = accepted;
                    listener.Enqueue(accepted);
                }
                else
                {
                    SendReset(h, remote, now);
                }
            }
            else if (h.Type != UtpPacketType.Reset)
            {
                SendReset(h, remote, now);
            }
        }

        CompleteChanged();
    }

    /// <summary>ST_RESET to a packet of no connection: 20 bytes (never more than the packet), acking its seq_nr, at
    /// most <see cref="UtpOptions.MaxResetsPerSecond"/>.</summary>
    private void SendReset(in UtpHeader to, IPEndPoint remote, long now)
    {
        if (_resetWindowStart is not { } windowStart || now - windowStart >= 1_000_000)
        {
            _resetWindowStart = now;
            _resetsInWindow = 0;
        }

        if (_resetsInWindow >= _options.MaxResetsPerSecond) return;
        _resetsInWindow++;
        var reset = new UtpHeader(UtpPacketType.Reset, 0, to.ConnectionId, unchecked((uint)now), unchecked((uint)now - to.TimestampMicroseconds), 0,
            (ushort)_random.Next(ushort.MaxValue + 1), to.SequenceNumber);
        Span<byte> bytes = stackalloc byte[UtpHeader.Length];
        reset.Write(bytes);
        _socket.Send(bytes, remote);
        Interlocked.Increment(ref _resets);
        _log.LogDebug("uTP {Type} from {Peer} for unknown connection {Id} answered with ST_RESET", to.Type, remote, to.ConnectionId);
    }

    /// <summary>
    /// The socket delivered every datagram it had (see <see cref="IBatchingDatagramSocket"/>): the ACKs deferred during
    /// the batch go out, one per connection (libtorrent's utp_socket_manager::socket_drained). The first call turns
    /// deferral on; a socket that never calls it gets every packet acked at once. Call it on the receiving thread.
    /// </summary>
    public void EndOfBatch()
    {
        lock (_gate)
        {
            _batchedAcks = true;
            if (_pendingAcks.Count == 0) return;
            var now = Now;
            foreach (var c in _pendingAcks) c.FlushAck(now);
            _pendingAcks.Clear();
        }
    }

    /// <summary>Under the lock: whether <paramref name="c"/>'s ACK can wait for <see cref="EndOfBatch"/>.</summary>
    private bool DeferAck(UtpConnection c)
    {
        if (!_batchedAcks || _disposed) return false;
        _pendingAcks.Add(c);
        return true;
    }

    private ushort InitialSequence() => _options.InitialSequenceNumber ?? (ushort)_random.Next(ushort.MaxValue + 1);

    private void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        if (datagram[0] >> 4 == (int)UtpPacketType.Data) _dataQueued = true;
        _socket.Send(datagram, remote);
    }

    /// <summary>Called by a connection (under the lock) when readers, writers or connect waiters may proceed.</summary>
    private void Changed(UtpConnection connection) => _changed.Add(connection);

    private void Tick()
    {
        lock (_gate)
        {
            if (_disposed) return;
            var now = Now;
            List<(IPEndPoint, ushort)>? finished = null;
            foreach (var (key, c) in _connections)
            {
                c.OnTick(now);
                if (c.State is UtpState.Closed or UtpState.Error && (c.Released || c.State == UtpState.Error)) (finished ??= []).Add(key);
            }

            _listener?.Prune();
            if (finished is not null)
            {
                foreach (var key in finished)
                {
                    _connections.Remove(key, out var c);
                    _log.LogDebug("uTP connection to {Peer} ended: {Reason}; {Counters}", c!.Remote, c.Error ?? "closed", c.Describe());
                }
            }
        }

        CompleteChanged();
    }

    /// <summary>Completes the waiters of connections that changed, outside the lock.</summary>
    private void CompleteChanged()
    {
        List<TaskCompletionSource>? ready = null;
        lock (_gate)
        {
            foreach (var c in _changed)
            {
                Take(c.ReadWaiter, ref ready);
                Take(c.WriteWaiter, ref ready);
                c.ReadWaiter = c.WriteWaiter = null;
                if (c.ConnectWaiter is { } w && c.State != UtpState.SynSent)
                {
                    (ready ??= []).Add(w);
                    c.ConnectWaiter = null;
                }
            }

            _changed.Clear();
            _listener?.TakeReady(ref ready);
        }

        if (ready is null) return;
        foreach (var w in ready) w.TrySetResult();

        static void Take(TaskCompletionSource? w, ref List<TaskCompletionSource>? ready)
        {
            if (w is not null) (ready ??= []).Add(w);
        }
    }

    private TaskCompletionSource NewWaiter() =>
        new(_options.CompleteInline ? TaskCreationOptions.None : TaskCreationOptions.RunContinuationsAsynchronously);

    // ---- what UtpStream and UtpListener call ----

    internal async ValueTask<int> ReadAsync(UtpConnection c, Memory<byte> buffer, CancellationToken ct)
    {
        if (buffer.IsEmpty) return 0;
        while (true)
        {
            Task wait;
            lock (_gate)
            {
                if (c.Readable > 0)
                {
                    var n = c.Read(buffer.Span, Now);
                    if (n > 0)
                    {
                        // the window update (if any) was sent under the lock; nothing to wake
                        _changed.Remove(c);
                        return n;
                    }
                }

                if (c.EndOfStream) return 0;
                if (c.State == UtpState.Error) throw new IOException($"uTP connection to {c.Remote}: {c.Error}");
                if (c.State == UtpState.Closed || c.Released) return 0;
                c.ReadWaiter ??= NewWaiter();
                wait = c.ReadWaiter.Task;
            }

            await wait.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    internal async ValueTask WriteAsync(UtpConnection c, ReadOnlyMemory<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            Task wait;
            lock (_gate)
            {
                if (c.State == UtpState.Error) throw new IOException($"uTP connection to {c.Remote}: {c.Error}");
                ObjectDisposedException.ThrowIf(c.Released || c.State == UtpState.Closed, typeof(UtpStream));

                // The packets this write sends leave in one system call (UDP GSO where the socket can).
                using var batch = _socket is IBatchingDatagramSocket batching ? batching.BatchSends() : default;
                var n = c.Write(buffer.Span, Now);
                buffer = buffer[n..];
                if (buffer.IsEmpty) break;
                c.WriteWaiter ??= NewWaiter();
                wait = c.WriteWaiter.Task;
            }

            CompleteChanged();
            await wait.WaitAsync(ct).ConfigureAwait(false);
        }

        CompleteChanged();
    }

    internal void Close(UtpConnection c)
    {
        lock (_gate)
        {
            c.Released = true;
            c.Close(Now);
        }

        CompleteChanged();
    }

    internal void Abort(UtpConnection c)
    {
        lock (_gate)
        {
            c.Abort(Now);
        }

        CompleteChanged();
    }

    internal UtpConnectionStats Stats(UtpConnection c)
    {
        lock (_gate) return c.Stats;
    }

    internal void RemoveListener(UtpListener listener)
    {
        List<UtpConnection> pending;
        lock (_gate)
        {
            if (_listener == listener) _listener = null;
            pending = listener.Drain();
            foreach (var c in pending)
            {
                c.Released = true;
                c.Abort(Now);
            }
        }

        CompleteChanged();
    }

    internal Lock Gate => _gate;

    internal TaskCompletionSource CreateWaiter() => NewWaiter();

    /// <summary>Closes the listener, aborts every connection (pending reads and writes fail), stops the timer and
    /// disposes the socket. Nothing here waits, so the synchronous form is the same.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc cref="DisposeAsync"/>
    public void Dispose()
    {
        UtpListener? listener;
        lock (_gate)
        {
            if (_disposed) return;
            listener = _listener;
        }

        listener?.Close();
        lock (_gate)
        {
            _disposed = true;
            var now = Now;
            foreach (var c in _connections.Values)
            {
                if (_log.IsEnabled(LogLevel.Debug)) _log.LogDebug("uTP connection to {Peer} closed with the transport ({State}); {Counters}", c.Remote, c.State, c.Describe());
                c.Abort(now);
            }

            _connections.Clear();
            _pendingAcks.Clear();
        }

        CompleteChanged();
        _timer.Dispose();
        _socket.Dispose();
    }
}

/// <summary>The listener of a <see cref="UtpTransport"/>: connections accepted from SYNs, in order.</summary>
internal sealed class UtpListener(UtpTransport transport) : IStreamListener
{
    private readonly Queue<UtpConnection> _pending = new();
    private TaskCompletionSource? _waiter;
    private bool _wake;
    private bool _disposed;

    public IPEndPoint LocalEndPoint => transport.LocalEndPoint;

    /// <summary>Under the transport's lock.</summary>
    public int Pending => _pending.Count;

    /// <summary>Under the transport's lock.</summary>
    public void Enqueue(UtpConnection c)
    {
        _pending.Enqueue(c);
        _wake = true;
    }

    /// <summary>Under the transport's lock: hands the waiter over for completion outside it.</summary>
    public void TakeReady(ref List<TaskCompletionSource>? ready)
    {
        if (!_wake || _waiter is null) return;
        (ready ??= []).Add(_waiter);
        _waiter = null;
        _wake = false;
    }

    /// <summary>Under the transport's lock: forgets pending connections that failed before they were accepted.</summary>
    public void Prune()
    {
        if (_pending.All(c => c.State == UtpState.Connected)) return;
        var keep = _pending.Where(c => c.State == UtpState.Connected).ToList();
        _pending.Clear();
        foreach (var c in keep) _pending.Enqueue(c);
    }

    public List<UtpConnection> Drain()
    {
        _disposed = true;
        var all = _pending.ToList();
        _pending.Clear();
        _wake = true;
        return all;
    }

    public async ValueTask<IStreamConnection?> AcceptAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (transport.Gate)
            {
                while (_pending.TryDequeue(out var c))
                {
                    if (c.State == UtpState.Connected) return new UtpStreamConnection(transport, c);
                }

                if (_disposed) return null;
                _waiter ??= transport.CreateWaiter();
                wait = _waiter.Task;
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync()
    {
        Close();
        return ValueTask.CompletedTask;
    }

    /// <summary>Stops accepting: pending connections are aborted and a waiting accept returns null.</summary>
    public void Close()
    {
        TaskCompletionSource? waiter;
        lock (transport.Gate)
        {
            if (_disposed) return;
            waiter = _waiter;
            _waiter = null;
        }

        transport.RemoveListener(this);
        waiter?.TrySetResult();
    }
}

/// <summary>A uTP connection as the stream seam sees it.</summary>
internal sealed class UtpStreamConnection : IStreamConnection
{
    private readonly UtpTransport _transport;
    private readonly UtpConnection _connection;

    public UtpStreamConnection(UtpTransport transport, UtpConnection connection)
    {
        _transport = transport;
        _connection = connection;
        Stream = new UtpStream(transport, connection);
    }

    public Stream Stream { get; }

    public IPEndPoint RemoteEndPoint => _connection.Remote;

    public IPEndPoint LocalEndPoint => _transport.LocalEndPoint;

    public StreamTransportKind Kind => StreamTransportKind.Utp;

    internal UtpConnectionStats Stats => _transport.Stats(_connection);

    public void Abort() => _transport.Abort(_connection);

    public ValueTask DisposeAsync()
    {
        Stream.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>The duplex byte stream of a uTP connection: reads return 0 at the remote's FIN and throw
/// <see cref="IOException"/> on a reset; writes complete once the send buffer took the bytes.</summary>
internal sealed class UtpStream(UtpTransport transport, UtpConnection connection) : Stream
{
    private int _disposed;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        transport.ReadAsync(connection, buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // The synchronous Stream members block on the asynchronous ones by contract; nothing here runs on a
    // single-threaded synchronization context.
#pragma warning disable VSTHRD002
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        transport.WriteAsync(connection, buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();
#pragma warning restore VSTHRD002

    public override void Flush()
    {
        // Writes go to the connection's send buffer, which sends as the windows allow.
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0) transport.Close(connection);
        base.Dispose(disposing);
    }
}
