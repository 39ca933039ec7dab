using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Peerway.Core;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>A message a <see cref="ScriptedPeer"/> received: its type and, for PIECE and REJECT_REQUEST, the block.</summary>
internal readonly record struct ScriptedMessage(PeerMessageType Type, BlockRequest Block, byte[]? Data = null);

/// <summary>
/// A leecher whose every message is scripted by the test, over loopback TCP with the real codec (BEP 3/6/10). It dials a
/// session, sends the handshake (fast and extension bits), a BEP 10 handshake offering ut_metadata, and INTERESTED.
/// <see cref="SyncAsync"/> sends what was queued followed by a ut_metadata request (BEP 9), which the session answers
/// inline, so its reply marks the point where the session has handled everything sent before: a barrier, no sleeps.
/// </summary>
internal sealed class ScriptedPeer : IAsyncDisposable
{
    /// <summary>Our ut_metadata id in the BEP 10 handshake (the session's replies carry it).</summary>
    private const byte OurMetadataId = 3;

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly ArrayBufferWriter<byte> _out = new();
    private readonly byte[] _buffer = new byte[PeerWire.MaxMessageLength + 4];
    private int _filled;

    private ScriptedPeer(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public NodeId PeerId { get; } = NodeId.Random();

    public static async Task<ScriptedPeer> ConnectAsync(IPEndPoint session, NodeId infoHash, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(session, ct);
        var peer = new ScriptedPeer(socket);
        var hs = new byte[PeerWire.HandshakeLength];
        PeerWire.WriteHandshake(hs, new PeerHandshake(PeerHandshake.FastBit | PeerHandshake.ExtensionBit, infoHash, peer.PeerId));
        await peer._stream.WriteAsync(hs, ct);
        await peer._stream.ReadExactlyAsync(hs, ct);
        var ext = new ExtendedHandshake { Extensions = new Dictionary<string, byte> { ["ut_metadata"] = OurMetadataId } }.Encode();
        PeerWire.WriteExtended(peer._out, ExtendedHandshake.HandshakeId, ext);
        PeerWire.WriteSimple(peer._out, PeerMessageType.Interested);
        return peer;
    }

    public void Request(BlockRequest b) => PeerWire.WriteBlockMessage(_out, PeerMessageType.Request, b.Piece, b.Begin, b.Length);

    public void Cancel(BlockRequest b) => PeerWire.WriteBlockMessage(_out, PeerMessageType.Cancel, b.Piece, b.Begin, b.Length);

    /// <summary>Sends the queued messages and a barrier; returns what arrived before the barrier's answer.</summary>
    public async Task<List<ScriptedMessage>> SyncAsync(CancellationToken ct)
    {
        PeerWire.WriteExtended(_out, ExtendedHandshake.UtMetadataId, MetadataMessage.Encode(MetadataMessageType.Request, 0));
        await _stream.WriteAsync(_out.WrittenMemory, ct);
        _out.Clear();
        var received = new List<ScriptedMessage>();
        while (true)
        {
            while (true)
            {
                var frame = PeerWire.FrameLength(_buffer.AsSpan(0, _filled), out var error);
                Assert.True(frame >= 0, $"bad frame from the session: {error}");
                if (frame == 0) break;
                var done = Read(_buffer.AsSpan(0, frame), received);
                _buffer.AsSpan(frame, _filled - frame).CopyTo(_buffer);
                _filled -= frame;
                if (done) return received;
            }

            var n = await _stream.ReadAsync(_buffer.AsMemory(_filled), ct);
            if (n == 0) throw new EndOfStreamException("the session closed the connection");
            _filled += n;
        }
    }

    /// <summary>Records one frame; true when it is the answer to the barrier.</summary>
    private static bool Read(ReadOnlySpan<byte> frame, List<ScriptedMessage> received)
    {
        Assert.True(PeerWire.TryDecode(frame, out var m, out var error), $"undecodable message from the session: {error}");
        switch (m.Type)
        {
            case PeerMessageType.Piece:
                received.Add(new ScriptedMessage(m.Type, new BlockRequest(m.Index, m.Begin, m.Payload.Length), m.Payload.ToArray()));
                return false;
            case PeerMessageType.RejectRequest:
                received.Add(new ScriptedMessage(m.Type, new BlockRequest(m.Index, m.Begin, m.Length)));
                return false;
            case PeerMessageType.Extended when m.ExtendedId == OurMetadataId:
                return true;
            default:
                received.Add(new ScriptedMessage(m.Type, default));
                return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _socket.Dispose();
    }
}
