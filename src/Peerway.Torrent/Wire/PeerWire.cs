using System.Buffers;
using System.Buffers.Binary;
using Peerway.Core;

namespace Peerway.Torrent.Wire;

/// <summary>BEP 3 (and BEP 6, BEP 10) message ids.</summary>
internal enum PeerMessageType : byte
{
    Choke = 0,
    Unchoke = 1,
    Interested = 2,
    NotInterested = 3,
    Have = 4,
    Bitfield = 5,
    Request = 6,
    Piece = 7,
    Cancel = 8,
    /// <summary>BEP 5: the sender's DHT port.</summary>
    Port = 9,
    /// <summary>BEP 6.</summary>
    Suggest = 0x0D,
    HaveAll = 0x0E,
    HaveNone = 0x0F,
    RejectRequest = 0x10,
    AllowedFast = 0x11,
    /// <summary>BEP 10.</summary>
    Extended = 20,
    /// <summary>Not a wire id: a zero-length frame.</summary>
    KeepAlive = 0xFF,
}

/// <summary>Why a peer's bytes were rejected: the connection to that peer is dropped, nothing else.</summary>
internal enum PeerWireError
{
    None = 0,
    /// <summary>A length prefix above <see cref="PeerWire.MaxMessageLength"/>.</summary>
    MessageTooLarge,
    /// <summary>A message whose length does not fit its id (e.g. a 5-byte "have").</summary>
    BadLength,
    /// <summary>An id this implementation does not know.</summary>
    UnknownMessage,
    /// <summary>The handshake's protocol string is not "BitTorrent protocol".</summary>
    BadHandshake,
    /// <summary>A block request above <see cref="PeerWire.MaxRequestLength"/> or zero.</summary>
    BadRequest,
    /// <summary>An extension payload (BEP 9/10/11) that is not the expected bencode.</summary>
    BadExtension,
}

/// <summary>One decoded message; <see cref="Payload"/> points into the frame (bitfield, block data, extension payload).</summary>
internal readonly ref struct PeerMessage
{
    public PeerMessage(PeerMessageType type, int index = 0, int begin = 0, int length = 0, ReadOnlySpan<byte> payload = default, byte extendedId = 0)
    {
        Type = type;
        Index = index;
        Begin = begin;
        Length = length;
        Payload = payload;
        ExtendedId = extendedId;
    }

    public PeerMessageType Type { get; }

    /// <summary>Piece index (have, request, piece, cancel, suggest, reject, allowed fast), or the DHT port for Port.</summary>
    public int Index { get; }

    public int Begin { get; }

    public int Length { get; }

    public ReadOnlySpan<byte> Payload { get; }

    public byte ExtendedId { get; }
}

/// <summary>The 68-byte BEP 3 handshake.</summary>
internal readonly record struct PeerHandshake(ulong Reserved, NodeId InfoHash, NodeId PeerId)
{
    // BEP 5: reserved[7] & 0x01 = DHT; BEP 6: reserved[7] & 0x04 = fast extension; BEP 10: reserved[5] & 0x10 = extension protocol.
    public const ulong DhtBit = 0x01;
    public const ulong FastBit = 0x04;
    public const ulong ExtensionBit = 0x10_0000;

    public bool SupportsDht => (Reserved & DhtBit) != 0;

    public bool SupportsFast => (Reserved & FastBit) != 0;

    public bool SupportsExtensions => (Reserved & ExtensionBit) != 0;
}

/// <summary>Sans-I/O codec for the BitTorrent peer wire protocol (BEP 3, BEP 6, BEP 10 framing).</summary>
internal static class PeerWire
{
    /// <summary>BEP 3: the handshake is pstrlen (19), "BitTorrent protocol", 8 reserved bytes, info-hash, peer id.</summary>
    public const int HandshakeLength = 68;

    /// <summary>BEP 3: requests are normally 16 KiB; all current clients refuse more than 128 KiB (the BEP's upper bound).</summary>
    public const int MaxRequestLength = 128 * 1024;

    /// <summary>Largest frame accepted: a 128 KiB block plus header, or a bitfield for up to 8M pieces (1 MiB).</summary>
    public const int MaxMessageLength = (1024 * 1024) + 16;

    private static ReadOnlySpan<byte> Protocol => "BitTorrent protocol"u8;

