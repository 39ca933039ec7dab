using System.Buffers.Binary;

namespace Peerway.Libp2p.Yamux;

/// <summary>Yamux frame types (hashicorp/yamux spec.md "Type").</summary>
internal enum YamuxType : byte
{
    Data = 0,
    WindowUpdate = 1,
    Ping = 2,
    GoAway = 3,
}

/// <summary>Yamux header flags (spec.md "Flags").</summary>
[Flags]
internal enum YamuxFlags : ushort
{
    None = 0,
    Syn = 1,
    Ack = 2,
    Fin = 4,
    Rst = 8,
}

/// <summary>A Yamux frame header: version 0, type, flags, stream id and length, all big-endian (spec.md "Framing").</summary>
internal readonly record struct YamuxHeader(YamuxType Type, YamuxFlags Flags, uint StreamId, uint Length)
{
    public const int Size = 12;

    public void Write(Span<byte> destination)
    {
        destination[0] = 0;
        destination[1] = (byte)Type;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)Flags);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], StreamId);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], Length);
    }

    /// <summary>Reads a header; only version 0 and the four types are accepted.</summary>
    public static Libp2pError TryRead(ReadOnlySpan<byte> source, out YamuxHeader header)
    {
        header = default;
        if (source.Length < Size) return Libp2pError.Truncated;
        if (source[0] != 0 || source[1] > (byte)YamuxType.GoAway) return Libp2pError.BadFrame;
        header = new YamuxHeader((YamuxType)source[1], (YamuxFlags)BinaryPrimitives.ReadUInt16BigEndian(source[2..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[4..]), BinaryPrimitives.ReadUInt32BigEndian(source[8..]));
        return Libp2pError.None;
    }
}

/// <summary>Yamux limits; the defaults are the spec's initial window and js-libp2p's stream bounds.</summary>
public sealed record YamuxOptions
{
    /// <summary>spec.md: every stream starts with a 256 KiB window each way.</summary>
    public const int InitialWindow = 256 * 1024;

    /// <summary>
    /// The largest receive window a stream grows to (go-yamux's MaxStreamWindowSize, 16 MiB): a stream whose reader keeps
    /// up doubles its window from <see cref="InitialWindow"/>, within half of <see cref="MaxBufferedBytes"/> summed over
    /// the session's streams. <see cref="InitialWindow"/> turns auto-tuning off.
    /// </summary>
    public int MaxStreamWindow { get; init; } = 16 * 1024 * 1024;

    /// <summary>Streams open at once on one connection (js-libp2p's default maxInboundStreams per connection is 1,024).</summary>
    public int MaxStreams { get; init; } = 1024;

    /// <summary>Inbound streams waiting to be accepted; more are reset.</summary>
    public int AcceptBacklog { get; init; } = 256;

    /// <summary>
    /// The largest data frame we send (never more than the peer's window). spec.md sets no limit below the window and
    /// go-yamux sends up to the window; 256 KiB frames take a quarter of the locks and syscalls of 64 KiB ones (the
    /// Noise layer below still cuts them into 64 KiB messages, all in one write).
    /// </summary>
    public int MaxFrame { get; init; } = 256 * 1024;

    /// <summary>
    /// Streams refused on one session (over <see cref="MaxStreams"/>, the backlog full, or reset for data nobody reads
    /// past <see cref="MaxBufferedBytes"/>) before the peer is dropped: a peer that keeps opening streams is flooding.
    /// </summary>
    public int MaxRefusedStreams { get; init; } = 256;

    /// <summary>
    /// Received bytes that the application has not read yet, summed over one session's streams; data that would go past
    /// it resets its stream instead of being buffered. Each stream's window bounds one stream, this bounds them all.
    /// </summary>
    public long MaxBufferedBytes { get; init; } = 16L * 1024 * 1024;

    /// <summary>
    /// Time one frame may take to leave (the peer stopped reading the connection and its buffers are full); after it
    /// the session ends (as go-yamux's ConnectionWriteTimeout). Measured on the session's <see cref="TimeProvider"/>.
    /// </summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Checks the options.</summary>
    public YamuxOptions Validated()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxStreams, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(AcceptBacklog, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxFrame, 1024);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxStreamWindow, InitialWindow);
        ArgumentOutOfRangeException.ThrowIfNegative(MaxRefusedStreams);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxBufferedBytes, InitialWindow);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(WriteTimeout, TimeSpan.Zero);
        return this;
    }
}
