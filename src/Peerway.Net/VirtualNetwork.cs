using System.Collections.Concurrent;
using System.Net;

namespace Peerway.Net;

/// <summary>Link conditions between two virtual endpoints.</summary>
public sealed record VirtualLinkOptions
{
    /// <summary>One-way delay for a datagram from <c>from</c> to <c>to</c>; zero by default.</summary>
    public Func<IPEndPoint, IPEndPoint, TimeSpan> Latency { get; init; } = static (_, _) => TimeSpan.Zero;

    /// <summary>Probability in [0, 1) that a datagram is dropped.</summary>
    public double LossRate { get; init; }

    /// <summary>Seed for loss decisions (deterministic runs).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>
    /// The IP MTU of the path from <c>from</c> to <c>to</c>; null (the default) for no limit. A datagram whose IP packet
    /// (the datagram plus 28 bytes of IPv4 and UDP header, 48 with IPv6) is larger is dropped, as a link drops a packet
    /// with the DF bit set that it cannot carry (RFC 8201, RFC 8899). 1,500 is Ethernet, 9,000 a jumbo path, 65,536
    /// Linux loopback.
    /// </summary>
    public Func<IPEndPoint, IPEndPoint, int>? Mtu { get; init; }
}

/// <summary>
/// An in-memory datagram network: sockets get addresses in 10.0.0.0/8 (or the one asked for) and exchange datagrams
/// through an <see cref="IDeliveryScheduler"/>, with optional latency and loss. Thread-safe.
/// </summary>
public sealed class VirtualNetwork
{
    private readonly ConcurrentDictionary<IPEndPoint, VirtualDatagramSocket> _sockets = new();
    private readonly ConcurrentDictionary<IPAddress, VirtualNat> _natsByPublic = new();
    private readonly List<VirtualNat> _nats = [];
    private readonly Lock _natsLock = new();
    private int _natCount;
    private readonly IDeliveryScheduler _scheduler;
    private readonly VirtualLinkOptions _link;
    private readonly Random _random;
    private readonly Lock _randomLock = new();
    private int _nextHost = 1;
    private long _delivered;
    private long _dropped;
    private long _tooLarge;

    /// <summary>A network whose datagrams are delivered through <paramref name="scheduler"/> with the delay, loss and MTU of <paramref name="link"/> (null: the defaults). Throws <see cref="ArgumentOutOfRangeException"/> when the loss rate is outside [0, 1).</summary>
    public VirtualNetwork(IDeliveryScheduler scheduler, VirtualLinkOptions? link = null)
    {
        _scheduler = scheduler ?? throw new ArgumentNullException(nameof(scheduler));
        _link = link ?? new VirtualLinkOptions();
        if (_link.LossRate is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(link), "LossRate must be in [0, 1).");
        _random = new Random(_link.Seed);
    }

    /// <summary>Datagrams delivered to a socket so far.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Datagrams dropped so far (loss, no socket at the address, NAT filtering, too large).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Datagrams dropped because they exceeded the path's <see cref="VirtualLinkOptions.Mtu"/> (also in <see cref="Dropped"/>).</summary>
    public long TooLarge => Interlocked.Read(ref _tooLarge);

    /// <summary>Sockets bound now.</summary>
    public int SocketCount => _sockets.Count;

    /// <summary>Creates a socket at <paramref name="endPoint"/>, or at the next free 10.x.y.z:6881.</summary>
    public VirtualDatagramSocket CreateSocket(IPEndPoint? endPoint = null)
    {
        endPoint ??= NextAddress();
        var socket = new VirtualDatagramSocket(this, endPoint);
        if (!_sockets.TryAdd(endPoint, socket)) throw new InvalidOperationException($"{endPoint} is already bound.");
        return socket;
    }

    private IPEndPoint NextAddress()
    {
        var n = Interlocked.Increment(ref _nextHost);
        // 10.0.0.0/8 with distinct /24s spread so BEP 42 style prefixes differ between hosts.
        var bytes = new byte[] { 10, (byte)(n >> 16), (byte)(n >> 8), (byte)n };
        return new IPEndPoint(new IPAddress(bytes), 6881);
    }