    public static void WriteHandshake(Span<byte> destination, in PeerHandshake handshake)
    {
        destination[0] = 19;
        Protocol.CopyTo(destination[1..]);
        BinaryPrimitives.WriteUInt64BigEndian(destination[20..], handshake.Reserved);
        handshake.InfoHash.WriteTo(destination[28..]);
        handshake.PeerId.WriteTo(destination[48..]);
    }

    public static bool TryReadHandshake(ReadOnlySpan<byte> source, out PeerHandshake handshake, out PeerWireError error)
    {
        handshake = default;
        if (source.Length < HandshakeLength || source[0] != 19 || !source.Slice(1, 19).SequenceEqual(Protocol))
        {
            error = PeerWireError.BadHandshake;
            return false;
        }

        handshake = new PeerHandshake(BinaryPrimitives.ReadUInt64BigEndian(source[20..]), new NodeId(source.Slice(28, 20)), new NodeId(source.Slice(48, 20)));
        error = PeerWireError.None;
        return true;
    }

    /// <summary>
    /// Checks whether <paramref name="buffer"/> starts with a whole frame. Returns the frame's total size (prefix included),
    /// 0 when more bytes are needed, or -1 with <paramref name="error"/> set.
    /// </summary>
    public static int FrameLength(ReadOnlySpan<byte> buffer, out PeerWireError error)
    {
        error = PeerWireError.None;
        if (buffer.Length < 4) return 0;
        var length = BinaryPrimitives.ReadUInt32BigEndian(buffer);
        if (length > MaxMessageLength)
        {
            error = PeerWireError.MessageTooLarge;
            return -1;
        }

        return buffer.Length >= 4 + (int)length ? 4 + (int)length : 0;
    }

    /// <summary>Same as <see cref="FrameLength(ReadOnlySpan{byte}, out PeerWireError)"/> for a pipe's buffer.</summary>
    public static long FrameLength(in ReadOnlySequence<byte> buffer, out PeerWireError error)
    {
        error = PeerWireError.None;
        if (buffer.Length < 4) return 0;
        Span<byte> prefix = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(prefix);
        var length = BinaryPrimitives.ReadUInt32BigEndian(prefix);
        if (length > MaxMessageLength)
        {
            error = PeerWireError.MessageTooLarge;
            return -1;
        }

        return buffer.Length >= 4 + length ? 4 + length : 0;
    }

    /// <summary>Decodes one whole frame (length prefix included), as delimited by <see cref="FrameLength(ReadOnlySpan{byte}, out PeerWireError)"/>.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> frame, out PeerMessage message, out PeerWireError error)
    {
        message = default;
        if (frame.Length < 4 || BinaryPrimitives.ReadUInt32BigEndian(frame) != frame.Length - 4)
        {
            error = PeerWireError.BadLength;
            return false;
        }

        var body = frame[4..];
        if (body.Length == 0)
        {
            message = new PeerMessage(PeerMessageType.KeepAlive);
            error = PeerWireError.None;
            return true;
        }

        var type = (PeerMessageType)body[0];
        var args = body[1..];
        error = PeerWireError.BadLength;
        switch (type)
        {
            case PeerMessageType.Choke or PeerMessageType.Unchoke or PeerMessageType.Interested or PeerMessageType.NotInterested
                or PeerMessageType.HaveAll or PeerMessageType.HaveNone:
                if (args.Length != 0) return false;
                message = new PeerMessage(type);
                break;
            case PeerMessageType.Have or PeerMessageType.Suggest or PeerMessageType.AllowedFast:
                if (args.Length != 4) return false;
                if (!TryIndex(args, out var idx)) return false;
                message = new PeerMessage(type, idx);
                break;
            case PeerMessageType.Bitfield:
                message = new PeerMessage(type, payload: args);
                break;
            case PeerMessageType.Request or PeerMessageType.Cancel or PeerMessageType.RejectRequest:
            {
                if (args.Length != 12) return false;
                if (!TryIndex(args, out var index) || !TryIndex(args[4..], out var begin) || !TryIndex(args[8..], out var length)) return false;
                if (length is 0 or > MaxRequestLength)
                {
                    error = PeerWireError.BadRequest;
                    return false;
                }

                message = new PeerMessage(type, index, begin, length);
                break;
            }

            case PeerMessageType.Piece:
            {
                if (args.Length < 8) return false;
                if (!TryIndex(args, out var index) || !TryIndex(args[4..], out var begin)) return false;
                if (args.Length - 8 > MaxRequestLength)
                {
                    error = PeerWireError.BadRequest;
                    return false;
                }

                message = new PeerMessage(type, index, begin, args.Length - 8, args[8..]);
                break;
            }

            case PeerMessageType.Port:
                if (args.Length != 2) return false;
                message = new PeerMessage(type, BinaryPrimitives.ReadUInt16BigEndian(args));
                break;
            case PeerMessageType.Extended:
                if (args.Length < 1) return false;
                message = new PeerMessage(type, payload: args[1..], extendedId: args[0]);
                break;
            default:
                error = PeerWireError.UnknownMessage;
                return false;
        }

        error = PeerWireError.None;
        return true;
    }

