using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Peerway.Net.Tests;

/// <summary>
/// What handlers send from an I/O thread (a group thread or a dedicated receive thread) is queued and leaves after
/// the batch in one sendmmsg per socket, on whichever socket it was sent: real loopback UDP.
/// </summary>
public sealed class UdpSendBatchTests
{
    private static readonly IPEndPoint AnyLoopback = new(IPAddress.Loopback, 0);

    public enum Sender
    {
        GroupThread,
        DedicatedThread,
    }

    [Theory]
    [InlineData(Sender.GroupThread)]
    [InlineData(Sender.DedicatedThread)]
    public async Task Every_datagram_a_handler_sends_on_any_socket_arrives_in_order(Sender sender)
    {
        using var group = new UdpReceiveGroup();
        using var sink = new Sink();
        using var member = new UdpDatagramSocket(AnyLoopback, group);
        using var dedicated = new UdpDatagramSocket(AnyLoopback, reusePort: false, dedicatedThread: true);
        using var plain = new UdpDatagramSocket(AnyLoopback);
        UdpDatagramSocket[] via = [member, dedicated, plain];

        // More than the send queue holds, so the queue also fills and flushes inside the handler.
        const int Count = UdpDatagramSocket.SendQueueSize + 7;
        var trigger = sender == Sender.GroupThread ? member : dedicated;
        void Burst()
        {
            for (var i = 0; i < Count; i++) via[i % via.Length].Send([(byte)(i % via.Length), (byte)i], sink.EndPoint);
        }

        member.Start((_, _) =>
        {
            if (trigger == member) Burst();
        });
        dedicated.Start((_, _) =>
        {
            if (trigger == dedicated) Burst();
        });
        plain.Start((_, _) => { });

        using var client = new UdpDatagramSocket(AnyLoopback);
        client.Send([0], trigger.LocalEndPoint);
        await RealSocketWait.UntilAsync(() => sink.Count == Count);

        // Each socket's datagrams left in the order they were sent (loopback keeps order), and from that socket.
        var received = sink.Drain();
        for (var s = 0; s < via.Length; s++)
        {
            var index = s;
            var fromSocket = received.Where(r => r.Data[0] == index).ToList();
            Assert.All(fromSocket, r => Assert.Equal(via[index].LocalEndPoint.Port, r.From.Port));
            var expected = Enumerable.Range(0, Count).Where(i => i % via.Length == index).Select(i => (byte)i);
            Assert.Equal(expected, fromSocket.Select(r => r.Data[1]));
        }

        if (group.IsSupported)
        {
            // All went through the I/O thread's queue (sendmmsg), none through sendto.
            Assert.Equal(Count, via.Sum(v => v.BatchedSends));
        }

        Assert.All(via, v => Assert.Equal(0, v.SendErrors));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Runs_to_one_destination_arrive_as_the_same_datagrams_whatever_their_sizes(bool refuseGso)
    {
        using var group = new UdpReceiveGroup();
        using var a = new Sink();
        using var b = new Sink();
        using var sender = new UdpDatagramSocket(AnyLoopback, group);
        if (refuseGso)
        {
            // SO_NO_CHECK: the kernel refuses UDP GSO on a socket without checksums (EINVAL), so the batch must fall
            // back to one datagram per message.
            sender.RawSocket.SetRawSocketOption(1 /* SOL_SOCKET */, 11 /* SO_NO_CHECK */, [1, 0, 0, 0]);
        }

        // Equal sizes then a shorter one (one GSO message), a change of destination, sizes that grow (no merge),
        // an empty datagram, more than a batch in all.
        (Sink To, int Size)[] plan =
        [
            .. Enumerable.Repeat((a, 100), 5), (a, 60), (a, 100), (a, 100), (b, 100), (a, 100), (a, 1500), (a, 1500),
            (a, 1600), (a, 1), (a, 0), (b, 2000), (b, 2000), .. Enumerable.Repeat((b, 7), 30),
        ];
        sender.Start((_, _) =>
        {
            for (var i = 0; i < plan.Length; i++)
            {
                var datagram = new byte[plan[i].Size];
                for (var k = 0; k < datagram.Length; k++) datagram[k] = (byte)(i + k);
                sender.Send(datagram, plan[i].To.EndPoint);
            }
        });

        using var client = new UdpDatagramSocket(AnyLoopback);
        client.Send([0], sender.LocalEndPoint);
        await RealSocketWait.UntilAsync(() => a.Count + b.Count == plan.Length);
        foreach (var sink in new[] { a, b })
        {
            var expected = plan.Select((p, i) => (p, i)).Where(x => x.p.To == sink)
                .Select(x => Enumerable.Range(0, x.p.Size).Select(k => (byte)(x.i + k)).ToArray()).ToList();
            var got = sink.Drain().Select(r => r.Data).ToList();
            Assert.Equal(expected.Count, got.Count);
            for (var i = 0; i < got.Count; i++) Assert.Equal(expected[i], got[i]);
        }

        Assert.Equal(0, sender.SendErrors);
        if (group.IsSupported)
        {
            Assert.Equal(plan.Length, sender.BatchedSends);
            Assert.Equal(!refuseGso, sender.GsoEnabled);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_socket_disposed_after_queueing_still_sends_what_it_queued_and_then_closes(bool dedicatedTarget)
    {
        using var group = new UdpReceiveGroup();
        using var sink = new Sink();
        using var trigger = new UdpDatagramSocket(AnyLoopback, group);
        var target = dedicatedTarget
            ? new UdpDatagramSocket(AnyLoopback, reusePort: false, dedicatedThread: true)
            : new UdpDatagramSocket(AnyLoopback, group);
        target.Start((_, _) => { });
        var port = target.LocalEndPoint;
        var handled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        trigger.Start((_, _) =>
        {
            target.Send([1], sink.EndPoint); // queued: holds the socket's handle until the flush
            target.Dispose();
            target.Send([2], sink.EndPoint); // after Dispose: refused and counted
            trigger.Send([3], sink.EndPoint);
            handled.TrySetResult();
        });

        using var client = new UdpDatagramSocket(AnyLoopback);
        client.Send([0], trigger.LocalEndPoint);
        await handled.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await RealSocketWait.UntilAsync(() => sink.Count == 2);
        var received = sink.Drain();
        Assert.Contains(received, r => r.Data[0] == 1 && r.From.Port == port.Port);
        Assert.Contains(received, r => r.Data[0] == 3);
        Assert.Equal(1, target.SendErrors);
        Assert.Equal(0, trigger.HandlerFaults);

        // The last reference went with the flush: the port is free again.
        await RealSocketWait.UntilAsync(() => RealSocketWait.CanBind(port));
    }

    [Fact]
    public async Task Disposing_a_socket_from_another_thread_while_a_handler_sends_on_it_is_safe()
    {
        using var group = new UdpReceiveGroup();
        using var sink = new Sink();
        using var relay = new UdpDatagramSocket(AnyLoopback, group);
        var target = new UdpDatagramSocket(AnyLoopback, reusePort: false, dedicatedThread: true);
        target.Start((_, _) => { });
        var port = target.LocalEndPoint;
        long handled = 0;
        relay.Start((data, _) =>
        {
            Interlocked.Increment(ref handled);
            target.Send(data, sink.EndPoint);
        });

        using var client = new UdpDatagramSocket(AnyLoopback);
        using var stopFlood = new CancellationTokenSource();
        var flood = Task.Run(() =>
        {
            while (!stopFlood.IsCancellationRequested) client.Send([7], relay.LocalEndPoint);
        });
        try
        {
            await RealSocketWait.UntilAsync(() => sink.Count > 100);
            target.Dispose(); // while the group thread queues and flushes sends on it
            var at = Interlocked.Read(ref handled);
            await RealSocketWait.UntilAsync(() => Interlocked.Read(ref handled) > at + 100);
        }
        finally
        {
            await stopFlood.CancelAsync();
            await flood;
        }

        Assert.Equal(0, relay.HandlerFaults);
        Assert.True(target.SendErrors > 0, "sends after Dispose are counted");
        await RealSocketWait.UntilAsync(() => RealSocketWait.CanBind(port));
    }

    [Fact]
    public async Task Queued_sends_allocate_nothing_per_datagram()
    {
        using var group = new UdpReceiveGroup();
        if (!group.IsSupported) return; // the portable fallback is not held to this budget
        using var server = new UdpDatagramSocket(AnyLoopback, group);
        using var other = new UdpDatagramSocket(AnyLoopback, reusePort: false, dedicatedThread: true);
        other.Start((_, _) => { });
        var window = new AllocationWindow(warmup: 20, measured: 200);
        server.Start((data, from) =>
        {
            // On the group thread: queueing, the flush (sendmmsg, handle references) and the next receive run here.
            window.OnHandled();
            server.Send(data, from);
            other.Send(data, from);
        });

        long echoes = 0;
        using var client = new UdpDatagramSocket(AnyLoopback);
        client.Start((_, _) => Interlocked.Increment(ref echoes));
        for (var i = 0; i < window.Total; i++)
        {
            client.Send([(byte)i], server.LocalEndPoint);
            var sent = i;
            await RealSocketWait.UntilAsync(() => window.Handled > sent);
        }

        Assert.Equal(0, await window.AllocatedAsync());
        await RealSocketWait.UntilAsync(() => Interlocked.Read(ref echoes) == 2 * window.Total);
    }

    [Fact]
    public async Task Ipv6_runs_arrive_as_the_same_datagrams()
    {
        var any6 = new IPEndPoint(IPAddress.IPv6Loopback, 0);
        using var group = new UdpReceiveGroup();
        using var sink = new Sink(any6);
        using var sender = new UdpDatagramSocket(any6, group);
        const int Count = 20;
        sender.Start((_, _) =>
        {
            for (var i = 0; i < Count; i++) sender.Send(Enumerable.Repeat((byte)i, i == Count - 1 ? 10 : 1200).ToArray(), sink.EndPoint);
        });

        using var client = new UdpDatagramSocket(any6);
        client.Send([0], sender.LocalEndPoint);
        await RealSocketWait.UntilAsync(() => sink.Count == Count);
        var got = sink.Drain();
        for (var i = 0; i < Count; i++) Assert.Equal(Enumerable.Repeat((byte)i, i == Count - 1 ? 10 : 1200), got[i].Data);
        Assert.Equal(0, sender.SendErrors);
        if (group.IsSupported) Assert.True(sender.GsoEnabled);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_gso_run_received_coalesced_is_cut_back_into_the_same_datagrams(bool gro)
    {
        using var group = new UdpReceiveGroup();
        using var sink = new Sink();
        if (!gro)
        {
            // As on a kernel without UDP_GRO: the receiving kernel cuts the GSO message up itself.
            sink.Socket.RawSocket.SetRawSocketOption(17 /* SOL_UDP */, 104 /* UDP_GRO */, [0, 0, 0, 0]);
        }

        using var sender = new UdpDatagramSocket(AnyLoopback, group);

        // Two GSO messages' worth of uTP-sized datagrams (the second ends shorter), then a lone small one.
        const int Size = 1_452;
        int[] sizes = [.. Enumerable.Repeat(Size, 60), 300, 20];
        sender.Start((_, _) =>
        {
            for (var i = 0; i < sizes.Length; i++) sender.Send(Enumerable.Range(0, sizes[i]).Select(k => (byte)(i + k)).ToArray(), sink.EndPoint);
        });

        using var client = new UdpDatagramSocket(AnyLoopback);
        client.Send([0], sender.LocalEndPoint);
        await RealSocketWait.UntilAsync(() => sink.Count == sizes.Length);
        var got = sink.Drain();
        for (var i = 0; i < sizes.Length; i++)
        {
            Assert.Equal(Enumerable.Range(0, sizes[i]).Select(k => (byte)(i + k)), got[i].Data);
            Assert.Equal(sender.LocalEndPoint.Port, got[i].From.Port);
        }

        if (group.IsSupported)
        {
            Assert.True(sender.GsoEnabled);
            Assert.True(sink.Socket.GroEnabled);

            // Loopback hands the GSO message to the socket whole: with UDP_GRO it arrives as one receive and is cut
            // here (all but the lone datagram); without, the kernel cut it and nothing arrived coalesced.
            if (gro) Assert.Equal(sizes.Length - 1, sink.Socket.CoalescedDatagrams);
            else Assert.Equal(0, sink.Socket.CoalescedDatagrams);
        }
    }

    [Fact]
    public async Task What_an_application_thread_sends_inside_a_scope_leaves_batched_and_in_order()
    {
        using var sink = new Sink();
        using var sender = new UdpDatagramSocket(AnyLoopback, reusePort: false, dedicatedThread: true);
        sender.Start((_, _) => { });
        const int Count = 50;
        for (var round = 0; round < 2; round++)
        {
            // From the test's thread (not an I/O thread): as uTP sends the packets of one application write.
            using (sender.BatchSends())
            {
                for (var i = 0; i < Count; i++) sender.Send(Enumerable.Repeat((byte)i, 1_200).ToArray(), sink.EndPoint);
            }
        }

        sender.Send([9], sink.EndPoint); // outside a scope: sent at once
        await RealSocketWait.UntilAsync(() => sink.Count == (2 * Count) + 1);
        var got = sink.Drain();
        for (var i = 0; i < 2 * Count; i++) Assert.Equal(Enumerable.Repeat((byte)(i % Count), 1_200), got[i].Data);
        Assert.Equal([9], got[^1].Data);
        Assert.Equal(0, sender.SendErrors);
        if (UdpDatagramSocket.BatchedIoSupported) Assert.Equal(2 * Count, sender.BatchedSends);
        else Assert.Equal(0, sender.BatchedSends);
    }

    [Fact]
    public async Task FlushSends_on_an_io_thread_sends_what_its_handler_queued_before_the_batch_ends()
    {
        // uTP flushes under its lock so that a packet queued on the receive thread cannot be overtaken by one another
        // thread sends next. Here the handler waits, still inside the batch, for the sink to get what it sent: without
        // the flush the datagram would only leave after the handler returned.
        using var arrived = new ManualResetEventSlim();
        using var sink = new UdpDatagramSocket(AnyLoopback, reusePort: false, dedicatedThread: true);
        sink.Start((_, _) => arrived.Set());
        using var sender = new UdpDatagramSocket(AnyLoopback, reusePort: false, dedicatedThread: true);
        var result = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        sender.Start((_, _) =>
        {
            sender.Send([1, 2, 3], sink.LocalEndPoint);
            ((IBatchingDatagramSocket)sender).FlushSends();
            result.TrySetResult(arrived.Wait(TimeSpan.FromSeconds(10)));
        }, () => { });

        using var client = new UdpDatagramSocket(AnyLoopback);
        client.Send([0], sender.LocalEndPoint);
        Assert.True(await result.Task.WaitAsync(TimeSpan.FromSeconds(30)), "the datagram did not leave before the batch ended");
        Assert.Equal(0, sender.SendErrors);
        if (UdpDatagramSocket.BatchedIoSupported) Assert.Equal(1, sender.BatchedSends);
    }

    [Fact]
    public void A_socket_option_the_kernel_refuses_turns_gro_off_without_throwing()
    {
        // SOL_UDP options on a TCP socket: the kernel answers ENOPROTOOPT, as a kernel before 5.0 does for UDP_GRO.
        using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Assert.False(UdpDatagramSocket.TrySetGro(tcp));
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        Assert.Equal(OperatingSystem.IsLinux(), UdpDatagramSocket.TrySetGro(udp));
    }

    /// <summary>Collects datagrams on its own thread.</summary>
    private sealed class Sink : IDisposable
    {
        private readonly UdpDatagramSocket _socket;
        private readonly ConcurrentQueue<(byte[] Data, IPEndPoint From)> _received = new();

        public Sink(IPEndPoint? bind = null)
        {
            _socket = new UdpDatagramSocket(bind ?? AnyLoopback, reusePort: false, dedicatedThread: true);
            _socket.Start((data, from) => _received.Enqueue((data.ToArray(), from)));
        }

        public IPEndPoint EndPoint => _socket.LocalEndPoint;

        public UdpDatagramSocket Socket => _socket;

        public int Count => _received.Count;

        public List<(byte[] Data, IPEndPoint From)> Drain() => [.. _received];

        public void Dispose() => _socket.Dispose();
    }
}
