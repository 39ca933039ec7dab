using System.Buffers.Binary;

namespace Peerway.WebRtc.Sctp;

/// <summary>RFC 9260 §3.2 chunk types (plus RFC 6525 RE-CONFIG and RFC 3758 FORWARD-TSN).</summary>
internal enum SctpChunkType : byte
{
    Data = 0,
    Init = 1,
    InitAck = 2,
    Sack = 3,
    Heartbeat = 4,
    HeartbeatAck = 5,
    Abort = 6,
    Shutdown = 7,
    ShutdownAck = 8,
    Error = 9,
    CookieEcho = 10,
    CookieAck = 11,
    ShutdownComplete = 14,
    Reconfig = 130,
    ForwardTsn = 192,
}

/// <summary>Why a packet was refused (RFC 9260 §8.5: a bad checksum or tag drops the packet silently).</summary>
internal enum SctpError
{
    None,
    TooShort,
    TooLong,
    BadChecksum,
    BadChunkLength,
    TooManyChunks,
    BadChunk,
}

/// <summary>One chunk. <see cref="Encode"/> writes it with its header and padding; <see cref="Length"/> is that size.</summary>
internal abstract record SctpChunk
{
    public const int HeaderSize = 4;

    public abstract SctpChunkType Type { get; }

    /// <summary>Encoded length including the chunk header, excluding padding.</summary>
    public abstract int ValueLength { get; }

    public int Length => HeaderSize + ValueLength;

    public int PaddedLength => (Length + 3) & ~3;

    protected virtual byte Flags => 0;

    public int Encode(Span<byte> destination)
    {
        destination[0] = (byte)Type;
        destination[1] = Flags;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)Length);
        WriteValue(destination.Slice(HeaderSize, ValueLength));
        destination[Length..PaddedLength].Clear();
        return PaddedLength;
    }

    protected abstract void WriteValue(Span<byte> value);
}

/// <summary>RFC 9260 §3.3.1 DATA: flags I (immediate SACK, RFC 7053), U, B, E.</summary>
internal sealed record DataChunk(uint Tsn, ushort StreamId, ushort Ssn, uint Ppid, bool Unordered, bool Beginning, bool Ending, ReadOnlyMemory<byte> Payload, bool ImmediateSack = false) : SctpChunk
{
    public const int DataHeaderSize = 12;

    public override SctpChunkType Type => SctpChunkType.Data;

    public override int ValueLength => DataHeaderSize + Payload.Length;

    protected override byte Flags => (byte)((ImmediateSack ? 8 : 0) | (Unordered ? 4 : 0) | (Beginning ? 2 : 0) | (Ending ? 1 : 0));

    protected override void WriteValue(Span<byte> v)
    {
        BinaryPrimitives.WriteUInt32BigEndian(v, Tsn);
        BinaryPrimitives.WriteUInt16BigEndian(v[4..], StreamId);
        BinaryPrimitives.WriteUInt16BigEndian(v[6..], Ssn);
        BinaryPrimitives.WriteUInt32BigEndian(v[8..], Ppid);
        Payload.Span.CopyTo(v[12..]);
    }
}

/// <summary>
/// RFC 9260 §3.3.2/§3.3.3 INIT and INIT ACK, with the parameters WebRTC needs: State Cookie (INIT ACK), Forward-TSN
/// Supported (RFC 3758 §3.1) and Supported Extensions (RFC 5061 §4.2.7) listing RE-CONFIG and FORWARD-TSN.
/// </summary>
internal sealed record InitChunk(bool Ack, uint InitiateTag, uint ARwnd, ushort OutboundStreams, ushort InboundStreams, uint InitialTsn, byte[]? Cookie, bool ForwardTsnSupported, bool ReconfigSupported) : SctpChunk
{
    public const ushort ParamStateCookie = 7;
    public const ushort ParamForwardTsnSupported = 0xC000;
    public const ushort ParamSupportedExtensions = 0x8008;

