using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Peerway.Net;
using Peerway.Simulation;

namespace Peerway.Benchmarks;

/// <summary>The in-memory stream network's cost: bytes through one connection, delivery events with many.</summary>
[MemoryDiagnoser]
public class VirtualStreamBenchmarks
{
    private const int MiB = 1024 * 1024;
    private const int TransferMiB = 64;
    private readonly byte[] _chunk = new byte[64 * 1024];
    private readonly byte[] _readBuffer = new byte[64 * 1024];

    /// <summary>64 MiB through one connection (1 ms each way, unlimited rates), 64 KiB writes and reads, on the
    /// simulator's scheduler. Per operation: one MiB.</summary>
    [Benchmark(OperationsPerInvoke = TransferMiB)]
    public long OneConnectionPerMiB()
    {
        var s = new SimulationScheduler(1);
        var net = new VirtualStreamNetwork(s, s.Time, new VirtualStreamNetworkOptions { Latency = static (_, _) => TimeSpan.FromMilliseconds(1) });
        var a = net.AddEndpoint();
        var b = net.AddEndpoint();
        return s.Run(async () =>
        {
            await using var listener = await b.ListenAsync(new IPEndPoint(IPAddress.Any, 6881), CancellationToken.None);
            var accept = listener.AcceptAsync(CancellationToken.None).AsTask();
            await using var client = await a.ConnectAsync(listener.LocalEndPoint, CancellationToken.None);
            await using var server = (await accept)!;
            var read = ReadAll(server.Stream, (long)TransferMiB * MiB);
            for (var i = 0; i < TransferMiB * MiB / _chunk.Length; i++) await client.Stream.WriteAsync(_chunk);
            return await read;
        });
    }

    private async Task<long> ReadAll(Stream stream, long total)
    {
        long got = 0;
        while (got < total) got += await stream.ReadAsync(_readBuffer);
        return got;
    }

    /// <summary>Delivery events in <see cref="ThousandConnections"/> (deterministic, so counted once).</summary>
    public static long ThousandConnectionsEvents { get; private set; }

    /// <summary>1,000 endpoints (1 MB/s up, 4 MB/s down, log-normal latency), each dialling one other and sending it
    /// 256 KiB, to completion. Per operation: the whole run (its delivery-event count is printed once; events/s is
    /// that count over the time).</summary>
    [Benchmark]
    public long ThousandConnectionsRun()
    {
        var events = ThousandConnections();
        if (ThousandConnectionsEvents == 0)
        {
            ThousandConnectionsEvents = events;
            Console.WriteLine($"// ThousandConnections: {events} delivery events per run");
        }

        return events;
    }

    internal static long ThousandConnections()
    {
        const int hosts = 1000;
        var swarm = new VirtualSwarm();
        var peers = swarm.AddPeers(hosts, new PeerCapacity(1_000_000, 4_000_000));
        var data = new byte[256 * 1024];
        swarm.Run(async () =>
        {
            var listeners = new IStreamListener[hosts];
            for (var i = 0; i < hosts; i++) listeners[i] = await peers[i].Transport.ListenAsync(peers[i].ListenEndPoint, CancellationToken.None);
            var work = new List<Task>();
            for (var i = 0; i < hosts; i++)
            {
                work.Add(Receive(listeners[i]));
                work.Add(Send(peers[i], peers[(i + 1) % hosts]));
            }

            await Task.WhenAll(work);
            foreach (var l in listeners) await l.DisposeAsync();
            return true;
        });
        return swarm.Network.EventsRun;

        async Task Send(VirtualSwarmPeer from, VirtualSwarmPeer to)
        {
            await using var c = await from.Transport.ConnectAsync(to.ListenEndPoint, CancellationToken.None);
            await c.Stream.WriteAsync(data);
            _ = await c.Stream.ReadAsync(new byte[1]);
        }

        async Task Receive(IStreamListener listener)
        {
            await using var c = (await listener.AcceptAsync(CancellationToken.None))!;
            var buffer = new byte[64 * 1024];
            long got = 0;
            while (got < data.Length) got += await c.Stream.ReadAsync(buffer);
        }
    }
}

/// <summary>TcpStreamTransport's connection against a raw <see cref="Socket"/> pair on loopback, same sizes.</summary>
[MemoryDiagnoser]
public class TcpStreamTransportBenchmarks
{
    private const int MiB = 1024 * 1024;
    private const int TransferMiB = 32;
    private readonly byte[] _chunk = new byte[64 * 1024];
    private readonly byte[] _readBuffer = new byte[64 * 1024];
    private IStreamListener _listener = null!;
    private IStreamConnection _client = null!;
    private IStreamConnection _server = null!;
    private Socket _rawListener = null!;
    private Socket _rawClient = null!;
    private Socket _rawServer = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        var transport = new TcpStreamTransport();
        _listener = await transport.ListenAsync(new IPEndPoint(IPAddress.Loopback, 0), CancellationToken.None);
        var accept = _listener.AcceptAsync(CancellationToken.None).AsTask();
        _client = await transport.ConnectAsync(_listener.LocalEndPoint, CancellationToken.None);
        _server = (await accept)!;

        _rawListener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _rawListener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _rawListener.Listen();
        _rawClient = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var rawAccept = _rawListener.AcceptAsync();
        await _rawClient.ConnectAsync(_rawListener.LocalEndPoint!);
        _rawServer = await rawAccept;
        _rawServer.NoDelay = true;
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _client.DisposeAsync();
        await _server.DisposeAsync();
        await _listener.DisposeAsync();
        _rawClient.Dispose();
        _rawServer.Dispose();
        _rawListener.Dispose();
    }

    /// <summary>32 MiB client to server through <see cref="TcpStreamTransport"/>'s streams. Per operation: one MiB.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = TransferMiB)]
    public async Task<long> TransportPerMiB()
    {
        var read = ReadAll(_server.Stream);
        for (var i = 0; i < TransferMiB * MiB / _chunk.Length; i++) await _client.Stream.WriteAsync(_chunk);
        return await read;
    }

    private async Task<long> ReadAll(Stream stream)
    {
        long got = 0;
        while (got < (long)TransferMiB * MiB) got += await stream.ReadAsync(_readBuffer);
        return got;
    }

    /// <summary>The same through a raw socket pair (<c>Socket.SendAsync</c>/<c>ReceiveAsync</c>).</summary>
    [Benchmark(OperationsPerInvoke = TransferMiB)]
    public async Task<long> RawSocketPerMiB()
    {
        var read = RawReadAll();
        for (var i = 0; i < TransferMiB * MiB / _chunk.Length; i++)
        {
            var sent = 0;
            while (sent < _chunk.Length) sent += await _rawClient.SendAsync(_chunk.AsMemory(sent), SocketFlags.None);
        }

        return await read;
    }

    private async Task<long> RawReadAll()
    {
        long got = 0;
        while (got < (long)TransferMiB * MiB) got += await _rawServer.ReceiveAsync(_readBuffer, SocketFlags.None);
        return got;
    }
}
