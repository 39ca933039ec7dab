using System.Buffers;
using System.Net;
using System.Runtime.CompilerServices;

namespace Peerway.Net;

/// <summary>A unit of delivery: up to a segment of payload (pooled), or the FIN that ends a direction.</summary>
internal readonly record struct VirtualSegment(byte[]? Buffer, int Length)
{
    public bool IsFin => Buffer is null;
}

/// <summary>
/// One direction of a virtual connection, sender to receiver: the window, the segments in flight and at the
/// receiver's downlink, the readable bytes, and the acknowledgements on their way back. All members are used under the
/// network's gate.
/// </summary>
internal sealed class VirtualFlow
{
    private readonly VirtualStreamNetwork _network;
    private readonly VirtualStreamEndpoint _from;
    private readonly VirtualStreamEndpoint _to;
    private readonly TimedQueue<VirtualSegment> _inFlight;
    private readonly TimedQueue<VirtualSegment> _atDownlink;
    private readonly TimedQueue<int> _acks;
    private readonly Queue<VirtualSegment> _readable = new();
    private int _readOffset;
    private long _lastArrival;
    private long _lastReadable;

    public VirtualFlow(VirtualStreamNetwork network, VirtualStreamEndpoint from, VirtualStreamEndpoint to, long latencyTicks, long ackLatencyTicks)
    {
        _network = network;
        _from = from;
        _to = to;
        LatencyTicks = latencyTicks;
        AckLatencyTicks = ackLatencyTicks;
        _inFlight = new TimedQueue<VirtualSegment>(network, Arrive);
        _atDownlink = new TimedQueue<VirtualSegment>(network, (_, segment) => MakeReadable(segment));
        _acks = new TimedQueue<int>(network, (_, bytes) => Acknowledged(bytes));
    }

    public long LatencyTicks { get; }

    /// <summary>The way back, receiver to sender.</summary>
    public long AckLatencyTicks { get; }

    /// <summary>The receiving side (set once the pair exists).</summary>
    public VirtualStreamConnection Receiver { get; set; } = null!;

    /// <summary>Bytes written and not yet acknowledged as read: what the send buffer bounds.</summary>
    public int Unacknowledged { get; private set; }

    /// <summary>A RST reached this direction's receiver; nothing more flows.</summary>
    public bool Reset { get; private set; }

    /// <summary>The receiving side closed or aborted: what arrives is discarded.</summary>
    public bool ReceiverClosed { get; set; }

    public TaskCompletionSource? ReadWaiter { get; set; }

    public TaskCompletionSource? WriteWaiter { get; set; }

    /// <summary>Readable payload is waiting (a FIN alone does not count).</summary>
    public bool HasUnreadData => _readable.TryPeek(out var head) && !head.IsFin;

    /// <summary>Takes <paramref name="data"/> into the window (the caller checked the room) and sends it as segments.</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        Unacknowledged += data.Length;
        var segmentSize = _network.Options.SegmentSize;
        while (!data.IsEmpty)
        {
            var n = Math.Min(segmentSize, data.Length);
            var buffer = ArrayPool<byte>.Shared.Rent(n);
            data[..n].CopyTo(buffer);
            Send(new VirtualSegment(buffer, n));
            data = data[n..];
        }
    }

    /// <summary>Sends the FIN after everything written.</summary>
    public void WriteFin() => Send(new VirtualSegment(null, 0));

    private void Send(VirtualSegment segment)
    {
        var now = _network.NowTicks;
        // The sender's uplink passes the segment when its bucket allows; it reaches the receiver one latency later,
        // never before an earlier segment of this direction (TCP delivers in order).
        var departs = _from.Uplink.Reserve(now, segment.Length);
        var arrives = Math.Max(departs + LatencyTicks, _lastArrival);
        _lastArrival = arrives;
        if (arrives <= now && _inFlight.Count == 0) Arrive(arrives, segment);
        else _inFlight.Enqueue(arrives, segment);
    }

    private void Arrive(long arrivedTicks, VirtualSegment segment)
    {
        if (Reset) return;
        if (ReceiverClosed)
        {
            // RFC 9293 §3.10.7.4 / Linux: data for a closed socket is answered with RST.
            if (!segment.IsFin) Receiver.SendReset();
            return;
        }

        var readable = Math.Max(_to.Downlink.Reserve(arrivedTicks, segment.Length), _lastReadable);
        _lastReadable = readable;
        if (readable <= _network.NowTicks && _atDownlink.Count == 0) MakeReadable(segment);
        else _atDownlink.Enqueue(readable, segment);
    }

    private void MakeReadable(VirtualSegment segment)
    {
        if (Reset || ReceiverClosed) return;
        _readable.Enqueue(segment);
        _network.CountDelivered(segment.Length);
        _network.Wake(ReadWaiter);
        ReadWaiter = null;
    }

    /// <summary>Copies readable bytes into <paramref name="destination"/>: the count, 0 at the FIN, or -1 when there is
    /// nothing yet. Room in the window comes back to the writer one latency later.</summary>
    public int Read(Span<byte> destination)
    {
        if (!_readable.TryPeek(out var head)) return -1;
        if (head.IsFin || destination.IsEmpty) return 0;
        var copied = 0;
        while (copied < destination.Length && _readable.TryPeek(out head) && !head.IsFin)
        {
            var n = Math.Min(head.Length - _readOffset, destination.Length - copied);
            head.Buffer.AsSpan(_readOffset, n).CopyTo(destination[copied..]);
            copied += n;
            _readOffset += n;
            if (_readOffset == head.Length)
            {
                _readable.Dequeue();
                _readOffset = 0;
                ArrayPool<byte>.Shared.Return(head.Buffer!);
            }
        }

        if (AckLatencyTicks == 0) Acknowledged(copied);
        else _acks.Enqueue(_network.NowTicks + AckLatencyTicks, copied);
        return copied;
    }

    private void Acknowledged(int bytes)
    {
        Unacknowledged -= bytes;
        _network.Wake(WriteWaiter);
        WriteWaiter = null;
    }

    /// <summary>Drops what is readable (the receiver closed or was reset).</summary>
    public void DiscardReadable()
    {
        _readable.Clear();
        _readOffset = 0;
    }

    /// <summary>A RST reached this direction's receiver (or its sender): everything pending is dropped and both
    /// waiters wake to fail.</summary>
    public void ResetNow()
    {
        Reset = true;
        _inFlight.Clear();
        _atDownlink.Clear();
        _acks.Clear();
        DiscardReadable();
        WakeAll();
    }

    public void WakeAll()
    {
        _network.Wake(ReadWaiter);
        _network.Wake(WriteWaiter);
        ReadWaiter = null;
        WriteWaiter = null;
    }
}

