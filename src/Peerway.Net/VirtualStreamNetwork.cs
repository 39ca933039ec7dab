using System.Net;

namespace Peerway.Net;

/// <summary>Conditions shared by every link of a <see cref="VirtualStreamNetwork"/>.</summary>
public sealed record VirtualStreamNetworkOptions
{
    /// <summary>One-way delay from the first address to the second (zero by default). Asked once per connection and
    /// direction, when the connection is made.</summary>
    public Func<IPAddress, IPAddress, TimeSpan> Latency { get; init; } = static (_, _) => TimeSpan.Zero;

    /// <summary>Bytes one direction of a connection holds that the remote application has not read yet (what the
    /// writer's send buffer and the reader's receive window hold together in TCP). A write waits while it is full;
    /// room comes back one latency after the reader reads (the acknowledgement's trip). It bounds a connection's rate
    /// to about this size per round trip, as a TCP window does.</summary>
    public int SendBufferSize { get; init; } = 256 * 1024;

    /// <summary>Largest unit of delivery. Rate limits are applied per segment, so a segment is also the burst an idle
    /// endpoint may send or receive at once (the token bucket's depth).</summary>
    public int SegmentSize { get; init; } = 16 * 1024;

    /// <summary>Connections a listener queues before <see cref="IStreamListener.AcceptAsync"/> takes them; further ones
    /// are refused.</summary>
    public int Backlog { get; init; } = 128;

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(Latency);
        if (SegmentSize is < 1 or > 1 << 20) throw new ArgumentOutOfRangeException(nameof(SegmentSize), SegmentSize, "SegmentSize must be in [1, 1 MiB].");
        if (SendBufferSize < SegmentSize) throw new ArgumentOutOfRangeException(nameof(SendBufferSize), SendBufferSize, "SendBufferSize must be at least SegmentSize.");
        if (Backlog < 1) throw new ArgumentOutOfRangeException(nameof(Backlog), Backlog, "Backlog must be at least 1.");
    }
}

/// <summary>The access link of one endpoint of a <see cref="VirtualStreamNetwork"/>.</summary>
public sealed record VirtualEndpointOptions
{
    /// <summary>Bytes per second this endpoint sends, over all its connections; 0 means unlimited.</summary>
    public long UploadBytesPerSecond { get; init; }

    /// <summary>Bytes per second this endpoint receives, over all its connections; 0 means unlimited.</summary>
    public long DownloadBytesPerSecond { get; init; }

    internal void Validate()
    {
        if (UploadBytesPerSecond < 0) throw new ArgumentOutOfRangeException(nameof(UploadBytesPerSecond), UploadBytesPerSecond, "must not be negative.");
        if (DownloadBytesPerSecond < 0) throw new ArgumentOutOfRangeException(nameof(DownloadBytesPerSecond), DownloadBytesPerSecond, "must not be negative.");
    }
}

/// <summary>
/// In-memory TCP-like stream connections between endpoints, for tests and the simulator. Every delay is virtual: each
/// endpoint has an upload and a download rate, each direction of a link a one-way latency, and bytes travel in segments
/// whose departure and arrival times follow from them; the <see cref="IDeliveryScheduler"/> runs the deliveries and the
/// <see cref="TimeProvider"/> (the same clock the scheduler's delays are measured on) says what time it is. Under the
/// simulator's scheduler or a stepped <c>FakeTimeProvider</c> a run is deterministic.
/// </summary>
/// <remarks>
/// <para>Model, per direction of a connection: a write takes what fits in <see cref="VirtualStreamNetworkOptions.SendBufferSize"/>
/// (the rest waits: back-pressure), cuts it into segments and reserves the sender's uplink for each (a token bucket in
/// its virtual-scheduling form, ITU-T I.371 GCRA: a segment of L bytes leaves when the bucket holds L tokens, the bucket
/// refills at the rate and holds one segment); a segment reaches the receiver's downlink one latency later, reserves it
/// the same way, and is then readable. Order is kept per direction, as in TCP. Dispose sends FIN (the reader gets 0
/// after the data), <see cref="IStreamConnection.Abort"/> sends RST (the other side's reads and writes throw
/// <see cref="IOException"/>); closing with unread data, or data arriving after the close, resets the connection, as
/// Linux does. A connect takes a round trip; an address:port nobody listens on refuses it after one.</para>
/// <para>Scale: no thread or timer per connection. Each queue (segments in flight, segments at a downlink,
/// acknowledgements on their way back) has at most one event scheduled, for its head; an event delivers everything
/// due by then. One lock guards the network's state; continuations run outside it (inline, so a single-threaded
/// scheduler stays single-threaded). The scheduler must not run an action inside <see cref="IDeliveryScheduler.Schedule"/>.</para>
/// </remarks>
public sealed partial class VirtualStreamNetwork
{
    private readonly Dictionary<IPAddress, VirtualStreamEndpoint> _endpoints = [];
    private readonly Dictionary<IPEndPoint, VirtualStreamListener> _listeners = [];
    private int _nextHost = 1;
    private int _connections;
    private long _eventsRun;
    private long _bytesDelivered;

