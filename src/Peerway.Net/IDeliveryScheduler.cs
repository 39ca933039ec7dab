namespace Peerway.Net;

/// <summary>
/// Decides when the <see cref="VirtualNetwork"/> runs a delivery. The default runs deliveries on a background pump
/// (immediately or after a <see cref="TimeProvider"/> delay); the simulator supplies a discrete-event scheduler so that
/// a run is deterministic and single-threaded.
/// </summary>
public interface IDeliveryScheduler
{
    /// <summary>Runs <paramref name="action"/> once, after <paramref name="delay"/> (at once when zero or negative). May be called from any thread and from inside a running action.</summary>
    void Schedule(TimeSpan delay, Action action);
}
