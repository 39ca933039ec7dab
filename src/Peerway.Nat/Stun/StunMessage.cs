using System.Buffers.Binary;

namespace Peerway.Nat.Stun;

/// <summary>Why bytes are not a STUN message (RFC 8489 §6.3 checks).</summary>
public enum StunDecodeError
{
    /// <summary>The bytes are a well-formed STUN message.</summary>
    None,

    /// <summary>Shorter than the 20-byte header.</summary>
    TooShort,

    /// <summary>The first two bits are not zero, so this is not STUN (RFC 7983 demultiplexing).</summary>
    NotStun,

    /// <summary>Bytes 4-7 are not the magic cookie 0x2112A442.</summary>
    BadMagicCookie,

    /// <summary>The header's length is not a multiple of 4.</summary>
    LengthNotAligned,

    /// <summary>The header's length differs from the number of bytes after the header.</summary>
    LengthMismatch,

    /// <summary>An attribute's header or padded value runs past the end of the message.</summary>
    AttributeOverrun,

    /// <summary>More than <see cref="StunLimits.MaxAttributes"/> attributes.</summary>
    TooManyAttributes,

    /// <summary>An attribute follows FINGERPRINT (RFC 8489 §14.7: FINGERPRINT is the last attribute).</summary>
    FingerprintNotLast,
}

/// <summary>One attribute's place in <see cref="StunMessage.Raw"/> (value offset and unpadded length).</summary>
public readonly record struct StunAttribute(ushort Type, int Offset, int Length);

/// <summary>
/// A decoded STUN message: a copy of the bytes plus the attribute index. Values are read through
/// <see cref="GetValue(StunAttribute)"/>; typed accessors live in <see cref="StunAttributes"/>.
/// </summary>
public sealed class StunMessage
{
    private readonly StunAttribute[] _attributes;

    private StunMessage(byte[] raw, StunMethod method, StunClass cls, StunAttribute[] attributes, int integrityIndex, int integrity256Index, int fingerprintIndex)
    {
        Raw = raw;
        Method = method;
        Class = cls;
        _attributes = attributes;
        IntegrityIndex = integrityIndex;
        Integrity256Index = integrity256Index;
        FingerprintIndex = fingerprintIndex;
    }

    /// <summary>The message bytes (header and attributes, exactly the message length).</summary>
    public byte[] Raw { get; }

    /// <summary>The method (bits M0-M11 of the message type).</summary>
    public StunMethod Method { get; }

    /// <summary>The class (bits C0-C1 of the message type).</summary>
    public StunClass Class { get; }

    /// <summary>The 12-byte transaction id (bytes 8-19 of <see cref="Raw"/>).</summary>
    public ReadOnlySpan<byte> TransactionId => Raw.AsSpan(8, StunLimits.TransactionIdSize);

    /// <summary>Attributes in wire order; those after MESSAGE-INTEGRITY other than MI-SHA256/FINGERPRINT are dropped
    /// (RFC 8489 §14.5), as is anything after FINGERPRINT (§14.7).</summary>
    public IReadOnlyList<StunAttribute> Attributes => _attributes;

    /// <summary>Index into <see cref="Attributes"/> of MESSAGE-INTEGRITY, or -1.</summary>
    public int IntegrityIndex { get; }

    /// <summary>Index into <see cref="Attributes"/> of MESSAGE-INTEGRITY-SHA256, or -1.</summary>
    public int Integrity256Index { get; }

    /// <summary>Index into <see cref="Attributes"/> of FINGERPRINT, or -1.</summary>
    public int FingerprintIndex { get; }

    /// <summary>The value bytes of <paramref name="attribute"/> (unpadded), a slice of <see cref="Raw"/>.</summary>
    public ReadOnlySpan<byte> GetValue(StunAttribute attribute) => Raw.AsSpan(attribute.Offset, attribute.Length);

    /// <summary>Finds the first attribute of <paramref name="type"/> in <see cref="Attributes"/>; false if there is none.</summary>
    public bool TryGet(ushort type, out StunAttribute attribute)
    {
        foreach (var a in _attributes)
        {
            if (a.Type == type)
            {
                attribute = a;
                return true;
            }
        }

        attribute = default;
        return false;
    }

    /// <summary>Whether the message carries an attribute of <paramref name="type"/> (one in <see cref="Attributes"/>).</summary>
    public bool Has(ushort type) => TryGet(type, out _);

    /// <summary>
    /// RFC 8489 §5: bytes 4-7 hold the magic cookie; RFC 7983 §7: the first byte is 0..3 (every registered method is
    /// below 0x100, so the type's first byte is 0 or 1). A DTLS record (20..63) whose epoch and sequence number happen
    /// to spell the cookie is not STUN.
    /// </summary>
    public static bool LooksLikeStun(ReadOnlySpan<byte> data) =>
        data.Length >= StunLimits.HeaderSize && data[0] <= 3 &&
        BinaryPrimitives.ReadUInt32BigEndian(data[4..]) == StunLimits.MagicCookie;

