using System.Net;
using System.Security.Cryptography;

namespace Peerway.Net.Tests;

public sealed class VirtualStreamNetworkTests
{
    private const int MiB = 1024 * 1024;

    private static readonly IPEndPoint AnyPort = new(IPAddress.Any, 0);

    private static (EventLoop Loop, VirtualStreamNetwork Network) Create(VirtualStreamNetworkOptions? options = null)
    {
        var loop = new EventLoop();
        return (loop, new VirtualStreamNetwork(loop, loop.Time, options));
    }

    /// <summary>Dials <paramref name="listener"/> from <paramref name="from"/> and accepts: (dialler's side, listener's side).</summary>
    private static async Task<(IStreamConnection Client, IStreamConnection Server)> ConnectAsync(VirtualStreamEndpoint from, IStreamListener listener)
    {
        var accept = listener.AcceptAsync(CancellationToken.None).AsTask();
        var client = await from.ConnectAsync(listener.LocalEndPoint, CancellationToken.None);
        var server = await accept;
        return (client, server!);
    }

    private static async Task<byte[]> ReadToEndAsync(Stream stream, int chunk, Action<long>? onFirstByte = null)
    {
        var result = new MemoryStream();
        var buffer = new byte[chunk];
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            if (result.Length == 0) onFirstByte?.Invoke(0);
            await result.WriteAsync(buffer.AsMemory(0, n));
        }

