using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Peerway.Core;
using Peerway.Net;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>How a <see cref="FakePeer"/> misbehaves.</summary>
internal enum FakePeerMode
{
    /// <summary>Answers every request with blocks whose bytes are flipped (pieces fail their hash).</summary>
    Corrupt,
    /// <summary>Accepts requests and never answers (a peer that stalls).</summary>
    Silent,
    /// <summary>Sends one correct block of the first piece asked for, then vanishes (socket closed mid-piece).</summary>
    VanishMidPiece,
    /// <summary>Sends a message with an unknown id right after the handshake.</summary>
    Malformed,
    /// <summary>
    /// Answers requests correctly, but the block that completes the first whole piece goes out in one write with a message
    /// of an unknown id behind it: the receiver's read batch holds a complete piece and then a frame that ends the connection.
    /// </summary>
    MalformedAfterCompletePiece,
}

/// <summary>
/// A test double speaking the real wire protocol (our codec) that claims every piece and then misbehaves. It listens and
/// dials through an <see cref="IStreamTransport"/> (an endpoint of a virtual network in the swarm tests). Its completion
/// sources are polled, never awaited, so none of their continuations leaves the scheduler's thread.
/// </summary>
internal sealed class FakePeer : IAsyncDisposable
{
    private readonly IStreamTransport _transport;
    private readonly IStreamListener _listener;
    private readonly TorrentInfo _info;
    private readonly byte[] _content;
    private readonly FakePeerMode _mode;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _accept;
    private readonly List<Task> _connections = [];

    private FakePeer(IStreamTransport transport, IStreamListener listener, TorrentInfo info, byte[] content, FakePeerMode mode)
    {
        _transport = transport;
        _listener = listener;
        _info = info;
        _content = content;
        _mode = mode;
        _accept = AcceptAsync();
    }

    /// <summary>Listens on <paramref name="at"/> of <paramref name="transport"/>.</summary>
    public static async Task<FakePeer> StartAsync(IStreamTransport transport, IPEndPoint at, TorrentInfo info, byte[] content, FakePeerMode mode)
    {
        var listener = await transport.ListenAsync(at, CancellationToken.None);
        return new FakePeer(transport, listener, info, content, mode);
    }

    public NodeId PeerId { get; } = NodeId.Random();

    public IPEndPoint EndPoint => _listener.LocalEndPoint;

    public int Connections;
    public int BlocksSent;
    public int RequestsReceived;

    /// <summary><see cref="FakePeerMode.MalformedAfterCompletePiece"/>: the piece whose last block went out with the bad frame (-1: none yet).</summary>
    public int CompletedPiece { get; private set; } = -1;

    private readonly Dictionary<int, int> _sentOfPiece = [];
    private bool _malformedSent;

