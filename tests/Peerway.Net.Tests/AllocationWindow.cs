namespace Peerway.Net.Tests;

/// <summary>
/// Counts datagrams on the thread that handles them and measures that thread's allocations from the end of a warm-up to
/// the last measured datagram: call <see cref="OnHandled"/> first thing in the socket's handler.
/// </summary>
internal sealed class AllocationWindow(int warmup, int measured)
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _handled;
    private long _before;
    private long _after;

    /// <summary>Datagrams the handler must see: warm-up plus measured.</summary>
    public int Total => warmup + measured;

    public long Handled => Volatile.Read(ref _handled);

    public void OnHandled()
    {
        var n = Interlocked.Increment(ref _handled);
        if (n == warmup) _before = GC.GetAllocatedBytesForCurrentThread();
        if (n != Total) return;
        _after = GC.GetAllocatedBytesForCurrentThread();
        _done.TrySetResult();
    }

    /// <summary>Bytes the handling thread allocated over the measured datagrams, once they have all been handled.</summary>
    public async Task<long> AllocatedAsync()
    {
        await _done.Task.WaitAsync(TimeSpan.FromSeconds(20));
        return _after - _before;
    }
}
