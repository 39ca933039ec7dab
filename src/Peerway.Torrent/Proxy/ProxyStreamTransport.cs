using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Net;

namespace Peerway.Torrent.Proxy;

/// <summary>A proxy that refused, failed or broke its protocol: the connection is not made (an <see cref="IOException"/>, as any failed connect).</summary>
public sealed class ProxyException(string message) : IOException(message);

/// <summary>
/// A decorator on the transport seam: every outgoing connection of the inner (TCP) transport goes to the proxy, which
/// is asked to connect onwards — SOCKS5 CONNECT (RFC 1928, RFC 1929 username/password) or HTTP CONNECT. Listening is
/// the inner transport's own (a proxy carries outgoing connections only). What the proxy answers is read with bounds
/// (a SOCKS5 reply is at most 262 bytes, an HTTP response head 8 KiB) within <paramref name="handshakeTimeout"/>; a
/// refusal or a malformed answer is a <see cref="ProxyException"/> with a one-line reason, logged as a warning the
/// first time each reason is seen.
/// </summary>
public sealed class ProxyStreamTransport(IStreamTransport inner, ProxySettings proxy, TimeSpan handshakeTimeout, TimeProvider? time = null, ILogger? log = null) : IStreamTransport
{
    /// <summary>Longest HTTP CONNECT response head read.</summary>
    public const int MaxHttpResponseHead = 8192;

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ILogger _log = log ?? NullLogger.Instance;
    private readonly HashSet<string> _logged = [];

    /// <summary>The inner transport's kind.</summary>
    public StreamTransportKind Kind => inner.Kind;

    /// <summary>The proxy connections go through.</summary>
    public ProxySettings Proxy => proxy;

    /// <summary>Listens through the inner transport (not through the proxy).</summary>
    public ValueTask<IStreamListener> ListenAsync(IPEndPoint localEndPoint, CancellationToken cancellationToken) => inner.ListenAsync(localEndPoint, cancellationToken);

