using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using Peerway.Core;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Wire;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>
/// A minimal BitTorrent peer (BEP 3, plaintext, no extensions) over any <see cref="Stream"/>, built from Peerway's wire
/// codec and metainfo: it downloads a whole single-file torrent from one seed, verifying each piece's SHA-1, or seeds
/// one. The interop tests use it to prove a transport (uTP) end to end before the torrent engine takes that transport.
/// </summary>
internal sealed class StreamWirePeer(Stream stream, TorrentInfo info)
{
    private const int Pipeline = 64;
    private static readonly NodeId OurPeerId = new("-PW0001-utp-interop1"u8);

    private readonly byte[] _frame = new byte[PeerWire.MaxMessageLength + 4];

    public async Task HandshakeAsync(CancellationToken ct)
    {
        var hello = new byte[PeerWire.HandshakeLength];
        PeerWire.WriteHandshake(hello, new PeerHandshake(0, info.InfoHash, OurPeerId));
        await stream.WriteAsync(hello, ct);
        var reply = new byte[PeerWire.HandshakeLength];
        await stream.ReadExactlyAsync(reply, ct);
        Assert.True(PeerWire.TryReadHandshake(reply, out var theirs, out var error), $"bad handshake: {error}");
        Assert.Equal(info.InfoHash, theirs.InfoHash);
    }

    /// <summary>Downloads every piece, checking its hash; returns the content.</summary>
    public async Task<byte[]> DownloadAsync(CancellationToken ct)
    {
        await SendAsync(w => PeerWire.WriteSimple(w, PeerMessageType.Interested), ct);
        var content = new byte[info.TotalLength];
        var blocks = new List<(int Piece, int Begin, int Length)>();
        for (var piece = 0; piece < info.PieceCount; piece++)
        {
            for (var begin = 0; begin < info.PieceSize(piece); begin += TorrentLimits.BlockLength)
            {
                blocks.Add((piece, begin, Math.Min(TorrentLimits.BlockLength, info.PieceSize(piece) - begin)));
            }
        }

        var next = 0;
        var received = 0;
        var unchoked = false;
        while (received < blocks.Count)
        {
            while (unchoked && next < blocks.Count && next - received < Pipeline)
            {
                var (p, b, l) = blocks[next++];
                await SendAsync(w => PeerWire.WriteBlockMessage(w, PeerMessageType.Request, p, b, l), ct);
            }

            var frame = await ReadFrameAsync(ct);
            Assert.True(PeerWire.TryDecode(frame.Span, out var message, out var error), $"bad message: {error}");
            switch (message.Type)
            {
                case PeerMessageType.Unchoke:
                    unchoked = true;
                    break;
                case PeerMessageType.Choke:
                    unchoked = false;
                    next = received; // requests are dropped on choke (BEP 3); ask again after the unchoke
                    break;
                case PeerMessageType.Piece:
                    message.Payload.CopyTo(content.AsSpan((int)((long)message.Index * info.PieceLength + message.Begin)));
                    received++;
                    break;
                default:
                    break;
            }
        }

        for (var piece = 0; piece < info.PieceCount; piece++)
        {
            var bytes = content.AsSpan((int)((long)piece * info.PieceLength), info.PieceSize(piece));
            Assert.True(SHA1.HashData(bytes).AsSpan().SequenceEqual(info.PieceHash(piece)), $"piece {piece} fails its hash");
        }

        return content;
    }

    /// <summary>Serves <paramref name="content"/>: a full bitfield, an unchoke once interested, every request answered,
    /// until the remote closes.</summary>
    public async Task SeedAsync(byte[] content, CancellationToken ct)
    {
        var bitfield = new byte[(info.PieceCount + 7) / 8];
        for (var i = 0; i < info.PieceCount; i++) bitfield[i >> 3] |= (byte)(0x80 >> (i & 7));
        await SendAsync(w => PeerWire.WriteBitfield(w, bitfield), ct);
        while (true)
        {
            ReadOnlyMemory<byte> frame;
            try
            {
                frame = await ReadFrameAsync(ct);
            }
            catch (EndOfStreamException)
            {
                return;
            }

            Assert.True(PeerWire.TryDecode(frame.Span, out var message, out var error), $"bad message: {error}");
            if (message.Type == PeerMessageType.Interested)
            {
                await SendAsync(w => PeerWire.WriteSimple(w, PeerMessageType.Unchoke), ct);
            }
            else if (message.Type == PeerMessageType.Request)
            {
                var (index, begin, length) = (message.Index, message.Begin, message.Length);
                var offset = (long)index * info.PieceLength + begin;
                await SendAsync(w => PeerWire.WritePiece(w, index, begin, content.AsSpan((int)offset, length)), ct);
            }
        }
    }

    private async Task SendAsync(Action<ArrayBufferWriter<byte>> write, CancellationToken ct)
    {
        var writer = new ArrayBufferWriter<byte>();
        write(writer);
        await stream.WriteAsync(writer.WrittenMemory, ct);
    }

    /// <summary>One length-prefixed frame, prefix included (as <see cref="PeerWire.TryDecode"/> takes it).</summary>
    private async Task<ReadOnlyMemory<byte>> ReadFrameAsync(CancellationToken ct)
    {
        await stream.ReadExactlyAsync(_frame.AsMemory(0, 4), ct);
        var length = BinaryPrimitives.ReadInt32BigEndian(_frame);
        Assert.InRange(length, 0, PeerWire.MaxMessageLength);
        await stream.ReadExactlyAsync(_frame.AsMemory(4, length), ct);
        return _frame.AsMemory(0, length + 4);
    }
}
