using System.Net;
using System.Net.Sockets;
using Peerway.Net;

namespace Peerway.Node;

/// <summary>
/// A minimal TCP <see cref="IStreamTransport"/> on kernel sockets for the torrent client. Interim: replaced by
/// Peerway.Net.TcpStreamTransport at merge (written on another branch), after which this file is deleted.
/// </summary>
internal sealed class SocketStreamTransport : IStreamTransport
{
    /// <summary>Listen backlog.</summary>
    private const int Backlog = 128;

    public StreamTransportKind Kind => StreamTransportKind.Tcp;

    public ValueTask<IStreamListener> ListenAsync(IPEndPoint localEndPoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(localEndPoint);
        var listener = new TcpListener(localEndPoint);
        if (localEndPoint.Address.Equals(IPAddress.IPv6Any)) listener.Server.DualMode = true;
        try
        {
            listener.Start(Backlog);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            listener.Stop();
            throw new IOException($"{localEndPoint} is already in use", ex);
        }

        return ValueTask.FromResult<IStreamListener>(new Listener(listener));
    }

    public async ValueTask<IStreamConnection> ConnectAsync(IPEndPoint remoteEndPoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(remoteEndPoint);
        var socket = new Socket(remoteEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(remoteEndPoint, cancellationToken).ConfigureAwait(false);
            return Connection.Of(socket, remoteEndPoint);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private sealed class Listener(TcpListener listener) : IStreamListener
    {
        public IPEndPoint LocalEndPoint { get; } = (IPEndPoint)listener.LocalEndpoint;

        public async ValueTask<IStreamConnection?> AcceptAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                Socket socket;
                try
                {
                    socket = await listener.AcceptSocketAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is ObjectDisposedException or SocketException { SocketErrorCode: SocketError.OperationAborted or SocketError.Interrupted })
                {
                    return null;
                }
                catch (SocketException)
                {
                    continue; // One incoming connection failed (reset before accept): move on.
                }

                try
                {
                    return Connection.Of(socket, (IPEndPoint)socket.RemoteEndPoint!);
                }
                catch (SocketException)
                {
                    socket.Dispose();
                }
            }
        }

        public ValueTask DisposeAsync()
        {
            listener.Stop();
            listener.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    private sealed class Connection(Socket socket, IPEndPoint remote) : IStreamConnection
    {
        public static Connection Of(Socket socket, IPEndPoint remote)
        {
            socket.NoDelay = true;
            return new Connection(socket, remote);
        }

        public Stream Stream { get; } = new ShutdownStream(socket);

        public IPEndPoint RemoteEndPoint { get; } = remote;

        public IPEndPoint LocalEndPoint { get; } = (IPEndPoint)socket.LocalEndPoint!;

        public StreamTransportKind Kind => StreamTransportKind.Tcp;

        public void Abort()
        {
            try
            {
                socket.LingerState = new LingerOption(true, 0);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Already closed.
            }

            socket.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            Stream.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>Closing the stream sends FIN (shutdown) before closing, so unread input does not turn it into a reset.</summary>
    private sealed class ShutdownStream(Socket socket) : NetworkStream(socket, ownsSocket: true)
    {
        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                try
                {
                    Socket.Shutdown(SocketShutdown.Both);
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    // Already reset by the peer, or closed.
                }
            }

            base.Dispose(disposing);
        }
    }
}
