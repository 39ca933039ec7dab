using System.Buffers;
using System.Buffers.Text;

namespace Peerway.Core.Bencoding;

/// <summary>
/// Low-level canonical bencode output. Callers writing dictionaries by hand must write keys in ascending raw-byte
/// order (BEP 3); <see cref="Bencode.Write"/> does this for trees.
/// </summary>
public static class BencodeWriter
{
    /// <summary>Copies <paramref name="bytes"/> as they are (list and dictionary markers, pre-encoded values).</summary>
    public static void WriteRaw(IBufferWriter<byte> output, ReadOnlySpan<byte> bytes)
    {
        ArgumentNullException.ThrowIfNull(output);
        bytes.CopyTo(output.GetSpan(bytes.Length));
        output.Advance(bytes.Length);
    }

    /// <summary>Writes "i&lt;value&gt;e" in canonical form (no leading zeros, no "-0").</summary>
    public static void WriteInteger(IBufferWriter<byte> output, long value)
    {
        ArgumentNullException.ThrowIfNull(output);
        var span = output.GetSpan(22);
        span[0] = (byte)'i';
        Utf8Formatter.TryFormat(value, span[1..], out var n);
        span[1 + n] = (byte)'e';
        output.Advance(n + 2);
    }

    /// <summary>Writes "&lt;length&gt;:&lt;bytes&gt;".</summary>
    public static void WriteString(IBufferWriter<byte> output, ReadOnlySpan<byte> value)
    {
        ArgumentNullException.ThrowIfNull(output);
        var span = output.GetSpan(value.Length + 12);
        Utf8Formatter.TryFormat(value.Length, span, out var n);
        span[n] = (byte)':';
        value.CopyTo(span[(n + 1)..]);
        output.Advance(n + 1 + value.Length);
    }

    /// <summary>Span-based variants for fixed buffers (datagrams); return bytes written or -1 when out of space.</summary>
    public static int WriteInteger(Span<byte> destination, long value)
    {
        if (destination.Length < 3) return -1;
        destination[0] = (byte)'i';
        if (!Utf8Formatter.TryFormat(value, destination[1..], out var n) || destination.Length < n + 2) return -1;
        destination[1 + n] = (byte)'e';
        return n + 2;
    }

    /// <summary>Writes "&lt;length&gt;:&lt;bytes&gt;" into <paramref name="destination"/>; returns bytes written, or -1 when it does not fit.</summary>
    public static int WriteString(Span<byte> destination, ReadOnlySpan<byte> value)
    {
        if (!Utf8Formatter.TryFormat(value.Length, destination, out var n)) return -1;
        if (destination.Length < n + 1 + value.Length) return -1;
        destination[n] = (byte)':';
        value.CopyTo(destination[(n + 1)..]);
        return n + 1 + value.Length;
    }
}
