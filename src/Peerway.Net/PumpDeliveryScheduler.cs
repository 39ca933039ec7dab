using System.Threading.Channels;

namespace Peerway.Net;

/// <summary>
/// Runs deliveries one at a time on a background task, in order; delayed ones are queued when their
/// <see cref="TimeProvider"/> timer fires. One pump serialises the whole virtual network, so handlers never race.
/// </summary>
public sealed class PumpDeliveryScheduler : IDeliveryScheduler, IDisposable
{
    private readonly TimeProvider _time;
    private readonly Channel<Action> _queue = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _pump;
    private long _faults;

    /// <summary>Starts the pump on the thread pool; <paramref name="time"/> times the delayed deliveries. Throws <see cref="ArgumentNullException"/> when it is null.</summary>
    public PumpDeliveryScheduler(TimeProvider time)
    {
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _pump = Task.Run(PumpAsync);
    }

    /// <summary>Deliveries whose handler threw (a bug in the receiving engine); counted, not swallowed silently.</summary>
    public long Faults => Interlocked.Read(ref _faults);

    /// <summary>The exception of the last delivery whose handler threw; null while none has.</summary>
    public Exception? LastFault { get; private set; }

    /// <inheritdoc/>
    public void Schedule(TimeSpan delay, Action action)
    {
        if (delay <= TimeSpan.Zero)
        {
            _queue.Writer.TryWrite(action);
            return;
        }

        ITimer? timer = null;
        timer = _time.CreateTimer(
            _ =>
            {
                _queue.Writer.TryWrite(action);
                timer?.Dispose();
            },
            null,
            delay,
            Timeout.InfiniteTimeSpan);
    }

    private async Task PumpAsync()
    {
        await foreach (var action in _queue.Reader.ReadAllAsync())
        {
            try
            {
                action();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Interlocked.Increment(ref _faults);
                LastFault = ex;
            }
        }
    }

    /// <summary>Completes the queue: deliveries already queued still run, ones scheduled later are dropped; waits at most 5 s for the pump to finish.</summary>
    public void Dispose()
    {
        _queue.Writer.TryComplete();
#pragma warning disable VSTHRD002 // Dispose is synchronous by contract; the pump runs on the thread pool, bounded wait
        _pump.Wait(TimeSpan.FromSeconds(5));
#pragma warning restore VSTHRD002
    }
}
