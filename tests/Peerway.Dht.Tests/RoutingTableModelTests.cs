using System.Net;
using FsCheck.Xunit;
using Peerway.Core;
using Peerway.Dht.Tests.Model;

namespace Peerway.Dht.Tests;

/// <summary>
/// The routing table (entries as structs in per-bucket arrays) against <see cref="LegacyRoutingTable"/>, the
/// one-object-per-entry table it replaced, as a model: random sequences of adds, answers, failures, pings, lookups of
/// the closest nodes, refreshes and rebases must give the same outcomes, the same nodes to ping, the same closest
/// lists and the same entries in the same order, field by field.
/// </summary>
public sealed class RoutingTableModelTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Fifteen = TimeSpan.FromMinutes(15);

    private static IPEndPoint Ep(int i) => i % 7 == 0
        ? new IPEndPoint(IPAddress.Parse($"2001:db8::{i:x}"), 6881)
        : new IPEndPoint(new IPAddress([10, 0, (byte)(i >> 8), (byte)i]), 6881 + (i % 3));

    private static NodeId IdAt(NodeId self, int prefix, Random random)
    {
        var id = NodeId.Random(random);
        for (var b = 0; b < prefix; b++) id = id.WithBit(b, self.GetBit(b));
        return id.WithBit(prefix, !self.GetBit(prefix));
    }

    [Property(MaxTest = 300)]
    public void Struct_table_makes_the_same_decisions_as_the_object_table(int seed, bool smallK)
    {
        var random = new Random(seed);
        var k = smallK ? 2 + random.Next(3) : 8;
        var self = NodeId.Random(random);
        var table = new RoutingTable(self, k, Fifteen, T0);
        var model = new LegacyRoutingTable(self, k, Fifteen, T0);
        var ids = new List<NodeId>();
        var now = T0;
        var ping = new List<RoutingEntry>();
        var modelPing = new List<LegacyRoutingEntry>();
        for (var step = 0; step < 600; step++)
        {
            now = now.AddSeconds(random.Next(0, 3) == 0 ? random.Next(0, 1200) : random.Next(0, 3));
            var op = random.Next(100);
            var known = ids.Count > 0 && random.Next(3) != 0;
            var id = known ? ids[random.Next(ids.Count)] : IdAt(self, Math.Min(random.Next(0, 14), random.Next(0, 14)), random);
            if (!known) ids.Add(id);
            ping.Clear();
            modelPing.Clear();
            if (op < 45)
            {
                var endPoint = Ep(random.Next(0, 200));
                bool verified = random.Next(4) != 0, responded = random.Next(3) != 0;
                Assert.Equal(model.Add(id, endPoint, verified, responded, now, modelPing), table.Add(id, endPoint, verified, responded, now, ping));
            }
            else if (op < 60)
            {
                model.OnResponded(id, now, modelPing);
                table.OnResponded(id, now, ping);
            }
            else if (op < 75)
            {
                var evict = random.Next(2) == 0;
                model.OnFailed(id, now, evict);
                table.OnFailed(id, now, evict);
            }
            else if (op < 82)
            {
                // DhtNode.Learn: mark a node as being pinged unless it is already; a ping not sent clears the mark.
                var modelEntry = model.Find(id);
                var marked = table.TryMarkPinging(id, out var entry);
                Assert.Equal(modelEntry is { Pinging: false }, marked);
                if (marked)
                {
                    modelEntry!.Pinging = true;
                    Assert.Equal(modelEntry.Id, entry.Id);
                    Assert.True(entry.Pinging);
                }

                if (random.Next(3) == 0)
                {
                    if (model.Find(id) is { } e) e.Pinging = false;
                    table.ClearPinging(id);
                }
            }
            else if (op < 95)
            {
                var target = random.Next(2) == 0 ? NodeId.Random(random) : IdAt(self, random.Next(0, 14), random);
                var count = random.Next(0, 3 * k);
                System.Net.Sockets.AddressFamily? family = random.Next(3) switch
                {
                    0 => null,
                    1 => System.Net.Sockets.AddressFamily.InterNetwork,
                    _ => System.Net.Sockets.AddressFamily.InterNetworkV6,
                };
                var goodOnly = random.Next(2) == 0;
                var expected = model.Closest(target, count, now, family, goodOnly).Select(e => (e.Id, e.EndPoint)).ToList();
                Assert.Equal(expected, table.Closest(target, count, now, family, goodOnly).Select(e => (e.Id, e.EndPoint)).ToList());
                var locations = new int[Math.Max(count, 0)];
                var n = table.Closest(target, count, now, locations, family, goodOnly);
                Assert.Equal(expected, locations[..n].Select(l => (table.At(l).Id, table.At(l).EndPoint)).ToList());
            }
            else if (op < 98)
            {
                var idle = TimeSpan.FromMinutes(random.Next(1, 20));
                var s = random.Next();
                Assert.Equal(model.IdleBucketTargets(now, idle, new Random(s)), table.IdleBucketTargets(now, idle, new Random(s)));
            }
            else
            {
                var newSelf = random.Next(2) == 0 ? NodeId.Random(random) : IdAt(self, random.Next(0, 6), random);
                model = model.Rebase(newSelf, now);
                table = table.Rebase(newSelf, now);
                self = newSelf;
            }

            Assert.Equal(modelPing.Select(e => (e.Id, e.EndPoint)), ping.Select(e => (e.Id, e.EndPoint)));
            AssertSameEntries(model, table, now);
        }
    }

    private static void AssertSameEntries(LegacyRoutingTable model, RoutingTable table, DateTimeOffset now)
    {
        Assert.Equal(model.Count, table.Count);
        Assert.Equal(model.BucketCount, table.BucketCount);
        Assert.Equal(model.ReplacementCount, table.ReplacementCount);
        var expected = model.Entries.Select(e => (e.Id, e.EndPoint, e.Verified, e.Pinging, e.Failures, e.LastSeen, e.LastResponse, e.LastQuery, e.State(now, Fifteen))).ToList();
        var actual = table.Entries.Select(e => (e.Id, e.EndPoint, e.Verified, e.Pinging, e.Failures, e.LastSeen, e.LastResponse, e.LastQuery, e.State(now, Fifteen))).ToList();
        Assert.Equal(expected, actual);
        foreach (var e in model.Entries)
        {
            Assert.True(table.Contains(e.Id));
            Assert.Equal(e.EndPoint, table.Find(e.Id)!.Value.EndPoint);
        }
    }
}
