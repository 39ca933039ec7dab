using System.Net;
using System.Net.Sockets;
using Peerway.Core;
using Peerway.Torrent.Wire;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// The idle-connection attack of issue 20: one TCP connection per source address given (loopback addresses, so one
/// address may appear many times), each sending a valid BitTorrent handshake for the torrent and then nothing, reading
/// and discarding whatever it is sent, and connecting again a moment after it is closed, until disposed.
/// </summary>
internal sealed class IdleFlood : IAsyncDisposable
{
    /// <summary>Pause before a closed connection comes back (the attacker's pace; at most one reconnect a second each).</summary>
    private static readonly TimeSpan ReconnectPause = TimeSpan.FromSeconds(1);

    private readonly IPEndPoint _target;
    private readonly NodeId _infoHash;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task[] _loops;
    private readonly TaskCompletionSource _filled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int _fillTarget;
    private int _answered;
    private int _open;
    private int _connects;

    /// <param name="fillTarget">Completes <see cref="Filled"/> once this many connections have been answered.</param>
    public IdleFlood(IPEndPoint target, NodeId infoHash, IReadOnlyList<IPAddress> sources, int fillTarget)
    {
        _target = target;
        _fillTarget = fillTarget;
        _infoHash = infoHash;
        _loops = sources.Select(s => Task.Run(() => LoopAsync(s))).ToArray();
    }

    /// <summary>Connections whose handshake the target answered, so far.</summary>
    public int Answered => Volatile.Read(ref _answered);

    /// <summary>Answered connections open now.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>TCP connections made, so far.</summary>
    public int Connects => Volatile.Read(ref _connects);

    /// <summary>Completes once the flood has had as many connections answered as the fill target.</summary>
    public Task Filled => _filled.Task;

    private async Task LoopAsync(IPAddress source)
    {
        var ct = _cts.Token;
        var buffer = new byte[16 * 1024];
        var handshake = new byte[PeerWire.HandshakeLength];
        while (!ct.IsCancellationRequested)
        {
            var answered = false;
            try
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                socket.Bind(new IPEndPoint(source, 0));
                await socket.ConnectAsync(_target, ct);
                Interlocked.Increment(ref _connects);
                // A new peer id each time, as distinct peers (one id would make every connection a duplicate of the first).
                PeerWire.WriteHandshake(handshake, new PeerHandshake(PeerHandshake.FastBit | PeerHandshake.ExtensionBit, _infoHash, NodeId.Random()));
                await socket.SendAsync(handshake, SocketFlags.None, ct);
                var received = 0;
                while (true)
                {
                    var n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
                    if (n == 0) break;
                    received += n;
                    if (answered || received < PeerWire.HandshakeLength) continue;
                    answered = true;
                    Interlocked.Increment(ref _open);
                    if (Interlocked.Increment(ref _answered) >= _fillTarget) _filled.TrySetResult();
                }
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // Refused, reset or cancelled: come back (unless disposed).
            }
            finally
            {
                if (answered) Interlocked.Decrement(ref _open);
            }

            try
            {
                await Task.Delay(ReconnectPause, ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        await Task.WhenAll(_loops);
        _cts.Dispose();
    }
}
