using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;

namespace Peerway.Net.Tests;

/// <summary>The TCP transport on real loopback sockets.</summary>
public sealed class TcpStreamTransportTests
{
    private static readonly IPEndPoint Loopback = new(IPAddress.Loopback, 0);

    private static async Task<(IStreamConnection Client, IStreamConnection Server)> ConnectAsync(TcpStreamTransport transport, IStreamListener listener, IPEndPoint? to = null)
    {
        var accept = listener.AcceptAsync(CancellationToken.None).AsTask();
        var client = await transport.ConnectAsync(to ?? listener.LocalEndPoint, CancellationToken.None);
        return (client, (await accept)!);
    }

    [Fact]
    public async Task ConnectionsCarryBytesBothWaysWithNoDelay()
    {
        var transport = new TcpStreamTransport();
        Assert.Equal(StreamTransportKind.Tcp, transport.Kind);
        await using var listener = await transport.ListenAsync(Loopback, CancellationToken.None);
        Assert.NotEqual(0, listener.LocalEndPoint.Port);
        var (client, server) = await ConnectAsync(transport, listener);
        await using (client)
        await using (server)
        {
            Assert.Equal(listener.LocalEndPoint, client.RemoteEndPoint);
            Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
            Assert.Equal(StreamTransportKind.Tcp, server.Kind);
            Assert.True(((NetworkStream)client.Stream).Socket.NoDelay);
            Assert.True(((NetworkStream)server.Stream).Socket.NoDelay);

            var data = new byte[1 << 20];
            Random.Shared.NextBytes(data);
            var read = ReadExactlyAsync(server.Stream, data.Length);
            await client.Stream.WriteAsync(data);
            Assert.Equal(data, await read);
            await server.Stream.WriteAsync(data.AsMemory(0, 10));
            var back = new byte[10];
            await client.Stream.ReadExactlyAsync(back);
            Assert.Equal(data.AsSpan(0, 10).ToArray(), back);
        }
    }

    private static async Task<byte[]> ReadExactlyAsync(Stream stream, int count)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer);
        return buffer;
    }

    [Fact]
    public async Task ATakenPortIsAnIOExceptionThatSaysSo()
    {
        var transport = new TcpStreamTransport();
        await using var listener = await transport.ListenAsync(Loopback, CancellationToken.None);
        var taken = await Assert.ThrowsAsync<IOException>(async () => await transport.ListenAsync(listener.LocalEndPoint, CancellationToken.None));
        Assert.Equal($"cannot bind 127.0.0.1:{listener.LocalEndPoint.Port}: Address already in use", taken.Message);
        Assert.Equal(SocketError.AddressAlreadyInUse, Assert.IsType<SocketException>(taken.InnerException).SocketErrorCode);
    }

    [Fact]
    public async Task TheIPv6WildcardTakesIPv4PeersAndReportsThemAsIPv4()
    {
        Assert.True(Socket.OSSupportsIPv6, "this machine has no IPv6 stack");
        var transport = new TcpStreamTransport();
        await using var listener = await transport.ListenAsync(new IPEndPoint(IPAddress.IPv6Any, 0), CancellationToken.None);
        var port = listener.LocalEndPoint.Port;

        var (client, server) = await ConnectAsync(transport, listener, new IPEndPoint(IPAddress.Loopback, port));
        await using (client)
        await using (server)
        {
            Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint); // 127.0.0.1:x, not [::ffff:127.0.0.1]:x
            Assert.Equal(IPAddress.Loopback, server.RemoteEndPoint.Address);
        }

        // A mapped address given to connect is dialled as IPv4.
        var (mapped, mappedServer) = await ConnectAsync(transport, listener, new IPEndPoint(IPAddress.Loopback.MapToIPv6(), port));
        await using (mapped)
        await using (mappedServer)
        {
            Assert.Equal(new IPEndPoint(IPAddress.Loopback, port), mapped.RemoteEndPoint);
        }

        var (v6, v6Server) = await ConnectAsync(transport, listener, new IPEndPoint(IPAddress.IPv6Loopback, port));
        await using (v6)
        await using (v6Server)
        {
            Assert.Equal(IPAddress.IPv6Loopback, v6Server.RemoteEndPoint.Address);
        }
    }

    [Fact]
    public async Task DisposeIsAnOrderlyCloseAndAbortAReset()
    {
        var transport = new TcpStreamTransport();
        await using var listener = await transport.ListenAsync(Loopback, CancellationToken.None);

        var (client, server) = await ConnectAsync(transport, listener);
        await client.Stream.WriteAsync(new byte[] { 1, 2, 3 });
        await client.DisposeAsync();
        Assert.Equal(new byte[] { 1, 2, 3 }, await ReadExactlyAsync(server.Stream, 3));
        Assert.Equal(0, await server.Stream.ReadAsync(new byte[1])); // FIN
        await server.DisposeAsync();

        (client, server) = await ConnectAsync(transport, listener);
        var pending = server.Stream.ReadAsync(new byte[1]).AsTask();
        client.Abort();
        client.Abort(); // idempotent
        var reset = await Assert.ThrowsAsync<IOException>(() => pending); // RST, not 0
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(reset.InnerException).SocketErrorCode);
        await client.DisposeAsync();
        await server.DisposeAsync();
    }

    [Fact]
    public async Task DisposingTheListenerEndsAWaitingAccept()
    {
        var transport = new TcpStreamTransport();
        var listener = await transport.ListenAsync(Loopback, CancellationToken.None);
        var waiting = listener.AcceptAsync(CancellationToken.None).AsTask();
        await listener.DisposeAsync();
        Assert.Null(await waiting);
        Assert.Null(await listener.AcceptAsync(CancellationToken.None));
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await using var other = await transport.ListenAsync(Loopback, CancellationToken.None);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await other.AcceptAsync(cts.Token));
    }

    [Fact]
    public async Task APortNobodyListensOnRefuses()
    {
        // A bound socket that does not listen: the kernel answers a SYN to it with RST.
        using var reserved = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        reserved.Bind(Loopback);
        var refused = await Assert.ThrowsAsync<SocketException>(async () =>
            await new TcpStreamTransport().ConnectAsync((IPEndPoint)reserved.LocalEndPoint!, CancellationToken.None));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Fact]
    public async Task AConnectThatIsNotAnsweredTimesOutOnTheTransportsClock()
    {
        // listen(2) with a backlog of 1 queues two connections; Linux drops further SYNs while nobody accepts
        // (tcp_conn_request: accept queue full), so the third connect waits for an answer that does not come.
        var time = new FakeTimeProvider();
        var options = new TcpStreamTransportOptions { Backlog = 1, ConnectTimeout = TimeSpan.FromSeconds(3) };
        var transport = new TcpStreamTransport(options, time);
        await using var listener = await transport.ListenAsync(Loopback, CancellationToken.None);
        await using var first = await transport.ConnectAsync(listener.LocalEndPoint, CancellationToken.None);
        await using var second = await transport.ConnectAsync(listener.LocalEndPoint, CancellationToken.None);
        var third = transport.ConnectAsync(listener.LocalEndPoint, CancellationToken.None).AsTask();
        Assert.False(third.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.False(third.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        var timedOut = await Assert.ThrowsAsync<SocketException>(() => third);
        Assert.Equal(SocketError.TimedOut, timedOut.SocketErrorCode);
    }

    [Fact]
    public void OptionsAreValidated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TcpStreamTransport(new TcpStreamTransportOptions { ConnectTimeout = TimeSpan.Zero }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TcpStreamTransport(new TcpStreamTransportOptions { Backlog = 0 }));
    }
}
