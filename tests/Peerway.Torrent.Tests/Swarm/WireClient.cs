using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Peerway.Core;
using Peerway.Net;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>
/// A raw peer for admission tests: one connection (TCP from a chosen loopback address, or a virtual network's stream)
/// speaking the real wire protocol through our codec, sending only what the test tells it to, and reporting what the
/// session did through tasks. The tasks are completion sources nobody awaits in the virtual tests (they poll them while
/// the scheduler runs), so no continuation of theirs leaves the scheduler's thread.
/// </summary>
internal sealed class WireClient : IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly Action _close;
    private readonly CancellationTokenSource _cts = new();
    private Task? _reader;

    private WireClient(Stream stream, Action close)
    {
        _stream = stream;
        _close = close;
    }

    public NodeId PeerId { get; } = NodeId.Random();

    /// <summary>The session's 68-byte handshake arrived.</summary>
    public TaskCompletionSource HandshakeReceived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource Unchoked { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The session closed the connection (the read side ended).</summary>
    public TaskCompletionSource Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int PiecesReceived => Volatile.Read(ref _pieces);

    /// <summary>BEP 10 extended messages the session sent: (extended id, payload).</summary>
    public System.Threading.Channels.Channel<(byte Id, byte[] Payload)> Extended { get; } = System.Threading.Channels.Channel.CreateUnbounded<(byte, byte[])>();

    private readonly List<(PeerMessageType Type, int Index)> _received = [];
    private int _pieces;

    /// <summary>The messages the session sent so far after its handshake (type and piece index), in order.</summary>
    public IReadOnlyList<(PeerMessageType Type, int Index)> Received
    {
        get
        {
            lock (_received) return [.. _received];
        }
    }
    private TaskCompletionSource _piece = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<WireClient> ConnectAsync(IPEndPoint target, IPAddress? from = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (from is not null) socket.Bind(new IPEndPoint(from, 0));
            await socket.ConnectAsync(target);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return Start(new NetworkStream(socket, ownsSocket: true), socket.Close);
    }

    /// <summary>Connects through <paramref name="transport"/> (an endpoint of a virtual network) to <paramref name="target"/>.</summary>
    public static async Task<WireClient> ConnectAsync(IStreamTransport transport, IPEndPoint target)
    {
        var connection = await transport.ConnectAsync(target, CancellationToken.None);
        return Start(connection.Stream, connection.Abort);
    }

    private static WireClient Start(Stream stream, Action close)
    {
        var client = new WireClient(stream, close);
        client._reader = client.ReadAsync();
        return client;
    }

    /// <summary>Sends the first <paramref name="bytes"/> bytes of a BEP 3 handshake (all 68 by default; the fast bit set).</summary>
    public Task SendHandshakeAsync(NodeId infoHash, int bytes = PeerWire.HandshakeLength, ulong reserved = PeerHandshake.FastBit)
    {
        var hs = new byte[PeerWire.HandshakeLength];
        PeerWire.WriteHandshake(hs, new PeerHandshake(reserved, infoHash, PeerId));
        return _stream.WriteAsync(hs.AsMemory(0, bytes)).AsTask();
    }

    public Task SendAsync(Action<IBufferWriter<byte>> write)
    {
        var w = new ArrayBufferWriter<byte>();
        write(w);
        return _stream.WriteAsync(w.WrittenMemory).AsTask();
    }

    /// <summary>Sends interested and waits for the session's unchoke.</summary>
    public async Task InterestedAsync(TimeSpan deadline)
    {
        await SendAsync(w => PeerWire.WriteSimple(w, PeerMessageType.Interested));
        await Unchoked.Task.WaitAsync(deadline);
    }

    /// <summary>Requests one block and waits for it.</summary>
    public async Task DownloadBlockAsync(int piece, int begin, int length, TimeSpan deadline)
    {
        var arrived = Volatile.Read(ref _piece);
        await SendAsync(w => PeerWire.WriteBlockMessage(w, PeerMessageType.Request, piece, begin, length));
        await arrived.Task.WaitAsync(deadline);
    }

    private async Task ReadAsync()
    {
        var buffer = new byte[PeerWire.MaxMessageLength + 4];
        var filled = 0;
        var handshaken = false;
        try
        {
            while (true)
            {
                var n = await _stream.ReadAsync(buffer.AsMemory(filled), _cts.Token);
                if (n == 0) break;
                filled += n;
                while (true)
                {
                    int used;
                    if (!handshaken)
                    {
                        if (filled < PeerWire.HandshakeLength) break;
                        handshaken = true;
                        used = PeerWire.HandshakeLength;
                        HandshakeReceived.TrySetResult();
                    }
                    else
                    {
                        used = PeerWire.FrameLength(buffer.AsSpan(0, filled), out _);
                        if (used <= 0) break;
                        if (PeerWire.TryDecode(buffer.AsSpan(0, used), out var m, out _))
                        {
                            lock (_received) _received.Add((m.Type, m.Index));
                            OnMessage(m.Type);
                            if (m.Type == PeerMessageType.Extended) Extended.Writer.TryWrite((m.ExtendedId, m.Payload.ToArray()));
                        }
                    }

                    buffer.AsSpan(used, filled - used).CopyTo(buffer);
                    filled -= used;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Reset or disposed: the connection is over either way.
        }

        Closed.TrySetResult();
    }

    private void OnMessage(PeerMessageType type)
    {
        if (type == PeerMessageType.Unchoke) Unchoked.TrySetResult();
        if (type != PeerMessageType.Piece) return;
        Interlocked.Increment(ref _pieces);
        Interlocked.Exchange(ref _piece, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    public ValueTask DisposeAsync()
    {
        CancelInline();
        _close();
        return AfterCloseAsync();
    }

    /// <summary>Inline, not CancelAsync: on a virtual network the reader's cancellation must run on the scheduler's thread.</summary>
    private void CancelInline() => _cts.Cancel();

    private async ValueTask AfterCloseAsync()
    {
        if (_reader is not null) await _reader;
        await _stream.DisposeAsync();
        _cts.Dispose();
    }
}