    /// <summary>RFC 8489 §5: M11..M7 C1 M6..M4 C0 M3..M0.</summary>
    public static ushort EncodeType(StunMethod method, StunClass cls)
    {
        var m = (int)method;
        var c = (int)cls;
        return (ushort)((m & 0x000F) | ((c & 1) << 4) | ((m & 0x0070) << 1) | ((c & 2) << 7) | ((m & 0x0F80) << 2));
    }

    /// <summary>RFC 8489 §5: splits a 16-bit message type into method and class (the inverse of <see cref="EncodeType"/>).</summary>
    public static (StunMethod Method, StunClass Class) DecodeType(ushort type)
    {
        var m = (type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2);
        var c = ((type & 0x0010) >> 4) | ((type & 0x0100) >> 7);
        return ((StunMethod)m, (StunClass)c);
    }

    /// <summary>
    /// Decodes one message that occupies <paramref name="data"/> exactly (a UDP datagram, or a frame cut from a
    /// stream by <see cref="StunFraming"/>). Never throws on input.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> data, out StunMessage? message, out StunDecodeError error)
    {
        message = null;
        error = Validate(data, out var count);
        if (error != StunDecodeError.None) return false;

        var raw = data.ToArray();
        var attributes = new StunAttribute[count];
        int integrity = -1, integrity256 = -1, fingerprint = -1, n = 0;
        var pos = StunLimits.HeaderSize;
        while (pos < raw.Length)
        {
            var type = BinaryPrimitives.ReadUInt16BigEndian(raw.AsSpan(pos));
            var length = BinaryPrimitives.ReadUInt16BigEndian(raw.AsSpan(pos + 2));
            var keep = fingerprint < 0 &&
                (integrity < 0 || type is StunAttributeType.MessageIntegritySha256 or StunAttributeType.Fingerprint) &&
                (integrity256 < 0 || type == StunAttributeType.Fingerprint);
            if (keep)
            {
                if (type == StunAttributeType.MessageIntegrity) integrity = n;
                else if (type == StunAttributeType.MessageIntegritySha256) integrity256 = n;
                else if (type == StunAttributeType.Fingerprint) fingerprint = n;
                attributes[n++] = new StunAttribute(type, pos + 4, length);
            }

            pos += 4 + Pad4(length);
        }

        if (n != attributes.Length) Array.Resize(ref attributes, n);
        var (method, cls) = DecodeType(BinaryPrimitives.ReadUInt16BigEndian(raw));
        message = new StunMessage(raw, method, cls, attributes, integrity, integrity256, fingerprint);
        return true;
    }

    /// <summary>Checks framing without allocating; returns the attribute count.</summary>
    public static StunDecodeError Validate(ReadOnlySpan<byte> data, out int attributeCount)
    {
        attributeCount = 0;
        if (data.Length < StunLimits.HeaderSize) return StunDecodeError.TooShort;
        if ((data[0] & 0xC0) != 0) return StunDecodeError.NotStun;
        if (BinaryPrimitives.ReadUInt32BigEndian(data[4..]) != StunLimits.MagicCookie) return StunDecodeError.BadMagicCookie;
        var length = BinaryPrimitives.ReadUInt16BigEndian(data[2..]);
        // RFC 8489 §5: the message length is a multiple of 4 (attributes are padded).
        if ((length & 3) != 0) return StunDecodeError.LengthNotAligned;
        if (StunLimits.HeaderSize + length != data.Length) return StunDecodeError.LengthMismatch;
        var pos = StunLimits.HeaderSize;
        var sawFingerprint = false;
        while (pos < data.Length)
        {
            if (data.Length - pos < 4) return StunDecodeError.AttributeOverrun;
            if (sawFingerprint) return StunDecodeError.FingerprintNotLast;
            var type = BinaryPrimitives.ReadUInt16BigEndian(data[pos..]);
            var attrLength = BinaryPrimitives.ReadUInt16BigEndian(data[(pos + 2)..]);
            if (Pad4(attrLength) > data.Length - pos - 4) return StunDecodeError.AttributeOverrun;
            if (++attributeCount > StunLimits.MaxAttributes) return StunDecodeError.TooManyAttributes;
            sawFingerprint = type == StunAttributeType.Fingerprint;
            pos += 4 + Pad4(attrLength);
        }

        return StunDecodeError.None;
    }

    internal static int Pad4(int length) => (length + 3) & ~3;
}
