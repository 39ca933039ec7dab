using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Peerway.Net.Tests;

/// <summary>Real loopback UDP through sockets that share one receive thread (epoll + recvmmsg on Linux).</summary>
public sealed class UdpReceiveGroupTests
{
    private static readonly IPEndPoint AnyLoopback = new(IPAddress.Loopback, 0);

    [Fact]
    public void The_shared_thread_is_available_on_64_bit_linux()
    {
        using var group = new UdpReceiveGroup();
        if (OperatingSystem.IsLinux() && Environment.Is64BitProcess) Assert.True(group.IsSupported, "epoll/eventfd did not resolve");
    }

    [Fact]
    public async Task Several_sockets_echo_on_one_thread_and_replies_reach_every_sender()
    {
        using var group = new UdpReceiveGroup();
        const int Servers = 4, Rounds = 25;
        var servers = new UdpDatagramSocket[Servers];
        var clients = new UdpDatagramSocket[Servers];
        var threads = new ConcurrentDictionary<int, bool>();
        var echoes = new long[Servers];
        try
        {
            for (var s = 0; s < Servers; s++)
            {
                var server = servers[s] = new UdpDatagramSocket(AnyLoopback, group);
                server.Start((data, from) =>
                {
                    threads[Environment.CurrentManagedThreadId] = true;
                    server.Send(data, from);
                });
                var index = s;
                clients[s] = new UdpDatagramSocket(AnyLoopback);
                clients[s].Start((data, _) =>
                {
                    // The echo names the server it went through: it must come back from that one.
                    if (data.Length == 2 && data[0] == index) Interlocked.Increment(ref echoes[index]);
                });
            }

            if (group.IsSupported)
            {
                Assert.Equal(Servers, group.Count);
                Assert.All(servers, s => Assert.True(s.InGroup));
            }

            for (var r = 0; r < Rounds; r++)
            {
                for (var s = 0; s < Servers; s++) clients[s].Send([(byte)s, (byte)r], servers[s].LocalEndPoint);
                var round = r;
                await RealSocketWait.UntilAsync(() => Enumerable.Range(0, Servers).All(i => Interlocked.Read(ref echoes[i]) > round));
            }

            Assert.All(echoes, e => Assert.Equal(Rounds, e));
            if (group.IsSupported) Assert.Single(threads);
        }
        finally
        {
            foreach (var s in servers) s?.Dispose();
            foreach (var c in clients) c?.Dispose();
        }
    }

    [Fact]
    public async Task A_handler_may_dispose_its_own_socket_and_the_others_keep_receiving()
    {
        using var group = new UdpReceiveGroup();
        var first = new UdpDatagramSocket(AnyLoopback, group);
        using var second = new UdpDatagramSocket(AnyLoopback, group);
        var handled = 0;
        var disposed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        first.Start((_, _) =>
        {
            Interlocked.Increment(ref handled);
            first.Dispose(); // on the group thread, inside this socket's own batch
            disposed.TrySetResult();
        });
        var secondGot = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        second.Start((_, _) => secondGot.TrySetResult());

        using var client = new UdpDatagramSocket(AnyLoopback);
        var port = first.LocalEndPoint;
        for (var i = 0; i < 5; i++) client.Send([1], port); // several in one batch: only the first is delivered
        await disposed.Task.WaitAsync(TimeSpan.FromSeconds(20));
        first.Dispose(); // idempotent
        first.Send([3], client.LocalEndPoint); // after dispose: counted, not thrown
        Assert.True(first.SendErrors >= 1);

        client.Send([2], second.LocalEndPoint);
        await secondGot.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(1, Volatile.Read(ref handled));
        if (group.IsSupported) Assert.Equal(1, group.Count);

        // The group thread closed the socket: its port can be bound again.
        await RealSocketWait.UntilAsync(() => RealSocketWait.CanBind(port));
    }

    [Fact]
    public async Task Disposing_from_another_thread_while_datagrams_arrive_stops_delivery_and_closes_the_port()
    {
        using var group = new UdpReceiveGroup();
        var busy = new UdpDatagramSocket(AnyLoopback, group);
        using var other = new UdpDatagramSocket(AnyLoopback, group);
        long received = 0;
        busy.Start((_, _) => Interlocked.Increment(ref received));
        long otherReceived = 0;
        other.Start((_, _) => Interlocked.Increment(ref otherReceived));

        using var client = new UdpDatagramSocket(AnyLoopback);
        using var stopFlood = new CancellationTokenSource();
        var target = busy.LocalEndPoint;
        var flood = Task.Run(() =>
        {
            while (!stopFlood.IsCancellationRequested) client.Send([7], target);
        });
        try
        {
            await RealSocketWait.UntilAsync(() => Interlocked.Read(ref received) > 100);
            busy.Dispose(); // from a test thread while the group thread is draining it
            if (group.IsSupported) Assert.Equal(1, group.Count);
        }
        finally
        {
            await stopFlood.CancelAsync();
            await flood;
        }

        await RealSocketWait.UntilAsync(() => RealSocketWait.CanBind(target));
        client.Send([8], other.LocalEndPoint);
        await RealSocketWait.UntilAsync(() => Interlocked.Read(ref otherReceived) == 1);
    }

    [Fact]
    public async Task The_shared_thread_allocates_nothing_per_datagram()
    {
        using var group = new UdpReceiveGroup();
        if (!group.IsSupported) return; // the portable fallback is not held to this budget
        using var server = new UdpDatagramSocket(AnyLoopback, group);
        var window = new AllocationWindow(warmup: 20, measured: 200);

        // Measured on the group thread itself: epoll_wait, recvmmsg, address lookup and the handler run here.
        server.Start((_, _) => window.OnHandled());

        using var client = new UdpDatagramSocket(AnyLoopback);
        for (var i = 0; i < window.Total; i++)
        {
            client.Send([(byte)i], server.LocalEndPoint);
            var sent = i;
            await RealSocketWait.UntilAsync(() => window.Handled > sent);
        }

        Assert.Equal(0, await window.AllocatedAsync());
    }

    [Fact]
    public async Task A_throwing_handler_is_counted_and_the_shared_thread_keeps_receiving()
    {
        using var group = new UdpReceiveGroup();
        using var server = new UdpDatagramSocket(AnyLoopback, group);
        var second = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Start((data, _) =>
        {
            if (data[0] == 1) throw new InvalidOperationException("engine bug");
            second.TrySetResult();
        });
        using var client = new UdpDatagramSocket(AnyLoopback);
        client.Send([1], server.LocalEndPoint);
        client.Send([2], server.LocalEndPoint);
        await second.Task.WaitAsync(TimeSpan.FromSeconds(20));
        if (group.IsSupported) Assert.Equal(1, server.HandlerFaults);
    }

    [Fact]
    public async Task Disposing_the_group_closes_its_sockets_and_later_sockets_receive_on_their_own()
    {
        var group = new UdpReceiveGroup();
        var member = new UdpDatagramSocket(AnyLoopback, group);
        member.Start((_, _) => { });
        var port = member.LocalEndPoint;
        group.Dispose();
        await RealSocketWait.UntilAsync(() => RealSocketWait.CanBind(port));
        member.Dispose(); // after the group closed it: no error

        using var late = new UdpDatagramSocket(AnyLoopback, group);
        var got = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        late.Start((_, _) => got.TrySetResult());
        Assert.False(late.InGroup);
        using var client = new UdpDatagramSocket(AnyLoopback);
        client.Send([1], late.LocalEndPoint);
        await got.Task.WaitAsync(TimeSpan.FromSeconds(20));
    }
}
