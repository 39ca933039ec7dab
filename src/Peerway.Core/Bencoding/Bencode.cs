using System.Buffers;

namespace Peerway.Core.Bencoding;

/// <summary>Strict decode of a whole document into a <see cref="BValue"/> tree, and canonical encode.</summary>
public static class Bencode
{
    /// <summary>Decodes exactly one value spanning the whole input. Never throws on malformed input.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> data, out BValue? value, out BencodeError error, BencodeLimits? limits = null)
    {
        var reader = new BencodeReader(data, limits);
        value = ReadValue(ref reader);
        if (value is not null && !reader.TryReadEndOfInput()) value = null;
        error = reader.Error;
        if (value is null && error == BencodeError.None) error = BencodeError.UnexpectedByte;
        return value is not null;
    }

    /// <summary>Decodes, or throws <see cref="BencodeException"/> (for trusted input or user-facing files).</summary>
    public static BValue Decode(ReadOnlySpan<byte> data, BencodeLimits? limits = null) =>
        TryDecode(data, out var v, out var e, limits) ? v! : throw new BencodeException(e);

    /// <summary>Reads one value from the reader, or null with the reader's error set.</summary>
    public static BValue? ReadValue(ref BencodeReader reader)
    {
        switch (reader.Peek())
        {
            case BencodeToken.Integer:
                return reader.TryReadInteger(out var i) ? new BInteger(i) : null;
            case BencodeToken.String:
                return reader.TryReadString(out var s) ? new BString(s.ToArray()) : null;
            case BencodeToken.List:
            {
                if (!reader.TryEnterList()) return null;
                var items = new List<BValue>();
                while (!reader.TryReadEnd())
                {
                    if (reader.Error != BencodeError.None) return null;
                    var item = ReadValue(ref reader);
                    if (item is null) return null;
                    items.Add(item);
                }

                return new BList(items);
            }

            case BencodeToken.Dictionary:
            {
                if (!reader.TryEnterDictionary()) return null;
                var dict = new BDictionary();
                while (!reader.TryReadEnd())
                {
                    if (reader.Error != BencodeError.None) return null;
                    if (!reader.TryReadKey(out var key)) return null;
                    var keyBytes = key.ToArray();
                    var item = ReadValue(ref reader);
                    if (item is null) return null;
                    dict.Add(keyBytes, item);
                }

                return dict;
            }

            default:
                // Forces the reader to record why (truncated or unexpected byte).
                reader.TrySkipValue();
                return null;
        }
    }

    /// <summary>Canonical encoding: dictionary keys sorted by raw bytes, integers without leading zeros.</summary>
    public static byte[] Encode(BValue value)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        Write(buffer, value);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes <paramref name="value"/> canonically to <paramref name="output"/> (see <see cref="Encode"/>).</summary>
    public static void Write(IBufferWriter<byte> output, BValue value)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(value);
        switch (value)
        {
            case BInteger i:
                BencodeWriter.WriteInteger(output, i.Value);
                break;
            case BString s:
                BencodeWriter.WriteString(output, s.Value.Span);
                break;
            case BList l:
                BencodeWriter.WriteRaw(output, "l"u8);
                foreach (var item in l.Items) Write(output, item);
                BencodeWriter.WriteRaw(output, "e"u8);
                break;
            case BDictionary d:
                BencodeWriter.WriteRaw(output, "d"u8);
                foreach (var (k, v) in d.Entries)
                {
                    BencodeWriter.WriteString(output, k);
                    Write(output, v);
                }

                BencodeWriter.WriteRaw(output, "e"u8);
                break;
            default:
                throw new ArgumentException($"Unknown bencode value {value.GetType().Name}.", nameof(value));
        }
    }
}

/// <summary>Thrown only by the throwing convenience <see cref="Bencode.Decode"/>.</summary>
public sealed class BencodeException : Exception
{
    /// <summary>Invalid bencode, for <paramref name="error"/>.</summary>
    public BencodeException(BencodeError error) : base($"Invalid bencode: {error}.") => Error = error;

    /// <summary>Invalid bencode, with <see cref="Error"/> <see cref="BencodeError.UnexpectedByte"/>.</summary>
    public BencodeException() : this(BencodeError.UnexpectedByte)
    {
    }

    /// <summary>Invalid bencode described by <paramref name="message"/>; <see cref="Error"/> is <see cref="BencodeError.None"/>.</summary>
    public BencodeException(string message) : base(message)
    {
    }

    /// <summary>Invalid bencode described by <paramref name="message"/>, caused by <paramref name="innerException"/>; <see cref="Error"/> is <see cref="BencodeError.None"/>.</summary>
    public BencodeException(string message, Exception innerException) : base(message, innerException)
    {
    }

    /// <summary>Why the input was rejected (<see cref="BencodeError.None"/> when built from a message only).</summary>
    public BencodeError Error { get; }
}
