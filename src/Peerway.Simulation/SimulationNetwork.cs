using System.Net;

namespace Peerway.Simulation;

/// <summary>
/// The simulator's datagram network: hosts are numbered, host <c>i</c> lives at <see cref="AddressOf"/>(i):6881 (in
/// 11.0.0.0/8 upwards, outside the private ranges BEP 42 exempts), and a datagram is one pooled event in the
/// <see cref="SimulationScheduler"/>, delayed by the <see cref="LatencyModel"/> and dropped with probability
/// <see cref="LossRate"/>. It is a leaner path than <see cref="Peerway.Net.VirtualNetwork"/> (no dictionary, no
/// closure, no per-datagram allocation), built for 10^6 hosts. Single-threaded, like the scheduler.
/// </summary>
public sealed class SimulationNetwork
{
    /// <summary>The UDP port every simulated host uses.</summary>
    public const int Port = 6881;

    private const uint FirstAddress = 11u << 24;
    private const int MaxHosts = (100 - 11) << 24; // stays below 100.64.0.0/10 (shared address space)

    private readonly SimulationScheduler _scheduler;
    private readonly LatencyModel _latency;
    private readonly List<SimulationSocket?> _sockets = [];
    private readonly Stack<Datagram> _pool = new();

    /// <summary>Creates an empty network on <paramref name="scheduler"/>. <paramref name="latency"/> <see langword="null"/>: the
    /// default <see cref="LatencyModel"/>. <paramref name="lossRate"/> is the probability, in [0, 1), that a datagram is
    /// dropped; otherwise <see cref="ArgumentOutOfRangeException"/>.</summary>
    public SimulationNetwork(SimulationScheduler scheduler, LatencyModel? latency = null, double lossRate = 0)
    {
        _scheduler = scheduler ?? throw new ArgumentNullException(nameof(scheduler));
        _latency = latency ?? new LatencyModel();
        _latency.Validate();
        if (lossRate is < 0 or >= 1 || double.IsNaN(lossRate)) throw new ArgumentOutOfRangeException(nameof(lossRate), lossRate, "The loss rate must be in [0, 1).");
        LossRate = lossRate;
    }

    /// <summary>Probability, in [0, 1), that a datagram to a live host is dropped on the link (drawn from the scheduler's
    /// <see cref="SimulationScheduler.Random"/>).</summary>
    public double LossRate { get; }

    /// <summary>The scheduler whose events deliver the datagrams.</summary>
    public SimulationScheduler Scheduler => _scheduler;

    /// <summary>Hosts created so far (live or closed).</summary>
    public int HostCount => _sockets.Count;

    /// <summary>Datagrams sent by open sockets (delivered, lost or unreachable).</summary>
    public long DatagramsSent { get; private set; }

    /// <summary>Datagrams handed to a started, open socket's handler.</summary>
    public long DatagramsDelivered { get; private set; }

    /// <summary>Lost on the link (<see cref="LossRate"/>).</summary>
    public long DatagramsLost { get; private set; }

    /// <summary>Sent to a host that is gone (closed socket) or never existed.</summary>
    public long DatagramsUnreachable { get; private set; }

    /// <summary>Payload bytes of <see cref="DatagramsSent"/> (no IP or UDP header).</summary>
    public long BytesSent { get; private set; }

    /// <summary>The address of host <paramref name="host"/>: 11.0.0.0 plus <paramref name="host"/>. Throws
    /// <see cref="ArgumentOutOfRangeException"/> when <paramref name="host"/> is negative or past the 11.0.0.0–99.255.255.255 range.</summary>
    public static IPAddress AddressOf(int host)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(host);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(host, MaxHosts);
        var v = FirstAddress + (uint)host;
        return new IPAddress([(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v]);
    }

    /// <summary>The host number of <paramref name="endPoint"/>, or -1 when it is not a simulated address.</summary>
    public static int HostOf(IPEndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        if (endPoint.Port != Port || endPoint.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork) return -1;
        Span<byte> b = stackalloc byte[4];
        if (!endPoint.Address.TryWriteBytes(b, out var n) || n != 4) return -1;
        var v = ((uint)b[0] << 24) | ((uint)b[1] << 16) | ((uint)b[2] << 8) | b[3];
        if (v < FirstAddress || v - FirstAddress >= MaxHosts) return -1;
        return (int)(v - FirstAddress);
    }

    /// <summary>Creates the next host's socket.</summary>
    public SimulationSocket CreateSocket()
    {
        var host = _sockets.Count;
        var socket = new SimulationSocket(this, host, new IPEndPoint(AddressOf(host), Port));
        _sockets.Add(socket);
        return socket;
    }

    /// <summary>The live socket of <paramref name="host"/>, if any.</summary>
    public SimulationSocket? SocketOf(int host) => (uint)host < (uint)_sockets.Count ? _sockets[host] : null;

