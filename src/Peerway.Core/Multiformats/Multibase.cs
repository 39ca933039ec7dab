using System.Text;

namespace Peerway.Core.Multiformats;

/// <summary>
/// Multibase (multibase spec) for the encodings CIDs use: base32 lower 'b' (RFC 4648 §6, no padding) and upper 'B',
/// base58btc 'z' (Bitcoin alphabet), base36 lower 'k' (decode, as IPNS keys use it). Strings are bounded.
/// </summary>
public static class Multibase
{
    /// <summary>Prefix of base32 lower-case (RFC 4648 alphabet, no padding).</summary>
    public const char Base32Lower = 'b';

    /// <summary>Prefix of base58btc.</summary>
    public const char Base58Btc = 'z';

    /// <summary>Prefix of base36 lower-case.</summary>
    public const char Base36Lower = 'k';

    /// <summary>Bound on an encoded string (a CID with an identity hash of 128 bytes fits comfortably).</summary>
    public const int MaxEncodedLength = 1024;

    private const string Base32Alphabet = "abcdefghijklmnopqrstuvwxyz234567";
    private const string Base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    private const string Base36Alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";

    /// <summary>Decodes a multibase string (prefix included).</summary>
    public static MultiformatError TryDecode(ReadOnlySpan<char> text, out byte[] bytes)
    {
        bytes = [];
        if (text.IsEmpty)
        {
            return MultiformatError.Empty;
        }

        if (text.Length > MaxEncodedLength)
        {
            return MultiformatError.TooLong;
        }

        return text[0] switch
        {
            Base32Lower => TryDecodeBase32(text[1..], upper: false, out bytes),
            'B' => TryDecodeBase32(text[1..], upper: true, out bytes),
            Base58Btc => TryDecodeBaseN(text[1..], Base58Alphabet, out bytes),
            Base36Lower => TryDecodeBaseN(text[1..], Base36Alphabet, out bytes),
            _ => MultiformatError.UnsupportedMultibase,
        };
    }

    /// <summary>Encodes as multibase base32 lower ('b' prefix).</summary>
    public static string EncodeBase32(ReadOnlySpan<byte> data) => Base32Lower + EncodeBase32Raw(data);

    /// <summary>Encodes as multibase base58btc ('z' prefix).</summary>
    public static string EncodeBase58Btc(ReadOnlySpan<byte> data) => Base58Btc + EncodeBase58Raw(data);

    /// <summary>RFC 4648 base32 lower-case without padding and without a multibase prefix.</summary>
    public static string EncodeBase32Raw(ReadOnlySpan<byte> data)
    {
        var sb = new StringBuilder(((data.Length * 8) + 4) / 5);
        int buffer = 0, bits = 0;
        foreach (var b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                sb.Append(Base32Alphabet[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }

            buffer &= (1 << bits) - 1;
        }

        if (bits > 0)
        {
            sb.Append(Base32Alphabet[(buffer << (5 - bits)) & 31]);
        }

        return sb.ToString();
    }

    /// <summary>Base58 (Bitcoin alphabet) without a multibase prefix.</summary>
    public static string EncodeBase58Raw(ReadOnlySpan<byte> data)
    {
        var zeros = 0;
        while (zeros < data.Length && data[zeros] == 0)
        {
            zeros++;
        }

        // log(256) / log(58) ≈ 1.366: enough digits for the big-endian number.
        var digits = new byte[((data.Length - zeros) * 138 / 100) + 1];
        var length = 0;
        for (var i = zeros; i < data.Length; i++)
        {
            int carry = data[i];
            var j = 0;
            for (; j < length || carry != 0; j++)
            {
                carry += 256 * digits[j];
                digits[j] = (byte)(carry % 58);
                carry /= 58;
            }

            length = j;
        }

        var sb = new StringBuilder(zeros + length);
        sb.Append('1', zeros);
        for (var i = length - 1; i >= 0; i--)
        {
            sb.Append(Base58Alphabet[digits[i]]);
        }

        return sb.ToString();
    }

    /// <summary>Decodes base58btc without a multibase prefix.</summary>
    public static MultiformatError TryDecodeBase58Raw(ReadOnlySpan<char> text, out byte[] bytes)
    {
        if (text.Length > MaxEncodedLength)
        {
            bytes = [];
            return MultiformatError.TooLong;
        }

        return TryDecodeBaseN(text, Base58Alphabet, out bytes);
    }

    private static MultiformatError TryDecodeBase32(ReadOnlySpan<char> text, bool upper, out byte[] bytes)
    {
        bytes = [];
        // RFC 4648 §6: 8 characters carry 5 bytes; lengths 1, 3 and 6 (mod 8) cannot occur without padding.
        var rem = text.Length % 8;
        if (rem is 1 or 3 or 6)
        {
            return MultiformatError.Truncated;
        }

        var output = new byte[text.Length * 5 / 8];
        int buffer = 0, bits = 0, index = 0;
        foreach (var c in text)
        {
            int v;
            if (c is >= 'a' and <= 'z' && !upper)
            {
                v = c - 'a';
            }
            else if (c is >= 'A' and <= 'Z' && upper)
            {
                v = c - 'A';
            }
            else if (c is >= '2' and <= '7')
            {
                v = c - '2' + 26;
            }
            else
            {
                return MultiformatError.InvalidCharacter;
            }

            buffer = (buffer << 5) | v;
            bits += 5;
            if (bits >= 8)
            {
                output[index++] = (byte)(buffer >> (bits - 8));
                bits -= 8;
                buffer &= (1 << bits) - 1;
            }
        }

        if (buffer != 0)
        {
            return MultiformatError.NonCanonicalEncoding;
        }

        bytes = output;
        return MultiformatError.None;
    }

    private static MultiformatError TryDecodeBaseN(ReadOnlySpan<char> text, string alphabet, out byte[] bytes)
    {
        bytes = [];
        var radix = alphabet.Length;
        var zeros = 0;
        while (zeros < text.Length && text[zeros] == alphabet[0])
        {
            zeros++;
        }

        // Output bytes, little-endian big number; at most text.Length bytes are needed for radix ≤ 256.
        var number = new byte[text.Length];
        var length = 0;
        for (var i = zeros; i < text.Length; i++)
        {
            var digit = alphabet.IndexOf(text[i], StringComparison.Ordinal);
            if (digit < 0)
            {
                return MultiformatError.InvalidCharacter;
            }

            var carry = digit;
            var j = 0;
            for (; j < length || carry != 0; j++)
            {
                carry += radix * number[j];
                number[j] = (byte)(carry & 0xFF);
                carry >>= 8;
            }

            length = j;
        }

        var output = new byte[zeros + length];
        for (var i = 0; i < length; i++)
        {
            output[zeros + i] = number[length - 1 - i];
        }

        bytes = output;
        return MultiformatError.None;
    }
}
