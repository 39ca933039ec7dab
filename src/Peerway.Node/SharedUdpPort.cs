using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Net;
using Peerway.Torrent.Utp;

namespace Peerway.Node;

/// <summary>
/// One UDP socket for uTP and the DHT, as libtorrent runs them: every datagram is told apart by its first bytes — a
/// valid uTP header (BEP 29: version 1, a type up to ST_SYN, 20 bytes or more) goes to the <see cref="UtpTransport"/>,
/// anything else (a KRPC message is a bencoded dictionary, so it starts with 'd') to the DHT side.
/// </summary>
internal sealed class SharedUdpPort : IAsyncDisposable, IDisposable
{
    private readonly IDatagramSocket _socket;
    private readonly KrpcSide _krpc;
    private readonly KrpcSide _tracker;

    private SharedUdpPort(IDatagramSocket socket, UtpOptions options, ILoggerFactory loggers)
    {
        _socket = socket;
        _krpc = new KrpcSide(socket);
        _tracker = new KrpcSide(socket);
        Utp = new UtpTransport(socket, TimeProvider.System, options, loggers.CreateLogger<UtpTransport>(), startSocket: false);
        if (socket is IBatchingDatagramSocket batching) batching.Start(Receive, Utp.EndOfBatch); // uTP acks once per batch
        else socket.Start(Receive);
    }

    /// <summary>
    /// Binds <paramref name="at"/> (port 0: any). Throws <see cref="System.Net.Sockets.SocketException"/> when it is taken.
    /// With <paramref name="wrap"/>, uTP and the DHT use the socket it makes of the bound one (a proxy's UDP relay).
    /// </summary>
    public static SharedUdpPort Bind(IPEndPoint at, UtpOptions options, ILoggerFactory loggers, Func<IDatagramSocket, IDatagramSocket>? wrap = null)
    {
        ArgumentNullException.ThrowIfNull(at);
        // A receive thread of its own: recvmmsg/sendmmsg batches (UDP GSO for runs of equal-size uTP packets) and no
        // thread-pool hop per datagram.
        IDatagramSocket socket = at.Port == 0 ? BindWithTcpNumberFree(at) : new UdpDatagramSocket(at, reusePort: false, dedicatedThread: true);
        try
        {
            // uTP finds the path MTU by probing (BEP 29 with RFC 8899 between Peerway peers): datagrams never fragment.
            ((UdpDatagramSocket)socket).TrySetDontFragment();
            if (wrap is not null) socket = wrap(socket);
            return new SharedUdpPort(socket, options, loggers);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Any free UDP port whose number is free for TCP too, as far as a probe can tell: the TCP listener takes the same
    /// number next, and an ephemeral TCP socket elsewhere may hold it (libtorrent retries its listen sockets the same way).
    /// </summary>
    private static UdpDatagramSocket BindWithTcpNumberFree(IPEndPoint at)
    {
        for (var attempt = 1; ; attempt++)
        {
            var udp = new UdpDatagramSocket(at, reusePort: false, dedicatedThread: true);
            try
            {
                using var probe = new System.Net.Sockets.Socket(at.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                if (at.Address.Equals(IPAddress.IPv6Any)) probe.DualMode = true;
                probe.Bind(new IPEndPoint(at.Address, udp.LocalEndPoint.Port));
                return udp;
            }
            catch (System.Net.Sockets.SocketException) when (attempt < 20)
            {
                udp.Dispose();
            }
            catch
            {
                udp.Dispose();
                throw;
            }
        }
    }

    public IPEndPoint LocalEndPoint => _socket.LocalEndPoint;

    /// <summary>The uTP side (a transport of the torrent client).</summary>
    public UtpTransport Utp { get; }

    /// <summary>The non-uTP side, for the DHT node (disposing it leaves the socket to this port).</summary>
    public IDatagramSocket Krpc => _krpc;

    /// <summary>
    /// A UDP tracker client's side (BEP 15; used when the port is a proxy's UDP relay, so announces go through it too):
    /// once started, the datagrams that are neither uTP nor bencoded (KRPC starts with 'd'; a tracker answer with a
    /// 32-bit action, 0 to 3) come here.
    /// </summary>
    public IDatagramSocket Tracker => _tracker;

    /// <summary>Non-uTP datagrams received (to the DHT side, or dropped before it started).</summary>
    public long OtherDatagrams => _krpc.Received;

    private void Receive(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        if (UtpTransport.IsUtp(datagram)) Utp.Receive(datagram, remote);
        else if (datagram.Length > 0 && datagram[0] != (byte)'d' && _tracker.Started) _tracker.Deliver(datagram, remote);
        else _krpc.Deliver(datagram, remote);
    }

    public async ValueTask DisposeAsync()
    {
        Dispose();
        // A proxy's UDP relay (Socks5DatagramSocket) ends a task watching its control connection: wait for it.
        if (_socket is IAsyncDisposable owned) await owned.DisposeAsync().ConfigureAwait(false);
    }

    public void Dispose()
    {
        Utp.Dispose(); // the socket too
        _socket.Dispose();
    }

    /// <summary>The DHT's (or a UDP tracker client's) view of the port: sends go out of the shared socket; the datagrams routed to it come in.</summary>
    private sealed class KrpcSide(IDatagramSocket socket) : IDatagramSocket
    {
        private DatagramHandler? _handler;
        private long _received;

        public IPEndPoint LocalEndPoint => socket.LocalEndPoint;

        public long Received => Interlocked.Read(ref _received);

        public bool Started => Volatile.Read(ref _handler) is not null;

        public void Start(DatagramHandler handler)
        {
            ArgumentNullException.ThrowIfNull(handler);
            if (Interlocked.CompareExchange(ref _handler, handler, null) is not null) throw new InvalidOperationException("already started");
        }

        public void Deliver(ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
            Interlocked.Increment(ref _received);
            Volatile.Read(ref _handler)?.Invoke(datagram, remote);
        }

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote) => socket.Send(datagram, remote);

        public void Dispose() => Volatile.Write(ref _handler, null);
    }
}
