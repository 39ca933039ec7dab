using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;

namespace Peerway.WebRtc.DataChannels;

/// <summary>As the browser's RTCDataChannelInit: ordering, partial reliability, protocol, pre-negotiated id.</summary>
public sealed record RtcDataChannelInit
{
    /// <summary>Messages arrive in the order sent (true, the default) or as they come (false; RFC 8831 §6.6).</summary>
    public bool Ordered { get; init; } = true;

    /// <summary>RFC 8832: at most this many retransmissions (exclusive with <see cref="MaxPacketLifeTime"/>).</summary>
    public int? MaxRetransmits { get; init; }

    /// <summary>RFC 8832: give up after this long (exclusive with <see cref="MaxRetransmits"/>).</summary>
    public TimeSpan? MaxPacketLifeTime { get; init; }

    /// <summary>The subprotocol name sent in DATA_CHANNEL_OPEN (RFC 8832 §5.1); at most 1024 UTF-8 bytes.</summary>
    public string Protocol { get; init; } = "";

    /// <summary>Pre-negotiated (RFC 8832 §4 not used): both sides create the channel with the same <see cref="Id"/>.</summary>
    public bool Negotiated { get; init; }

    /// <summary>The SCTP stream id; required when <see cref="Negotiated"/>, else chosen by the connection when null (RFC 8832 §6).</summary>
    public ushort? Id { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> when both reliability limits are set, one is out of range, a negotiated channel has no id, the id is 65535, or the protocol is longer than 1024 bytes.</summary>
    public void Validate()
    {
        if (MaxRetransmits is not null && MaxPacketLifeTime is not null) throw new ArgumentException("MaxRetransmits and MaxPacketLifeTime are exclusive.");
        if (MaxRetransmits is < 0) throw new ArgumentException("MaxRetransmits must be ≥ 0.");
        if (MaxPacketLifeTime is { } l && (l < TimeSpan.Zero || l.TotalMilliseconds > uint.MaxValue)) throw new ArgumentException("MaxPacketLifeTime out of range.");
        if (Negotiated && Id is null) throw new ArgumentException("A negotiated channel needs an Id.");
        if (Id is 65535) throw new ArgumentException("Stream id 65535 is reserved.");
        if (Encoding.UTF8.GetByteCount(Protocol) > DcepOpen.MaxText) throw new ArgumentException("Protocol too long.");
    }

    internal DcepChannelType ChannelType => (MaxRetransmits, MaxPacketLifeTime, Ordered) switch
    {
        (not null, _, true) => DcepChannelType.PartialReliableRexmit,
        (not null, _, false) => DcepChannelType.PartialReliableRexmitUnordered,
        (_, not null, true) => DcepChannelType.PartialReliableTimed,
        (_, not null, false) => DcepChannelType.PartialReliableTimedUnordered,
        (_, _, true) => DcepChannelType.Reliable,
        _ => DcepChannelType.ReliableUnordered,
    };

    internal uint Reliability => MaxRetransmits is { } r ? (uint)r : MaxPacketLifeTime is { } l ? (uint)l.TotalMilliseconds : 0;

    internal static RtcDataChannelInit FromOpen(DcepOpen open, ushort id) => new()
    {
        Ordered = !open.Unordered,
        MaxRetransmits = open.ChannelType is DcepChannelType.PartialReliableRexmit or DcepChannelType.PartialReliableRexmitUnordered ? (int)Math.Min(open.Reliability, int.MaxValue) : null,
        MaxPacketLifeTime = open.ChannelType is DcepChannelType.PartialReliableTimed or DcepChannelType.PartialReliableTimedUnordered ? TimeSpan.FromMilliseconds(open.Reliability) : null,
        Protocol = open.Protocol,
        Id = id,
    };
}

/// <summary>One received message: text (PPID 51/56) or binary (53/57).</summary>
public readonly record struct RtcMessage(ReadOnlyMemory<byte> Data, bool IsText)
{
    /// <summary><see cref="Data"/> decoded as UTF-8 (meaningful when <see cref="IsText"/>).</summary>
    public string Text => Encoding.UTF8.GetString(Data.Span);
}

/// <summary>The states of a data channel, as the browser's RTCDataChannelState.</summary>
public enum RtcDataChannelState
{
    /// <summary>Not open yet.</summary>
    Connecting,
    /// <summary>Messages can be sent and received.</summary>
    Open,
    /// <summary>Closing: the stream reset is under way (RFC 8831 §6.7).</summary>
    Closing,
    /// <summary>Closed: both streams reset, or the connection ended.</summary>
    Closed,
}

/// <summary>
/// A data channel (RFC 8831), shaped like the browser's RTCDataChannel: string and binary messages, a buffered amount
/// with back-pressure (<see cref="SendAsync(ReadOnlyMemory{byte}, CancellationToken)"/> waits while it is above
/// <see cref="BufferedAmountHighThreshold"/>; <see cref="BufferedAmountLow"/> and
/// <see cref="WaitForBufferedAmountLowAsync"/> as the browser's <c>bufferedamountlow</c>), and a close that reaches
/// "closed" on both sides (RFC 8831 §6.7: each side resets its outgoing stream).
/// <para>
/// Receiving: a reliable channel never drops a message. What the application has not read yet stays charged to the
/// SCTP receive window, so a slow reader closes the window and the sender is throttled (RFC 9260 §6.2) — memory per
/// connection is bounded by the window. A partially reliable channel keeps at most
/// <see cref="RtcConfiguration.MaxQueuedMessages"/> unread and drops beyond it.
/// </para>
/// </summary>
public sealed class RtcDataChannel
{
    private readonly RtcPeerConnection _owner;
    private readonly Channel<Inbound> _inbox;
    private readonly int _maxQueuedUnreliable;
    private int _queued;
    private bool _aboveLow;
    private readonly TaskCompletionSource _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private RtcDataChannelState _state;
    private bool _outgoingReset;
    private bool _incomingReset;

