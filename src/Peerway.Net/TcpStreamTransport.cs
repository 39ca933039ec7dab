using System.Net;
using System.Net.Sockets;

namespace Peerway.Net;

/// <summary>Options of a <see cref="TcpStreamTransport"/>.</summary>
public sealed record TcpStreamTransportOptions
{
    /// <summary>How long a connect may take before it fails with <see cref="SocketError.TimedOut"/>.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Disables Nagle's algorithm on every connection (RFC 896): peer protocols send small requests that must
    /// leave at once. On by default, as Kestrel's.</summary>
    public bool NoDelay { get; init; } = true;

    /// <summary>Connections the kernel queues before <see cref="IStreamListener.AcceptAsync"/> takes them
    /// (<c>listen(2)</c> backlog; Kestrel's default).</summary>
    public int Backlog { get; init; } = 512;

    internal void Validate()
    {
        if (ConnectTimeout <= TimeSpan.Zero && ConnectTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(ConnectTimeout), ConnectTimeout, "ConnectTimeout must be positive or infinite.");
        }

        if (Backlog < 1) throw new ArgumentOutOfRangeException(nameof(Backlog), Backlog, "Backlog must be at least 1.");
    }
}

/// <summary>
/// <see cref="IStreamTransport"/> over kernel TCP sockets. The listener has the shape of Kestrel's
/// <c>SocketConnectionListener</c>: <c>[::]</c> binds dual-stack, a taken port is an <see cref="IOException"/> saying so,
/// <see cref="IStreamListener.AcceptAsync"/> returns <see langword="null"/> once disposed and skips connections reset
/// in the backlog. IPv4-mapped IPv6 addresses (what a dual-stack socket reports for an IPv4 peer) are given as IPv4, so
/// an engine sees one address per peer whichever way the connection was made.
/// </summary>
public sealed class TcpStreamTransport : IStreamTransport
{
    private readonly TcpStreamTransportOptions _options;
    private readonly TimeProvider _time;

    /// <summary>A TCP transport; <paramref name="options"/> null takes the defaults, <paramref name="time"/> null <see cref="TimeProvider.System"/>. Throws <see cref="ArgumentOutOfRangeException"/> for invalid options.</summary>
    public TcpStreamTransport(TcpStreamTransportOptions? options = null, TimeProvider? time = null)
    {
        _options = options ?? new TcpStreamTransportOptions();
        _options.Validate();
        _time = time ?? TimeProvider.System;
    }

    /// <inheritdoc/>
    public StreamTransportKind Kind => StreamTransportKind.Tcp;

    /// <inheritdoc/>
    public ValueTask<IStreamListener> ListenAsync(IPEndPoint localEndPoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(localEndPoint);
        cancellationToken.ThrowIfCancellationRequested();
        var socket = new Socket(localEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // As Kestrel: the IPv6 wildcard also takes IPv4 (IPV6_V6ONLY off).
            if (localEndPoint.Address.Equals(IPAddress.IPv6Any)) socket.DualMode = true;
            try
            {
                socket.Bind(localEndPoint);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                throw new IOException($"cannot bind {localEndPoint}: Address already in use", e);
            }

            socket.Listen(_options.Backlog);
            return ValueTask.FromResult<IStreamListener>(new TcpStreamListener(socket, _options));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public async ValueTask<IStreamConnection> ConnectAsync(IPEndPoint remoteEndPoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(remoteEndPoint);
        var remote = Normalize(remoteEndPoint);
        var socket = new Socket(remote.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = _options.NoDelay };
        using var timeout = _options.ConnectTimeout == Timeout.InfiniteTimeSpan
            ? new CancellationTokenSource()
            : new CancellationTokenSource(_options.ConnectTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            await socket.ConnectAsync(remote, linked.Token).ConfigureAwait(false);
            return new TcpStreamConnection(socket);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            throw new SocketException((int)SocketError.TimedOut);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>An IPv4-mapped IPv6 endpoint (<c>::ffff:a.b.c.d</c>) as plain IPv4; others unchanged.</summary>
    internal static IPEndPoint Normalize(IPEndPoint endPoint) =>
        endPoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endPoint.Address.MapToIPv4(), endPoint.Port) : endPoint;
}

/// <summary>A bound, listening TCP socket (see <see cref="TcpStreamTransport"/>).</summary>
internal sealed class TcpStreamListener : IStreamListener
{
    private readonly Socket _socket;
    private readonly TcpStreamTransportOptions _options;
    private volatile bool _disposed;

    internal TcpStreamListener(Socket socket, TcpStreamTransportOptions options)
    {
        _socket = socket;
        _options = options;
        LocalEndPoint = (IPEndPoint)socket.LocalEndPoint!;
    }

    public IPEndPoint LocalEndPoint { get; }

    public async ValueTask<IStreamConnection?> AcceptAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_disposed) return null;
            Socket accepted;
            try
            {
                accepted = await _socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                return null; // disposed while waiting (Kestrel: "a call was made to UnbindAsync/DisposeAsync")
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.OperationAborted || _disposed)
            {
                return null;
            }
            catch (SocketException)
            {
                continue; // reset while in the backlog: not this listener's failure, take the next one
            }

            accepted.NoDelay = _options.NoDelay;
            return new TcpStreamConnection(accepted);
        }
    }

    public ValueTask DisposeAsync()
    {
        _disposed = true;
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>One TCP connection as an <see cref="IStreamConnection"/>.</summary>
internal sealed class TcpStreamConnection : IStreamConnection
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private int _aborted;

    internal TcpStreamConnection(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        RemoteEndPoint = TcpStreamTransport.Normalize((IPEndPoint)socket.RemoteEndPoint!);
        LocalEndPoint = TcpStreamTransport.Normalize((IPEndPoint)socket.LocalEndPoint!);
    }

    public Stream Stream => _stream;

    public IPEndPoint RemoteEndPoint { get; }

    public IPEndPoint LocalEndPoint { get; }

    public StreamTransportKind Kind => StreamTransportKind.Tcp;

    public void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0) return;
        try
        {
            // SO_LINGER with a zero timeout: close(2) sends RST instead of FIN and drops unsent data (RFC 9293 §3.6.1
            // "abort"), which is what dropping a misbehaving peer means.
            _socket.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
            // Already reset by the peer: closing is all that is left.
        }
        catch (ObjectDisposedException)
        {
            return;
        }

        _socket.Dispose();
    }

    public ValueTask DisposeAsync() => _stream.DisposeAsync();
}
