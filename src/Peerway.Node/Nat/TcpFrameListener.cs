using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Nat;
using Peerway.Nat.Stun;

namespace Peerway.Node.Nat;

/// <summary>Called for each complete frame (STUN message or ChannelData) read from a connection.</summary>
public delegate void StreamFrameHandler(IStreamLink link, ReadOnlySpan<byte> frame);

/// <summary>
/// Accepts TCP connections and cuts them into STUN/ChannelData frames (RFC 8489 §6.2.2, RFC 8656 §12.5). A link that
/// sends something that is neither is closed alone. Bounded in connections.
/// </summary>
public sealed partial class TcpFrameListener : IAsyncDisposable
{
    public const int DefaultMaxConnections = 1024;

    private readonly TcpListener _listener;
    private readonly StreamFrameHandler _onFrame;
    private readonly Action<IStreamLink>? _onClosed;
    private readonly int _maxConnections;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Link, Task> _links = new();
    private Task? _accept;

    public TcpFrameListener(IPEndPoint bind, StreamFrameHandler onFrame, Action<IStreamLink>? onClosed = null, int maxConnections = DefaultMaxConnections, ILogger? log = null)
    {
        ArgumentNullException.ThrowIfNull(bind);
        _listener = new TcpListener(bind);
        _onFrame = onFrame ?? throw new ArgumentNullException(nameof(onFrame));
        _onClosed = onClosed;
        _maxConnections = maxConnections;
        _log = log ?? NullLogger.Instance;
        _listener.Start();
        LocalEndPoint = (IPEndPoint)_listener.LocalEndpoint;
    }

    public IPEndPoint LocalEndPoint { get; }

    public int ConnectionCount => _links.Count;

    public void Start() => _accept ??= Task.Run(AcceptLoopAsync);

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException ex)
            {
                LogAcceptFailed(ex.SocketErrorCode);
                continue;
            }
            catch (ObjectDisposedException)
            {
                return;
            }

            if (_links.Count >= _maxConnections)
            {
                socket.Dispose();
                continue;
            }

            socket.NoDelay = true;
            var link = new Link(socket);
            _links[link] = Task.Run(() => ReadLoopAsync(link));
        }
    }

    private async Task ReadLoopAsync(Link link)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(StunLimits.MaxMessageSize + 4);
        var filled = 0;
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var n = await link.Socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, _stop.Token);
                if (n == 0) break;
                filled += n;
                var consumed = 0;
                while (true)
                {
                    var status = StunFraming.TryGetFrameLength(buffer.AsSpan(consumed, filled - consumed), out var length);
                    if (status == StunFrameStatus.Invalid) return;
                    if (status == StunFrameStatus.NeedMore) break;
                    _onFrame(link, buffer.AsSpan(consumed, length));
                    consumed += length;
                }

                if (consumed > 0)
                {
                    buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                    filled -= consumed;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
        catch (SocketException)
        {
            // The peer reset the connection: close this link alone.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            link.Close();
            _links.TryRemove(link, out _);
            _onClosed?.Invoke(link);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "TCP accept failed: {Error}")]
    private partial void LogAcceptFailed(SocketError error);

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        await _stop.CancelAsync();
        _listener.Stop();
        foreach (var link in _links.Keys) link.Close();
        try
        {
            if (_accept is not null) await _accept;
            await Task.WhenAll(_links.Values);
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }

        _stop.Dispose();
    }

    private sealed class Link(Socket socket) : IStreamLink
    {
        private readonly Lock _sendLock = new();
        private volatile bool _closed;

        public Socket Socket { get; } = socket;

        public IPEndPoint RemoteEndPoint { get; } = (IPEndPoint)socket.RemoteEndPoint!;

        public IPEndPoint LocalEndPoint { get; } = (IPEndPoint)socket.LocalEndPoint!;

        public void Send(ReadOnlySpan<byte> frame)
        {
            if (_closed) return;
            lock (_sendLock)
            {
                try
                {
                    // Blocking send keeps frames whole and in order; the kernel buffer absorbs bursts.
                    var sent = 0;
                    while (sent < frame.Length) sent += Socket.Send(frame[sent..], SocketFlags.None);
                }
                catch (SocketException)
                {
                    Close();
                }
                catch (ObjectDisposedException)
                {
                    _closed = true;
                }
            }
        }

        public void Close()
        {
            if (_closed) return;
            _closed = true;
            try
            {
                Socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
                // Already gone.
            }
            catch (ObjectDisposedException)
            {
                // Already gone.
            }

            Socket.Dispose();
        }
    }
}
