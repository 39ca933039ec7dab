using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Peerway.Torrent.Encryption;

namespace Peerway.Torrent.Swarm;

/// <summary>The MSE/PE layer of the dial and accept paths (policy in <see cref="TorrentSessionOptions.Encryption"/>).</summary>
public sealed partial class TorrentSession
{
    private byte[][]? _skeys;

    /// <summary>MSE's SKEY is the info-hash; for a hybrid torrent the v1 one (which <see cref="InfoHash"/> is).</summary>
    private byte[][] Skeys => _skeys ??= [InfoHash.ToArray()];

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
    private async Task<PeerConnection> ConnectPeerAsync(IPEndPoint endPoint, CancellationToken ct)
    {
        var policy = _options.Encryption;
        if (policy == EncryptionPolicy.Off) return await PeerConnection.ConnectAsync(endPoint, _time, _options.ConnectTimeout, ct).ConfigureAwait(false);
        var socket = await PeerConnection.ConnectSocketAsync(endPoint, _options.ConnectTimeout, ct).ConfigureAwait(false);
        var result = await NegotiateAsync(socket, (s, t) => MseNegotiator.InitiateAsync(s, InfoHash.ToArray(), policy, t), _options.ConnectTimeout, ct).ConfigureAwait(false);
        if (result.Succeeded)
        {
            _log.LogDebug("connected to {Peer} with MSE ({Method})", endPoint, result.Method);
            return new PeerConnection(socket, endPoint, outgoing: true, _time, result) { ListenEndPoint = endPoint };
        }

        socket.Dispose();
        ct.ThrowIfCancellationRequested();
        _log.LogDebug("encrypted handshake with {Peer} failed: {Error}", endPoint, result.Error);
        if (policy == EncryptionPolicy.Require) throw new IOException($"MSE handshake failed: {result.Error}");
        return await PeerConnection.ConnectAsync(endPoint, _time, _options.ConnectTimeout, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// An admitted incoming connection: a plain handshake or MSE, per the policy; a peer that fails is dropped alone. The
    /// negotiation counts against the handshake timeout, which runs from admission.
    /// </summary>
    private async Task AcceptPeerAsync(PendingIncoming pending, CancellationToken ct)
    {
        var timeout = pending.Opened + _options.HandshakeTimeout - _time.GetUtcNow();
        var result = await NegotiateAsync(pending.Socket, (s, t) => MseNegotiator.AcceptAsync(s, Skeys, _options.Encryption, t),
            timeout > TimeSpan.Zero ? timeout : TimeSpan.Zero, ct).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            _log.LogDebug("dropping incoming {Peer}: {Error}", pending.Remote, result.Error);
            lock (_gate) _handshaking.Remove(pending);
            pending.Socket.Dispose();
            return;
        }

        if (result.Method != CryptoMethods.None) _log.LogDebug("accepted {Peer} with MSE ({Method})", pending.Remote, result.Method);
        var conn = new PeerConnection(pending.Socket, pending.Remote, outgoing: false, _time, result);
        bool attached;
        lock (_gate) attached = pending.Attach(conn);
        if (!attached)
        {
            await conn.DisposeAsync().ConfigureAwait(false);
            return;
        }

        await RunConnectionAsync(conn, ct, pending).ConfigureAwait(false);
    }

    /// <summary>Runs a negotiation on the raw socket within <paramref name="within"/> on the session's clock; I/O failures count as a closed peer.</summary>
    private async Task<MseResult> NegotiateAsync(Socket socket, Func<Stream, CancellationToken, Task<MseResult>> negotiate, TimeSpan within, CancellationToken ct)
    {
        using var deadline = new CancellationTokenSource(within, _time);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
        var stream = new NetworkStream(socket, ownsSocket: false);
        await using (stream.ConfigureAwait(false))
        {
            try
            {
                return await negotiate(stream, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                return MseResult.Failed(MseError.Closed);
            }
        }
    }
}
