using System.Net;

namespace Peerway.Net;

/// <summary>How a stream connection is carried. Engines may treat kinds differently (libtorrent prefers uTP, a browser
/// peer is only reachable over WebRTC), but they read and write every kind the same way.</summary>
public enum StreamTransportKind
{
    /// <summary>A kernel TCP connection.</summary>
    Tcp,

    /// <summary>uTP (BEP 29) over a UDP socket.</summary>
    Utp,

    /// <summary>A WebRTC data channel (RFC 8831).</summary>
    WebRtc,

    /// <summary>An in-memory connection between endpoints of a virtual network (tests, simulator).</summary>
    Virtual,
}

/// <summary>
/// One established, reliable, ordered byte stream to a remote peer — the duplex seam between a transport and an engine
/// (the shape of Kestrel's <c>ConnectionContext</c> and anacrolix/torrent's <c>net.Conn</c>).
/// </summary>
/// <remarks>
/// The engine that accepted or dialled the connection owns it and disposes it once. <see cref="Stream"/> reads return 0
/// at the remote's orderly close and throw <see cref="IOException"/> on a reset; writes complete when the transport has
/// taken the bytes (its send buffer is the back-pressure). Reads and writes may run concurrently with each other, but
/// not two reads (or two writes) at once.
/// </remarks>
public interface IStreamConnection : IAsyncDisposable
{
    /// <summary>The duplex byte stream. Disposing the connection closes it.</summary>
    Stream Stream { get; }

    /// <summary>The remote peer's address as this transport sees it.</summary>
    IPEndPoint RemoteEndPoint { get; }

    /// <summary>This side's address of the connection.</summary>
    IPEndPoint LocalEndPoint { get; }

    /// <summary>What carries the bytes.</summary>
    StreamTransportKind Kind { get; }

    /// <summary>Ends the connection at once without an orderly close (a reset), e.g. to drop a misbehaving peer.
    /// Pending reads and writes fail. Idempotent; the connection must still be disposed.</summary>
    void Abort();
}

/// <summary>Accepts incoming stream connections on one local endpoint.</summary>
public interface IStreamListener : IAsyncDisposable
{
    /// <summary>The bound endpoint (with the actual port when 0 was asked for).</summary>
    IPEndPoint LocalEndPoint { get; }

    /// <summary>
    /// Waits for the next incoming connection. Returns <see langword="null"/> once the listener has been disposed;
    /// throws <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> is cancelled.
    /// Errors on one incoming connection (a reset before accept) are not reported: the listener moves on.
    /// </summary>
    ValueTask<IStreamConnection?> AcceptAsync(CancellationToken cancellationToken);
}

/// <summary>
/// Dials and listens for stream connections of one <see cref="Kind"/>: the seam that keeps sockets out of the engines
/// (implementations: TCP on real sockets, in-memory on a virtual network, later uTP and WebRTC).
/// </summary>
public interface IStreamTransport
{
    /// <summary>What this transport's connections are.</summary>
    StreamTransportKind Kind { get; }

    /// <summary>Binds a listener. A taken endpoint throws <see cref="IOException"/> whose message says so (in words,
    /// with the endpoint).</summary>
    ValueTask<IStreamListener> ListenAsync(IPEndPoint localEndPoint, CancellationToken cancellationToken);

    /// <summary>Connects to <paramref name="remoteEndPoint"/>. A refused, unreachable or timed-out connection throws
    /// <see cref="IOException"/> (a <see cref="System.Net.Sockets.SocketException"/> for TCP);
    /// cancellation throws <see cref="OperationCanceledException"/>.</summary>
    ValueTask<IStreamConnection> ConnectAsync(IPEndPoint remoteEndPoint, CancellationToken cancellationToken);
}