    /// <summary>
    /// Adds a NAT with public IP <paramref name="publicAddress"/> in front of the private /24
    /// <paramref name="privateNetwork"/> (RFC 4787 behaviours; see <see cref="VirtualNat"/>).
    /// </summary>
    public VirtualNat AddNat(IPAddress publicAddress, IPNetwork privateNetwork, VirtualNatOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(publicAddress);
        options ??= new VirtualNatOptions();
        options.Validate();
        var nat = new VirtualNat(this, publicAddress, privateNetwork, options);
        lock (_natsLock)
        {
            if (_nats.Any(n => n.PrivateNetwork.Contains(privateNetwork.BaseAddress) || privateNetwork.Contains(n.PrivateNetwork.BaseAddress)))
            {
                throw new ArgumentException($"{privateNetwork} overlaps another NAT's network.", nameof(privateNetwork));
            }

            if (!_natsByPublic.TryAdd(publicAddress, nat)) throw new ArgumentException($"{publicAddress} already belongs to a NAT.", nameof(publicAddress));
            _nats.Add(nat);
            Volatile.Write(ref _natCount, _nats.Count);
        }

        return nat;
    }

    private VirtualNat? NatBehind(IPAddress address)
    {
        lock (_natsLock)
        {
            foreach (var n in _nats)
            {
                if (n.PrivateNetwork.Contains(address)) return n;
            }
        }

        return null;
    }

    internal void Unbind(VirtualDatagramSocket socket) => _sockets.TryRemove(socket.LocalEndPoint, out _);

    internal void Send(IPEndPoint from, ReadOnlySpan<byte> datagram, IPEndPoint to)
    {
        if (_link.Mtu is { } mtu && datagram.Length + (to.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? 48 : 28) > mtu(from, to))
        {
            Interlocked.Increment(ref _tooLarge);
            Interlocked.Increment(ref _dropped);
            return;
        }

        if (Volatile.Read(ref _natCount) > 0)
        {
            // A private address is reachable only from its own network; leaving it, the NAT maps (RFC 4787 §4).
            var fromNat = NatBehind(from.Address);
            var toNat = NatBehind(to.Address);
            if (toNat is not null && toNat != fromNat)
            {
                Interlocked.Increment(ref _dropped);
                return;
            }

            if (fromNat is not null && toNat is null) from = fromNat.Outbound(from, to);
        }

        if (_link.LossRate > 0)
        {
            bool drop;
            lock (_randomLock) drop = _random.NextDouble() < _link.LossRate;
            if (drop)
            {
                Interlocked.Increment(ref _dropped);
                return;
            }
        }

        var copy = datagram.ToArray();
        _scheduler.Schedule(_link.Latency(from, to), () =>
        {
            var destination = to;
            if (_natsByPublic.TryGetValue(to.Address, out var nat))
            {
                // RFC 4787 §5: the NAT's filter decides whether an inbound datagram reaches a mapping.
                if (!nat.Inbound(to, from, out var inside))
                {
                    Interlocked.Increment(ref _dropped);
                    return;
                }

                destination = inside!;
            }

            if (_sockets.TryGetValue(destination, out var target) && target.Deliver(copy, from))
            {
                Interlocked.Increment(ref _delivered);
            }
            else
            {
                Interlocked.Increment(ref _dropped);
            }
        });
    }
}

/// <summary>A socket on a <see cref="VirtualNetwork"/>.</summary>
public sealed class VirtualDatagramSocket : IDatagramSocket
{
    private readonly VirtualNetwork _network;
    private DatagramHandler? _handler;
    private volatile bool _disposed;

    internal VirtualDatagramSocket(VirtualNetwork network, IPEndPoint endPoint)
    {
        _network = network;
        LocalEndPoint = endPoint;
    }

    /// <inheritdoc/>
    public IPEndPoint LocalEndPoint { get; }

    /// <inheritdoc/>
    public void Start(DatagramHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        if (Interlocked.CompareExchange(ref _handler, handler, null) is not null)
        {
            throw new InvalidOperationException("The socket is already started.");
        }
    }

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        ArgumentNullException.ThrowIfNull(remote);
        if (_disposed) return;
        _network.Send(LocalEndPoint, datagram, remote);
    }

    internal bool Deliver(byte[] datagram, IPEndPoint from)
    {
        var handler = _handler;
        if (_disposed || handler is null) return false;
        handler(datagram, from);
        return true;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _network.Unbind(this);
    }
}