/// <summary>One side of a connection on a <see cref="VirtualStreamNetwork"/>.</summary>
internal sealed class VirtualStreamConnection : IStreamConnection
{
    private readonly VirtualStreamNetwork _network;
    private readonly VirtualFlow _outgoing;
    private readonly VirtualFlow _incoming;
    private VirtualStreamConnection _peer = null!;
    private bool _closed;
    private bool _aborted;
    private bool _resetSent;

    private VirtualStreamConnection(VirtualStreamNetwork network, IPEndPoint local, IPEndPoint remote, VirtualFlow outgoing, VirtualFlow incoming)
    {
        _network = network;
        LocalEndPoint = local;
        RemoteEndPoint = remote;
        _outgoing = outgoing;
        _incoming = incoming;
        Stream = new VirtualStream(this);
    }

    /// <summary>Both sides of a new connection. Caller holds the gate.</summary>
    internal static (VirtualStreamConnection Client, VirtualStreamConnection Server) CreatePair(
        VirtualStreamNetwork network, VirtualStreamEndpoint clientEndpoint, IPEndPoint clientAddress,
        VirtualStreamEndpoint serverEndpoint, IPEndPoint serverAddress, long forwardTicks, long backwardTicks)
    {
        var up = new VirtualFlow(network, clientEndpoint, serverEndpoint, forwardTicks, backwardTicks);
        var down = new VirtualFlow(network, serverEndpoint, clientEndpoint, backwardTicks, forwardTicks);
        var client = new VirtualStreamConnection(network, clientAddress, serverAddress, up, down);
        var server = new VirtualStreamConnection(network, serverAddress, clientAddress, down, up);
        client._peer = server;
        server._peer = client;
        up.Receiver = server;
        down.Receiver = client;
        network.ConnectionOpened();
        return (client, server);
    }

    public Stream Stream { get; }

    public IPEndPoint RemoteEndPoint { get; }

    public IPEndPoint LocalEndPoint { get; }

    public StreamTransportKind Kind => StreamTransportKind.Virtual;

    // The state machines of the waits below come from a pool: a simulated swarm waits millions of times.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    internal async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TaskCompletionSource? waiter = null;
            int n;
            lock (_network.Gate)
            {
                ThrowIfUnusable(_incoming);
                n = _incoming.Read(buffer.Span);
                if (n < 0)
                {
                    if (_incoming.ReadWaiter is not null) throw new InvalidOperationException("Another read is already waiting.");
                    waiter = _incoming.ReadWaiter = new TaskCompletionSource();
                }
            }