    /// <summary>A stream network whose events run through <paramref name="scheduler"/>, timed by <paramref name="time"/>; <paramref name="options"/> null takes the defaults.</summary>
    public VirtualStreamNetwork(IDeliveryScheduler scheduler, TimeProvider time, VirtualStreamNetworkOptions? options = null)
    {
        Scheduler = scheduler ?? throw new ArgumentNullException(nameof(scheduler));
        Time = time ?? throw new ArgumentNullException(nameof(time));
        Options = options ?? new VirtualStreamNetworkOptions();
        Options.Validate();
    }

    internal IDeliveryScheduler Scheduler { get; }

    internal TimeProvider Time { get; }

    internal VirtualStreamNetworkOptions Options { get; }

    /// <summary>Guards all state of the network, its endpoints, listeners and connections.</summary>
    internal Lock Gate { get; } = new();

    /// <summary>Endpoints added.</summary>
    public int EndpointCount
    {
        get
        {
            lock (Gate) return _endpoints.Count;
        }
    }

    /// <summary>Connections established and not yet closed on both sides.</summary>
    public int ConnectionCount
    {
        get
        {
            lock (Gate) return _connections;
        }
    }

    /// <summary>Delivery events run so far (each handles every segment or acknowledgement due on one queue).</summary>
    public long EventsRun
    {
        get
        {
            lock (Gate) return _eventsRun;
        }
    }

    /// <summary>Payload bytes made readable at receivers so far.</summary>
    public long BytesDelivered
    {
        get
        {
            lock (Gate) return _bytesDelivered;
        }
    }

    /// <summary>Adds an endpoint at <paramref name="address"/>, or at the next free address in 10.0.0.0/8.</summary>
    public VirtualStreamEndpoint AddEndpoint(VirtualEndpointOptions? options = null, IPAddress? address = null)
    {
        options ??= new VirtualEndpointOptions();
        options.Validate();
        lock (Gate)
        {
            if (address is null)
            {
                do address = new IPAddress(new byte[] { 10, (byte)(_nextHost >> 16), (byte)(_nextHost >> 8), (byte)_nextHost++ });
                while (_endpoints.ContainsKey(address));
            }

            var endpoint = new VirtualStreamEndpoint(this, address, options);
            if (!_endpoints.TryAdd(address, endpoint)) throw new ArgumentException($"{address} already has an endpoint.", nameof(address));
            return endpoint;
        }
    }

    internal long NowTicks => Time.GetUtcNow().UtcTicks;

    /// <summary>Schedules <paramref name="action"/> at absolute time <paramref name="dueTicks"/>. Caller holds the gate.</summary>
    internal void ScheduleAt(long dueTicks, Action action)
    {
        var delay = dueTicks - NowTicks;
        Scheduler.Schedule(delay > 0 ? TimeSpan.FromTicks(delay) : TimeSpan.Zero, action);
    }

    internal void CountEvent() => _eventsRun++;

    internal void CountDelivered(int bytes) => _bytesDelivered += bytes;

    internal void ConnectionOpened() => _connections++;

    internal void ConnectionClosed() => _connections--;

    internal long LatencyTicks(IPAddress from, IPAddress to)
    {
        var latency = Options.Latency(from, to);
        return latency > TimeSpan.Zero ? latency.Ticks : 0;
    }

    internal void Bind(VirtualStreamListener listener)
    {
        if (!_listeners.TryAdd(listener.LocalEndPoint, listener))
        {
            throw new IOException($"cannot bind {listener.LocalEndPoint}: Address already in use");
        }
    }

    internal void Unbind(VirtualStreamListener listener) => _listeners.Remove(listener.LocalEndPoint);

    internal bool IsBound(IPEndPoint endPoint) => _listeners.ContainsKey(endPoint);

    internal VirtualStreamListener? ListenerAt(IPEndPoint endPoint) => _listeners.GetValueOrDefault(endPoint);

    internal VirtualStreamEndpoint? EndpointAt(IPAddress address) => _endpoints.GetValueOrDefault(address);
}

/// <summary>
/// A rate limit as a token bucket in its virtual-scheduling form (GCRA, ITU-T I.371): instead of a token count it keeps
/// the theoretical time at which the bucket is full again, so reserving a segment is O(1) and needs no timer.
/// </summary>
internal struct VirtualLink(long bytesPerSecond, int depth)
{
    private long _fullAtTicks = long.MinValue;

    /// <summary>When a segment of <paramref name="length"/> bytes ready at <paramref name="readyTicks"/> may pass:
    /// once the bucket (refilled at the rate, holding at most one segment) holds <paramref name="length"/> tokens.</summary>
    public long Reserve(long readyTicks, int length)
    {
        if (bytesPerSecond == 0 || length == 0) return readyTicks;
        var cost = ((length * TimeSpan.TicksPerSecond) + bytesPerSecond - 1) / bytesPerSecond;
        var slack = ((Math.Max(depth, length) - length) * TimeSpan.TicksPerSecond) / bytesPerSecond;
        var passes = Math.Max(readyTicks, _fullAtTicks == long.MinValue ? readyTicks : _fullAtTicks - slack);
        _fullAtTicks = Math.Max(_fullAtTicks, passes) + cost;
        return passes;
    }
}