    public override SctpChunkType Type => Ack ? SctpChunkType.InitAck : SctpChunkType.Init;

    private int ExtensionCount => (ForwardTsnSupported ? 1 : 0) + (ReconfigSupported ? 1 : 0);

    public override int ValueLength =>
        16 + (Cookie is null ? 0 : Pad(4 + Cookie.Length)) + (ForwardTsnSupported ? 4 : 0) + (ExtensionCount > 0 ? Pad(4 + ExtensionCount) : 0);

    private static int Pad(int n) => (n + 3) & ~3;

    protected override void WriteValue(Span<byte> v)
    {
        BinaryPrimitives.WriteUInt32BigEndian(v, InitiateTag);
        BinaryPrimitives.WriteUInt32BigEndian(v[4..], ARwnd);
        BinaryPrimitives.WriteUInt16BigEndian(v[8..], OutboundStreams);
        BinaryPrimitives.WriteUInt16BigEndian(v[10..], InboundStreams);
        BinaryPrimitives.WriteUInt32BigEndian(v[12..], InitialTsn);
        var at = 16;
        if (Cookie is not null)
        {
            BinaryPrimitives.WriteUInt16BigEndian(v[at..], ParamStateCookie);
            BinaryPrimitives.WriteUInt16BigEndian(v[(at + 2)..], (ushort)(4 + Cookie.Length));
            Cookie.CopyTo(v[(at + 4)..]);
            v[(at + 4 + Cookie.Length)..(at + Pad(4 + Cookie.Length))].Clear();
            at += Pad(4 + Cookie.Length);
        }

        if (ForwardTsnSupported)
        {
            BinaryPrimitives.WriteUInt16BigEndian(v[at..], ParamForwardTsnSupported);
            BinaryPrimitives.WriteUInt16BigEndian(v[(at + 2)..], 4);
            at += 4;
        }

        if (ExtensionCount > 0)
        {
            BinaryPrimitives.WriteUInt16BigEndian(v[at..], ParamSupportedExtensions);
            BinaryPrimitives.WriteUInt16BigEndian(v[(at + 2)..], (ushort)(4 + ExtensionCount));
            var e = at + 4;
            if (ReconfigSupported) v[e++] = (byte)SctpChunkType.Reconfig;
            if (ForwardTsnSupported) v[e++] = (byte)SctpChunkType.ForwardTsn;
            v[e..(at + Pad(4 + ExtensionCount))].Clear();
        }
    }
}

/// <summary>RFC 9260 §3.3.4 SACK: cumulative TSN, a_rwnd, gap ack blocks (offsets from the cumulative TSN), duplicates.</summary>
internal sealed record SackChunk(uint CumulativeTsn, uint ARwnd, IReadOnlyList<(ushort Start, ushort End)> Gaps, IReadOnlyList<uint> Duplicates) : SctpChunk
{
    public override SctpChunkType Type => SctpChunkType.Sack;

    public override int ValueLength => 12 + 4 * Gaps.Count + 4 * Duplicates.Count;

    protected override void WriteValue(Span<byte> v)
    {
        BinaryPrimitives.WriteUInt32BigEndian(v, CumulativeTsn);
        BinaryPrimitives.WriteUInt32BigEndian(v[4..], ARwnd);
        BinaryPrimitives.WriteUInt16BigEndian(v[8..], (ushort)Gaps.Count);
        BinaryPrimitives.WriteUInt16BigEndian(v[10..], (ushort)Duplicates.Count);
        var at = 12;
        foreach (var (s, e) in Gaps)
        {
            BinaryPrimitives.WriteUInt16BigEndian(v[at..], s);
            BinaryPrimitives.WriteUInt16BigEndian(v[(at + 2)..], e);
            at += 4;
        }

        foreach (var d in Duplicates)
        {
            BinaryPrimitives.WriteUInt32BigEndian(v[at..], d);
            at += 4;
        }
    }
}

