namespace Peerway.Torrent.Swarm;

/// <summary>
/// A peer's requests waiting to be served, in the order it made them (so the blocks it asked for first go out first),
/// with constant-time lookup and removal: a streaming client cancels and re-requests blocks all the time, and a cancel
/// must neither cost a pass over the queue nor leave the cancelled block in front of the ones still wanted.
/// A block is queued at most once. Guarded by the session lock.
/// </summary>
internal sealed class IncomingRequestQueue
{
    private readonly LinkedList<BlockRequest> _order = new();
    private readonly Dictionary<BlockRequest, LinkedListNode<BlockRequest>> _index = [];

    public int Count => _index.Count;

    public bool Contains(BlockRequest request) => _index.ContainsKey(request);

    /// <summary>Appends <paramref name="request"/>; false (and nothing changes) when that block is already queued.</summary>
    public bool Enqueue(BlockRequest request)
    {
        if (_index.ContainsKey(request)) return false;
        _index.Add(request, _order.AddLast(request));
        return true;
    }

    /// <summary>Removes a queued request wherever it is; false when it is not queued (already served, or never asked).</summary>
    public bool Remove(BlockRequest request)
    {
        if (!_index.Remove(request, out var node)) return false;
        _order.Remove(node);
        return true;
    }

    public BlockRequest Peek() => _order.First?.Value ?? throw new InvalidOperationException("the queue is empty");

    public BlockRequest Dequeue()
    {
        var request = Peek();
        Remove(request);
        return request;
    }

    public void Clear()
    {
        _order.Clear();
        _index.Clear();
    }

    public LinkedList<BlockRequest>.Enumerator GetEnumerator() => _order.GetEnumerator();
}
