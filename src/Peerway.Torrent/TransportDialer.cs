using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Peerway.Net;

namespace Peerway.Torrent;

/// <summary>
/// How a <see cref="TorrentClient"/> dials a peer over several transports, as libtorrent does: uTP first (BEP 29; most
/// of a real swarm's traffic, and LEDBAT yields to the user's other traffic), and when the uTP connect fails or times
/// out (<see cref="TorrentClientOptions.UtpConnectTimeout"/>), TCP at once. What worked is remembered per peer endpoint
/// (a bounded map), so the next dial to a TCP-only peer does not wait for uTP again.
/// </summary>
internal sealed class TransportDialer : IStreamTransport
{
    /// <summary>Most peers whose working transport is remembered; the map starts over when it is full.</summary>
    internal const int MaxRemembered = 4096;

    private readonly IStreamTransport[] _order;
    private readonly TimeSpan _utpTimeout;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly Dictionary<IPEndPoint, StreamTransportKind> _worked = [];

    /// <param name="transports">The client's transports; uTP ones are tried first, the rest in the order given.</param>
    /// <param name="utpTimeout">How long a uTP attempt may take before the next transport is tried.</param>
    /// <param name="time">The clock for the timeout.</param>
    /// <param name="log">Logs failed attempts.</param>
    public TransportDialer(IReadOnlyList<IStreamTransport> transports, TimeSpan utpTimeout, TimeProvider time, ILogger log)
    {
        _order = [.. transports.Where(t => t.Kind == StreamTransportKind.Utp), .. transports.Where(t => t.Kind != StreamTransportKind.Utp)];
        _utpTimeout = utpTimeout;
        _time = time;
        _log = log;
    }

    public StreamTransportKind Kind => _order[0].Kind;

    /// <summary>The uTP transport, if the client has one (BEP 55 punches through it alone).</summary>
    public IStreamTransport? Utp => Array.Find(_order, t => t.Kind == StreamTransportKind.Utp);

    /// <summary>The transport a connection to <paramref name="remote"/> last succeeded on, if remembered.</summary>
    public StreamTransportKind? Remembered(IPEndPoint remote)
    {
        lock (_gate) return _worked.TryGetValue(remote, out var kind) ? kind : null;
    }

    /// <summary>Not used under a client (it listens on each transport); a standalone session listens on the preferred one.</summary>
    public ValueTask<IStreamListener> ListenAsync(IPEndPoint localEndPoint, CancellationToken cancellationToken) =>
        _order[0].ListenAsync(localEndPoint, cancellationToken);

    public async ValueTask<IStreamConnection> ConnectAsync(IPEndPoint remoteEndPoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(remoteEndPoint);
        if (_order.Length == 1) return await _order[0].ConnectAsync(remoteEndPoint, cancellationToken).ConfigureAwait(false);
        var remembered = Remembered(remoteEndPoint);
        IEnumerable<IStreamTransport> attempts = remembered is { } kind
            ? [.. _order.Where(t => t.Kind == kind), .. _order.Where(t => t.Kind != kind)]
            : _order;
        Exception? last = null;
        foreach (var transport in attempts)
        {
            try
            {
                var connection = await DialAsync(transport, remoteEndPoint, cancellationToken).ConfigureAwait(false);
                if (remembered != transport.Kind) Remember(remoteEndPoint, transport.Kind);
                return connection;
            }
            catch (Exception ex) when (ex is IOException or SocketException)
            {
                _log.LogDebug("{Kind} connect to {Peer} failed ({Message}); trying the next transport", transport.Kind, remoteEndPoint, ex.Message);
                last = ex;
            }
        }

        lock (_gate) _worked.Remove(remoteEndPoint);
        throw last!;
    }

    /// <summary>One attempt; a uTP one within its own timeout (libtorrent utp_connect_timeout), so TCP still gets its turn
    /// within the session's connect timeout.</summary>
    private async Task<IStreamConnection> DialAsync(IStreamTransport transport, IPEndPoint remote, CancellationToken ct)
    {
        if (transport.Kind != StreamTransportKind.Utp) return await transport.ConnectAsync(remote, ct).ConfigureAwait(false);
        using var deadline = new CancellationTokenSource(_utpTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
        try
        {
            return await transport.ConnectAsync(remote, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new IOException($"uTP connect to {remote} timed out");
        }
    }

    private void Remember(IPEndPoint remote, StreamTransportKind kind)
    {
        lock (_gate)
        {
            if (_worked.Count >= MaxRemembered && !_worked.ContainsKey(remote)) _worked.Clear();
            _worked[remote] = kind;
        }
    }
}
