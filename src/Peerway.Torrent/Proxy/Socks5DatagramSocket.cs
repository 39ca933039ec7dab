using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Net;

namespace Peerway.Torrent.Proxy;

/// <summary>A granted UDP ASSOCIATE (RFC 1928 §7): the control connection that keeps it alive, and the relay's address.</summary>
public sealed record Socks5UdpAssociation(IStreamConnection Control, IPEndPoint Relay);

/// <summary>
/// An <see cref="IDatagramSocket"/> whose datagrams go through a SOCKS5 UDP relay (RFC 1928 §7). Each datagram is sent
/// to the relay with the §7 header naming its destination; a datagram from the relay is unwrapped and reported as coming
/// from the address in its header. Dropped: datagrams not from the relay, fragments (FRAG ≠ 0) and malformed headers.
/// The association lasts while the TCP control connection is open: when the proxy closes it, the socket stops sending,
/// logs one warning and completes <see cref="Closed"/>.
/// </summary>
public sealed class Socks5DatagramSocket : IDatagramSocket, IAsyncDisposable
{
    private readonly IDatagramSocket _inner;
    private readonly IStreamConnection _control;
    private readonly IPEndPoint _relay;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource<string> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _sendLock = new();
    private readonly byte[] _sendBuffer = new byte[Socks5UdpHeader.MaxLength + 65_535];
    private readonly Task _watch;
    private long _dropped;

    /// <param name="inner">The local UDP socket the relay's datagrams arrive on (owned: disposed with this).</param>
    /// <param name="association">From <see cref="ProxyStreamTransport.UdpAssociateAsync"/> (its control connection is owned).</param>
    /// <param name="log">Logs dropped datagrams and the control connection's end; null: none.</param>
    public Socks5DatagramSocket(IDatagramSocket inner, Socks5UdpAssociation association, ILogger? log = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(association);
        _inner = inner;
        _control = association.Control;
        _relay = Normalize(association.Relay);
        _log = log ?? NullLogger.Instance;
        _log.LogInformation("the SOCKS5 relay {Relay} relays our UDP (uTP, the DHT) from {Local}", _relay, inner.LocalEndPoint);
        // Ends on Dispose or when the proxy closes the connection; it never throws (see WatchAsync). Awaited by DisposeAsync.
        _watch = WatchAsync(_stop.Token);
    }

    /// <summary>Asks <paramref name="proxy"/> for a UDP relay and wraps <paramref name="inner"/>; a refusal throws <see cref="ProxyException"/>.</summary>
    public static async Task<Socks5DatagramSocket> AssociateAsync(ProxyStreamTransport proxy, IDatagramSocket inner, ILogger? log, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(proxy);
        var association = await proxy.UdpAssociateAsync(ct).ConfigureAwait(false);
        return new Socks5DatagramSocket(inner, association, log);
    }

    /// <summary>The local socket's address (datagrams to it come from the relay only).</summary>
    public IPEndPoint LocalEndPoint => _inner.LocalEndPoint;

    /// <summary>The relay datagrams are sent to.</summary>
    public IPEndPoint Relay => _relay;

    /// <summary>Completes with the reason when the association has ended (the proxy closed the control connection).</summary>
    public Task<string> Closed => _closed.Task;

    /// <summary>Datagrams dropped on arrival: not from the relay, fragments, malformed headers.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <inheritdoc/>
    public void Start(DatagramHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        _inner.Start((datagram, remote) =>
        {
            if (!Normalize(remote).Equals(_relay))
            {
                Interlocked.Increment(ref _dropped);
                return;
            }

            var error = Socks5UdpHeader.TryRead(datagram, out var source, out var offset);
            if (error != Socks5UdpError.None)
            {
                if (Interlocked.Increment(ref _dropped) == 1) _log.LogInformation("dropped a datagram from the SOCKS5 relay {Relay}: {Error}", _relay, error);
                return;
            }

            handler(datagram[offset..], source!);
        });
    }

    /// <summary>Sends <paramref name="datagram"/> to <paramref name="remote"/> through the relay (RFC 1928 §7 header prepended).</summary>
    public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        ArgumentNullException.ThrowIfNull(remote);
        if (_closed.Task.IsCompleted || datagram.Length > 65_535) return;
        lock (_sendLock)
        {
            var header = Socks5UdpHeader.Write(_sendBuffer, remote);
            datagram.CopyTo(_sendBuffer.AsSpan(header));
            _inner.Send(_sendBuffer.AsSpan(0, header + datagram.Length), _relay);
        }
    }

    // RFC 1928 §7: "A UDP association terminates when the TCP connection that the UDP ASSOCIATE request arrived on terminates."
    private async Task WatchAsync(CancellationToken ct)
    {
        await using (_control.ConfigureAwait(false))
        {
            var reason = await ReadUntilClosedAsync(ct).ConfigureAwait(false);
            if (reason is null) return;
            _log.LogWarning("SOCKS5 relay {Relay}: {Reason}; DHT and uTP datagrams are no longer sent", _relay, reason);
            _closed.TrySetResult(reason);
        }
    }

    private async Task<string?> ReadUntilClosedAsync(CancellationToken ct)
    {
        await Task.Yield();
        try
        {
            var buffer = new byte[256];
            while (await _control.Stream.ReadAsync(buffer, ct).ConfigureAwait(false) > 0)
            {
                // The proxy sends nothing after its reply; anything it does send is ignored.
            }

            return ct.IsCancellationRequested ? null : "the proxy closed the UDP ASSOCIATE control connection";
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return null;
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            return ct.IsCancellationRequested ? null : $"the UDP ASSOCIATE control connection failed: {ex.Message}";
        }
    }

    /// <summary>Closes the local socket and the association's control connection.</summary>
    public void Dispose()
    {
        // The watch ends on the cancellation (or the abort) and disposes the control connection.
        if (!_stop.IsCancellationRequested) _stop.Cancel();
        _control.Abort();
        _inner.Dispose();
    }

    /// <summary>Disposes, then waits until the control connection's watch has ended and closed it.</summary>
    public async ValueTask DisposeAsync()
    {
        Dispose();
        await _watch.ConfigureAwait(false);
        _stop.Dispose();
    }

    private static IPEndPoint Normalize(IPEndPoint endPoint) =>
        endPoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endPoint.Address.MapToIPv4(), endPoint.Port) : endPoint;
}
