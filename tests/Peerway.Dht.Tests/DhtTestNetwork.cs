using Microsoft.Extensions.Time.Testing;
using Peerway.Net;
using Peerway.TestSupport;

namespace Peerway.Dht.Tests;

/// <summary>A virtual network of DhtNodes on one <see cref="DeterministicScheduler"/>.</summary>
internal sealed class DhtTestNetwork : IAsyncDisposable
{
    private readonly List<DhtNode> _nodes = [];

    public DhtTestNetwork(DateTimeOffset? start = null)
    {
        Time = new FakeTimeProvider(start ?? new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        Scheduler = new DeterministicScheduler(Time);
        Network = new VirtualNetwork(Scheduler);
    }

    public FakeTimeProvider Time { get; }

    public DeterministicScheduler Scheduler { get; }

    public VirtualNetwork Network { get; }

    public IReadOnlyList<DhtNode> Nodes => _nodes;

    public DhtNode AddNode(DhtOptions? options = null, System.Net.IPEndPoint? endPoint = null)
    {
        var node = new DhtNode(Network.CreateSocket(endPoint), Time, options ?? new DhtOptions { RandomSeed = _nodes.Count + 1 });
        node.Start();
        _nodes.Add(node);
        return node;
    }

    public T Await<T>(Task<T> task) => Scheduler.Await(task);

    public async ValueTask DisposeAsync()
    {
        foreach (var n in _nodes) await n.DisposeAsync();
    }
}
