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
}
