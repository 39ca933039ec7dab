using System.Buffers;

namespace Peerway.Libp2p.Yamux;

/// <summary>
/// One Yamux stream as a <see cref="Stream"/>. Reads drain what arrived (at most the receive window, which the reader
/// re-opens with a window update once half of it is consumed); writes wait while the send window is empty. The receive
/// window starts at the spec's 256 KiB and is auto-tuned as go-yamux does it: a reader that has drained everything when
/// it re-opens the window (the sender, not the reader, is the bottleneck) doubles it, up to
/// <see cref="YamuxOptions.MaxStreamWindow"/> and only as far as the session's window budget allows. Dispose
/// half-closes (FIN); <see cref="Reset"/> aborts (RST). One reader and one writer at a time.
/// </summary>
internal sealed class YamuxStream : Stream
{
    private readonly YamuxSession _session;
    private readonly Lock _gate = new();
    private readonly Queue<(byte[] Array, int Length)> _segments = new();
    private TaskCompletionSource _readable = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _writable = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _segmentOffset;
    private long _buffered;
    private bool _counted = true;
    private uint _receiveWindow = YamuxOptions.InitialWindow;
    private uint _windowSize = YamuxOptions.InitialWindow;
    private uint _consumed;
    private long _sendWindow = YamuxOptions.InitialWindow;
    private bool _remoteClosed;
    private bool _localClosed;
    private bool _reset;

    public YamuxStream(YamuxSession session, uint id)
    {
        _session = session;
        Id = id;
    }

    public uint Id { get; }

    /// <summary>Set by the host once multistream-select has settled the stream's protocol.</summary>
    public string? Protocol { get; set; }

    internal bool IsReset
    {
        get
        {
            lock (_gate) return _reset;
        }
    }

    internal uint ReceiveWindow
    {
        get
        {
            lock (_gate) return _receiveWindow;
        }
    }

