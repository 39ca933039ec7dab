using System.Net;
using FsCheck;
using FsCheck.Fluent;
using Peerway.Core;

namespace Peerway.Simulation.Tests;

public sealed class GroundTruthTests
{
    [FsCheck.Xunit.Property(MaxTest = 200)]
    public Property Closest_matches_a_brute_force_sort(int seed, byte count, byte k)
    {
        var random = new Random(seed);
        var truth = new GroundTruth();
        var ids = new List<NodeId>();
        for (var i = 0; i < count; i++)
        {
            // Some ids share long prefixes so the trie descent is exercised deep down.
            var id = i % 3 == 0 && ids.Count > 0 ? ids[^1].WithBit(150 + random.Next(10), random.Next(2) == 0) : NodeId.Random(random);
            if (truth.Contains(id)) continue;
            truth.Add(id, i);
            ids.Add(id);
        }

        if (ids.Count > 2) truth.Remove(ids[1]);
        var live = ids.Where(truth.Contains).ToList();
        var target = random.Next(2) == 0 || live.Count == 0 ? NodeId.Random(random) : live[0].WithBit(159, !live[0].GetBit(159));
        var want = live.OrderBy(id => id ^ target).Take(k).ToList();
        return Prop.ToProperty(truth.Closest(target, k).SequenceEqual(want));
    }
}
