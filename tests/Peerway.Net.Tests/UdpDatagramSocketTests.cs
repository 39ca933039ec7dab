using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Peerway.Net.Tests;

/// <summary>Real loopback UDP: the SocketAddress-based receive/send path reports and reaches the right remotes.</summary>
public sealed class UdpDatagramSocketTests
{
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public async Task Every_sender_is_reported_at_its_own_endpoint_and_replies_reach_it(bool ipv6, bool dedicatedThread)
    {
        if (ipv6 && !Socket.OSSupportsIPv6) return;
        var loopback = ipv6 ? IPAddress.IPv6Loopback : IPAddress.Loopback;
        // On a dedicated thread (batched on Linux) the echo joins the batch and leaves by sendmmsg.
        using var server = new UdpDatagramSocket(new IPEndPoint(loopback, 0), reusePort: false, dedicatedThread);
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
                await RealSocketWait.UntilAsync(() => seen.Count >= (round + 1) * Senders);
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

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_handler_may_dispose_its_own_socket(bool dedicatedThread)
    {
        var server = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0), reusePort: false, dedicatedThread);
        var disposed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handled = 0;
        server.Start((_, _) =>
        {
            Interlocked.Increment(ref handled);
            server.Dispose(); // returns without waiting for the receive loop that is running this handler
            disposed.TrySetResult();
        });

        using var client = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0));
        client.Send([1], server.LocalEndPoint);
        await disposed.Task.WaitAsync(TimeSpan.FromSeconds(20));
        server.Dispose(); // idempotent
        client.Send([2], server.LocalEndPoint);
        server.Send([3], client.LocalEndPoint); // after dispose: counted, not thrown
        Assert.Equal(1, Volatile.Read(ref handled));
        Assert.True(server.SendErrors >= 1);
    }

    [Fact]
    public void Batched_io_is_available_on_64_bit_linux()
    {
        // Otherwise dedicated threads silently fall back to one receive call per datagram.
        if (OperatingSystem.IsLinux() && Environment.Is64BitProcess) Assert.True(LinuxUdp.IsSupported, "libc recvmmsg/sendmmsg/poll did not resolve");
    }

    [Fact]
    public async Task The_dedicated_receive_thread_allocates_nothing_per_datagram()
    {
        if (!LinuxUdp.IsSupported) return; // the portable fallback is not held to this budget
        using var server = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0), reusePort: false, dedicatedThread: true);
        var window = new AllocationWindow(warmup: 20, measured: 200);
        server.Start((data, from) =>
        {
            // Measured on the receive thread itself: everything between two datagrams (recvmmsg, address lookup,
            // the handler, the batched reply) runs here.
            window.OnHandled();
            server.Send(data, from);
        });

        using var client = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0));
        long echoes = 0;
        client.Start((_, _) => Interlocked.Increment(ref echoes));
        for (var i = 0; i < window.Total; i++)
        {
            client.Send([(byte)i], server.LocalEndPoint);
            await RealSocketWait.UntilAsync(() => Interlocked.Read(ref echoes) > i);
        }

        Assert.Equal(0, await window.AllocatedAsync());
    }

    [Fact]
    public async Task A_throwing_handler_is_counted_and_the_dedicated_thread_keeps_receiving()
    {
        using var server = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0), reusePort: false, dedicatedThread: true);
        var second = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Start((data, _) =>
        {
            if (data[0] == 1) throw new InvalidOperationException("engine bug");
            second.TrySetResult();
        });

        using var client = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0));
        client.Send([1], server.LocalEndPoint);
        await RealSocketWait.UntilAsync(() => server.HandlerFaults == 1);
        client.Send([2], server.LocalEndPoint);
        await second.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(1, server.HandlerFaults);
    }
}
