using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Tests.Swarm;

public sealed class IncomingRequestQueueTests
{
    private static BlockRequest B(int i) => new(i, 0, 16384);

    [Fact]
    public void Keeps_arrival_order_refuses_a_queued_block_and_removes_from_anywhere()
    {
        var q = new IncomingRequestQueue();
        Assert.True(q.Enqueue(B(0)));
        Assert.True(q.Enqueue(B(1)));
        Assert.True(q.Enqueue(B(2)));
        Assert.False(q.Enqueue(B(1)));
        Assert.Equal(3, q.Count);
        Assert.True(q.Remove(B(1)));
        Assert.False(q.Remove(B(1)));
        Assert.True(q.Enqueue(B(1))); // asked again after a cancel: now behind the others
        Assert.Equal(B(0), q.Dequeue());
        Assert.Equal(B(2), q.Peek());
        var rest = new List<BlockRequest>();
        foreach (var r in q) rest.Add(r);
        Assert.Equal([B(2), B(1)], rest);
        q.Clear();
        Assert.Equal(0, q.Count);
        Assert.False(q.Contains(B(2)));
        Assert.Throws<InvalidOperationException>(() => q.Peek());
    }
}