            _network.FlushWakeups(); // room for the writer, when acknowledgements take no time
            if (waiter is null) return n;
            await WaitAsync(_incoming, waiter, cancellationToken).ConfigureAwait(false);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    internal async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var bufferSize = _network.Options.SendBufferSize;
        while (!data.IsEmpty)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TaskCompletionSource? waiter = null;
            lock (_network.Gate)
            {
                ThrowIfUnusable(_outgoing);
                var room = bufferSize - _outgoing.Unacknowledged;
                if (room > 0)
                {
                    var n = Math.Min(room, data.Length);
                    _outgoing.Write(data.Span[..n]);
                    data = data[n..];
                }
                else
                {
                    if (_outgoing.WriteWaiter is not null) throw new InvalidOperationException("Another write is already waiting.");
                    waiter = _outgoing.WriteWaiter = new TaskCompletionSource();
                }
            }

            _network.FlushWakeups();
            if (waiter is not null) await WaitAsync(_outgoing, waiter, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Waits for <paramref name="waiter"/>; cancellation also takes it off <paramref name="flow"/>, so the next
    /// read or write may wait again.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WaitAsync(VirtualFlow flow, TaskCompletionSource waiter, CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            await waiter.Task.ConfigureAwait(false);
            return;
        }

        using var registration = cancellationToken.Register(() =>
        {
            lock (_network.Gate)
            {
                if (flow.ReadWaiter == waiter) flow.ReadWaiter = null;
                if (flow.WriteWaiter == waiter) flow.WriteWaiter = null;
            }

            waiter.TrySetCanceled(cancellationToken);
        });
        await waiter.Task.ConfigureAwait(false);
    }

    /// <summary>Caller holds the gate.</summary>
    private void ThrowIfUnusable(VirtualFlow flow)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        if (_aborted) throw new IOException("The connection was aborted.");
        if (flow.Reset) throw new IOException("Connection reset by peer");
    }

    public void Abort()
    {
        lock (_network.Gate)
        {
            if (_closed || _aborted) return;
            AbortCore();
        }

        _network.FlushWakeups();
    }

    /// <summary>Aborts a side no owner will dispose (never accepted, or its dialler gave up). Caller holds the gate.</summary>
    internal void AbortAndForget()
    {
        if (_closed) return;
        if (!_aborted) AbortCore();
        Close();
    }

    private void AbortCore()
    {
        _aborted = true;
        _incoming.ReceiverClosed = true;
        _incoming.DiscardReadable();
        _incoming.WakeAll();
        _outgoing.WakeAll();
        SendReset();
    }

    /// <summary>Sends RST to the peer (once). Caller holds the gate.</summary>
    internal void SendReset()
    {
        if (_resetSent) return;
        _resetSent = true;
        var peer = _peer;
        _network.ScheduleAt(_network.NowTicks + _outgoing.LatencyTicks, () =>
        {
            lock (_network.Gate)
            {
                _network.CountEvent();
                peer.ResetByPeer();
            }

            _network.FlushWakeups();
        });
    }

    private void ResetByPeer()
    {
        _incoming.ResetNow();
        _outgoing.ResetNow();
    }

    private void Close()
    {
        _closed = true;
        if (_peer._closed) _network.ConnectionClosed();
    }

    public ValueTask DisposeAsync()
    {
        lock (_network.Gate)
        {
            if (_closed) return ValueTask.CompletedTask;
            if (!_aborted)
            {
                if (_incoming.HasUnreadData && !_incoming.Reset)
                {
                    AbortCore(); // Linux: close(2) with unread data sends RST, not FIN
                }
                else
                {
                    if (!_outgoing.Reset) _outgoing.WriteFin();
                    _incoming.ReceiverClosed = true;
                    _incoming.DiscardReadable();
                }
            }

            _incoming.WakeAll();
            _outgoing.WakeAll();
            Close();
        }

        _network.FlushWakeups();
        return ValueTask.CompletedTask;
    }
}

/// <summary>The <see cref="Stream"/> of a <see cref="VirtualStreamConnection"/>.</summary>
internal sealed class VirtualStream(VirtualStreamConnection connection) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        connection.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        connection.ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        connection.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        connection.WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // The synchronous Stream members block on the asynchronous ones by contract (a caller that uses them drives the
    // network from another thread); nothing here runs on a single-threaded synchronization context.
#pragma warning disable VSTHRD002
    /// <summary>Blocks until data arrives: only for code that drives the network from another thread.</summary>
    public override int Read(byte[] buffer, int offset, int count) =>
        connection.ReadAsync(buffer.AsMemory(offset, count), CancellationToken.None).AsTask().GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) =>
        connection.WriteAsync(buffer.AsMemory(offset, count), CancellationToken.None).AsTask().GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) connection.DisposeAsync().AsTask().GetAwaiter().GetResult();
        base.Dispose(disposing);
    }
#pragma warning restore VSTHRD002

    // Not base.DisposeAsync(): it would call Dispose(true), which blocks on the same close this awaits.
#pragma warning disable CA2215
    public override ValueTask DisposeAsync() => connection.DisposeAsync();
#pragma warning restore CA2215
}
