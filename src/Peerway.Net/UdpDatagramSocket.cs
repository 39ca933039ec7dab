using System.Buffers;
using System.Net;
using System.Net.Sockets;

namespace Peerway.Net;

/// <summary>An <see cref="IDatagramSocket"/> over a real UDP socket (IPv4 or IPv6).</summary>
public sealed class UdpDatagramSocket : IDatagramSocket
{
    /// <summary>Largest datagram received; larger ones are truncated by the OS and dropped here.</summary>
    public const int MaxDatagramSize = 65_535;

    private readonly Socket _socket;
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;
    private long _sendErrors;

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
        EndPoint any = LocalEndPoint.AddressFamily == AddressFamily.InterNetworkV6
            ? new IPEndPoint(IPAddress.IPv6Any, 0)
            : new IPEndPoint(IPAddress.Any, 0);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                SocketReceiveFromResult r;
                try
                {
                    r = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any, ct);
                }
                catch (SocketException)
                {
                    // ICMP errors from an earlier send surface here on some platforms: not fatal for UDP.
                    continue;
                }

                var remote = (IPEndPoint)r.RemoteEndPoint;
                if (remote.Address.IsIPv4MappedToIPv6) remote = new IPEndPoint(remote.Address.MapToIPv4(), remote.Port);
                handler(buffer.AsSpan(0, r.ReceivedBytes), remote);
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
            _socket.SendTo(datagram, SocketFlags.None, remote);
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
            _loop?.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // The loop ends by cancellation; nothing else to report at dispose.
        }

        _stop.Dispose();
    }
}
