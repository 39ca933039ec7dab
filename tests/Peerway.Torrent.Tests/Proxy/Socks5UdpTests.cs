using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Peerway.Net;
using Peerway.Torrent.Proxy;

namespace Peerway.Torrent.Tests.Proxy;

/// <summary>
/// SOCKS5 UDP ASSOCIATE (RFC 1928 §7): the datagram header codec (fuzzed, 10^6 inputs) and
/// <see cref="Socks5DatagramSocket"/> against a small SOCKS5 UDP relay written here (the real one, dante, is in the
/// interop tests).
/// </summary>
public sealed class Socks5UdpTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData("10.1.2.3", 6881, "00000001" + "0a010203" + "1ae1")]
    [InlineData("2001:db8::7", 80, "00000004" + "20010db8000000000000000000000007" + "0050")]
    [InlineData("::ffff:127.0.0.1", 1, "00000001" + "7f000001" + "0001")]
    public void The_header_is_rfc_1928_section_7(string address, int port, string hex)
    {
        var buffer = new byte[Socks5UdpHeader.MaxLength];
        var n = Socks5UdpHeader.Write(buffer, new IPEndPoint(IPAddress.Parse(address), port));
        Assert.Equal(hex, Convert.ToHexString(buffer, 0, n), ignoreCase: true);
        Assert.Equal(Socks5UdpError.None, Socks5UdpHeader.TryRead([.. buffer.AsSpan(0, n), 42], out var source, out var offset));
        Assert.Equal(n, offset);
        Assert.Equal(port, source!.Port);
    }

    [Theory]
    [InlineData("000000017f0000", Socks5UdpError.Truncated)]
    [InlineData("000001", Socks5UdpError.Truncated)]
    [InlineData("000100017f0000010001", Socks5UdpError.Reserved)]
    [InlineData("000001017f0000010001", Socks5UdpError.Fragment)]
    [InlineData("00000003036162630001", Socks5UdpError.DomainName)]
    [InlineData("000000057f0000010001", Socks5UdpError.AddressType)]
    [InlineData("0000000420010db8", Socks5UdpError.Truncated)]
    public void Bad_headers_are_typed_errors(string hex, object expected)
    {
        // object: Socks5UdpError is internal, and a public test method cannot take it.
        Assert.Equal((Socks5UdpError)expected, Socks5UdpHeader.TryRead(Convert.FromHexString(hex), out var source, out _));
        Assert.Null(source);
    }

    [Fact]
    public void A_million_random_and_mutated_datagrams_never_throw_and_a_read_header_lies_within_the_datagram()
    {
        var random = new Random(1928);
        var buffer = new byte[64];
        var accepted = 0;
        for (var i = 0; i < 1_000_000; i++)
        {
            var length = random.Next(buffer.Length + 1);
            var d = buffer.AsSpan(0, length);
            random.NextBytes(d);
            // Half the inputs start as a valid header, then get one byte flipped or cut short.
            if (random.Next(2) == 0 && length >= Socks5UdpHeader.MaxLength)
            {
                var v6 = random.Next(2) == 0;
                var n = Socks5UdpHeader.Write(d, new IPEndPoint(v6 ? IPAddress.IPv6Loopback : IPAddress.Loopback, random.Next(65536)));
                if (random.Next(2) == 0) d[random.Next(n)] ^= (byte)(1 << random.Next(8));
                d = d[..random.Next(length + 1)];
            }

            var error = Socks5UdpHeader.TryRead(d, out var source, out var offset);
            Assert.True(Enum.IsDefined(error));
            if (error != Socks5UdpError.None)
            {
                Assert.Null(source);
                continue;
            }

            accepted++;
            Assert.InRange(offset, 10, d.Length);
            Assert.Equal(0, d[2]);
            var again = new byte[Socks5UdpHeader.MaxLength];
            Assert.Equal(d[..offset].ToArray(), again.AsSpan(0, Socks5UdpHeader.Write(again, source!)).ToArray());
        }

        Assert.True(accepted > 100_000, $"{accepted} accepted");
    }

    /// <summary>
    /// A SOCKS5 server that grants UDP ASSOCIATE (no authentication) with BND 0.0.0.0:relay port, as dante does on a
    /// wildcard address, then keeps the control connection until <paramref name="close"/> completes.
    /// </summary>
    private static Task<byte[]> GrantAsync(TcpListener listener, int relayPort, byte reply, Task close) =>
        GrantAsync(listener, relayPort, reply, _ => close);

    private static async Task<byte[]> GrantAsync(TcpListener listener, int relayPort, byte reply, Func<Stream, Task> then)
    {
        using var client = await listener.AcceptTcpClientAsync();
        var s = client.GetStream();
        var greeting = new byte[3];
        await s.ReadExactlyAsync(greeting);
        await s.WriteAsync(new byte[] { 5, 0 });
        var request = new byte[10];
        await s.ReadExactlyAsync(request);
        await s.WriteAsync(new byte[] { 5, reply, 0, 1, 0, 0, 0, 0, (byte)(relayPort >> 8), (byte)relayPort });
        await then(s);
        return request;
    }

    [Fact]
    public async Task DisposeAsync_ends_the_watch_and_closes_the_control_connection_which_is_not_reported_as_the_proxy_closing()
    {
        var (transport, listener) = await ProxyStreamTransportTests.ProxyAsync(ProxyKind.Socks5);
        using var _ = listener;
        using var relay = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var server = GrantAsync(listener, ((IPEndPoint)relay.Client.LocalEndPoint!).Port, 0, async s =>
        {
            // The proxy's side: the association lasts until the client closes the control connection (EOF or a reset).
            var buffer = new byte[16];
            try
            {
                while (await s.ReadAsync(buffer) > 0)
                {
                }
            }
            catch (IOException)
            {
                // A reset (our Abort) ends the association as well as an EOF does.
            }
        });
        var socket = await Socks5DatagramSocket.AssociateAsync(transport, new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), null, CancellationToken.None);
        Assert.False(server.IsCompleted);
        await socket.DisposeAsync().AsTask().WaitAsync(Deadline);
        await server.WaitAsync(Deadline);
        Assert.False(socket.Closed.IsCompleted, "our own disposal is not the proxy ending the association");
        await socket.DisposeAsync(); // twice is harmless
    }

    [Fact]
    public async Task Datagrams_go_through_the_relay_with_the_header_and_come_back_from_their_source_until_the_control_connection_closes()
    {
        var (transport, listener) = await ProxyStreamTransportTests.ProxyAsync(ProxyKind.Socks5);
        using var _ = listener;
        using var relay = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var relayPort = ((IPEndPoint)relay.Client.LocalEndPoint!).Port;
        var close = new TaskCompletionSource();
        var server = GrantAsync(listener, relayPort, 0, close.Task);

        var received = Channel.CreateUnbounded<(string Text, IPEndPoint From)>();
        await using var socket = await Socks5DatagramSocket.AssociateAsync(transport, new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0)), null, CancellationToken.None);
        socket.Start((d, from) => received.Writer.TryWrite((System.Text.Encoding.ASCII.GetString(d), from)));
        // BND.ADDR 0.0.0.0 means the proxy's own address.
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, relayPort), socket.Relay);

        var peer = new IPEndPoint(IPAddress.Parse("10.9.8.7"), 6881);
        socket.Send("hello"u8, peer);
        var sent = await relay.ReceiveAsync().WaitAsync(Deadline);
        Assert.Equal("000000010a0908071ae1" + Convert.ToHexString("hello"u8), Convert.ToHexString(sent.Buffer), ignoreCase: true);
        var client = sent.RemoteEndPoint;

        byte[] Wrap(IPEndPoint from, string text)
        {
            var b = new byte[Socks5UdpHeader.MaxLength + text.Length];
            var n = Socks5UdpHeader.Write(b, from);
            n += System.Text.Encoding.ASCII.GetBytes(text, b.AsSpan(n));
            return b[..n];
        }

        await relay.SendAsync(Wrap(peer, "world"), client);
        var fragment = Wrap(peer, "fragment");
        fragment[2] = 1;
        await relay.SendAsync(fragment, client);
        using (var stranger = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0)))
        {
            await stranger.SendAsync(Wrap(peer, "not from the relay"), client);
        }

        var other = new IPEndPoint(IPAddress.Parse("2001:db8::1"), 51413);
        await relay.SendAsync(Wrap(other, "last"), client);

        Assert.Equal(("world", peer), await received.Reader.ReadAsync().AsTask().WaitAsync(Deadline));
        Assert.Equal(("last", other), await received.Reader.ReadAsync().AsTask().WaitAsync(Deadline));
        Assert.False(received.Reader.TryRead(out var extra), $"unexpected datagram '{extra.Text}'");
        Assert.Equal(2, socket.Dropped);

        Assert.False(socket.Closed.IsCompleted);
        close.SetResult();
        var request = await server.WaitAsync(Deadline);
        Assert.Equal("05030001000000000000", Convert.ToHexString(request));
        var reason = await socket.Closed.WaitAsync(Deadline);
        Assert.Contains("closed the UDP ASSOCIATE control connection", reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_proxy_that_refuses_udp_associate_is_a_proxy_exception_naming_the_reply()
    {
        var (transport, listener) = await ProxyStreamTransportTests.ProxyAsync(ProxyKind.Socks5);
        using var _ = listener;
        var server = GrantAsync(listener, 0, 7, Task.CompletedTask);
        using var inner = new UdpDatagramSocket(new IPEndPoint(IPAddress.Loopback, 0));
        var ex = await Assert.ThrowsAsync<ProxyException>(() => Socks5DatagramSocket.AssociateAsync(transport, inner, null, CancellationToken.None));
        Assert.Contains("refused UDP ASSOCIATE: command not supported", ex.Message, StringComparison.Ordinal);
        await server.WaitAsync(Deadline);
    }
}