    internal void Close(SimulationSocket socket) => _sockets[socket.Host] = null;

    internal void Send(SimulationSocket from, ReadOnlySpan<byte> datagram, IPEndPoint to)
    {
        DatagramsSent++;
        BytesSent += datagram.Length;
        var host = HostOf(to);
        if (host < 0 || host >= _sockets.Count || _sockets[host] is null)
        {
            // Nobody there: the datagram vanishes (no ICMP in this model).
            DatagramsUnreachable++;
            return;
        }

        if (LossRate > 0 && _scheduler.Random.NextDouble() < LossRate)
        {
            DatagramsLost++;
            return;
        }

        var d = _pool.Count > 0 ? _pool.Pop() : new Datagram(this);
        d.Set(datagram, from, host);
        _scheduler.Enqueue(_latency.DelayTicks(from.Host, host, _scheduler.Seed), d, 0);
    }

    private void Deliver(Datagram d)
    {
        if (d.From is null) throw new InvalidOperationException("A datagram was delivered twice (the network was used from two threads).");
        var target = _sockets[d.To];
        if (target is null)
        {
            DatagramsUnreachable++;
        }
        else if (target.Deliver(d.Buffer.AsSpan(0, d.Length), d.From.LocalEndPoint))
        {
            DatagramsDelivered++;
        }
        else
        {
            DatagramsUnreachable++;
        }

        d.Clear();
        _pool.Push(d);
    }

    private sealed class Datagram(SimulationNetwork network) : ISimulationEvent
    {
        public byte[] Buffer = new byte[512];
        public int Length;
        public int To;
        public SimulationSocket From = null!;

        public void Set(ReadOnlySpan<byte> data, SimulationSocket from, int to)
        {
            if (From is not null) throw new InvalidOperationException("A pooled datagram was reused while in flight (the network was used from two threads).");
            if (data.Length > Buffer.Length) Buffer = new byte[Math.Max(data.Length, Buffer.Length * 2)];
            data.CopyTo(Buffer);
            Length = data.Length;
            From = from;
            To = to;
        }

        public void Clear() => From = null!;

        public void Run(long token) => network.Deliver(this);
    }
}

/// <summary>A host's socket on a <see cref="SimulationNetwork"/>.</summary>
public sealed class SimulationSocket : Peerway.Net.IDatagramSocket
{
    private readonly SimulationNetwork _network;
    private Peerway.Net.DatagramHandler? _handler;
    private bool _closed;

    internal SimulationSocket(SimulationNetwork network, int host, IPEndPoint endPoint)
    {
        _network = network;
        Host = host;
        LocalEndPoint = endPoint;
    }

    /// <summary>The host number (its address is <see cref="SimulationNetwork.AddressOf"/>(Host)).</summary>
    public int Host { get; }

    /// <summary>The host's address (<see cref="SimulationNetwork.AddressOf"/>) and <see cref="SimulationNetwork.Port"/>.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>True once <see cref="Dispose"/> has run: sends are dropped and datagrams to the host count as unreachable.</summary>
    public bool IsClosed => _closed;

    /// <summary>Payload bytes sent since creation or <see cref="ResetCounters"/>.</summary>
    public long BytesSent { get; private set; }

    /// <summary>Datagrams sent since creation or <see cref="ResetCounters"/>.</summary>
    public long DatagramsSent { get; private set; }

    /// <summary>Payload bytes delivered to the handler since creation or <see cref="ResetCounters"/>.</summary>
    public long BytesReceived { get; private set; }

    /// <summary>Sets the handler that receives datagrams, on the scheduler thread. Datagrams that arrive before it is set
    /// are counted as unreachable. Throws <see cref="InvalidOperationException"/> when called twice.</summary>
    public void Start(Peerway.Net.DatagramHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        if (_handler is not null) throw new InvalidOperationException("The socket is already started.");
        _handler = handler;
    }

    /// <summary>Sends <paramref name="datagram"/> to <paramref name="remote"/>; it arrives after the network's latency unless lost
    /// or unreachable. A closed socket drops it without counting it.</summary>
    public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        ArgumentNullException.ThrowIfNull(remote);
        if (_closed) return;
        BytesSent += datagram.Length;
        DatagramsSent++;
        _network.Send(this, datagram, remote);
    }

    /// <summary>Resets the byte counters (start of a measurement window).</summary>
    public void ResetCounters()
    {
        BytesSent = 0;
        DatagramsSent = 0;
        BytesReceived = 0;
    }

    internal bool Deliver(ReadOnlySpan<byte> datagram, IPEndPoint from)
    {
        var handler = _handler;
        if (_closed || handler is null) return false;
        BytesReceived += datagram.Length;
        handler(datagram, from);
        return true;
    }

    /// <summary>Closes the socket and removes the host from the network. Idempotent.</summary>
    public void Dispose()
    {
        if (_closed) return;
        _closed = true;
        _network.Close(this);
    }
}
