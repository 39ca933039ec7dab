namespace Peerway.Net;

public sealed partial class VirtualStreamNetwork
{
    private List<object> _wakeups = [];
    private List<object>? _spareWakeups;

    /// <summary>Completes <paramref name="waiter"/> once the gate is released (see <see cref="FlushWakeups"/>), so that
    /// the continuations it runs inline never run under the gate. Caller holds the gate.</summary>
    internal void Wake(TaskCompletionSource? waiter)
    {
        if (waiter is not null) _wakeups.Add(waiter);
    }

    /// <summary>Runs <paramref name="action"/> once the gate is released. Caller holds the gate.</summary>
    internal void Wake(Action action) => _wakeups.Add(action);

    /// <summary>Completes the waiters woken under the gate. Call after releasing it.</summary>
    internal void FlushWakeups()
    {
        List<object> batch;
        lock (Gate)
        {
            if (_wakeups.Count == 0) return;
            batch = _wakeups;
            _wakeups = _spareWakeups ?? [];
            _spareWakeups = null;
        }

        foreach (var w in batch)
        {
            if (w is TaskCompletionSource t) t.TrySetResult();
            else ((Action)w)();
        }

        batch.Clear();
        lock (Gate) _spareWakeups ??= batch;
    }
}

/// <summary>
/// Items that become due at known, non-decreasing virtual times, with at most one scheduler event outstanding (for the
/// head): the event hands over every item due by then and schedules the next head. So a connection costs no event
/// while idle and one event per distinct due time while busy.
/// </summary>
internal sealed class TimedQueue<T>
{
    private readonly Queue<(long Due, T Item)> _items = new();
    private readonly VirtualStreamNetwork _network;
    private readonly Action<long, T> _onDue;
    private readonly Action _run;
    private bool _scheduled;

    /// <param name="network">The network whose gate and scheduler the queue uses.</param>
    /// <param name="onDue">Called under the gate with the item's due time and the item.</param>
    public TimedQueue(VirtualStreamNetwork network, Action<long, T> onDue)
    {
        _network = network;
        _onDue = onDue;
        _run = Run;
    }

    public int Count => _items.Count;

    /// <summary>Adds an item due at <paramref name="dueTicks"/> (not before the last one's). Caller holds the gate.</summary>
    public void Enqueue(long dueTicks, T item)
    {
        _items.Enqueue((dueTicks, item));
        if (_scheduled) return;
        _scheduled = true;
        _network.ScheduleAt(dueTicks, _run);
    }

    /// <summary>Forgets every item; an outstanding event then finds nothing. Caller holds the gate.</summary>
    public void Clear() => _items.Clear();

    private void Run()
    {
        lock (_network.Gate)
        {
            _network.CountEvent();
            _scheduled = false;
            var now = _network.NowTicks;
            while (_items.TryPeek(out var head) && head.Due <= now)
            {
                _items.Dequeue();
                _onDue(head.Due, head.Item);
            }

            if (_items.TryPeek(out var next))
            {
                _scheduled = true;
                _network.ScheduleAt(next.Due, _run);
            }
        }

        _network.FlushWakeups();
    }
}