    /// <summary>The receive window this stream grants now (256 KiB at first, more once auto-tuned).</summary>
    internal uint ReceiveWindowSize
    {
        get
        {
            lock (_gate) return _windowSize;
        }
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>Queues <paramref name="length"/> bytes of <paramref name="data"/>, an array rented from the shared pool that the stream now owns.</summary>
    internal void OnData(byte[] data, int length)
    {
        TaskCompletionSource signal;
        lock (_gate)
        {
            if (_reset || _remoteClosed)
            {
                ArrayPool<byte>.Shared.Return(data);
                return;
            }

            _receiveWindow -= (uint)length;
            _segments.Enqueue((data, length));
            _buffered += length;
            if (_counted) _session.AddBuffered(length);
            signal = _readable;
        }

        signal.TrySetResult();
    }

    internal void OnWindowUpdate(uint delta)
    {
        TaskCompletionSource signal;
        lock (_gate)
        {
            _sendWindow += delta;
            signal = _writable;
        }

        signal.TrySetResult();
    }

    internal void OnRemoteFin()
    {
        TaskCompletionSource signal;
        lock (_gate)
        {
            _remoteClosed = true;
            signal = _readable;
        }

        signal.TrySetResult();
        ForgetIfDone();
    }

    /// <summary>
    /// Aborts the stream locally (the remote reset it, the session ended, or the backlog was full). Data that arrived
    /// before stays readable unless <paramref name="discard"/> (the session's buffer bound was reached).
    /// </summary>
    public void Reset(bool discard = false)
    {
        TaskCompletionSource r, w;
        lock (_gate)
        {
            _reset = true;
            if (discard)
            {
                while (_segments.TryDequeue(out var segment)) ArrayPool<byte>.Shared.Return(segment.Array);
                _segmentOffset = 0;
                if (_counted) _session.AddBuffered(-_buffered);
                _buffered = 0;
            }

            r = _readable;
            w = _writable;
        }

        r.TrySetResult();
        w.TrySetResult();
        _session.Forget(this);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task wait;
            uint update = 0;
            int copied;
            lock (_gate)
            {
                if (_segments.Count > 0)
                {
                    copied = 0;
                    while (copied < buffer.Length && _segments.Count > 0)
                    {
                        var head = _segments.Peek();
                        var n = Math.Min(buffer.Length - copied, head.Length - _segmentOffset);
                        head.Array.AsSpan(_segmentOffset, n).CopyTo(buffer.Span[copied..]);
                        copied += n;
                        _segmentOffset += n;
                        if (_segmentOffset == head.Length)
                        {
                            _segments.Dequeue();
                            ArrayPool<byte>.Shared.Return(head.Array);
                            _segmentOffset = 0;
                        }
                    }

                    _buffered -= copied;
                    if (_counted) _session.AddBuffered(-copied);

                    // spec.md: the receiver re-opens the window as data is consumed; once half of it is used up.
                    _consumed += (uint)copied;
                    if (_consumed >= _windowSize / 2 && !_remoteClosed && !_reset)
                    {
                        // go-yamux (stream.go sendWindowUpdate): a window that is used up faster than it is re-opened
                        // doubles, up to MaxStreamWindowSize, if the session's memory allows. Here the sign is that the
                        // reader has drained everything that arrived: it waits on the sender, so the window is too small.
                        var grow = _buffered == 0 ? _session.ReserveWindow(_windowSize) : 0u;
                        _windowSize += grow;
                        update = _consumed + grow;
                        _receiveWindow += update;
                        _consumed = 0;
                    }
                }
                else if (_reset)
                {
                    throw new IOException("yamux: the stream was reset");
                }
                else if (_remoteClosed)
                {
                    return 0;
                }
                else
                {
                    if (_readable.Task.IsCompleted) _readable = new(TaskCreationOptions.RunContinuationsAsynchronously);
                    copied = -1;
                }

                wait = _readable.Task;
            }

            if (copied >= 0)
            {
                if (update > 0) await _session.WriteFrameAsync(new YamuxHeader(YamuxType.WindowUpdate, YamuxFlags.None, Id, update), default, cancellationToken).ConfigureAwait(false);
                return copied;
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!buffer.IsEmpty)
        {
            int chunk;
            Task wait;
            lock (_gate)
            {
                if (_reset) throw new IOException("yamux: the stream was reset");
                if (_localClosed) throw new IOException("yamux: the stream is closed for writing");
                chunk = (int)Math.Min(Math.Min(_sendWindow, buffer.Length), _session.MaxFrame);
                if (chunk > 0) _sendWindow -= chunk;
                else if (_writable.Task.IsCompleted) _writable = new(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _writable.Task;
            }

            if (chunk == 0)
            {
                await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
                continue;
            }

            await _session.WriteFrameAsync(new YamuxHeader(YamuxType.Data, YamuxFlags.None, Id, (uint)chunk), buffer[..chunk], cancellationToken).ConfigureAwait(false);
            buffer = buffer[chunk..];
        }
    }

    /// <summary>Half-closes: sends FIN; reading goes on until the remote closes too.</summary>
    public async Task CloseWriteAsync(CancellationToken ct)
    {
        lock (_gate)
        {
            if (_localClosed || _reset) return;
            _localClosed = true;
        }

        await _session.WriteFrameAsync(new YamuxHeader(YamuxType.WindowUpdate, YamuxFlags.Fin, Id, 0), default, ct).ConfigureAwait(false);
        ForgetIfDone();
    }

    /// <summary>
    /// Stops counting this stream against the session: returns the buffered bytes it still counted and the window
    /// growth it had reserved (both once).
    /// </summary>
    internal (long Buffered, long Growth) Uncount()
    {
        lock (_gate)
        {
            if (!_counted) return (0, 0);
            _counted = false;
            return (_buffered, _windowSize - YamuxOptions.InitialWindow);
        }
    }

    private void ForgetIfDone()
    {
        bool done;
        lock (_gate) done = _localClosed && _remoteClosed;
        if (done) _session.Forget(this);
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
    }

    /// <summary>Synchronous reads would block a thread on the network: use <see cref="ReadAsync(Memory{byte}, CancellationToken)"/>.</summary>
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("use ReadAsync");

    /// <summary>Synchronous writes would block a thread on the network: use <see cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/>.</summary>
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("use WriteAsync");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override async ValueTask DisposeAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await CloseWriteAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            Reset();
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }
}
