using System.Buffers;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Peerway.Libp2p.Yamux;

/// <summary>
/// A Yamux session (hashicorp/yamux spec.md, libp2p's <c>/yamux/1.0.0</c>) over a secure stream: the dialer's streams
/// have odd ids and the listener's even ones; each stream has a receive window (256 KiB, auto-tuned up to
/// <see cref="YamuxOptions.MaxStreamWindow"/>) that the reader re-opens with window updates as the application
/// consumes data (back-pressure); pings are answered; go-away ends the session.
/// One read loop owns the connection's read side; writes are serialised by a lock so header and data leave together.
/// A peer that breaks the protocol (a frame beyond its window, an unknown type) gets go-away and is dropped alone; so
/// does one that keeps opening streams past the limits (<see cref="YamuxOptions.MaxRefusedStreams"/>) or stops reading
/// the connection (<see cref="YamuxOptions.WriteTimeout"/>). Data the application has not read is bounded per stream by
/// its window and per session by <see cref="YamuxOptions.MaxBufferedBytes"/>.
/// </summary>
internal sealed class YamuxSession : IAsyncDisposable
{
    public const string ProtocolId = "/yamux/1.0.0";

    private readonly Stream _connection;
    private readonly YamuxOptions _options;
    private readonly ILogger _log;
    private readonly ITimer _writeTimer;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Lock _gate = new();
    private readonly Dictionary<uint, YamuxStream> _streams = [];
    private readonly Channel<YamuxStream> _accepted;
    private readonly CancellationTokenSource _cts = new();
    private readonly CancellationToken _sessionToken;
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<uint, TaskCompletionSource> _pings = [];
    private uint _nextId;
    private uint _nextPing;
    private Task _readLoop = Task.CompletedTask;
    private bool _goAway;
    private bool _connectionGone;
    private int _refused;
    private long _buffered;
    private long _peakBuffered;
    private long _windowGrowth;

