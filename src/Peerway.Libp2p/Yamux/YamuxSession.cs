using System.Buffers;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Peerway.Libp2p.Yamux;

/// <summary>
/// A Yamux session (hashicorp/yamux spec.md, libp2p's <c>/yamux/1.0.0</c>) over a secure stream: the dialer's streams
/// have odd ids and the listener's even ones; each stream has a 256 KiB receive window that the reader re-opens with
/// window updates as the application consumes data (back-pressure); pings are answered; go-away ends the session.
/// One read loop owns the connection's read side; writes are serialised by a lock so header and data leave together.
/// A peer that breaks the protocol (a frame beyond its window, an unknown type) gets go-away and is dropped alone.
/// </summary>
internal sealed class YamuxSession : IAsyncDisposable
{
    public const string ProtocolId = "/yamux/1.0.0";

    private readonly Stream _connection;
    private readonly YamuxOptions _options;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Lock _gate = new();
    private readonly Dictionary<uint, YamuxStream> _streams = [];
    private readonly Channel<YamuxStream> _accepted;
    private readonly CancellationTokenSource _cts = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<uint, TaskCompletionSource> _pings = [];
    private uint _nextId;
    private uint _nextPing;
    private Task _readLoop = Task.CompletedTask;
    private bool _goAway;

    public YamuxSession(Stream connection, bool client, YamuxOptions? options = null, ILogger? log = null)
    {
        _connection = connection;
        _options = (options ?? new YamuxOptions()).Validated();
        _log = log ?? NullLogger.Instance;
        _nextId = client ? 1u : 2u;
        _accepted = Channel.CreateBounded<YamuxStream>(new BoundedChannelOptions(_options.AcceptBacklog) { SingleReader = false, SingleWriter = true });
    }

    /// <summary>Completes when the session has ended (go-away, a protocol error, the connection closing, or dispose).</summary>
    public Task Closed => _closed.Task;

    /// <summary>Streams open now.</summary>
    public int StreamCount
    {
        get
        {
            lock (_gate) return _streams.Count;
        }
    }

    public void Start() => _readLoop = Task.Run(() => ReadLoopAsync(_cts.Token));

    /// <summary>Opens a stream (spec: a window update with SYN; data may follow before the ACK).</summary>
    public async Task<YamuxStream> OpenStreamAsync(CancellationToken ct)
    {
        YamuxStream stream;
        lock (_gate)
        {
            if (_goAway || _closed.Task.IsCompleted) throw new IOException("yamux: the session is closed");
            if (_streams.Count >= _options.MaxStreams) throw new IOException($"yamux: {_options.MaxStreams} streams are open");
            var id = _nextId;
            _nextId += 2;
            stream = new YamuxStream(this, id);
            _streams[id] = stream;
        }

        await WriteFrameAsync(new YamuxHeader(YamuxType.WindowUpdate, YamuxFlags.Syn, stream.Id, 0), default, ct).ConfigureAwait(false);
        return stream;
    }

    /// <summary>The next stream the remote opened; null once the session has ended.</summary>
    public async ValueTask<YamuxStream?> AcceptStreamAsync(CancellationToken ct)
    {
        try
        {
            return await _accepted.Reader.ReadAsync(ct).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            return null;
        }
    }

    /// <summary>Pings the remote (spec: ping with SYN, answered with ACK and the same value); returns the round trip.</summary>
    public async Task<TimeSpan> PingAsync(TimeProvider time, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(time);
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        uint id;
        lock (_gate)
        {
            id = ++_nextPing;
            _pings[id] = tcs;
        }

        var start = time.GetTimestamp();
        await WriteFrameAsync(new YamuxHeader(YamuxType.Ping, YamuxFlags.Syn, 0, id), default, ct).ConfigureAwait(false);
        await tcs.Task.WaitAsync(ct).ConfigureAwait(false);
        return time.GetElapsedTime(start);
    }

