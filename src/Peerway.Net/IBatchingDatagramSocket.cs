namespace Peerway.Net;

/// <summary>
/// An <see cref="IDatagramSocket"/> that also says when it has delivered every datagram that was waiting (the end of a
/// receive batch), so an engine can answer a burst once: uTP defers its ACKs to it, as libtorrent acks at the end of
/// a receive batch.
/// </summary>
public interface IBatchingDatagramSocket : IDatagramSocket
{
    /// <summary>As <see cref="IDatagramSocket.Start"/>; <paramref name="batchEnd"/> runs on the receiving thread after
    /// each batch of deliveries, when nothing more is waiting.</summary>
    void Start(DatagramHandler handler, Action batchEnd);

    /// <summary>
    /// Lets what the calling thread sends until the scope is disposed leave together (see
    /// <see cref="UdpDatagramSocket.BatchSends"/>); dispose it on the same thread, with no await in between. By default
    /// a scope that does nothing.
    /// </summary>
    UdpSendScope BatchSends() => default;

    /// <summary>
    /// Sends at once what the calling thread queued (an I/O thread's batch, or a <see cref="BatchSends"/> scope), so that
    /// what an engine sent under its own lock leaves before another thread, taking the lock next, sends more: a uTP
    /// sender's packets then reach the wire in sequence order. By default nothing is queued, so nothing to do.
    /// </summary>
    void FlushSends()
    {
    }
}

/// <summary>A <see cref="IBatchingDatagramSocket.BatchSends"/> scope: disposing it sends what it queued.</summary>
public readonly struct UdpSendScope : IDisposable, IEquatable<UdpSendScope>
{
    private readonly UdpDatagramSocket? _owner;
    private readonly UdpDatagramSocket.BatchedIo? _queue;

    internal UdpSendScope(UdpDatagramSocket owner, UdpDatagramSocket.BatchedIo queue)
    {
        _owner = owner;
        _queue = queue;
    }

    /// <summary>Ends the scope: the datagrams queued in it leave in one batch. Disposing the default scope does nothing.</summary>
    public void Dispose()
    {
        if (_owner is not null && _queue is not null) _owner.EndSendScope(_queue);
    }

    /// <inheritdoc/>
    public bool Equals(UdpSendScope other) => ReferenceEquals(_queue, other._queue);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is UdpSendScope other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _queue?.GetHashCode() ?? 0;

    /// <summary>True when both scopes are the same batch (or both the default scope).</summary>
    public static bool operator ==(UdpSendScope left, UdpSendScope right) => left.Equals(right);

    /// <summary>True when the scopes are different batches.</summary>
    public static bool operator !=(UdpSendScope left, UdpSendScope right) => !left.Equals(right);
}
