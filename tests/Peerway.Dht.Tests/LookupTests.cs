using System.Net;
using Peerway.Core;

namespace Peerway.Dht.Tests;

public sealed class LookupTests
{
    private static readonly NodeId Target = NodeId.Zero;

    /// <summary>An id at XOR distance <paramref name="distance"/> (small = close) from the zero target.</summary>
    private static NodeId At(int distance)
    {
        var bytes = new byte[NodeId.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(16), distance);
        return new NodeId(bytes);
    }

    private static NodeContact Contact(int distance) =>
        new(At(distance), new IPEndPoint(new IPAddress([(byte)(distance >> 24), (byte)(distance >> 16), (byte)(distance >> 8), (byte)distance]), 6881));

    private static Lookup Start(int k, int alpha, IEnumerable<int> seeds, int paths = 1)
    {
        var lookup = new Lookup(Target, LookupKind.FindNode, k, alpha, paths, DateTimeOffset.UnixEpoch);
        lookup.Seed(seeds.Select(d => ((NodeId?)At(d), Contact(d).EndPoint)));
        return lookup;
    }

    [Fact]
    public void Alpha_queries_in_flight_closest_first()
    {
        var lookup = Start(k: 8, alpha: 3, seeds: [50, 10, 40, 20, 30]);
        var first = lookup.NextQueries();
        Assert.Equal([At(10), At(20), At(30)], first.Select(c => c.Id!.Value));
        Assert.Empty(lookup.NextQueries()); // α = 3 already in flight
        Lookup.OnFailure(first[0]);
        Assert.Equal([At(40)], lookup.NextQueries().Select(c => c.Id!.Value));
    }

    [Fact]
    public void Lookup_ends_when_the_k_closest_seen_have_all_answered()
    {
        var lookup = Start(k: 2, alpha: 2, seeds: [100, 200, 300]);
        var q = lookup.NextQueries();
        Assert.Equal(2, q.Count);
        // 100 answers with a closer node (5): the two closest are now 5 and 100; 5 must be asked.
        lookup.OnResponse(q[0], q[0].Id!.Value, [Contact(5)], null, default);
        var next = lookup.NextQueries();
        Assert.Equal([At(5)], next.Select(c => c.Id!.Value));
        Assert.False(lookup.IsDone);
        lookup.OnResponse(next[0], next[0].Id!.Value, [], null, default);
        // 5 and 100 answered: done even though 200 is still in flight and 300 was never asked (Kademlia §2.3).
        Assert.Empty(lookup.NextQueries());
        Assert.True(lookup.IsDone);
        Assert.Equal([At(5), At(100)], lookup.ClosestAnswered().Select(c => c.Id!.Value));
        // Rounds = deepest response that improved the k closest: 100 (depth 1) brought in 5; 5's answer added nothing.
        Assert.Equal(1, lookup.Rounds);
    }

    [Fact]
    public void Rounds_count_the_hops_that_improved_the_closest_set()
    {
        var lookup = Start(k: 2, alpha: 1, seeds: [1000]);
        var hop = 1000;
        for (var depth = 1; depth <= 4; depth++)
        {
            var c = Assert.Single(lookup.NextQueries());
            Assert.Equal(depth, c.Depth);
            hop /= 10;
            lookup.OnResponse(c, c.Id!.Value, depth < 4 ? [Contact(hop)] : [], null, default);
        }

        Assert.True(lookup.IsDone || lookup.NextQueries().Count == 0);
        Assert.Equal(3, lookup.Rounds); // hops 1..3 each found a closer node; the 4th answered with nothing new
    }

    [Fact]
    public void A_reply_from_another_id_than_the_contact_claimed_fails_that_candidate()
    {
        var lookup = Start(k: 8, alpha: 1, seeds: [10]);
        var c = Assert.Single(lookup.NextQueries());
        lookup.OnResponse(c, At(999), [Contact(1)], null, default); // a liar's fake "closer" id answered by someone else
        Assert.Equal(CandidateState.Failed, c.State);
        Assert.Empty(lookup.ClosestAnswered());
        Assert.Empty(lookup.NextQueries()); // its nodes were not taken either
        Assert.True(lookup.IsDone);
    }

    [Fact]
    public void A_failed_node_lets_the_next_closest_into_the_k_closest()
    {
        var lookup = Start(k: 2, alpha: 1, seeds: [10, 20, 30]);
        var a = Assert.Single(lookup.NextQueries());
        Lookup.OnFailure(a);
        var b = Assert.Single(lookup.NextQueries());
        Assert.Equal(At(20), b.Id);
        lookup.OnResponse(b, b.Id!.Value, [], null, default);
        var c = Assert.Single(lookup.NextQueries());
        Assert.Equal(At(30), c.Id);
        lookup.OnResponse(c, c.Id!.Value, [], null, default);
        Assert.Empty(lookup.NextQueries());
        Assert.True(lookup.IsDone);
    }

    [Fact]
    public void Get_peers_values_are_deduplicated_and_tokens_kept()
    {
        var lookup = new Lookup(Target, LookupKind.GetPeers, 8, 3, 1, DateTimeOffset.UnixEpoch);
        lookup.Seed([(At(1), Contact(1).EndPoint), (At(2), Contact(2).EndPoint)]);
        var q = lookup.NextQueries();
        var peer = new IPEndPoint(IPAddress.Parse("192.0.2.1"), 6881);
        lookup.OnResponse(q[0], q[0].Id!.Value, [], [peer], [1, 2]);
        lookup.OnResponse(q[1], q[1].Id!.Value, [], [peer, new IPEndPoint(IPAddress.Parse("192.0.2.2"), 6881)], [3]);
        Assert.Equal(2, lookup.Peers.Count);
        Assert.Equal(2, lookup.ClosestAnswered(withToken: true).Count);
        Assert.Equal(new byte[] { 1, 2 }, lookup.ClosestAnswered()[0].Token);
    }

    [Fact]
    public void Disjoint_paths_never_query_a_node_twice()
    {
        var lookup = Start(k: 4, alpha: 2, seeds: Enumerable.Range(1, 8).Select(i => i * 10), paths: 2);
        var all = new List<Candidate>();
        var first = lookup.NextQueries();
        Assert.Equal(4, first.Count); // α per path
        all.AddRange(first);
        // Every response tells about the same nodes: each may be queried by only one path.
        while (!lookup.IsDone)
        {
            var inFlight = all.Where(c => c.State == CandidateState.InFlight).ToList();
            foreach (var c in inFlight) lookup.OnResponse(c, c.Id!.Value, [Contact(1), Contact(2), Contact(3)], null, default);
            all.AddRange(lookup.NextQueries());
            Assert.True(all.Count < 100);
        }

        Assert.Equal(all.Count, all.Select(c => c.EndPoint).Distinct().Count());
        Assert.Contains(all, c => c.Id == At(1));
    }

    [Fact]
    public void Query_budget_bounds_a_lookup_fed_endless_closer_nodes()
    {
        var lookup = Start(k: 8, alpha: 3, seeds: [int.MaxValue - 1]);
        var next = int.MaxValue - 2;
        var sent = 0;
        while (!lookup.IsDone)
        {
            var q = lookup.NextQueries();
            sent += q.Count;
            // An adversary always answers with 3 ever-closer fresh nodes.
            foreach (var c in q) lookup.OnResponse(c, c.Id!.Value, [Contact(next--), Contact(next--), Contact(next--)], null, default);
            Assert.True(sent <= Lookup.MaxQueries + 8);
        }

        Assert.True(lookup.IsDone);
    }
}