    internal RtcDataChannel(RtcPeerConnection owner, ushort id, string label, RtcDataChannelInit init, int maxQueuedMessages)
    {
        _owner = owner;
        Id = id;
        Label = label;
        Init = init;
        _maxQueuedUnreliable = maxQueuedMessages;
        _inbox = Channel.CreateUnbounded<Inbound>(new UnboundedChannelOptions { SingleWriter = true });
    }

    /// <summary>The SCTP stream id that carries the channel.</summary>
    public ushort Id { get; }

    /// <summary>The label given when the channel was created (RFC 8832 §5.1).</summary>
    public string Label { get; }

    /// <summary>The subprotocol name (empty when none).</summary>
    public string Protocol => Init.Protocol;

    /// <summary>True when messages are delivered in order.</summary>
    public bool Ordered => Init.Ordered;

    /// <summary>RFC 8832 partial reliability: at most this many retransmissions; null when not limited this way.</summary>
    public int? MaxRetransmits => Init.MaxRetransmits;

    /// <summary>RFC 8832 partial reliability: messages are given up after this long; null when not limited this way.</summary>
    public TimeSpan? MaxPacketLifeTime => Init.MaxPacketLifeTime;

    /// <summary>True when the channel was negotiated by the application (no DATA_CHANNEL_OPEN).</summary>
    public bool Negotiated => Init.Negotiated;

    internal RtcDataChannelInit Init { get; }

    /// <summary>RFC 8832 §6: until the peer's ACK, our messages go ordered.</summary>
    internal bool Acknowledged { get; set; }

    /// <summary>The channel's state now. Thread-safe.</summary>
    public RtcDataChannelState State
    {
        get
        {
            lock (_gate) return _state;
        }
    }

    /// <summary>Bytes handed to <see cref="SendAsync(ReadOnlyMemory{byte}, CancellationToken)"/> and not yet acknowledged by the peer.</summary>
    public long BufferedAmount => _owner.BufferedAmount(Id);

    /// <summary>Sends wait while <see cref="BufferedAmount"/> is at or above this (1 MiB by default).</summary>
    public long BufferedAmountHighThreshold { get; set; } = 1024 * 1024;

