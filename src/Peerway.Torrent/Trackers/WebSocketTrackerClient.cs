using System.Buffers;
using System.Net.WebSockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;

namespace Peerway.Torrent.Trackers;

/// <summary>Opens a WebSocket to a tracker URL (<c>ws://</c> or <c>wss://</c>); a test or a proxy may supply its own.</summary>
public delegate ValueTask<WebSocket> WebSocketConnector(Uri url, CancellationToken cancellationToken);

/// <summary>
/// One connection to a WebSocket tracker (bittorrent-tracker's <c>lib/client/websocket-tracker.js</c> is the
/// reference): announces and scrapes wait for the tracker's answer to them; relayed offers and answers, which the tracker
/// sends at any time, go to <see cref="Signal"/>. Not reconnecting by itself: a closed client stays closed
/// (<see cref="Closed"/>), and its owner opens a new one.
/// </summary>
internal sealed class WebSocketTrackerClient : IAsyncDisposable
{
    /// <summary>The default connector: <see cref="ClientWebSocket"/> with keep-alive pings.</summary>
    public static readonly WebSocketConnector DefaultConnector = async (url, ct) =>
    {
        var ws = new ClientWebSocket();
        ws.Options.KeepAliveInterval = TimeSpan.FromSeconds(30);
        try
        {
            await ws.ConnectAsync(url, ct).ConfigureAwait(false);
            return ws;
        }
        catch
        {
            ws.Dispose();
            throw;
        }
    };

    private readonly WebSocket _socket;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _cts = new();
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Lock _gate = new();
    private readonly Task _receive;
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource<WebSocketTrackerMessage>? _pending;
    private Func<WebSocketTrackerMessage, bool>? _pendingMatch;
    private int _disposed;

    private WebSocketTrackerClient(Uri url, WebSocket socket, ILogger log)
    {
        Url = url;
        _socket = socket;
        _log = log;
        _receive = ReceiveLoopAsync(_cts.Token);
    }

    public Uri Url { get; }

    /// <summary>Relayed offers and answers (and announce answers nobody waits for), on the receive loop.</summary>
    public event Action<WebSocketTrackerMessage>? Signal;

    /// <summary>Completes when the tracker closed the socket or it failed.</summary>
    public Task Closed => _closed.Task;

    public static async Task<WebSocketTrackerClient> ConnectAsync(Uri url, WebSocketConnector? connector, ILogger? logger, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(url);
        var socket = await (connector ?? DefaultConnector)(url, ct).ConfigureAwait(false);
        return new WebSocketTrackerClient(url, socket, logger ?? NullLogger.Instance);
    }

    /// <summary>Sends a message that needs no reply (an answer to a relayed offer, a stopped announce).</summary>
    public async Task SendAsync(WebSocketTrackerMessage message, CancellationToken ct)
    {
        var bytes = WebSocketTrackerCodec.Encode(message);
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await _socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, ct).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Announces (with any offers) and waits for the tracker's answer for this torrent.</summary>
    public async Task<TrackerResult> AnnounceAsync(WebSocketTrackerMessage announce, TimeSpan timeout, TimeProvider time, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(announce);
        var reply = await ExchangeAsync(announce, m => m.Action == WebSocketTrackerAction.Announce && m.InfoHash == announce.InfoHash &&
            m.Offer is null && m.Answer is null, timeout, time, ct).ConfigureAwait(false);
        if (reply.Message is not { } m) return new TrackerResult(null, reply.Error, reply.Why);
        if (m.Failure is not null) return new TrackerResult(null, TrackerError.Failure, m.Failure);
        // WebSocket trackers give no addresses: peers come as relayed offers.
        return new TrackerResult(new AnnounceResponse(TimeSpan.FromSeconds(Math.Clamp(m.Interval ?? 120, 1, 86_400)), [], m.Complete, m.Incomplete), TrackerError.None);
    }

