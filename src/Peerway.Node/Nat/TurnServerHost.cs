using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Peerway.Nat.Turn;
using Peerway.Net;

namespace Peerway.Node.Nat;

/// <summary>Relay sockets on real UDP ports of one relay IP, from a port range (or OS-chosen ports).</summary>
/// <remarks>
/// All relay sockets receive on one shared thread (<see cref="UdpReceiveGroup"/>: epoll and recvmmsg on Linux, as
/// coturn serves its relay sockets from one event loop), so relayed datagrams are not handed between threads.
/// Dispose stops that thread (after the server has disposed its allocations).
/// </remarks>
public sealed class UdpRelaySocketFactory : IRelaySocketFactory, IDisposable
{
    private readonly UdpReceiveGroup _group = new("turn relays");
    private readonly IPAddress _relayIp;
    private readonly int _first;
    private readonly int _last;
    private readonly Lock _gate = new();
    private int _next;

    public UdpRelaySocketFactory(IPAddress relayIp, int firstPort = 0, int lastPort = 0)
    {
        ArgumentNullException.ThrowIfNull(relayIp);
        if (firstPort < 0 || lastPort < firstPort || lastPort > 65535) throw new ArgumentException("Invalid relay port range.");
        _relayIp = relayIp;
        _first = firstPort;
        _last = lastPort;
        _next = firstPort;
    }

    /// <summary>The relay sockets' shared receive thread.</summary>
    internal UdpReceiveGroup Group => _group;

    public bool Supports(AddressFamily family) => family == _relayIp.AddressFamily;

    public IDatagramSocket? TryCreate(AddressFamily family)
    {
        if (_first == 0) return Bind(0);
        var span = _last - _first + 1;
        for (var i = 0; i < span; i++)
        {
            int port;
            lock (_gate)
            {
                port = _next;
                _next = _next == _last ? _first : _next + 1;
            }

            var socket = Bind(port);
            if (socket is not null) return socket;
        }

        return null;
    }

    private UdpDatagramSocket? Bind(int port)
    {
        try
        {
            return new UdpDatagramSocket(new IPEndPoint(_relayIp, port), _group);
        }
        catch (SocketException)
        {
            return null;
        }
    }

    public void Dispose() => _group.Dispose();
}

/// <summary>Runs a <see cref="TurnServer"/> on a real UDP port and the same TCP port.</summary>
public sealed class TurnServerHost : IAsyncDisposable
{
    private readonly TurnServer _server;
    private readonly TcpFrameListener _tcp;
    private readonly IRelaySocketFactory _relays;

    private TurnServerHost(TurnServer server, TcpFrameListener tcp, IPEndPoint udp, IRelaySocketFactory relays)
    {
        _server = server;
        _relays = relays;
        _tcp = tcp;
        UdpEndPoint = udp;
    }

    public IPEndPoint UdpEndPoint { get; }

    public IPEndPoint TcpEndPoint => _tcp.LocalEndPoint;

    public TurnServer Server => _server;

    /// <summary>Whether the listener is served by the relay sockets' thread.</summary>
    internal bool SharesRelayThread { get; private init; }

    /// <summary>Starts the server; the host takes ownership of <paramref name="relays"/> (disposed with it when disposable).</summary>
    /// <remarks>
    /// The listener carries every client's requests and ChannelData: a receive thread of its own, batched on Linux, so
    /// client and peer sides run in parallel. With one CPU (a pinned or small machine) two busy threads would only
    /// take turns on it, switching at every wake-up: the listener then shares the relay sockets' thread (when
    /// <paramref name="relays"/> is a <see cref="UdpRelaySocketFactory"/>), as coturn serves both sides of a session
    /// from one relay thread.
    /// </remarks>
    public static TurnServerHost Start(IPEndPoint bind, IRelaySocketFactory relays, TurnServerOptions options, TimeProvider time, ILoggerFactory loggers) =>
        Start(bind, relays, options, time, loggers, shareRelayThread: Environment.ProcessorCount == 1);

    /// <param name="shareRelayThread">Serve the listener from the relay sockets' thread (see the public overload).</param>
    internal static TurnServerHost Start(IPEndPoint bind, IRelaySocketFactory relays, TurnServerOptions options, TimeProvider time, ILoggerFactory loggers, bool shareRelayThread)
    {
        ArgumentNullException.ThrowIfNull(bind);
        ArgumentNullException.ThrowIfNull(loggers);
        var shares = shareRelayThread && relays is UdpRelaySocketFactory { Group.IsSupported: true };
        var udp = shares
            ? new UdpDatagramSocket(bind, ((UdpRelaySocketFactory)relays).Group)
            : new UdpDatagramSocket(bind, reusePort: false, dedicatedThread: true);
        TurnServer? server = null;
        try
        {
            server = new TurnServer([udp], relays, time, options, loggers.CreateLogger<TurnServer>());
            var s = server;
            var tcp = new TcpFrameListener(udp.LocalEndPoint, s.ReceiveStream, s.StreamClosed, log: loggers.CreateLogger<TcpFrameListener>());
            server.Start();
            tcp.Start();
            return new TurnServerHost(server, tcp, udp.LocalEndPoint, relays) { SharesRelayThread = shares };
        }
        catch (Exception)
        {
            if (server is not null) server.Dispose();
            else udp.Dispose();
            (relays as IDisposable)?.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _tcp.DisposeAsync();
        _server.Dispose();
        (_relays as IDisposable)?.Dispose(); // the host owns the factory it was started with (its receive thread)
    }
}
