using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Peerway.Net.Tests;

/// <summary>Real loopback UDP: the SocketAddress-based receive/send path reports and reaches the right remotes.</summary>
public sealed class UdpDatagramSocketTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Every_sender_is_reported_at_its_own_endpoint_and_replies_reach_it(bool ipv6)
    {
        if (ipv6 && !Socket.OSSupportsIPv6) return;
        var loopback = ipv6 ? IPAddress.IPv6Loopback : IPAddress.Loopback;
        using var server = new UdpDatagramSocket(new IPEndPoint(loopback, 0));
        var seen = new ConcurrentQueue<(byte Tag, IPEndPoint From)>();
        const int Senders = 5, Rounds = 20;
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Start((data, from) =>
        {
            seen.Enqueue((data[0], from));
            server.Send(data, from); // echo back through the cached send address
            if (seen.Count == Senders * Rounds) all.TrySetResult();
        });

        var clients = Enumerable.Range(0, Senders).Select(_ => new UdpDatagramSocket(new IPEndPoint(loopback, 0))).ToList();
        var echoes = new ConcurrentDictionary<int, int>();
        var echoed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            for (var c = 0; c < Senders; c++)
            {
                var index = c;
                clients[c].Start((data, from) =>
                {
                    Assert.Equal(index, data[0]); // an echo never reaches another client
                    if (echoes.AddOrUpdate(index, 1, (_, n) => n + 1) == Rounds && echoes.Values.Sum() == Senders * Rounds) echoed.TrySetResult();
                });
            }

            for (var round = 0; round < Rounds; round++)
            {
                for (var c = 0; c < Senders; c++) clients[c].Send([(byte)c, (byte)round], server.LocalEndPoint);
                // UDP on loopback may still drop under load: pace by waiting for this round to arrive.
                await WaitUntil(() => seen.Count >= (round + 1) * Senders);
            }

            await all.Task.WaitAsync(TimeSpan.FromSeconds(20));
            await echoed.Task.WaitAsync(TimeSpan.FromSeconds(20));
            foreach (var (tag, from) in seen) Assert.Equal(clients[tag].LocalEndPoint, from);
            // The same remote is reported by one IPEndPoint instance (the cache), distinct remotes by distinct ones.
            var byTag = seen.GroupBy(s => s.Tag).ToList();
            Assert.All(byTag, g => Assert.Single(g.Select(s => s.From).Distinct(ReferenceEqualityComparer.Instance)));
            Assert.Equal(Senders, byTag.Select(g => g.First().From).Distinct().Count());
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
    }

    // Polling with a deadline for datagrams crossing the real kernel (an external observable state).
    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("datagrams did not arrive");
            await Task.Yield();
        }
    }
}