    private static bool TryIndex(ReadOnlySpan<byte> source, out int value)
    {
        var v = BinaryPrimitives.ReadUInt32BigEndian(source);
        value = (int)v;
        return v <= int.MaxValue;
    }

    private static Span<byte> Frame(IBufferWriter<byte> output, int bodyLength)
    {
        var span = output.GetSpan(4 + bodyLength);
        BinaryPrimitives.WriteUInt32BigEndian(span, (uint)bodyLength);
        output.Advance(4 + bodyLength);
        return span.Slice(4, bodyLength);
    }

    public static void WriteKeepAlive(IBufferWriter<byte> output) => Frame(output, 0);

    /// <summary>Choke, unchoke, interested, not interested, have all, have none.</summary>
    public static void WriteSimple(IBufferWriter<byte> output, PeerMessageType type) => Frame(output, 1)[0] = (byte)type;

    /// <summary>Have, suggest, allowed fast.</summary>
    public static void WriteIndex(IBufferWriter<byte> output, PeerMessageType type, int index)
    {
        var body = Frame(output, 5);
        body[0] = (byte)type;
        BinaryPrimitives.WriteInt32BigEndian(body[1..], index);
    }

    public static void WriteBitfield(IBufferWriter<byte> output, ReadOnlySpan<byte> bitfield)
    {
        var body = Frame(output, 1 + bitfield.Length);
        body[0] = (byte)PeerMessageType.Bitfield;
        bitfield.CopyTo(body[1..]);
    }

    /// <summary>Request, cancel, reject request: index, begin, length.</summary>
    public static void WriteBlockMessage(IBufferWriter<byte> output, PeerMessageType type, int index, int begin, int length)
    {
        var body = Frame(output, 13);
        body[0] = (byte)type;
        BinaryPrimitives.WriteInt32BigEndian(body[1..], index);
        BinaryPrimitives.WriteInt32BigEndian(body[5..], begin);
        BinaryPrimitives.WriteInt32BigEndian(body[9..], length);
    }

    public static void WritePiece(IBufferWriter<byte> output, int index, int begin, ReadOnlySpan<byte> block)
    {
        var body = Frame(output, 9 + block.Length);
        body[0] = (byte)PeerMessageType.Piece;
        BinaryPrimitives.WriteInt32BigEndian(body[1..], index);
        BinaryPrimitives.WriteInt32BigEndian(body[5..], begin);
        block.CopyTo(body[9..]);
    }

    /// <summary>Length of a piece message's header: length prefix, id, index and begin (BEP 3).</summary>
    internal const int PieceHeaderLength = 13;

    /// <summary>Writes the 13-byte header of a piece message whose block the caller writes next (zero-copy reads).</summary>
    public static void WritePieceHeader(Span<byte> destination, int index, int begin, int blockLength)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)(9 + blockLength));
        destination[4] = (byte)PeerMessageType.Piece;
        BinaryPrimitives.WriteInt32BigEndian(destination[5..], index);
        BinaryPrimitives.WriteInt32BigEndian(destination[9..], begin);
    }

    public static void WritePort(IBufferWriter<byte> output, ushort port)
    {
        var body = Frame(output, 3);
        body[0] = (byte)PeerMessageType.Port;
        BinaryPrimitives.WriteUInt16BigEndian(body[1..], port);
    }

    public static void WriteExtended(IBufferWriter<byte> output, byte extendedId, ReadOnlySpan<byte> payload)
    {
        var body = Frame(output, 2 + payload.Length);
        body[0] = (byte)PeerMessageType.Extended;
        body[1] = extendedId;
        payload.CopyTo(body[2..]);
    }
}
