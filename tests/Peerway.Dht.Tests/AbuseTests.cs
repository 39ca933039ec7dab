using System.Net;
using Peerway.Core;
using Peerway.Net;

namespace Peerway.Dht.Tests;

public sealed class AbuseTests
{
    [Fact]
    public async Task Flood_of_junk_datagrams_and_fake_contacts_keeps_memory_bounded_and_the_node_serving()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var random = new Random(11);
        var attacker = new RawPeer(net);
        // 10^5 junk datagrams from one address: random bytes, truncated or mutated queries.
        var valid = "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"u8.ToArray();
        for (var i = 0; i < 100_000; i++)
        {
            byte[] junk;
            switch (i % 3)
            {
                case 0:
                    junk = new byte[random.Next(0, 200)];
                    random.NextBytes(junk);
                    break;
                case 1:
                    junk = valid[..random.Next(valid.Length)];
                    break;
                default:
                    junk = (byte[])valid.Clone();
                    junk[random.Next(junk.Length)] = (byte)random.Next(256);
                    break;
            }

            attacker.Send(junk, node.LocalEndPoint);
            if (i % 1000 == 0) net.Scheduler.RunUntilIdle();
        }

        net.Scheduler.RunUntilIdle();
        // 10^4 fake contacts: distinct addresses and random ids querying us (each wants into the routing table).
        for (var i = 0; i < 10_000; i++)
        {
            var ep = new IPEndPoint(new IPAddress([10, 100, (byte)(i >> 8), (byte)i]), 1000 + (i % 50_000));
            var m = new KrpcMessage { Type = KrpcMessageType.Query, Method = KrpcMethod.FindNode, Id = NodeId.Random(random), Target = NodeId.Random(random) };
            m.SetTransactionId([1, 2]);
            var buffer = new byte[256];
            var n = KrpcCodec.Encode(m, buffer);
            var sock = net.Network.CreateSocket(ep);
            sock.Start((_, _) => { });
            sock.Send(buffer.AsSpan(0, n), node.LocalEndPoint);
            net.Scheduler.RunUntilIdle();
            sock.Dispose();
        }

        net.Scheduler.RunUntilIdle();
        var stats = node.Stats;
        Assert.True(stats.MalformedDropped > 50_000, $"malformed {stats.MalformedDropped}");
        Assert.True(stats.RateLimitedDropped > 0);
        Assert.InRange(stats.RoutingTableSize, 8, 8 * 40);
        // The node still answers a ping from a fresh address.
        var probe = new RawPeer(net);
        probe.SendQuery(node.LocalEndPoint, KrpcMethod.Ping, 7);
        net.Scheduler.RunUntilIdle();
        var reply = Assert.Single(probe.Replies());
        Assert.Equal(node.Id, reply.Id);
        Assert.InRange(node.RateLimitedIps, 1, RateLimiter.DefaultMaxTracked);
        // Pending queries (pings before eviction to fake contacts) are bounded and drain with time.
        Assert.InRange(node.PendingQueryCount, 0, DhtNode.MaxPendingQueries);
        net.Scheduler.RunUntil(() => node.PendingQueryCount == 0, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
        Assert.Equal(0, node.PendingQueryCount);
    }

    [Fact]
    public async Task Million_random_datagrams_against_a_live_node_then_it_still_serves_lookups()
    {
        await using var net = new DhtTestNetwork();
        var node = net.AddNode();
        var friend = net.AddNode();
        net.Await(friend.PingAsync(node.LocalEndPoint, CancellationToken.None));
        var random = new Random(12);
        var fuzzer = new RawPeer(net);
        var templates = KrpcCodecTests.Bep5Texts.Select(System.Text.Encoding.ASCII.GetBytes).ToArray();
        var buffer = new byte[300];
        for (var i = 0; i < 1_000_000; i++)
        {
            int length;
            if (i % 2 == 0)
            {
                length = random.Next(0, buffer.Length);
                random.NextBytes(buffer.AsSpan(0, length));
                if (length > 0 && i % 4 == 0) buffer[0] = (byte)'d';
            }
            else
            {
                var t = templates[random.Next(templates.Length)];
                length = t.Length;
                t.CopyTo(buffer, 0);
                for (var j = random.Next(1, 4); j > 0; j--) buffer[random.Next(length)] = (byte)random.Next(256);
            }

            fuzzer.Send(buffer.AsSpan(0, length), node.LocalEndPoint);
            if (i % 4096 == 0)
            {
                net.Scheduler.RunUntilIdle();
                fuzzer.Received.Clear();
            }
        }

        net.Scheduler.RunUntilIdle();
        Assert.True(node.Stats.MalformedDropped > 400_000);
        Assert.True(node.Stats.BytesReceived > 0);
        var result = net.Await(friend.FindNodeAsync(node.Id, CancellationToken.None));
        Assert.Equal(node.Id, result.Closest[0].Id);
        Assert.Equal(node.Id, net.Await(friend.PingAsync(node.LocalEndPoint, CancellationToken.None)));
    }
}