/// <summary>RFC 9260 §3.3.5/§3.3.6 HEARTBEAT and HEARTBEAT ACK: the ACK echoes the Heartbeat Info parameter as is.</summary>
internal sealed record HeartbeatChunk(bool Ack, ReadOnlyMemory<byte> Info) : SctpChunk
{
    public override SctpChunkType Type => Ack ? SctpChunkType.HeartbeatAck : SctpChunkType.Heartbeat;

    public override int ValueLength => Info.Length;

    protected override void WriteValue(Span<byte> v) => Info.Span.CopyTo(v);
}

/// <summary>RFC 9260 §3.3.7 ABORT (T flag: tag reflected) with its error causes kept raw; §3.3.10 ERROR alike.</summary>
internal sealed record AbortChunk(bool Error, bool TagReflected, ReadOnlyMemory<byte> Causes) : SctpChunk
{
    /// <summary>RFC 9260 §3.3.10.13 User-Initiated Abort cause with a reason.</summary>
    public static AbortChunk UserInitiated(string reason)
    {
        var text = System.Text.Encoding.UTF8.GetBytes(reason);
        var cause = new byte[(4 + text.Length + 3) & ~3];
        BinaryPrimitives.WriteUInt16BigEndian(cause, 12);
        BinaryPrimitives.WriteUInt16BigEndian(cause.AsSpan(2), (ushort)(4 + text.Length));
        text.CopyTo(cause, 4);
        return new AbortChunk(false, false, cause);
    }

    public override SctpChunkType Type => Error ? SctpChunkType.Error : SctpChunkType.Abort;

    public override int ValueLength => Causes.Length;

    protected override byte Flags => (byte)(TagReflected ? 1 : 0);

    protected override void WriteValue(Span<byte> v) => Causes.Span.CopyTo(v);
}

/// <summary>RFC 9260 §3.3.8 SHUTDOWN (cumulative TSN), §3.3.9 SHUTDOWN ACK, §3.3.13 SHUTDOWN COMPLETE, §3.3.12 COOKIE ACK.</summary>
internal sealed record ControlChunk(SctpChunkType Kind, uint CumulativeTsn = 0) : SctpChunk
{
    public override SctpChunkType Type => Kind;

    public override int ValueLength => Kind == SctpChunkType.Shutdown ? 4 : 0;

    protected override void WriteValue(Span<byte> v)
    {
        if (Kind == SctpChunkType.Shutdown) BinaryPrimitives.WriteUInt32BigEndian(v, CumulativeTsn);
    }
}

/// <summary>RFC 9260 §3.3.11 COOKIE ECHO.</summary>
internal sealed record CookieEchoChunk(byte[] Cookie) : SctpChunk
{
    public override SctpChunkType Type => SctpChunkType.CookieEcho;

    public override int ValueLength => Cookie.Length;

    protected override void WriteValue(Span<byte> v) => Cookie.CopyTo(v);
}

/// <summary>RFC 3758 §3.2 FORWARD TSN: the new cumulative TSN and, per ordered stream skipped, the last SSN skipped.</summary>
internal sealed record ForwardTsnChunk(uint NewCumulativeTsn, IReadOnlyList<(ushort Stream, ushort Ssn)> Streams) : SctpChunk
{
    public override SctpChunkType Type => SctpChunkType.ForwardTsn;

    public override int ValueLength => 4 + 4 * Streams.Count;

    protected override void WriteValue(Span<byte> v)
    {
        BinaryPrimitives.WriteUInt32BigEndian(v, NewCumulativeTsn);
        var at = 4;
        foreach (var (s, n) in Streams)
        {
            BinaryPrimitives.WriteUInt16BigEndian(v[at..], s);
            BinaryPrimitives.WriteUInt16BigEndian(v[(at + 2)..], n);
            at += 4;
        }
    }
}

/// <summary>RFC 6525 §4.1 RE-CONFIG with its parameters.</summary>
internal sealed record ReconfigChunk(IReadOnlyList<ReconfigParameter> Parameters) : SctpChunk
{
    public override SctpChunkType Type => SctpChunkType.Reconfig;