    internal async Task WriteFrameAsync(YamuxHeader header, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(YamuxHeader.Size + data.Length);
        try
        {
            header.Write(buffer);
            data.Span.CopyTo(buffer.AsSpan(YamuxHeader.Size));
            await _writeLock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await _connection.WriteAsync(buffer.AsMemory(0, YamuxHeader.Size + data.Length), ct).ConfigureAwait(false);
                await _connection.FlushAsync(ct).ConfigureAwait(false);
            }
            finally
            {
                _writeLock.Release();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    internal int MaxFrame => _options.MaxFrame;

    internal void Forget(YamuxStream stream)
    {
        lock (_gate) _streams.Remove(stream.Id);
    }

    private async Task ReadLoopAsync(CancellationToken ct)
    {
        var header = new byte[YamuxHeader.Size];
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var n = await _connection.ReadAtLeastAsync(header, YamuxHeader.Size, throwOnEndOfStream: false, ct).ConfigureAwait(false);
                if (n < YamuxHeader.Size) break;
                if (YamuxHeader.TryRead(header, out var h) != Libp2pError.None)
                {
                    await ProtocolErrorAsync("an unknown frame version or type", ct).ConfigureAwait(false);
                    break;
                }

                if (!await HandleAsync(h, ct).ConfigureAwait(false)) break;
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            _log.LogDebug("yamux: the connection ended: {Message}", ex.Message);
        }
        finally
        {
            End();
        }
    }

    /// <summary>Handles one frame; false ends the session.</summary>
    private async Task<bool> HandleAsync(YamuxHeader h, CancellationToken ct)
    {
        switch (h.Type)
        {
            case YamuxType.Ping:
                if (h.Flags.HasFlag(YamuxFlags.Syn))
                {
                    await WriteFrameAsync(new YamuxHeader(YamuxType.Ping, YamuxFlags.Ack, 0, h.Length), default, ct).ConfigureAwait(false);
                }
                else if (h.Flags.HasFlag(YamuxFlags.Ack))
                {
                    TaskCompletionSource? tcs;
                    lock (_gate) _pings.Remove(h.Length, out tcs);
                    tcs?.TrySetResult();
                }

                return true;
            case YamuxType.GoAway:
                _log.LogDebug("yamux: go-away ({Code})", h.Length);
                lock (_gate) _goAway = true;
                return false;
        }

        if (h.StreamId == 0)
        {
            await ProtocolErrorAsync("a stream frame on stream 0", ct).ConfigureAwait(false);
            return false;
        }

        YamuxStream? stream;
        var opened = false;
        lock (_gate)
        {
            _streams.TryGetValue(h.StreamId, out stream);
            if (stream is null && h.Flags.HasFlag(YamuxFlags.Syn))
            {
                // spec.md: the remote's ids have the other parity; a reused or wrong-parity id is a protocol error.
                if ((h.StreamId & 1) == (_nextId & 1))
                {
                    stream = null;
                }
                else if (_streams.Count < _options.MaxStreams && !_goAway)
                {
                    stream = new YamuxStream(this, h.StreamId);
                    _streams[h.StreamId] = stream;
                    opened = true;
                }
            }
        }

        if (h.Flags.HasFlag(YamuxFlags.Syn) && stream is null)
        {
            // Too many streams (or a bad id): refuse this one alone with RST; its data, if any, is skipped.
            await WriteFrameAsync(new YamuxHeader(YamuxType.WindowUpdate, YamuxFlags.Rst, h.StreamId, 0), default, ct).ConfigureAwait(false);
            return await SkipAsync(h, ct).ConfigureAwait(false);
        }

        if (opened)
        {
            await WriteFrameAsync(new YamuxHeader(YamuxType.WindowUpdate, YamuxFlags.Ack, h.StreamId, 0), default, ct).ConfigureAwait(false);
            if (!_accepted.Writer.TryWrite(stream!))
            {
                stream!.Reset();
                await WriteFrameAsync(new YamuxHeader(YamuxType.WindowUpdate, YamuxFlags.Rst, h.StreamId, 0), default, ct).ConfigureAwait(false);
            }
        }

        if (h.Type == YamuxType.Data)
        {
            if (stream is null) return await SkipAsync(h, ct).ConfigureAwait(false);
            if (h.Length > stream.ReceiveWindow)
            {
                await ProtocolErrorAsync($"{h.Length} bytes beyond a {stream.ReceiveWindow}-byte window", ct).ConfigureAwait(false);
                return false;
            }

            if (h.Length > 0)
            {
                var data = new byte[h.Length];
                await _connection.ReadExactlyAsync(data, ct).ConfigureAwait(false);
                stream.OnData(data);
            }
        }
        else if (stream is not null && h.Length > 0)
        {
            stream.OnWindowUpdate(h.Length);
        }

        if (stream is not null)
        {
            if (h.Flags.HasFlag(YamuxFlags.Fin)) stream.OnRemoteFin();
            if (h.Flags.HasFlag(YamuxFlags.Rst)) stream.Reset();
        }

        return true;
    }

    private async Task<bool> SkipAsync(YamuxHeader h, CancellationToken ct)
    {
        if (h.Type != YamuxType.Data || h.Length == 0) return true;
        if (h.Length > YamuxOptions.InitialWindow * 64u)
        {
            await ProtocolErrorAsync("an oversized frame for an unknown stream", ct).ConfigureAwait(false);
            return false;
        }

        var skip = new byte[Math.Min(h.Length, 64 * 1024)];
        for (var left = (int)h.Length; left > 0;)
        {
            var chunk = Math.Min(left, skip.Length);
            await _connection.ReadExactlyAsync(skip.AsMemory(0, chunk), ct).ConfigureAwait(false);
            left -= chunk;
        }

        return true;
    }

    private async Task ProtocolErrorAsync(string what, CancellationToken ct)
    {
        _log.LogDebug("yamux: protocol error, closing the session: {What}", what);
        // spec.md go-away codes: 0 normal, 1 protocol error, 2 internal error.
        await WriteFrameAsync(new YamuxHeader(YamuxType.GoAway, YamuxFlags.None, 0, 1), default, ct).ConfigureAwait(false);
    }

    private void End()
    {
        List<YamuxStream> streams;
        List<TaskCompletionSource> pings;
        lock (_gate)
        {
            _goAway = true;
            streams = [.. _streams.Values];
            pings = [.. _pings.Values];
            _pings.Clear();
        }

        foreach (var s in streams) s.Reset();
        foreach (var p in pings) p.TrySetException(new IOException("yamux: the session ended"));
        _accepted.Writer.TryComplete();
        _closed.TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_closed.Task.IsCompleted)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await WriteFrameAsync(new YamuxHeader(YamuxType.GoAway, YamuxFlags.None, 0, 0), default, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
                _log.LogDebug("yamux: go-away not sent: {Message}", ex.Message);
            }
        }

        await _cts.CancelAsync().ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
        await _readLoop.ConfigureAwait(false);
        _cts.Dispose();
        _writeLock.Dispose();
    }
}
