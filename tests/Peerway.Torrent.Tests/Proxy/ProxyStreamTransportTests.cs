using System.Net;
using System.Net.Sockets;
using System.Text;
using Peerway.Net;
using Peerway.Torrent.Proxy;

namespace Peerway.Torrent.Tests.Proxy;

/// <summary>
/// Proxy URLs, and the HTTP CONNECT and SOCKS5 handshakes against small scripted proxies on loopback (the real SOCKS5
/// server, microsocks, is in the interop tests): what is sent, what is accepted, and each refusal as a
/// <see cref="ProxyException"/> with a one-line reason.
/// </summary>
public sealed class ProxyStreamTransportTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData("socks5://user:p%40ss@10.0.0.1:1080", ProxyKind.Socks5, "10.0.0.1", 1080, "user", "p@ss")]
    [InlineData("socks5://proxy.example:9050", ProxyKind.Socks5, "proxy.example", 9050, null, null)]
    [InlineData("http://[::1]:3128", ProxyKind.HttpConnect, "::1", 3128, null, null)]
    public void Proxy_urls_parse(string url, ProxyKind kind, string host, int port, string? user, string? password)
    {
        Assert.True(ProxySettings.TryParse(url, out var proxy, out var error), error);
        Assert.Equal(new ProxySettings { Kind = kind, Host = host, Port = port, UserName = user, Password = password }, proxy);
        Assert.DoesNotContain("@", proxy!.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("socks4://h:1")]
    [InlineData("socks5://h")]
    [InlineData("http://h:8080/path")]
    [InlineData("nonsense")]
    [InlineData("")]
    public void Bad_proxy_urls_are_refused_with_a_reason(string url)
    {
        Assert.False(ProxySettings.TryParse(url, out _, out var error));
        Assert.NotEmpty(error);
    }

    /// <summary>One scripted proxy connection: the request bytes it read until <paramref name="requestEnd"/>, then <paramref name="answer"/>, then "peer data".</summary>
    private static async Task<string> ScriptAsync(TcpListener listener, byte[] requestEnd, byte[] answer)
    {
        using var client = await listener.AcceptTcpClientAsync();
        var s = client.GetStream();
        var seen = new List<byte>();
        var one = new byte[1];
        while (!seen.TakeLast(requestEnd.Length).SequenceEqual(requestEnd))
        {
            await s.ReadExactlyAsync(one);
            seen.Add(one[0]);
        }

        await s.WriteAsync(answer);
        await s.WriteAsync("peer data"u8.ToArray());
        await s.FlushAsync();
        // Held open until the client is done reading.
        await HoldAsync(s);
        return Encoding.Latin1.GetString([.. seen]);
    }

    /// <summary>Keeps the proxy side open until the client closes or aborts.</summary>
    private static async Task HoldAsync(Stream s)
    {
        try
        {
            await s.ReadAtLeastAsync(new byte[1], 1, throwOnEndOfStream: false);
        }
        catch (IOException)
        {
            // The client aborted: done.
        }
    }

    internal static async Task<(ProxyStreamTransport Transport, TcpListener Listener)> ProxyAsync(ProxyKind kind, string? user = null, string? password = null)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        await Task.CompletedTask;
        var settings = new ProxySettings { Kind = kind, Host = "127.0.0.1", Port = ((IPEndPoint)listener.LocalEndpoint).Port, UserName = user, Password = password };
        return (new ProxyStreamTransport(new TcpStreamTransport(), settings, Deadline), listener);
    }

    [Fact]
    public async Task Http_connect_sends_the_target_and_credentials_and_reads_no_further_than_the_response_head()
    {
        var (transport, listener) = await ProxyAsync(ProxyKind.HttpConnect, "u", "p");
        using var _ = listener;
        var server = ScriptAsync(listener, "\r\n\r\n"u8.ToArray(), "HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n"u8.ToArray());
        await using var connection = await transport.ConnectAsync(new IPEndPoint(IPAddress.Parse("10.1.2.3"), 6881), CancellationToken.None);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("10.1.2.3"), 6881), connection.RemoteEndPoint);
        var data = new byte[9];
        await connection.Stream.ReadExactlyAsync(data);
        Assert.Equal("peer data", Encoding.ASCII.GetString(data));
        connection.Abort();
        var request = await server.WaitAsync(Deadline);
        Assert.StartsWith("CONNECT 10.1.2.3:6881 HTTP/1.1\r\nHost: 10.1.2.3:6881\r\n", request, StringComparison.Ordinal);
        Assert.Contains("Proxy-Authorization: Basic dTpw\r\n", request, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Http_connect_refused_is_a_proxy_exception_naming_the_status()
    {
        var (transport, listener) = await ProxyAsync(ProxyKind.HttpConnect);
        using var _ = listener;
        var server = ScriptAsync(listener, "\r\n\r\n"u8.ToArray(), "HTTP/1.1 403 Forbidden\r\n\r\n"u8.ToArray());
        var ex = await Assert.ThrowsAsync<ProxyException>(async () => await transport.ConnectAsync(new IPEndPoint(IPAddress.Loopback, 9), CancellationToken.None));
        Assert.Contains("refused CONNECT 127.0.0.1:9: 403 Forbidden", ex.Message, StringComparison.Ordinal);
        await server.WaitAsync(Deadline);
    }

    [Fact]
    public async Task Socks5_connect_to_ipv6_sends_rfc_1928_bytes()
    {
        var (transport, listener) = await ProxyAsync(ProxyKind.Socks5);
        using var _ = listener;
        // Greeting 05 01 00, then CONNECT 05 01 00 04 <16 bytes> <port>; the reply binds a domain name (ATYP 3).
        var server = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            var s = client.GetStream();
            var greeting = new byte[3];
            await s.ReadExactlyAsync(greeting);
            await s.WriteAsync(new byte[] { 5, 0 });
            var request = new byte[22];
            await s.ReadExactlyAsync(request);
            await s.WriteAsync(new byte[] { 5, 0, 0, 3, 1, (byte)'x', 0, 80 });
            await s.WriteAsync("peer data"u8.ToArray());
            await HoldAsync(s);
            return (greeting, request);
        });
        await using var connection = await transport.ConnectAsync(new IPEndPoint(IPAddress.Parse("2001:db8::7"), 6881), CancellationToken.None);
        var data = new byte[9];
        await connection.Stream.ReadExactlyAsync(data);
        Assert.Equal("peer data", Encoding.ASCII.GetString(data));
        connection.Abort();
        var (g, r) = await server.WaitAsync(Deadline);
        Assert.Equal(new byte[] { 5, 1, 0 }, g);
        Assert.Equal(Convert.FromHexString("050100042001" + "0db8" + "00000000000000000000" + "0007" + "1ae1"), r);
    }
}
