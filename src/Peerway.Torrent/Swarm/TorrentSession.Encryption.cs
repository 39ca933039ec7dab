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
        var result = await NegotiateAsync(socket, (s, t) => MseNegotiator.InitiateAsync(s, InfoHash.ToArray(), policy, t), ct).ConfigureAwait(false);
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

    /// <summary>An incoming connection: a plain handshake or MSE, per the policy; a peer that fails is dropped alone.</summary>
    private async Task AcceptPeerAsync(Socket socket, CancellationToken ct)
    {
        IPEndPoint remote;
        try
        {
            remote = (IPEndPoint)socket.RemoteEndPoint!;
        }
        catch (SocketException)
        {
            socket.Dispose();
            return;
        }

        var result = await NegotiateAsync(socket, (s, t) => MseNegotiator.AcceptAsync(s, Skeys, _options.Encryption, t), ct).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            _log.LogDebug("dropping incoming {Peer}: {Error}", remote, result.Error);
            socket.Dispose();
            return;
        }

        if (result.Method != CryptoMethods.None) _log.LogDebug("accepted {Peer} with MSE ({Method})", remote, result.Method);
        await RunConnectionAsync(new PeerConnection(socket, remote, outgoing: false, _time, result), ct).ConfigureAwait(false);
    }

    /// <summary>Runs a negotiation on the raw socket within the connect timeout; I/O failures count as a closed peer.</summary>
    private async Task<MseResult> NegotiateAsync(Socket socket, Func<Stream, CancellationToken, Task<MseResult>> negotiate, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.ConnectTimeout);
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
