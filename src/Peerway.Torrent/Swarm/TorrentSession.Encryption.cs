using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Net;
using Peerway.Torrent.Encryption;

namespace Peerway.Torrent.Swarm;

/// <summary>The MSE/PE layer of the dial and accept paths (policy in <see cref="TorrentSessionOptions.Encryption"/>).</summary>
public sealed partial class TorrentSession
{
    /// <summary>The encryption of each registered connection (None: a plain BitTorrent handshake).</summary>
    internal IReadOnlyList<CryptoMethods> ConnectionEncryption()
    {
        lock (_gate) return _connections.Select(c => c.Encryption).ToList();
    }

    /// <summary>
    /// Dials a peer per the policy: plain; MSE (RC4 only) under Require; under Prefer MSE offering RC4 and plaintext
    /// and, when that handshake fails, a new plain connection (libtorrent also retries a failed encrypted handshake in
    /// plaintext). Throws the connect error, or an <see cref="IOException"/> for a failed required handshake.
    /// </summary>
    private Task<PeerConnection> ConnectPeerAsync(IPEndPoint endPoint, CancellationToken ct) => ConnectPeerAsync(endPoint, null, ct);

    /// <param name="endPoint">The peer's address.</param>
    /// <param name="via">The transport to dial through (BEP 55: uTP only); null: the session's.</param>
    /// <param name="ct">Cancels the connect and the handshake.</param>
    private async Task<PeerConnection> ConnectPeerAsync(IPEndPoint endPoint, IStreamTransport? via, CancellationToken ct)
    {
        var policy = _options.Encryption;
        var connection = await DialTransportAsync(endPoint, via, ct).ConfigureAwait(false);
        if (policy == EncryptionPolicy.Off) return new PeerConnection(connection, outgoing: true, _time, pump: Scheduler.Pipes) { ListenEndPoint = endPoint };
        var result = await NegotiateAsync(connection.Stream, (s, t) => MseNegotiator.InitiateAsync(s, InfoHash.ToArray(), policy, t), _options.ConnectTimeout, ct).ConfigureAwait(false);
        if (result.Succeeded)
        {
            _log.LogDebug("connected to {Peer} with MSE ({Method})", endPoint, result.Method);
            return new PeerConnection(connection, outgoing: true, _time, result, Scheduler.Pipes) { ListenEndPoint = endPoint };
        }

        await connection.DisposeAsync().ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        _log.LogDebug("encrypted handshake with {Peer} failed: {Error}", endPoint, result.Error);
        if (policy == EncryptionPolicy.Require) throw new IOException($"MSE handshake failed: {result.Error}");
        return new PeerConnection(await DialTransportAsync(endPoint, via, ct).ConfigureAwait(false), outgoing: true, _time, pump: Scheduler.Pipes) { ListenEndPoint = endPoint };
    }

    /// <summary>A connection to <paramref name="endPoint"/> through the transport, within the connect timeout (session clock).</summary>
    private async Task<IStreamConnection> DialTransportAsync(IPEndPoint endPoint, IStreamTransport? via, CancellationToken ct)
    {
        using var deadline = new CancellationTokenSource(_options.ConnectTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
        try
        {
            return await (via ?? _transport).ConnectAsync(endPoint, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new IOException($"connecting to {endPoint} timed out");
        }
    }

    /// <summary>
    /// An incoming connection the router found to be for this torrent (a plain handshake naming our info-hash, or MSE
    /// with our SKEY); false when the session is shutting down (the router drops it). Its handshake timeout runs on.
    /// Called from the router's path: it does not take <c>_gate</c>, so a session busy under its lock never holds up
    /// the router (nor the deliveries of a virtual network whose scheduler thread runs that path).
    /// </summary>
    internal bool AdoptIncoming(PendingIncoming pending, MseResult result)
    {
        if (Volatile.Read(ref _disposed) != 0) return false;
        // RunIncomingAsync yields first: nothing of it runs here. One adopted just as DisposeAsync starts ends by itself
        // (its token is cancelled and Register refuses it).
        _incoming.Track(RunIncomingAsync(pending, result, _cts.Token));
        return true;
    }

    private async Task RunIncomingAsync(PendingIncoming pending, MseResult result, CancellationToken ct)
    {
        await Scheduler.Yield();
        if (result.Method != CryptoMethods.None) _log.LogDebug("accepted {Peer} with MSE ({Method})", pending.Remote, result.Method);
        var conn = new PeerConnection(pending.Connection, outgoing: false, _time, result, Scheduler.Pipes);
        if (!pending.Router.Attach(pending, conn))
        {
            pending.Router.HandshakeDone(pending);
            await conn.DisposeAsync().ConfigureAwait(false);
            return;
        }

        await RunConnectionAsync(conn, ct, pending).ConfigureAwait(false);
    }

    /// <summary>Runs a negotiation on the raw stream within <paramref name="within"/> on the session's clock; I/O failures count as a closed peer.</summary>
    private async Task<MseResult> NegotiateAsync(Stream stream, Func<Stream, CancellationToken, Task<MseResult>> negotiate, TimeSpan within, CancellationToken ct)
    {
        using var deadline = new CancellationTokenSource(within, _time);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
        try
        {
            return await negotiate(stream, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            return MseResult.Failed(MseError.Closed);
        }
    }
}
