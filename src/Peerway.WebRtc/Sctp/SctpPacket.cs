using System.Buffers.Binary;

namespace Peerway.WebRtc.Sctp;

/// <summary>
/// RFC 9260 §3: an SCTP packet — common header (ports, verification tag, CRC32c checksum) and chunks. Pure codec:
/// bounded (packet size, chunk count, parameter counts), never throws on input, a failure is an <see cref="SctpError"/>.
/// </summary>
internal sealed record SctpPacket(ushort SourcePort, ushort DestinationPort, uint VerificationTag, IReadOnlyList<SctpChunk> Chunks)
{
    public const int HeaderSize = 12;

    /// <summary>Bound on one packet (a DTLS record holds at most 2^14 bytes).</summary>
    public const int MaxPacketSize = 16384;

    /// <summary>Bound on chunks per packet.</summary>
    public const int MaxChunks = 128;

    /// <summary>Bound on RE-CONFIG parameters, gap blocks and FORWARD-TSN entries read from one chunk.</summary>
    public const int MaxEntries = 1024;

    public int Length => HeaderSize + Chunks.Sum(c => c.PaddedLength);

    public byte[] Encode()
    {
        var buffer = new byte[Length];
        BinaryPrimitives.WriteUInt16BigEndian(buffer, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(2), DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(4), VerificationTag);
        var at = HeaderSize;
        foreach (var c in Chunks) at += c.Encode(buffer.AsSpan(at));

        // RFC 9260 Appendix A: CRC32c over the whole packet with the checksum field zero, stored as the CRC's bytes.
        BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(8), Crc32C.Compute(buffer));
        return buffer;
    }

    public static bool TryDecode(ReadOnlySpan<byte> data, out SctpPacket? packet, out SctpError error)
    {
        packet = null;
        if (data.Length < HeaderSize + SctpChunk.HeaderSize)
        {
            error = SctpError.TooShort;
            return false;
        }

        if (data.Length > MaxPacketSize)
        {
            error = SctpError.TooLong;
            return false;
        }

        var expected = BinaryPrimitives.ReadUInt32LittleEndian(data[8..]);
        var copy = data.ToArray();
        copy.AsSpan(8, 4).Clear();
        if (Crc32C.Compute(copy) != expected)
        {
            error = SctpError.BadChecksum;
            return false;
        }

        var chunks = new List<SctpChunk>();
        var at = HeaderSize;
        while (at + SctpChunk.HeaderSize <= copy.Length)
        {
            if (chunks.Count >= MaxChunks)
            {
                error = SctpError.TooManyChunks;
                return false;
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(copy.AsSpan(at + 2));
            if (length < SctpChunk.HeaderSize || at + length > copy.Length)
            {
                error = SctpError.BadChunkLength;
                return false;
            }

            var chunk = DecodeChunk(copy[at], copy[at + 1], copy.AsMemory(at + SctpChunk.HeaderSize, length - SctpChunk.HeaderSize));
            if (chunk is null)
            {
                error = SctpError.BadChunk;
                return false;
            }

            chunks.Add(chunk);
            at += (length + 3) & ~3;
        }

        if (chunks.Count == 0)
        {
            error = SctpError.TooShort;
            return false;
        }

        packet = new SctpPacket(BinaryPrimitives.ReadUInt16BigEndian(copy), BinaryPrimitives.ReadUInt16BigEndian(copy.AsSpan(2)), BinaryPrimitives.ReadUInt32BigEndian(copy.AsSpan(4)), chunks);
        error = SctpError.None;
        return true;
    }

    private static SctpChunk? DecodeChunk(byte type, byte flags, ReadOnlyMemory<byte> value)
    {
        var v = value.Span;
        switch ((SctpChunkType)type)
        {
            case SctpChunkType.Data:
                // RFC 9260 §3.3.1: a DATA chunk carries at least one byte of user data.
                if (v.Length <= DataChunk.DataHeaderSize) return null;
                return new DataChunk(BinaryPrimitives.ReadUInt32BigEndian(v), BinaryPrimitives.ReadUInt16BigEndian(v[4..]), BinaryPrimitives.ReadUInt16BigEndian(v[6..]), BinaryPrimitives.ReadUInt32BigEndian(v[8..]), (flags & 4) != 0, (flags & 2) != 0, (flags & 1) != 0, value[DataChunk.DataHeaderSize..], (flags & 8) != 0);
            case SctpChunkType.Init or SctpChunkType.InitAck:
                return DecodeInit(type == (byte)SctpChunkType.InitAck, value);
            case SctpChunkType.Sack:
            {
                if (v.Length < 12) return null;
                int gaps = BinaryPrimitives.ReadUInt16BigEndian(v[8..]), dups = BinaryPrimitives.ReadUInt16BigEndian(v[10..]);
                if (gaps > MaxEntries || dups > MaxEntries || v.Length < 12 + 4 * (gaps + dups)) return null;
                var g = new (ushort, ushort)[gaps];
                for (var i = 0; i < gaps; i++) g[i] = (BinaryPrimitives.ReadUInt16BigEndian(v[(12 + 4 * i)..]), BinaryPrimitives.ReadUInt16BigEndian(v[(14 + 4 * i)..]));
                var d = new uint[dups];
                for (var i = 0; i < dups; i++) d[i] = BinaryPrimitives.ReadUInt32BigEndian(v[(12 + 4 * gaps + 4 * i)..]);
                return new SackChunk(BinaryPrimitives.ReadUInt32BigEndian(v), BinaryPrimitives.ReadUInt32BigEndian(v[4..]), g, d);
            }

            case SctpChunkType.Heartbeat or SctpChunkType.HeartbeatAck:
                return new HeartbeatChunk(type == (byte)SctpChunkType.HeartbeatAck, value.ToArray());
            case SctpChunkType.Abort or SctpChunkType.Error:
                return new AbortChunk(type == (byte)SctpChunkType.Error, (flags & 1) != 0, value.ToArray());
            case SctpChunkType.Shutdown:
                return v.Length < 4 ? null : new ControlChunk(SctpChunkType.Shutdown, BinaryPrimitives.ReadUInt32BigEndian(v));
            case SctpChunkType.ShutdownAck or SctpChunkType.ShutdownComplete or SctpChunkType.CookieAck:
                return new ControlChunk((SctpChunkType)type);
            case SctpChunkType.CookieEcho:
                return new CookieEchoChunk(value.ToArray());
            case SctpChunkType.ForwardTsn:
            {
                if (v.Length < 4 || (v.Length - 4) / 4 > MaxEntries) return null;
                var n = (v.Length - 4) / 4;
                var s = new (ushort, ushort)[n];
                for (var i = 0; i < n; i++) s[i] = (BinaryPrimitives.ReadUInt16BigEndian(v[(4 + 4 * i)..]), BinaryPrimitives.ReadUInt16BigEndian(v[(6 + 4 * i)..]));
                return new ForwardTsnChunk(BinaryPrimitives.ReadUInt32BigEndian(v), s);
            }

            case SctpChunkType.Reconfig:
                return DecodeReconfig(v);
            default:
                return new UnknownChunk(type, flags, value.ToArray());
        }
    }

    private static InitChunk? DecodeInit(bool ack, ReadOnlyMemory<byte> value)
    {
        var v = value.Span;
        if (v.Length < 16) return null;
        byte[]? cookie = null;
        bool forwardTsn = false, reconfig = false;
        var at = 16;
        var count = 0;
        while (at + 4 <= v.Length)
        {
            if (++count > MaxEntries) return null;
            var type = BinaryPrimitives.ReadUInt16BigEndian(v[at..]);
            var length = BinaryPrimitives.ReadUInt16BigEndian(v[(at + 2)..]);
            if (length < 4 || at + length > v.Length) return null;
            var p = v.Slice(at + 4, length - 4);
            switch (type)
            {
                case InitChunk.ParamStateCookie:
                    cookie = p.ToArray();
                    break;
                case InitChunk.ParamForwardTsnSupported:
                    forwardTsn = true;
                    break;
                case InitChunk.ParamSupportedExtensions:
                    foreach (var t in p)
                    {
                        if (t == (byte)SctpChunkType.Reconfig) reconfig = true;
                        else if (t == (byte)SctpChunkType.ForwardTsn) forwardTsn = true;
                    }

                    break;
            }

            // RFC 9260 §3.2.1: unknown parameters are skipped (we report none back; the peer only loses the feature).
            at += (length + 3) & ~3;
        }

        var tag = BinaryPrimitives.ReadUInt32BigEndian(v);
        int outStreams = BinaryPrimitives.ReadUInt16BigEndian(v[8..]), inStreams = BinaryPrimitives.ReadUInt16BigEndian(v[10..]);

        // RFC 9260 §3.3.2: the initiate tag and both stream counts are non-zero.
        if (tag == 0 || outStreams == 0 || inStreams == 0) return null;
        return new InitChunk(ack, tag, BinaryPrimitives.ReadUInt32BigEndian(v[4..]), (ushort)outStreams, (ushort)inStreams, BinaryPrimitives.ReadUInt32BigEndian(v[12..]), cookie, forwardTsn, reconfig);
    }

    private static ReconfigChunk? DecodeReconfig(ReadOnlySpan<byte> v)
    {
        var parameters = new List<ReconfigParameter>();
        var at = 0;
        while (at + 4 <= v.Length)
        {
            if (parameters.Count >= 2) return null; // RFC 6525 §3.1: at most two parameters per chunk.
            var type = BinaryPrimitives.ReadUInt16BigEndian(v[at..]);
            var length = BinaryPrimitives.ReadUInt16BigEndian(v[(at + 2)..]);
            if (length < 4 || at + length > v.Length) return null;
            var p = v.Slice(at, length);
            switch (type)
            {
                case ReconfigParameter.OutgoingResetType when length >= 16:
                    parameters.Add(new OutgoingResetRequest(BinaryPrimitives.ReadUInt32BigEndian(p[4..]), BinaryPrimitives.ReadUInt32BigEndian(p[8..]), BinaryPrimitives.ReadUInt32BigEndian(p[12..]), Streams(p[16..])));
                    break;
                case ReconfigParameter.IncomingResetType when length >= 8:
                    parameters.Add(new IncomingResetRequest(BinaryPrimitives.ReadUInt32BigEndian(p[4..]), Streams(p[8..])));
                    break;
                case ReconfigParameter.ResponseType when length >= 12:
                    parameters.Add(new ReconfigResponse(BinaryPrimitives.ReadUInt32BigEndian(p[4..]), BinaryPrimitives.ReadUInt32BigEndian(p[8..])));
                    break;
                case ReconfigParameter.OutgoingResetType or ReconfigParameter.IncomingResetType or ReconfigParameter.ResponseType:
                    return null;
            }

            at += (length + 3) & ~3;
        }

        return parameters.Count == 0 ? null : new ReconfigChunk(parameters);
    }

    private static ushort[] Streams(ReadOnlySpan<byte> p)
    {
        var s = new ushort[p.Length / 2];
        for (var i = 0; i < s.Length; i++) s[i] = BinaryPrimitives.ReadUInt16BigEndian(p[(2 * i)..]);
        return s;
    }
}