    /// <summary>
    /// As the browser's <c>bufferedAmountLowThreshold</c> (0 by default): <see cref="BufferedAmountLow"/> is raised when
    /// <see cref="BufferedAmount"/> falls from above it to at or below it.
    /// </summary>
    public long BufferedAmountLowThreshold { get; set; }

    /// <summary>As the browser's <c>bufferedamountlow</c> event (see <see cref="BufferedAmountLowThreshold"/>); raised on the connection's thread.</summary>
    public event EventHandler? BufferedAmountLow;

    /// <summary>Completes once <see cref="BufferedAmount"/> is at or below <see cref="BufferedAmountLowThreshold"/> (or the channel closed).</summary>
    public async Task WaitForBufferedAmountLowAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task wait;
            lock (_gate)
            {
                if (BufferedAmount <= BufferedAmountLowThreshold || _state == RtcDataChannelState.Closed) return;
                if (_drained.Task.IsCompleted) _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _drained.Task;
            }

            // Re-check after arming: a drain between the check and the wait must not be missed.
            if (BufferedAmount <= BufferedAmountLowThreshold) return;
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Completes when the channel is open.</summary>
    public Task Opened => _opened.Task;

    /// <summary>Completes when the channel is closed (both directions reset).</summary>
    public Task Closed => _closed.Task;

    /// <summary>Sends <paramref name="text"/> as one text message; see <see cref="SendAsync(string, CancellationToken)"/>.</summary>
    public ValueTask SendAsync(string text) => SendAsync(text, CancellationToken.None);

    /// <summary>Sends <paramref name="text"/> as one UTF-8 text message (PPID 51, or 56 when empty); waits while <see cref="BufferedAmount"/> is at or above <see cref="BufferedAmountHighThreshold"/>. Throws <see cref="ArgumentException"/> when larger than the negotiated max-message-size, <see cref="InvalidOperationException"/> when the channel is not open.</summary>
    public ValueTask SendAsync(string text, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(text);
        return SendAsync(Encoding.UTF8.GetBytes(text), text.Length == 0 ? Ppid.StringEmpty : Ppid.String, cancellationToken);
    }

    /// <summary>Sends <paramref name="data"/> as one binary message; see <see cref="SendAsync(ReadOnlyMemory{byte}, CancellationToken)"/>.</summary>
    public ValueTask SendAsync(ReadOnlyMemory<byte> data) => SendAsync(data, CancellationToken.None);

    /// <summary>Sends <paramref name="data"/> as one binary message (PPID 53, or 57 when empty); waits while <see cref="BufferedAmount"/> is at or above <see cref="BufferedAmountHighThreshold"/>. Throws <see cref="ArgumentException"/> when larger than the negotiated max-message-size, <see cref="InvalidOperationException"/> when the channel is not open.</summary>
    public ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
        SendAsync(data, data.Length == 0 ? Ppid.BinaryEmpty : Ppid.Binary, cancellationToken);

    private async ValueTask SendAsync(ReadOnlyMemory<byte> data, uint ppid, CancellationToken cancellationToken)
    {
        if (data.Length > _owner.MaxMessageSize) throw new ArgumentException($"The message is larger than the negotiated max-message-size ({_owner.MaxMessageSize} bytes).", nameof(data));

        // RFC 8831 §6.6: an empty message is sent as one zero byte with the "empty" PPID.
        if (data.Length == 0) data = new byte[1];
        while (true)
        {
            Task wait;
            lock (_gate)
            {
                if (_state != RtcDataChannelState.Open) throw new InvalidOperationException($"The data channel is {_state.ToString().ToLowerInvariant()}.");
                if (BufferedAmount < BufferedAmountHighThreshold) break;
                if (_drained.Task.IsCompleted) _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _drained.Task;
            }

            // Re-check after arming: a drain between the check and the wait must not be missed.
            if (BufferedAmount < BufferedAmountHighThreshold) break;
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        if (!_owner.SendOnChannel(this, ppid, data)) throw new InvalidOperationException("The connection is closed.");
        if (BufferedAmount > BufferedAmountLowThreshold) Volatile.Write(ref _aboveLow, true);
    }

    /// <summary>Waits for the next message; null once the channel is closed and drained.</summary>
    public async ValueTask<RtcMessage?> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        while (await _inbox.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (TryTake(out var m)) return m;
        }

        return null;
    }

