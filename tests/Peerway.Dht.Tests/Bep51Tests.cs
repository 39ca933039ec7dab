using Peerway.Core;

namespace Peerway.Dht.Tests;

/// <summary>BEP 51 (DHT infohash indexing): sample_infohashes answered and asked.</summary>
public sealed class Bep51Tests
{
    [Fact]
    public async Task A_node_answers_with_a_random_sample_of_what_it_stores_the_count_and_the_interval()
    {
        await using var net = new DhtTestNetwork();
        var nodes = Enumerable.Range(0, 10).Select(_ => net.AddNode()).ToList();
        foreach (var n in nodes.Skip(1)) net.Await(n.BootstrapAsync([nodes[0].LocalEndPoint], CancellationToken.None));
        var storing = nodes[0];

        // Nothing stored yet: an empty sample, num 0.
        var empty = net.Await(nodes[1].SampleInfohashesAsync(storing.LocalEndPoint, NodeId.Random(new Random(1)), CancellationToken.None));
        Assert.NotNull(empty);
        Assert.Empty(empty.Samples);
        Assert.Equal(0, empty.Num);

        // 30 info-hashes announced straight to the storing node (by a peer that got a token from it).
        var peer = new RawPeer(net);
        var random = new Random(2);
        var announced = Enumerable.Range(0, 30).Select(_ => NodeId.Random(random)).ToHashSet();
        ushort tid = 100;
        foreach (var infoHash in announced)
        {
            peer.Received.Clear();
            peer.SendQuery(storing.LocalEndPoint, KrpcMethod.GetPeers, tid++, infoHash);
            net.Scheduler.RunUntilIdle();
            var token = peer.Replies().Single().Token.ToArray();
            peer.SendQuery(storing.LocalEndPoint, KrpcMethod.AnnouncePeer, tid++, infoHash, token, port: 6881);
            net.Scheduler.RunUntilIdle();
        }

        var first = net.Await(nodes[2].SampleInfohashesAsync(storing.LocalEndPoint, nodes[5].Id, CancellationToken.None));
        Assert.NotNull(first);
        Assert.Equal(storing.Id, first.Responder);
        Assert.Equal(30, first.Num);
        Assert.Equal(TimeSpan.FromHours(6), first.Interval);
        Assert.Equal(20, first.Samples.Count);
        Assert.Equal(20, first.Samples.Distinct().Count());
        Assert.All(first.Samples, s => Assert.Contains(s, announced));
        Assert.Contains(first.Nodes, n => n.Id == nodes[5].Id); // the closest nodes to the target come back too

        // Samples are random: asking a few times shows more than one sample's worth of the 30.
        var seen = first.Samples.ToHashSet();
        for (var i = 0; i < 5; i++)
        {
            seen.UnionWith(net.Await(nodes[3].SampleInfohashesAsync(storing.LocalEndPoint, NodeId.Random(random), CancellationToken.None))!.Samples);
        }

        Assert.True(seen.Count > 20, $"only {seen.Count} distinct info-hashes in 6 samples");
    }

    [Fact]
    public async Task Asking_a_node_that_does_not_answer_gives_null()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var silent = new RawPeer(net);
        var sample = node.SampleInfohashesAsync(silent.EndPoint, NodeId.Random(new Random(3)), CancellationToken.None);
        net.Scheduler.RunUntil(() => sample.IsCompleted, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
        Assert.Null(await sample);
    }
}