        return result.ToArray();
    }

    private static async Task WriteAllAsync(Stream stream, byte[] data, int chunk)
    {
        for (var i = 0; i < data.Length; i += chunk) await stream.WriteAsync(data.AsMemory(i, Math.Min(chunk, data.Length - i)));
    }

    [Fact]
    public void LargeTransferArrivesInOrderAndIntact()
    {
        var (loop, network) = Create(new VirtualStreamNetworkOptions { Latency = static (_, _) => TimeSpan.FromMilliseconds(7), SegmentSize = 1000 });
        var a = network.AddEndpoint(new VirtualEndpointOptions { UploadBytesPerSecond = 50 * MiB });
        var b = network.AddEndpoint(new VirtualEndpointOptions { DownloadBytesPerSecond = 40 * MiB });
        var data = RandomNumberGenerator.GetBytes(8 * MiB + 12_345);
        var back = RandomNumberGenerator.GetBytes(3 * MiB + 7);
        var (received, receivedBack) = loop.Run(async () =>
        {
            await using var listener = await b.ListenAsync(AnyPort, CancellationToken.None);
            var (client, server) = await ConnectAsync(a, listener);
            // Both directions at once, with odd write and read sizes that cut across segments.
            var readAtClient = ReadBytesAsync(client.Stream, back.Length);
            var readAtServer = ReadToEndAsync(server.Stream, 4_099);
            var sendBack = WriteAllAsync(server.Stream, back, 3_001);
            await WriteAllAsync(client.Stream, data, 65_537);
            var gotBack = await readAtClient;
            await client.DisposeAsync(); // FIN after the data: the server's read loop ends
            var got = await readAtServer;
            await sendBack;
            await server.DisposeAsync();
            return (got, gotBack);
        });

        Assert.Equal(SHA256.HashData(data), SHA256.HashData(received));
        Assert.Equal(SHA256.HashData(back), SHA256.HashData(receivedBack));
    }

    [FsCheck.Xunit.Property(MaxTest = 60)]
    public void AnyMixOfSizesRatesAndLatenciesDeliversInOrderAndNeverFasterThanTheRates(int seed)
    {
        var random = new Random(seed);
        var segment = random.Next(1, 5_000);
        var options = new VirtualStreamNetworkOptions
        {
            SegmentSize = segment,
            SendBufferSize = (segment * random.Next(1, 8)) + random.Next(0, segment),
            Latency = (_, _) => TimeSpan.FromMilliseconds(random.Next(0, 40)), // drawn per connection and direction
        };
        var up = random.Next(2) == 0 ? 0 : random.Next(20_000, 5_000_000);
        var down = random.Next(2) == 0 ? 0 : random.Next(20_000, 5_000_000);
        var (loop, network) = Create(options);
        var a = network.AddEndpoint(new VirtualEndpointOptions { UploadBytesPerSecond = up });
        var b = network.AddEndpoint(new VirtualEndpointOptions { DownloadBytesPerSecond = down });
        var data = new byte[random.Next(0, 200_000)];
        random.NextBytes(data);
        var (writeChunk, readChunk) = (random.Next(1, 70_000), random.Next(1, 70_000));
        var (received, took) = loop.Run(async () =>
        {
            await using var listener = await b.ListenAsync(AnyPort, CancellationToken.None);
            var (client, server) = await ConnectAsync(a, listener);
            var start = loop.Elapsed;
            var read = ReadToEndAsync(server.Stream, readChunk);
            await WriteAllAsync(client.Stream, data, writeChunk);
            await client.DisposeAsync();
            var got = await read;
            var elapsed = loop.Elapsed - start;
            await server.DisposeAsync();
            return (got, elapsed);
        });

        Assert.Equal(data, received);
        Assert.Equal(0, network.ConnectionCount);
        // Each bucket lets one segment through at once, then holds to its rate.
        var rate = new[] { up, down }.Where(r => r > 0).DefaultIfEmpty(0).Min();
        if (rate > 0 && data.Length > segment) Assert.True(took.TotalSeconds >= (data.Length - segment) / (double)rate * 0.999, $"{data.Length} B at {rate} B/s in {took}");
    }

    [Fact]
    public async Task ThreadsAndThePumpSchedulerMayDriveIt()
    {
        // Not deterministic, but safe: the pump runs deliveries on its own task while test threads read and write.
        using var pump = new PumpDeliveryScheduler(TimeProvider.System);
        var network = new VirtualStreamNetwork(pump, TimeProvider.System, new VirtualStreamNetworkOptions { Latency = static (_, _) => TimeSpan.FromMilliseconds(1) });
        var a = network.AddEndpoint();
        var b = network.AddEndpoint();
        var data = RandomNumberGenerator.GetBytes(MiB);
        await using var listener = await b.ListenAsync(AnyPort, CancellationToken.None);
        var (client, server) = await ConnectAsync(a, listener);
        var read = Task.Run(() => ReadBytesAsync(server.Stream, data.Length));
        await Task.Run(() => WriteAllAsync(client.Stream, data, 10_007));
        Assert.Equal(data, await read);
        await client.DisposeAsync();
        Assert.Equal(0, await server.Stream.ReadAsync(new byte[1]));
        await server.DisposeAsync();
        Assert.Equal(0, pump.Faults);
    }

    [Fact]
    public void UploadRateIsHonouredInVirtualTime()
    {
        var (loop, network) = Create();
        var a = network.AddEndpoint(new VirtualEndpointOptions { UploadBytesPerSecond = MiB });
        var b = network.AddEndpoint();
        var data = RandomNumberGenerator.GetBytes(4 * MiB);
        var elapsed = loop.Run(async () =>
        {
            await using var listener = await b.ListenAsync(AnyPort, CancellationToken.None);
            var (client, server) = await ConnectAsync(a, listener);
            var start = loop.Elapsed;
            var read = ReadBytesAsync(server.Stream, data.Length);
            await client.Stream.WriteAsync(data);
            Assert.Equal(data, await read);
            var took = loop.Elapsed - start;
            await client.DisposeAsync();
            await server.DisposeAsync();
            return took;
        });

        // 4 MiB at 1 MiB/s; the bucket lets the first segment (16 KiB) through at once.
        var expected = TimeSpan.FromSeconds((4.0 * MiB - (16 * 1024)) / MiB);
        Assert.InRange(elapsed.TotalSeconds, expected.TotalSeconds * 0.99, expected.TotalSeconds * 1.01);
    }

    [Fact]
    public void DownloadRateIsSharedByTheReceiversConnections()
    {
        var (loop, network) = Create();
        var senders = new[] { network.AddEndpoint(), network.AddEndpoint() };
        var b = network.AddEndpoint(new VirtualEndpointOptions { DownloadBytesPerSecond = 512 * 1024 });
        var data = RandomNumberGenerator.GetBytes(MiB);
        var finished = loop.Run(async () =>
        {
            await using var listener = await b.ListenAsync(AnyPort, CancellationToken.None);
            var transfers = new List<Task<TimeSpan>>();
            foreach (var sender in senders)
            {
                var (client, server) = await ConnectAsync(sender, listener);
                transfers.Add(TransferAsync(loop, data, client, server));
            }

            return await Task.WhenAll(transfers);
        });

        // 2 MiB through one 512 KiB/s downlink: 4 s for both together, neither much before the other.
        foreach (var t in finished) Assert.InRange(t.TotalSeconds, 3.0, 4.0);
        Assert.InRange(finished.Max().TotalSeconds, 3.9, 4.0);
    }

    [Fact]
    public void UploadRateIsSharedAcrossConnections()
    {
        var (loop, network) = Create();
        var a = network.AddEndpoint(new VirtualEndpointOptions { UploadBytesPerSecond = MiB });
        var receivers = new[] { network.AddEndpoint(), network.AddEndpoint() };
        var data = RandomNumberGenerator.GetBytes(MiB);
        var finished = loop.Run(async () =>
        {
            var transfers = new List<Task<TimeSpan>>();
            foreach (var receiver in receivers)
            {
                var listener = await receiver.ListenAsync(AnyPort, CancellationToken.None);
                var (client, server) = await ConnectAsync(a, listener);
                await listener.DisposeAsync();
                transfers.Add(TransferAsync(loop, data, client, server));
            }

            return await Task.WhenAll(transfers);
        });

        foreach (var t in finished) Assert.InRange(t.TotalSeconds, 1.5, 2.0);
    }

    [Fact]
    public void ConnectTakesARoundTripAndBytesOneLatency()
    {
        var (loop, network) = Create(new VirtualStreamNetworkOptions
        {
            Latency = static (from, _) => TimeSpan.FromMilliseconds(from.GetAddressBytes()[3] == 1 ? 30 : 20),
        });
        var a = network.AddEndpoint(address: IPAddress.Parse("10.0.0.1"));
        var b = network.AddEndpoint(address: IPAddress.Parse("10.0.0.2"));
        var times = loop.Run(async () =>
        {
            await using var listener = await b.ListenAsync(new IPEndPoint(IPAddress.Any, 6881), CancellationToken.None);
            var accept = listener.AcceptAsync(CancellationToken.None).AsTask();
            var connect = a.ConnectAsync(new IPEndPoint(b.Address, 6881), CancellationToken.None).AsTask();
            var server = (await accept)!;
            var accepted = loop.Elapsed;
            var client = await connect;
            var connected = loop.Elapsed;
            Assert.Equal(new IPEndPoint(b.Address, 6881), client.RemoteEndPoint);
            Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
            Assert.Equal(StreamTransportKind.Virtual, client.Kind);

            await client.Stream.WriteAsync(new byte[] { 1, 2, 3 });
            var buffer = new byte[3];
            Assert.Equal(3, await server.Stream.ReadAsync(buffer));
            var there = loop.Elapsed - connected;
            await server.Stream.WriteAsync(buffer);
            Assert.Equal(3, await client.Stream.ReadAsync(buffer));
            var back = loop.Elapsed - connected;
            await client.DisposeAsync();
            await server.DisposeAsync();
            return (accepted, connected, there, back);
        });

        Assert.Equal(TimeSpan.FromMilliseconds(30), times.accepted); // the SYN's trip
        Assert.Equal(TimeSpan.FromMilliseconds(50), times.connected); // and the answer's
        Assert.Equal(TimeSpan.FromMilliseconds(30), times.there);
        Assert.Equal(TimeSpan.FromMilliseconds(50), times.back);
    }

    [Fact]
    public void AFullSendBufferHoldsTheWriterUntilTheReaderReads()
    {
        var (loop, network) = Create(new VirtualStreamNetworkOptions
        {
            SendBufferSize = 64 * 1024,
            Latency = static (_, _) => TimeSpan.FromMilliseconds(5),
        });
        var a = network.AddEndpoint();
        var b = network.AddEndpoint();
        var data = RandomNumberGenerator.GetBytes(MiB);
        IStreamConnection client = null!, server = null!;
        loop.Run(async () =>
        {
            var listener = await b.ListenAsync(AnyPort, CancellationToken.None);
            (client, server) = await ConnectAsync(a, listener);
            await listener.DisposeAsync();
        });

        var write = client.Stream.WriteAsync(data).AsTask();
        Assert.False(loop.RunUntil(() => write.IsCompleted)); // ran out of events: the writer waits
        Assert.Equal(64 * 1024, network.BytesDelivered); // one buffer's worth, nothing more

        var received = loop.Run(() => ReadBytesAsync(server.Stream, data.Length));
        Assert.True(loop.RunUntil(() => write.IsCompleted));
        Assert.Equal(data, received);
        loop.Run(async () =>
        {
            await client.DisposeAsync();
            await server.DisposeAsync();
        });
        Assert.Equal(0, network.ConnectionCount);
    }

    [Fact]
    public void DisposeSendsFinAfterTheData() => RunPair(10, async (loop, network, client, server) =>
    {
        await client.Stream.WriteAsync(new byte[100]);
        await client.DisposeAsync();
        Assert.Equal(100, (await ReadToEndAsync(server.Stream, 1000)).Length);
        Assert.Equal(0, await server.Stream.ReadAsync(new byte[10])); // and again

        // Writing to a closed peer is answered with RST: the next operation fails.
        await server.Stream.WriteAsync(new byte[10]);
        var reset = await Assert.ThrowsAsync<IOException>(async () =>
        {
            while (true) await server.Stream.WriteAsync(new byte[10_000]);
        });
        Assert.Contains("reset", reset.Message, StringComparison.OrdinalIgnoreCase);
        await server.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => server.Stream.ReadAsync(new byte[1]).AsTask());
    });

    [Fact]
    public void AbortResetsTheOtherSide() => RunPair(10, async (loop, network, client, server) =>
    {
        var pendingRead = server.Stream.ReadAsync(new byte[10]).AsTask();
        var abortedAt = loop.Elapsed;
        client.Abort();
        client.Abort(); // idempotent
        await Assert.ThrowsAsync<IOException>(() => pendingRead);
        Assert.Equal(TimeSpan.FromMilliseconds(10), loop.Elapsed - abortedAt); // the RST's trip
        await Assert.ThrowsAsync<IOException>(async () => await server.Stream.WriteAsync(new byte[1]));
        await Assert.ThrowsAsync<IOException>(() => client.Stream.ReadAsync(new byte[1]).AsTask());
        await client.DisposeAsync();
        await server.DisposeAsync();
    });

    [Fact]
    public void ClosingWithUnreadDataResetsInsteadOfFin() => RunPair(0, async (loop, network, client, server) =>
    {
        await client.Stream.WriteAsync(new byte[10]);
        loop.RunUntil(() => network.BytesDelivered == 10);
        await server.DisposeAsync(); // 10 bytes unread
        await Assert.ThrowsAsync<IOException>(() => client.Stream.ReadAsync(new byte[1]).AsTask());
        await client.DisposeAsync();
    });

    [Fact]
    public void ConnectingWhereNobodyListensIsRefusedAfterARoundTrip()
    {
        var (loop, network) = Create(new VirtualStreamNetworkOptions { Latency = static (_, _) => TimeSpan.FromMilliseconds(15) });
        var a = network.AddEndpoint();
        var b = network.AddEndpoint();
        loop.Run(async () =>
        {
            var start = loop.Elapsed;
            var refused = await Assert.ThrowsAsync<IOException>(async () => await a.ConnectAsync(new IPEndPoint(b.Address, 6881), CancellationToken.None));
            Assert.Equal(TimeSpan.FromMilliseconds(30), loop.Elapsed - start);
            Assert.Equal(System.Net.Sockets.SocketError.ConnectionRefused, Assert.IsType<System.Net.Sockets.SocketException>(refused.InnerException).SocketErrorCode);
            Assert.Contains("refused", refused.Message, StringComparison.Ordinal);
            await Assert.ThrowsAsync<IOException>(async () => await a.ConnectAsync(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 1), CancellationToken.None));
        });
    }

    [Fact]
    public void ATakenPortCannotBeBoundTwice()
    {
        var (loop, network) = Create();
        var b = network.AddEndpoint(address: IPAddress.Parse("10.9.9.9"));
        loop.Run(async () =>
        {
            var listener = await b.ListenAsync(new IPEndPoint(IPAddress.Any, 6881), CancellationToken.None);
            var taken = await Assert.ThrowsAsync<IOException>(async () => await b.ListenAsync(new IPEndPoint(b.Address, 6881), CancellationToken.None));
            Assert.Equal("cannot bind 10.9.9.9:6881: Address already in use", taken.Message);
            await Assert.ThrowsAsync<IOException>(async () => await b.ListenAsync(new IPEndPoint(IPAddress.Parse("10.1.1.1"), 6881), CancellationToken.None));
            await listener.DisposeAsync();
            await using var again = await b.ListenAsync(new IPEndPoint(IPAddress.Any, 6881), CancellationToken.None);
            Assert.Equal(new IPEndPoint(b.Address, 6881), again.LocalEndPoint);
        });
    }

    [Fact]
    public void DisposingAListenerEndsAcceptAndRefusesAndResetsWhatWasQueued()
    {
        var (loop, network) = Create(new VirtualStreamNetworkOptions { Latency = static (_, _) => TimeSpan.FromMilliseconds(5) });
        var a = network.AddEndpoint();
        var b = network.AddEndpoint();
        loop.Run(async () =>
        {
            var listener = await b.ListenAsync(AnyPort, CancellationToken.None);
            var queued = await a.ConnectAsync(listener.LocalEndPoint, CancellationToken.None); // in the backlog, never accepted
            await listener.DisposeAsync();
            await Assert.ThrowsAsync<IOException>(() => queued.Stream.ReadAsync(new byte[1]).AsTask()); // reset
            Assert.Null(await listener.AcceptAsync(CancellationToken.None));
            await Assert.ThrowsAsync<IOException>(async () => await a.ConnectAsync(listener.LocalEndPoint, CancellationToken.None));
            await queued.DisposeAsync();

            var other = await b.ListenAsync(AnyPort, CancellationToken.None);
            var waiting = other.AcceptAsync(CancellationToken.None).AsTask();
            await other.DisposeAsync();
            Assert.Null(await waiting); // a waiting accept ends with null, as Kestrel's
        });
        Assert.Equal(0, network.ConnectionCount);
    }

    [Fact]
    public void CancellationEndsConnectReadAndAccept()
    {
        var (loop, network) = Create(new VirtualStreamNetworkOptions { Latency = static (_, _) => TimeSpan.FromMilliseconds(5) });
        var a = network.AddEndpoint();
        var b = network.AddEndpoint();
        loop.Run(async () =>
        {
            await using var listener = await b.ListenAsync(AnyPort, CancellationToken.None);
            using var cts = new CancellationTokenSource();
            var accept = listener.AcceptAsync(cts.Token).AsTask();
            // Cancel, not CancelAsync: the loop is single-threaded, and CancelAsync would run the callbacks on the
            // thread pool, outside it (the scenario then waits for an event that never comes).
#pragma warning disable VSTHRD103
            cts.Cancel();
#pragma warning restore VSTHRD103
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => accept);

            using var dial = new CancellationTokenSource();
            var connect = a.ConnectAsync(listener.LocalEndPoint, dial.Token).AsTask();
            var accepted = listener.AcceptAsync(CancellationToken.None).AsTask();
            loop.Schedule(TimeSpan.FromMilliseconds(7), dial.Cancel); // after the SYN's arrival, before the answer's
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connect);
            // The listener got the SYN before the dialler gave up; that side is reset, not leaked.
            var abandoned = (await accepted)!;
            await Assert.ThrowsAsync<IOException>(() => abandoned.Stream.ReadAsync(new byte[1]).AsTask());
            await abandoned.DisposeAsync();

            var (client, server) = await ConnectAsync(a, listener);
            using var readCts = new CancellationTokenSource();
            var read = server.Stream.ReadAsync(new byte[1], readCts.Token).AsTask();
            // Cancel, not CancelAsync: the loop is single-threaded, and CancelAsync would run the callbacks on the
            // thread pool, outside it (the scenario then waits for an event that never comes).
#pragma warning disable VSTHRD103
            readCts.Cancel();
#pragma warning restore VSTHRD103
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read);
            await client.Stream.WriteAsync(new byte[] { 42 });
            var one = new byte[1];
            Assert.Equal(1, await server.Stream.ReadAsync(one)); // a cancelled read loses nothing
            Assert.Equal(42, one[0]);
            await client.DisposeAsync();
            await server.DisposeAsync();
        });
        Assert.Equal(0, network.ConnectionCount);
    }

    [Fact]
    public void AThousandEndpointsCarryThirtyThousandConnections()
    {
        const int endpoints = 1000, peersEach = 30, payload = 200;
        var (loop, network) = Create(new VirtualStreamNetworkOptions
        {
            // A deterministic spread of latencies, 5 to 104 ms one way.
            Latency = static (from, to) => TimeSpan.FromMilliseconds(5 + ((from.GetHashCode() ^ (to.GetHashCode() * 31)) & 0x7fffffff) % 100),
        });
        var hosts = Enumerable.Range(0, endpoints)
            .Select(_ => network.AddEndpoint(new VirtualEndpointOptions { UploadBytesPerSecond = 100_000, DownloadBytesPerSecond = 400_000 }))
            .ToArray();
        var received = 0L;
        var (ok, elapsed) = loop.Run(async () =>
        {
            var listeners = new IStreamListener[endpoints];
            for (var i = 0; i < endpoints; i++) listeners[i] = await hosts[i].ListenAsync(new IPEndPoint(IPAddress.Any, 6881), CancellationToken.None);
            var serving = listeners.Select(ServeAsync).ToArray();
            var dials = new List<Task>();
            for (var i = 0; i < endpoints; i++)
            {
                for (var k = 1; k <= peersEach; k++) dials.Add(DialAsync(hosts[i], hosts[(i + (k * 7)) % endpoints]));
            }

            await Task.WhenAll(dials);
            foreach (var l in listeners) await l.DisposeAsync();
            var served = await Task.WhenAll(serving);
            return (served.Sum(), loop.Elapsed);
        });

        Assert.Equal(endpoints * peersEach, ok);
        Assert.Equal((long)endpoints * peersEach * payload, received);
        Assert.Equal(0, network.ConnectionCount);
        Assert.InRange(elapsed.TotalSeconds, 0.01, 60);

        async Task DialAsync(VirtualStreamEndpoint from, VirtualStreamEndpoint to)
        {
            await using var c = await from.ConnectAsync(new IPEndPoint(to.Address, 6881), CancellationToken.None);
            var message = new byte[payload];
            from.Address.TryWriteBytes(message, out _);
            await c.Stream.WriteAsync(message);
            Assert.Equal(0, await c.Stream.ReadAsync(new byte[1])); // the server reads it all, then closes
        }

        async Task<int> ServeAsync(IStreamListener listener)
        {
            var handled = new List<Task<bool>>();
            while (await listener.AcceptAsync(CancellationToken.None) is { } c) handled.Add(HandleAsync(c));
            return (await Task.WhenAll(handled)).Count(x => x);
        }

        async Task<bool> HandleAsync(IStreamConnection c)
        {
            await using (c)
            {
                var got = await ReadBytesAsync(c.Stream, payload);
                received += got.Length;
                return new IPAddress(got.AsSpan(0, 4)).Equals(c.RemoteEndPoint.Address);
            }
        }
    }

    /// <summary>Connects two endpoints <paramref name="latencyMs"/> apart and runs <paramref name="body"/> on the
    /// connection; afterwards no connection may be left open.</summary>
    private static void RunPair(int latencyMs, Func<EventLoop, VirtualStreamNetwork, IStreamConnection, IStreamConnection, Task> body)
    {
        var (loop, network) = Create(new VirtualStreamNetworkOptions { Latency = (_, _) => TimeSpan.FromMilliseconds(latencyMs) });
        var a = network.AddEndpoint();
        var b = network.AddEndpoint();
        loop.Run(async () =>
        {
            await using var listener = await b.ListenAsync(AnyPort, CancellationToken.None);
            var (client, server) = await ConnectAsync(a, listener);
            await body(loop, network, client, server);
        });
        Assert.Equal(0, network.ConnectionCount);
    }

    /// <summary>Sends <paramref name="data"/> from client to server, checks it, closes both; returns when it arrived.</summary>
    private static async Task<TimeSpan> TransferAsync(EventLoop loop, byte[] data, IStreamConnection client, IStreamConnection server)
    {
        var read = ReadBytesAsync(server.Stream, data.Length);
        await client.Stream.WriteAsync(data);
        Assert.Equal(data, await read);
        var at = loop.Elapsed;
        await client.DisposeAsync();
        await server.DisposeAsync();
        return at;
    }

    private static async Task<byte[]> ReadBytesAsync(Stream stream, int count)
    {
        var result = new byte[count];
        var offset = 0;
        while (offset < count)
        {
            var n = await stream.ReadAsync(result.AsMemory(offset, Math.Min(5_003, count - offset)));
            Assert.NotEqual(0, n);
            offset += n;
        }

        return result;
    }
}
