namespace Peerway.Core.Multiformats;

/// <summary>
/// Unsigned LEB128 varints as the multiformats unsigned-varint spec defines them: 7 bits per byte, least significant
/// group first, continuation bit 0x80, at most 9 bytes (63 bits), minimally encoded.
/// </summary>
public static class Varint
{
    /// <summary>unsigned-varint spec: "the maximum number of bytes is 9" (values up to 2^63 - 1).</summary>
    public const int MaxLength = 9;

    /// <summary>The largest value a varint may carry.</summary>
    public const ulong MaxValue = long.MaxValue;

    /// <summary>Reads one varint from the start of <paramref name="source"/>.</summary>
    public static MultiformatError TryRead(ReadOnlySpan<byte> source, out ulong value, out int length)
    {
        value = 0;
        length = 0;
        ulong result = 0;
        for (var i = 0; i < MaxLength; i++)
        {
            if (i >= source.Length)
            {
                return MultiformatError.Truncated;
            }

            var b = source[i];
            result |= (ulong)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                // unsigned-varint spec: minimal encoding — a last byte of 0 is only allowed for the value 0 itself.
                if (b == 0 && i > 0)
                {
                    return MultiformatError.VarintNotMinimal;
                }

                value = result;
                length = i + 1;
                return MultiformatError.None;
            }
        }

        return MultiformatError.VarintOverflow;
    }

    /// <summary>The encoded length of <paramref name="value"/>.</summary>
    public static int SizeOf(ulong value)
    {
        var n = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            n++;
        }

        return n;
    }

    /// <summary>Writes <paramref name="value"/> (at most <see cref="MaxValue"/>) and returns the bytes written.</summary>
    public static int Write(ulong value, Span<byte> destination)
    {
        if (value > MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(value), "unsigned-varint values are limited to 63 bits.");
        }

        var i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[i++] = (byte)value;
        return i;
    }
}