    /// <summary>Connects to the proxy through the inner transport and asks it for <paramref name="remoteEndPoint"/>. Throws <see cref="ProxyException"/> when the proxy refuses or answers badly or does not finish its handshake in time.</summary>
    public async ValueTask<IStreamConnection> ConnectAsync(IPEndPoint remoteEndPoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(remoteEndPoint);
        var connection = await ConnectToProxyAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var deadline = new CancellationTokenSource(handshakeTimeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
            try
            {
                if (proxy.Kind == ProxyKind.Socks5)
                {
                    await Socks5GreetAsync(connection.Stream, linked.Token).ConfigureAwait(false);
                    await Socks5RequestAsync(connection.Stream, 1, remoteEndPoint, linked.Token).ConfigureAwait(false);
                }
                else
                {
                    await HttpConnectAsync(connection.Stream, remoteEndPoint, linked.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw Fail($"proxy {proxy} did not finish its handshake within {handshakeTimeout.TotalSeconds:0.#} s");
            }
            catch (EndOfStreamException)
            {
                throw Fail($"proxy {proxy} closed the connection during its handshake");
            }

            return new ProxiedConnection(connection, remoteEndPoint);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Connects to the proxy and, for SOCKS5, authenticates, then closes: a wrong password is found before anything is fetched.</summary>
    public async Task CheckAsync(CancellationToken ct)
    {
        if (proxy.Kind != ProxyKind.Socks5) return; // HTTP CONNECT authenticates per request only
        var connection = await ConnectToProxyAsync(ct).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            using var deadline = new CancellationTokenSource(handshakeTimeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
            try
            {
                await Socks5GreetAsync(connection.Stream, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw Fail($"proxy {proxy} did not finish its handshake within {handshakeTimeout.TotalSeconds:0.#} s");
            }
            catch (EndOfStreamException)
            {
                throw Fail($"proxy {proxy} closed the connection during its handshake");
            }
        }
    }

    private async Task<IStreamConnection> ConnectToProxyAsync(CancellationToken ct)
    {
        IPAddress[] addresses;
        if (IPAddress.TryParse(proxy.Host, out var literal))
        {
            addresses = [literal];
        }
        else
        {
            try
            {
                addresses = await Dns.GetHostAddressesAsync(proxy.Host, ct).ConfigureAwait(false);
            }
            catch (SocketException ex)
            {
                throw Fail($"proxy {proxy}: cannot resolve its host ({ex.Message})");
            }
        }

        if (addresses.Length == 0) throw Fail($"proxy {proxy}: its host has no address");
        try
        {
            return await inner.ConnectAsync(new IPEndPoint(addresses[0], proxy.Port), ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException)
        {
            throw Fail($"proxy {proxy} cannot be reached: {ex.Message}");
        }
    }

    // RFC 1928 §3: VER=5, NMETHODS, METHODS (0x00 no authentication, 0x02 username/password); the server picks one or 0xFF.
    private async Task Socks5GreetAsync(Stream s, CancellationToken ct)
    {
        var withPassword = proxy.UserName is not null;
        byte[] greeting = withPassword ? [5, 2, 0, 2] : [5, 1, 0];
        await s.WriteAsync(greeting, ct).ConfigureAwait(false);
        var choice = new byte[2];
        await s.ReadExactlyAsync(choice, ct).ConfigureAwait(false);
        if (choice[0] != 5) throw Fail($"proxy {proxy} is not a SOCKS5 server (version byte {choice[0]})");
        switch (choice[1])
        {
            case 0:
                return;
            case 2 when withPassword:
                break;
            case 0xFF:
                throw Fail($"proxy {proxy} accepts none of our authentication methods ({(withPassword ? "none, username/password" : "none: it wants a username and password")})");
            default:
                throw Fail($"proxy {proxy} chose authentication method {choice[1]}, which we did not offer");
        }

        // RFC 1929 §2: VER=1, ULEN, UNAME, PLEN, PASSWD; the reply is VER, STATUS (0: success).
        var user = Encoding.UTF8.GetBytes(proxy.UserName!);
        var password = Encoding.UTF8.GetBytes(proxy.Password ?? "");
        var request = new byte[3 + user.Length + password.Length];
        request[0] = 1;
        request[1] = (byte)user.Length;
        user.CopyTo(request, 2);
        request[2 + user.Length] = (byte)password.Length;
        password.CopyTo(request, 3 + user.Length);
        await s.WriteAsync(request, ct).ConfigureAwait(false);
        var status = new byte[2];
        await s.ReadExactlyAsync(status, ct).ConfigureAwait(false);
        if (status[1] != 0) throw Fail($"proxy {proxy} refused the username/password for '{proxy.UserName}' (RFC 1929 status {status[1]})");
    }

    /// <summary>
    /// RFC 1928 §7 UDP ASSOCIATE: connects to the proxy, authenticates, and asks for a UDP relay. Returns the control
    /// connection (the association lasts as long as it is open) and the relay's address (BND; 0.0.0.0 or :: means the
    /// proxy's own address). A refusal (e.g. "command not supported") is a <see cref="ProxyException"/>, logged once.
    /// </summary>
    public async Task<Socks5UdpAssociation> UdpAssociateAsync(CancellationToken ct)
    {
        if (proxy.Kind != ProxyKind.Socks5) throw Fail($"proxy {proxy} is an HTTP CONNECT proxy: it cannot relay UDP");
        var connection = await ConnectToProxyAsync(ct).ConfigureAwait(false);
        try
        {
            using var deadline = new CancellationTokenSource(handshakeTimeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
            IPEndPoint bound;
            try
            {
                await Socks5GreetAsync(connection.Stream, linked.Token).ConfigureAwait(false);
                // DST all zeros: the client's UDP address is not known to it behind NAT (§7 allows it).
                bound = await Socks5RequestAsync(connection.Stream, 3, new IPEndPoint(IPAddress.Any, 0), linked.Token).ConfigureAwait(false)
                    ?? throw Fail($"proxy {proxy} answered UDP ASSOCIATE with a domain name for its relay");
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw Fail($"proxy {proxy} did not finish its handshake within {handshakeTimeout.TotalSeconds:0.#} s");
            }
            catch (EndOfStreamException)
            {
                throw Fail($"proxy {proxy} closed the connection during its handshake");
            }

            var relay = bound.Address.Equals(IPAddress.Any) || bound.Address.Equals(IPAddress.IPv6Any)
                ? new IPEndPoint(connection.RemoteEndPoint.Address, bound.Port)
                : bound;
            return new Socks5UdpAssociation(connection, relay);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    // RFC 1928 §4-6: request VER CMD RSV ATYP DST.ADDR DST.PORT (CMD 1 CONNECT, 3 UDP ASSOCIATE);
    // reply VER REP RSV ATYP BND.ADDR BND.PORT. Returns BND (null when it is a domain name).
    private async Task<IPEndPoint?> Socks5RequestAsync(Stream s, byte command, IPEndPoint target, CancellationToken ct)
    {
        var name = command == 1 ? "CONNECT" : "UDP ASSOCIATE";
        var address = target.Address.IsIPv4MappedToIPv6 ? target.Address.MapToIPv4() : target.Address;
        var v6 = address.AddressFamily == AddressFamily.InterNetworkV6;
        var request = new byte[6 + (v6 ? 16 : 4)];
        request[0] = 5;
        request[1] = command;
        request[3] = v6 ? (byte)4 : (byte)1;
        address.TryWriteBytes(request.AsSpan(4), out _);
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(request.Length - 2), (ushort)target.Port);
        await s.WriteAsync(request, ct).ConfigureAwait(false);
        var head = new byte[4];
        await s.ReadExactlyAsync(head, ct).ConfigureAwait(false);
        if (head[0] != 5 || head[2] != 0) throw Fail($"proxy {proxy} answered {name} with a malformed reply (version {head[0]}, reserved {head[2]})");
        if (head[1] != 0)
        {
            throw Fail(command == 1
                ? $"proxy {proxy} could not connect to {target}: {Socks5Reply(head[1])}"
                : $"proxy {proxy} refused UDP ASSOCIATE: {Socks5Reply(head[1])}");
        }

        var rest = head[3] switch
        {
            1 => 4 + 2,
            4 => 16 + 2,
            3 => -1,
            _ => throw Fail($"proxy {proxy} answered {name} with address type {head[3]}, which RFC 1928 does not define"),
        };
        if (rest < 0)
        {
            var length = new byte[1];
            await s.ReadExactlyAsync(length, ct).ConfigureAwait(false);
            await s.ReadExactlyAsync(new byte[length[0] + 2], ct).ConfigureAwait(false);
            return null;
        }

        var bound = new byte[rest];
        await s.ReadExactlyAsync(bound, ct).ConfigureAwait(false);
        return new IPEndPoint(new IPAddress(bound.AsSpan(0, rest - 2)), BinaryPrimitives.ReadUInt16BigEndian(bound.AsSpan(rest - 2)));
    }

    /// <summary>RFC 1928 §6 reply codes.</summary>
    private static string Socks5Reply(byte code) => code switch
    {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => string.Create(CultureInfo.InvariantCulture, $"reply code {code}"),
    };

    private async Task HttpConnectAsync(Stream s, IPEndPoint target, CancellationToken ct)
    {
        var authority = target.Address.AddressFamily == AddressFamily.InterNetworkV6
            ? string.Create(CultureInfo.InvariantCulture, $"[{target.Address}]:{target.Port}")
            : string.Create(CultureInfo.InvariantCulture, $"{target.Address}:{target.Port}");
        var request = new StringBuilder().Append("CONNECT ").Append(authority).Append(" HTTP/1.1\r\nHost: ").Append(authority).Append("\r\n");
        if (proxy.UserName is not null)
        {
            request.Append("Proxy-Authorization: Basic ").Append(Convert.ToBase64String(Encoding.UTF8.GetBytes($"{proxy.UserName}:{proxy.Password}"))).Append("\r\n");
        }

        request.Append("\r\n");
        await s.WriteAsync(Encoding.ASCII.GetBytes(request.ToString()), ct).ConfigureAwait(false);
        // Byte by byte up to the blank line: nothing after the head (the peer's first bytes) is read here.
        var head = new byte[MaxHttpResponseHead];
        var length = 0;
        var one = new byte[1];
        while (length < 4 || !head.AsSpan(length - 4, 4).SequenceEqual("\r\n\r\n"u8))
        {
            if (length == head.Length) throw Fail($"proxy {proxy} sent a CONNECT response head longer than {MaxHttpResponseHead} bytes");
            await s.ReadExactlyAsync(one, ct).ConfigureAwait(false);
            head[length++] = one[0];
        }

        var statusLine = Encoding.ASCII.GetString(head, 0, head.AsSpan(0, length).IndexOf("\r\n"u8));
        var parts = statusLine.Split(' ', 3);
        if (parts.Length < 2 || !parts[0].StartsWith("HTTP/1.", StringComparison.Ordinal) || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var status))
        {
            throw Fail($"proxy {proxy} answered CONNECT with a malformed status line");
        }

        if (status / 100 != 2) throw Fail($"proxy {proxy} refused CONNECT {authority}: {status}{(parts.Length > 2 ? " " + parts[2] : "")}");
    }

    /// <summary>The exception for a proxy failure, logged as a warning the first time its reason is seen (64 reasons remembered at most).</summary>
    private ProxyException Fail(string reason)
    {
        bool first;
        lock (_logged) first = _logged.Count < 64 && _logged.Add(reason);
        if (first) _log.LogWarning("{Reason}", reason);
        return new ProxyException(reason);
    }

    /// <summary>A connection through the proxy: the proxy's stream, the peer's address.</summary>
    private sealed class ProxiedConnection(IStreamConnection connection, IPEndPoint remote) : IStreamConnection
    {
        public Stream Stream => connection.Stream;

        public IPEndPoint RemoteEndPoint => remote;

        public IPEndPoint LocalEndPoint => connection.LocalEndPoint;

        public StreamTransportKind Kind => connection.Kind;

        public void Abort() => connection.Abort();

        public ValueTask DisposeAsync() => connection.DisposeAsync();
    }
}