    /// <summary>Completes when the first request arrives.</summary>
    public TaskCompletionSource FirstRequest { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the first block has been written to the socket.</summary>
    public TaskCompletionSource FirstBlockSent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the other side closed a connection on us (our misbehaviour was punished).</summary>
    public TaskCompletionSource Dropped { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task AcceptAsync()
    {
        while (!_cts.IsCancellationRequested)
        {
            IStreamConnection? s;
            try
            {
                s = await _listener.AcceptAsync(_cts.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (s is null) return;
            lock (_connections) _connections.Add(ServeAsync(s));
        }
    }

    /// <summary>Dials <paramref name="target"/> as if reconnecting; returns true if the handshake was answered and the connection then stayed open for a message.</summary>
    public async Task<bool> ReconnectAsync(IPEndPoint target)
    {
        await using var connection = await _transport.ConnectAsync(target, CancellationToken.None);
        var stream = connection.Stream;
        await stream.WriteAsync(Handshake());
        var buffer = new byte[PeerWire.HandshakeLength + 64];
        var n = 0;
        try
        {
            while (true)
            {
                var read = await stream.ReadAsync(buffer.AsMemory(n));
                if (read == 0) return false;
                n += read;
                if (n > PeerWire.HandshakeLength) return true;
                if (n == buffer.Length) return true;
            }
        }
        catch (IOException)
        {
            return false;
        }
    }

    private byte[] Handshake()
    {
        var hs = new byte[PeerWire.HandshakeLength];
        PeerWire.WriteHandshake(hs, new PeerHandshake(PeerHandshake.FastBit, _info.InfoHash, PeerId));
        return hs;
    }

    private async Task ServeAsync(IStreamConnection connection)
    {
        Interlocked.Increment(ref Connections);
        await using var owned = connection;
        var stream = connection.Stream;
        var ct = _cts.Token;
        try
        {
            var hs = new byte[PeerWire.HandshakeLength];
            await stream.ReadExactlyAsync(hs, ct);
            // Like a peer without MSE: anything but a plain handshake (an encrypted one) is closed at once.
            if (!PeerWire.TryReadHandshake(hs, out _, out _)) return;
            await stream.WriteAsync(Handshake(), ct);
            var w = new ArrayBufferWriter<byte>();
            PeerWire.WriteSimple(w, PeerMessageType.HaveAll);
            PeerWire.WriteSimple(w, PeerMessageType.Unchoke);
            if (_mode == FakePeerMode.Malformed) w.Write<byte>([0, 0, 0, 1, 0x63]);
            await stream.WriteAsync(w.WrittenMemory, ct);
            var buffer = new byte[PeerWire.MaxMessageLength + 4];
            var filled = 0;
            while (true)
            {
                var n = await stream.ReadAsync(buffer.AsMemory(filled), ct);
                if (n == 0)
                {
                    Dropped.TrySetResult();
                    return;
                }

                filled += n;
                while (true)
                {
                    var frame = PeerWire.FrameLength(buffer.AsSpan(0, filled), out _);
                    if (frame <= 0) break;
                    var reply = Handle(buffer.AsSpan(0, frame), out var vanish);
                    if (reply is not null)
                    {
                        await stream.WriteAsync(reply, ct);
                        FirstBlockSent.TrySetResult();
                    }

                    if (vanish)
                    {
                        connection.Abort();
                        return;
                    }

                    buffer.AsSpan(frame, filled - frame).CopyTo(buffer);
                    filled -= frame;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or EndOfStreamException or ObjectDisposedException)
        {
            Dropped.TrySetResult();
        }
    }

    private byte[]? Handle(ReadOnlySpan<byte> frame, out bool vanish)
    {
        vanish = false;
        if (!PeerWire.TryDecode(frame, out var m, out _) || m.Type != PeerMessageType.Request) return null;
        Interlocked.Increment(ref RequestsReceived);
        FirstRequest.TrySetResult();
        if (_mode is FakePeerMode.Silent or FakePeerMode.Malformed) return null;
        var offset = ((long)m.Index * _info.PieceLength) + m.Begin;
        var block = _content.AsSpan((int)offset, m.Length).ToArray();
        if (_mode == FakePeerMode.Corrupt)
        {
            for (var i = 0; i < block.Length; i += 97) block[i] ^= 0x5A;
        }

        if (_mode == FakePeerMode.VanishMidPiece) vanish = true;
        Interlocked.Increment(ref BlocksSent);
        var w = new ArrayBufferWriter<byte>();
        PeerWire.WritePiece(w, m.Index, m.Begin, block);
        if (_mode == FakePeerMode.MalformedAfterCompletePiece)
        {
            var sent = _sentOfPiece.GetValueOrDefault(m.Index) + m.Length;
            _sentOfPiece[m.Index] = sent;
            if (sent == _info.PieceSize(m.Index) && !_malformedSent)
            {
                _malformedSent = true;
                CompletedPiece = m.Index;
                w.Write<byte>([0, 0, 0, 1, 0x63]);
            }
        }

        return w.WrittenSpan.ToArray();
    }

    public ValueTask DisposeAsync()
    {
        CancelInline();
        return AfterCancelAsync();
    }

    /// <summary>Inline, not CancelAsync: on a virtual network the cancellation callbacks must run on the scheduler's thread.</summary>
    private void CancelInline() => _cts.Cancel();

    private async ValueTask AfterCancelAsync()
    {
        await _listener.DisposeAsync();
        await _accept;
        Task[] all;
        lock (_connections) all = [.. _connections];
        await Task.WhenAll(all);
        _cts.Dispose();
    }
}