    /// <summary>Every message until the channel closes.</summary>
    public async IAsyncEnumerable<RtcMessage> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await _inbox.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (TryTake(out var m)) yield return m;
        }
    }

    /// <summary>Takes the next message and gives its bytes back to the receive window.</summary>
    private bool TryTake(out RtcMessage message)
    {
        if (!_inbox.Reader.TryRead(out var item))
        {
            message = default;
            return false;
        }

        Interlocked.Decrement(ref _queued);
        _owner.Consumed(item.WireLength);
        message = item.Message;
        return true;
    }

    /// <summary>Closes the channel: resets our outgoing stream; "closed" once the peer resets its own (RFC 8831 §6.7).</summary>
    public void Close()
    {
        lock (_gate)
        {
            if (_state is RtcDataChannelState.Closing or RtcDataChannelState.Closed) return;
            _state = RtcDataChannelState.Closing;
        }

        _owner.ResetOutgoing(this);
    }

    internal void SetOpen()
    {
        lock (_gate)
        {
            if (_state != RtcDataChannelState.Connecting) return;
            _state = RtcDataChannelState.Open;
        }

        _opened.TrySetResult();
    }

    /// <summary>
    /// Queues a received message; true when it is kept (its <paramref name="wireLength"/> bytes stay charged to the
    /// receive window until read), false when dropped (closed, or over the bound of a partially reliable channel).
    /// </summary>
    internal bool Deliver(RtcMessage message, int wireLength)
    {
        var reliable = Init.MaxRetransmits is null && Init.MaxPacketLifeTime is null;
        if (!reliable && Volatile.Read(ref _queued) >= _maxQueuedUnreliable) return false;
        Interlocked.Increment(ref _queued);
        if (_inbox.Writer.TryWrite(new Inbound(message, wireLength))) return true;
        Interlocked.Decrement(ref _queued);
        return false;
    }

    internal void OnBufferedAmountLow()
    {
        var amount = BufferedAmount;
        if (amount <= BufferedAmountLowThreshold && Volatile.Read(ref _aboveLow))
        {
            Volatile.Write(ref _aboveLow, false);
            BufferedAmountLow?.Invoke(this, EventArgs.Empty);
        }

        if (amount >= BufferedAmountHighThreshold && amount > BufferedAmountLowThreshold) return;
        TaskCompletionSource drained;
        lock (_gate) drained = _drained;
        drained.TrySetResult();
    }

    private readonly record struct Inbound(RtcMessage Message, int WireLength);

    /// <summary>The peer reset its outgoing stream; true when we must answer with ours (RFC 8831 §6.7).</summary>
    internal bool OnIncomingReset()
    {
        bool answer;
        lock (_gate)
        {
            _incomingReset = true;
            answer = _state is RtcDataChannelState.Connecting or RtcDataChannelState.Open;
            if (answer) _state = RtcDataChannelState.Closing;
        }

        _inbox.Writer.TryComplete();
        MaybeClosed();
        return answer;
    }

    internal bool OnOutgoingReset()
    {
        lock (_gate) _outgoingReset = true;
        return MaybeClosed();
    }

    private bool MaybeClosed()
    {
        lock (_gate)
        {
            if (!_outgoingReset || !_incomingReset || _state == RtcDataChannelState.Closed) return false;
            _state = RtcDataChannelState.Closed;
        }

        Finish();
        return true;
    }

    /// <summary>The connection went away: closed at once.</summary>
    internal void Abort()
    {
        lock (_gate)
        {
            if (_state == RtcDataChannelState.Closed) return;
            _state = RtcDataChannelState.Closed;
        }

        Finish();
    }

    private void Finish()
    {
        _inbox.Writer.TryComplete();
        _opened.TrySetException(new InvalidOperationException("The data channel closed before it opened."));
        _ = _opened.Task.Exception;
        _closed.TrySetResult();
        TaskCompletionSource drained;
        lock (_gate) drained = _drained;
        drained.TrySetResult();
    }
}