    public YamuxSession(Stream connection, bool client, YamuxOptions? options = null, ILogger? log = null, TimeProvider? time = null)
    {
        _connection = connection;
        _options = (options ?? new YamuxOptions()).Validated();
        _log = log ?? NullLogger.Instance;
        _writeTimer = (time ?? TimeProvider.System).CreateTimer(static s => ((YamuxSession)s!).OnWriteStalled(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _nextId = client ? 1u : 2u;
        _sessionToken = _cts.Token;
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

    /// <summary>Received bytes waiting in this session's streams for the application to read them.</summary>
    internal long BufferedBytes => Interlocked.Read(ref _buffered);

    /// <summary>The most <see cref="BufferedBytes"/> has ever been.</summary>
    internal long PeakBufferedBytes => Interlocked.Read(ref _peakBuffered);

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
                if (_closed.Task.IsCompleted || _connectionGone) throw new IOException("yamux: the session is closed");
                // A frame is never cut off half-written by one caller's cancellation (that would break the framing for
                // every stream): once it starts, only the session's end or the stall deadline stops it.
                _writeTimer.Change(_options.WriteTimeout, Timeout.InfiniteTimeSpan);
                await _connection.WriteAsync(buffer.AsMemory(0, YamuxHeader.Size + data.Length), _sessionToken).ConfigureAwait(false);
                await _connection.FlushAsync(_sessionToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException ex) when (_sessionToken.IsCancellationRequested)
            {
                throw new IOException("yamux: the session ended before the frame left", ex);
            }
            finally
            {
                _writeTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
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
        var (buffered, growth) = stream.Uncount();
        AddBuffered(-buffered);
        Interlocked.Add(ref _windowGrowth, -growth);
    }

    /// <summary>Receive-window growth granted beyond the streams' initial 256 KiB, summed over this session's streams.</summary>
    internal long WindowGrowth => Interlocked.Read(ref _windowGrowth);

    /// <summary>
    /// Reserves up to <paramref name="wanted"/> bytes of receive-window growth for a stream whose window is
    /// <paramref name="wanted"/> now (doubling it): never past <see cref="YamuxOptions.MaxStreamWindow"/>, and the
    /// growth of all streams together stays within half of <see cref="YamuxOptions.MaxBufferedBytes"/>, so grown
    /// windows alone never push a session that the application reads into its buffer bound. Returns what was reserved.
    /// </summary>
    internal uint ReserveWindow(uint wanted)
    {
        var cap = (long)_options.MaxStreamWindow - wanted;
        if (cap <= 0) return 0;
        var budget = _options.MaxBufferedBytes / 2;
        while (true)
        {
            var now = Interlocked.Read(ref _windowGrowth);
            var grow = Math.Min(Math.Min(wanted, cap), budget - now);
            if (grow <= 0) return 0;
            if (Interlocked.CompareExchange(ref _windowGrowth, now + grow, now) == now) return (uint)grow;
        }
    }

    /// <summary>Called by a stream as data is queued (read loop) or read (application).</summary>
    internal void AddBuffered(long delta)
    {
        var now = Interlocked.Add(ref _buffered, delta);
        // Only the read loop adds data, so the peak has one writer.
        if (delta > 0 && now > Interlocked.Read(ref _peakBuffered)) Interlocked.Exchange(ref _peakBuffered, now);
    }

    private void OnWriteStalled()
    {
        _log.LogDebug("yamux: a frame has not left in {Timeout}; the peer stopped reading, closing the session", _options.WriteTimeout);
        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
            _log.LogDebug("yamux: the stall deadline fired after the session was disposed");
        }
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
            if (!await RefuseAsync(h.StreamId, "over the stream limit", ct).ConfigureAwait(false)) return false;
            return await SkipAsync(h, ct).ConfigureAwait(false);
        }

        if (opened)
        {
            await WriteFrameAsync(new YamuxHeader(YamuxType.WindowUpdate, YamuxFlags.Ack, h.StreamId, 0), default, ct).ConfigureAwait(false);
            if (!_accepted.Writer.TryWrite(stream!))
            {
                stream!.Reset();
                if (!await RefuseAsync(h.StreamId, "the accept backlog is full", ct).ConfigureAwait(false)) return false;
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

            if (h.Length > 0 && !stream.IsReset && BufferedBytes + h.Length > _options.MaxBufferedBytes)
            {
                // Every stream is within its window, but together they pass the session's bound: this stream goes.
                stream.Reset(discard: true);
                if (!await RefuseAsync(h.StreamId, $"{BufferedBytes} unread bytes buffered", ct).ConfigureAwait(false)) return false;
                return await SkipAsync(h, ct).ConfigureAwait(false);
            }

            if (h.Length > 0)
            {
                // Within the window (checked above), so at most MaxStreamWindow; the stream returns it to the pool.
                var data = ArrayPool<byte>.Shared.Rent((int)h.Length);
                try
                {
                    await _connection.ReadExactlyAsync(data.AsMemory(0, (int)h.Length), ct).ConfigureAwait(false);
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(data);
                    throw;
                }

                stream.OnData(data, (int)h.Length);
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

    /// <summary>Resets one stream of the remote's; false (after go-away) once the remote has had too many refused.</summary>
    private async Task<bool> RefuseAsync(uint id, string why, CancellationToken ct)
    {
        await WriteFrameAsync(new YamuxHeader(YamuxType.WindowUpdate, YamuxFlags.Rst, id, 0), default, ct).ConfigureAwait(false);
        if (++_refused <= _options.MaxRefusedStreams) return true;
        await ProtocolErrorAsync($"{_refused} streams refused, the last one {why}", ct).ConfigureAwait(false);
        return false;
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
                // Bounded: a go-away that cannot leave within a second (the peer stopped reading) is abandoned.
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await using var abort = timeout.Token.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _cts);
                await WriteFrameAsync(new YamuxHeader(YamuxType.GoAway, YamuxFlags.None, 0, 0), default, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
                _log.LogDebug("yamux: go-away not sent: {Message}", ex.Message);
            }
        }

        await _cts.CancelAsync().ConfigureAwait(false);
        // A writer inside the lock is cancelled now; waiting for the lock means none is still using the connection
        // (its ciphers) when it is disposed, and the flag keeps later ones off it.
        await _writeLock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        _connectionGone = true;
        _writeLock.Release();
        await _connection.DisposeAsync().ConfigureAwait(false);
        await _readLoop.ConfigureAwait(false);
        await _writeTimer.DisposeAsync().ConfigureAwait(false);
        _cts.Dispose();
        // _writeLock is not disposed: a stream's write may still be inside it (it fails on the closed connection and
        // releases it); disposing it under that writer would turn its release into ObjectDisposedException. It holds no
        // wait handle (AvailableWaitHandle is never used), so there is nothing to free.
    }
}
