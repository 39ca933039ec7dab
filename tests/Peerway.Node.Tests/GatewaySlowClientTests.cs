using System.Net;
using System.Net.Sockets;
using System.Text;
using Peerway.Content.Blocks;
using Peerway.Content.UnixFs;
using Peerway.Node.Content;

namespace Peerway.Node.Tests;

/// <summary>
/// Issue 20 §4: slow and idle HTTP clients cannot hold the gateway. Kestrel's limits are driven small through
/// <see cref="GatewayServerOptions"/>; a test only waits, with a generous bound, for the server to close what it must.
/// </summary>
public sealed class GatewaySlowClientTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Slowloris_slow_body_and_idle_connections_are_closed_while_a_normal_client_is_served()
    {
        var (store, cid, content) = Sample();
        var options = new GatewayServerOptions
        {
            HeadersTimeout = TimeSpan.FromSeconds(2),
            IdleTimeout = TimeSpan.FromSeconds(2),
            MinBodyBytesPerSecond = 100,
            BodyGracePeriod = TimeSpan.FromSeconds(2),
        };
        await using var server = new GatewayServer(store, "127.0.0.1", 0, options: options);
        await server.StartAsync(CancellationToken.None);
        var flood = new List<Socket>();
        try
        {
            // Part of a header, then nothing (slowloris).
            for (var i = 0; i < 100; i++) flood.Add(await ConnectAsync(server.Port, $"GET /ipfs/{cid} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-{i}: "));
            // A whole header announcing a body that comes at 10 bytes and stops.
            for (var i = 0; i < 50; i++) flood.Add(await ConnectAsync(server.Port, $"POST /ipfs/{cid} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n0123456789"));
            // Nothing at all.
            for (var i = 0; i < 50; i++) flood.Add(await ConnectAsync(server.Port, string.Empty));

            using (var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.Port}") })
            {
                var served = await http.GetByteArrayAsync($"/ipfs/{cid}").WaitAsync(Generous);
                Assert.Equal(content, served);
            }

            var answers = await Task.WhenAll(flood.Select(ClosedByServerAsync)).WaitAsync(Generous);
            // The slow bodies are cut off by the body rate (408), not answered: the gateway reads a body before anything.
            Assert.All(answers[100..150], a => Assert.StartsWith("HTTP/1.1 408", a, StringComparison.Ordinal));
            Assert.All(answers[..100].Concat(answers[150..]), a => Assert.DoesNotContain("200 OK", a, StringComparison.Ordinal));
        }
        finally
        {
            foreach (var s in flood) s.Dispose();
        }
    }

    [Fact]
    public async Task Connections_beyond_the_cap_are_closed_at_once_and_those_within_it_stay()
    {
        var (store, cid, _) = Sample();
        var options = new GatewayServerOptions { MaxConnections = 20, HeadersTimeout = TimeSpan.FromMinutes(5), IdleTimeout = TimeSpan.FromMinutes(5) };
        await using var server = new GatewayServer(store, "127.0.0.1", 0, options: options);
        await server.StartAsync(CancellationToken.None);
        var flood = new List<Socket>();
        try
        {
            for (var i = 0; i < 30; i++) flood.Add(await ConnectAsync(server.Port, $"GET /ipfs/{cid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
            var closed = flood.Select(s => (Socket: s, Closed: ClosedByServerAsync(s))).ToList();

            // The timeouts are minutes away: only the cap closes connections, and exactly those beyond it.
            while (closed.Count(c => c.Closed.IsCompleted) < 10)
            {
                await Task.WhenAny(closed.Where(c => !c.Closed.IsCompleted).Select(c => c.Closed)).WaitAsync(Generous);
            }

            Assert.Equal(20, closed.Count(c => !c.Closed.IsCompleted));
        }
        finally
        {
            foreach (var s in flood) s.Dispose();
        }
    }

    [Fact]
    public async Task A_taken_port_is_an_IOException_saying_so()
    {
        var (store, _, _) = Sample();
        await using var first = new GatewayServer(store, "127.0.0.1", 0);
        await first.StartAsync(CancellationToken.None);
        await using var second = new GatewayServer(store, "127.0.0.1", first.Port);

        var error = await Assert.ThrowsAsync<IOException>(() => second.StartAsync(CancellationToken.None));
        Assert.Contains("in use", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    private static (MemoryBlockStore Store, string Cid, byte[] Content) Sample()
    {
        var store = new MemoryBlockStore();
        var content = new byte[3000];
        new Random(20).NextBytes(content);
        var root = new UnixFsImporter(store, new ImportOptions { ChunkSize = 1000 }).ImportBytes(content);
        return (store, root.Cid.ToString(), content);
    }

    private static async Task<Socket> ConnectAsync(int port, string send)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        if (send.Length > 0) await socket.SendAsync(Encoding.ASCII.GetBytes(send));
        return socket;
    }

    /// <summary>Completes when the server ends the connection (FIN or reset) with whatever answer it sent.</summary>
    private static async Task<string> ClosedByServerAsync(Socket socket)
    {
        var buffer = new byte[4096];
        var received = new StringBuilder();
        try
        {
            for (int n; (n = await socket.ReceiveAsync(buffer)) > 0;) received.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        catch (SocketException)
        {
            // Reset by the server: closed as well.
        }

        return received.ToString();
    }
}