    /// <summary>Scrapes the given torrents (all of the tracker's when empty).</summary>
    public async Task<(IReadOnlyList<WebSocketScrapeFile> Files, TrackerError Error)> ScrapeAsync(IReadOnlyList<NodeId> hashes, TimeSpan timeout, TimeProvider time, CancellationToken ct)
    {
        var reply = await ExchangeAsync(new WebSocketTrackerMessage { Action = WebSocketTrackerAction.Scrape, ScrapeHashes = hashes },
            m => m.Action == WebSocketTrackerAction.Scrape, timeout, time, ct).ConfigureAwait(false);
        return reply.Message is { Failure: null } m ? (m.Files, TrackerError.None) : ([], reply.Message is null ? reply.Error : TrackerError.Failure);
    }

    private async Task<(WebSocketTrackerMessage? Message, TrackerError Error, string? Why)> ExchangeAsync(
        WebSocketTrackerMessage request, Func<WebSocketTrackerMessage, bool> match, TimeSpan timeout, TimeProvider time, CancellationToken ct)
    {
        var tcs = new TaskCompletionSource<WebSocketTrackerMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (_pending is not null) throw new InvalidOperationException("one announce or scrape at a time");
            _pending = tcs;
            _pendingMatch = match;
        }

        try
        {
            await SendAsync(request, ct).ConfigureAwait(false);
            var done = await Task.WhenAny(tcs.Task, _closed.Task).WaitAsync(timeout, time, ct).ConfigureAwait(false);
            return done == tcs.Task ? (await tcs.Task.ConfigureAwait(false), TrackerError.None, null) : (null, TrackerError.Unreachable, "the tracker closed the connection");
        }
        catch (TimeoutException)
        {
            return (null, TrackerError.Timeout, null);
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException)
        {
            return (null, TrackerError.Unreachable, ex.Message);
        }
        finally
        {
            lock (_gate)
            {
                _pending = null;
                _pendingMatch = null;
            }
        }
    }

    private async Task ReceiveLoopAsync(CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(WebSocketTrackerCodec.MaxMessageLength);
        try
        {
            while (true)
            {
                var n = 0;
                ValueWebSocketReceiveResult r;
                do
                {
                    if (n == WebSocketTrackerCodec.MaxMessageLength)
                    {
                        _log.LogInformation("WebSocket tracker {Url}: message too large; closing", Url);
                        return;
                    }

                    r = await _socket.ReceiveAsync(buffer.AsMemory(n, WebSocketTrackerCodec.MaxMessageLength - n), ct).ConfigureAwait(false);
                    n += r.Count;
                }
                while (!r.EndOfMessage && r.MessageType != WebSocketMessageType.Close);

                if (r.MessageType == WebSocketMessageType.Close) return;
                if (!WebSocketTrackerCodec.TryDecode(buffer.AsSpan(0, n), out var message, out var error))
                {
                    // bittorrent-tracker's client warns and goes on ("Invalid tracker response").
                    _log.LogInformation("WebSocket tracker {Url}: bad message ({Error}) ignored", Url, error);
                    continue;
                }

                Dispatch(message!);
            }
        }
        // ObjectDisposedException: DisposeAsync aborted the socket between two receives (ClientWebSocket.Abort disposes
        // it, and the next ReceiveAsync throws that before it looks at the cancelled token).
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            _log.LogDebug("WebSocket tracker {Url}: {Message}", Url, ex.Message);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            _closed.TrySetResult();
        }
    }

    private void Dispatch(WebSocketTrackerMessage message)
    {
        TaskCompletionSource<WebSocketTrackerMessage>? waiter = null;
        lock (_gate)
        {
            if (_pending is not null && _pendingMatch!(message))
            {
                waiter = _pending;
                _pending = null;
                _pendingMatch = null;
            }
        }

        if (waiter is not null) waiter.TrySetResult(message);
        else Signal?.Invoke(message);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _cts.CancelAsync().ConfigureAwait(false);
        _socket.Abort();
        await _receive.ConfigureAwait(false);
        _socket.Dispose();
        _cts.Dispose();
        _sendLock.Dispose();
    }
}
