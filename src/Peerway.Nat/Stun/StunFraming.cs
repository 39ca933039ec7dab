using System.Buffers.Binary;

namespace Peerway.Nat.Stun;

/// <summary>Result of looking for one frame at the start of a stream buffer.</summary>
public enum StunFrameStatus
{
    /// <summary>A whole frame is in the buffer; its length is in the out parameter.</summary>
    Complete,

    /// <summary>The buffer holds only the start of a frame: read more bytes.</summary>
    NeedMore,

    /// <summary>The buffer does not start with a STUN message or ChannelData message: the stream is not STUN.</summary>
    Invalid,
}

/// <summary>
/// Cuts STUN messages and TURN ChannelData messages out of a byte stream (RFC 8489 §6.2.2: over TCP the header's
/// length delimits a message; RFC 8656 §12.5: over TCP a ChannelData message is padded to a multiple of 4).
/// </summary>
public static class StunFraming
{
    /// <summary>
    /// Finds the length of the frame at the start of <paramref name="buffer"/>: a STUN message (first two bits 00) or
    /// ChannelData (01), padded to 4 bytes over a stream. <paramref name="frameLength"/> is set when the header was
    /// read, also with <see cref="StunFrameStatus.NeedMore"/>; it is 0 when fewer than 4 bytes are present or the frame is invalid.
    /// </summary>
    public static StunFrameStatus TryGetFrameLength(ReadOnlySpan<byte> buffer, out int frameLength)
    {
        frameLength = 0;
        if (buffer.Length < 4) return StunFrameStatus.NeedMore;
        var top = buffer[0] >> 6;
        var length = BinaryPrimitives.ReadUInt16BigEndian(buffer[2..]);
        if (top == 0)
        {
            if ((length & 3) != 0) return StunFrameStatus.Invalid;
            if (buffer.Length >= 8 && BinaryPrimitives.ReadUInt32BigEndian(buffer[4..]) != StunLimits.MagicCookie) return StunFrameStatus.Invalid;
            frameLength = StunLimits.HeaderSize + length;
        }
        else if (top == 1)
        {
            // RFC 8656 §12: channel numbers 0x4000-0x4FFF (RFC 5766: up to 0x7FFF); over a stream the data is padded
            // to 4 bytes.
            frameLength = 4 + StunMessage.Pad4(length);
        }
        else
        {
            return StunFrameStatus.Invalid;
        }

        return buffer.Length >= frameLength ? StunFrameStatus.Complete : StunFrameStatus.NeedMore;
    }
}
