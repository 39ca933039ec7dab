namespace Peerway.Net;

/// <summary>
/// Decides when the <see cref="VirtualNetwork"/> runs a delivery. The default runs deliveries on a background pump
/// (immediately or after a <see cref="TimeProvider"/> delay); the simulator supplies a discrete-event scheduler so that
/// a run is deterministic and single-threaded.
/// </summary>
public interface IDeliveryScheduler
{
    void Schedule(TimeSpan delay, Action action);
}