    public override int ValueLength
    {
        get
        {
            var n = 0;
            for (var i = 0; i < Parameters.Count; i++) n += i == Parameters.Count - 1 ? Parameters[i].Length : (Parameters[i].Length + 3) & ~3;
            return n;
        }
    }

    protected override void WriteValue(Span<byte> v)
    {
        var at = 0;
        foreach (var p in Parameters)
        {
            p.Encode(v[at..]);
            var end = Math.Min(v.Length, (p.Length + 3) & ~3);
            v[(at + p.Length)..(at + end)].Clear();
            at += end;
        }
    }
}

/// <summary>RFC 6525 §4 re-configuration parameters.</summary>
internal abstract record ReconfigParameter
{
    public const ushort OutgoingResetType = 13;
    public const ushort IncomingResetType = 14;
    public const ushort ResponseType = 16;

    public abstract int Length { get; }

    public abstract void Encode(Span<byte> destination);
}

/// <summary>RFC 6525 §4.1 Outgoing SSN Reset Request; an empty stream list means all streams.</summary>
internal sealed record OutgoingResetRequest(uint RequestSeq, uint ResponseSeq, uint LastTsn, IReadOnlyList<ushort> Streams) : ReconfigParameter
{
    public override int Length => 16 + 2 * Streams.Count;

    public override void Encode(Span<byte> d)
    {
        BinaryPrimitives.WriteUInt16BigEndian(d, OutgoingResetType);
        BinaryPrimitives.WriteUInt16BigEndian(d[2..], (ushort)Length);
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], RequestSeq);
        BinaryPrimitives.WriteUInt32BigEndian(d[8..], ResponseSeq);
        BinaryPrimitives.WriteUInt32BigEndian(d[12..], LastTsn);
        for (var i = 0; i < Streams.Count; i++) BinaryPrimitives.WriteUInt16BigEndian(d[(16 + 2 * i)..], Streams[i]);
    }
}

/// <summary>RFC 6525 §4.2 Incoming SSN Reset Request (the peer asks us to reset our outgoing streams).</summary>
internal sealed record IncomingResetRequest(uint RequestSeq, IReadOnlyList<ushort> Streams) : ReconfigParameter
{
    public override int Length => 8 + 2 * Streams.Count;

    public override void Encode(Span<byte> d)
    {
        BinaryPrimitives.WriteUInt16BigEndian(d, IncomingResetType);
        BinaryPrimitives.WriteUInt16BigEndian(d[2..], (ushort)Length);
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], RequestSeq);
        for (var i = 0; i < Streams.Count; i++) BinaryPrimitives.WriteUInt16BigEndian(d[(8 + 2 * i)..], Streams[i]);
    }
}

/// <summary>RFC 6525 §4.4 Re-configuration Response; results per §4.4 (1 performed, 6 in progress…).</summary>
internal sealed record ReconfigResponse(uint ResponseSeq, uint Result) : ReconfigParameter
{
    public const uint SuccessPerformed = 1;
    public const uint Denied = 2;
    public const uint ErrorBadSequence = 5;
    public const uint InProgress = 6;

    public override int Length => 12;

    public override void Encode(Span<byte> d)
    {
        BinaryPrimitives.WriteUInt16BigEndian(d, ResponseType);
        BinaryPrimitives.WriteUInt16BigEndian(d[2..], 12);
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], ResponseSeq);
        BinaryPrimitives.WriteUInt32BigEndian(d[8..], Result);
    }
}

/// <summary>A chunk type this stack does not handle (RFC 9260 §3.2: its two high bits say what to do).</summary>
internal sealed record UnknownChunk(byte RawType, byte RawFlags, ReadOnlyMemory<byte> Value) : SctpChunk
{
    public override SctpChunkType Type => (SctpChunkType)RawType;

    public override int ValueLength => Value.Length;

    protected override byte Flags => RawFlags;

    protected override void WriteValue(Span<byte> v) => Value.Span.CopyTo(v);
}
