using System.Diagnostics.CodeAnalysis;

namespace Peerway.Core.Bencoding;

/// <summary>The kind of the next value a <see cref="BencodeReader"/> will read.</summary>
public enum BencodeToken
{
    /// <summary>End of input, an error, or a byte that cannot start a value.</summary>
    None,
    /// <summary>An integer ('i').</summary>
    Integer,
    /// <summary>A byte string (a length digit).</summary>
    String,
    /// <summary>A list ('l').</summary>
    List,
    /// <summary>A dictionary ('d').</summary>
    Dictionary,
    /// <summary>The end of the open list or dictionary ('e').</summary>
    End,
}

/// <summary>
/// A forward-only, allocation-free, strict bencode reader (BEP 3) over a span. Every method returns false and sets
/// <see cref="Error"/> instead of throwing; once an error is set, every further call fails.
/// Dictionary key order is enforced by the caller-facing <see cref="TryReadKey"/>: keys must ascend strictly by raw bytes.
/// </summary>
[SuppressMessage("Performance", "CA1815", Justification = "A ref struct cursor is never compared.")]
public ref struct BencodeReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly BencodeLimits _limits;
    private int _pos;
    private int _depth;
    private int _items;

    // Last key read in each open dictionary, for the ordering check; depth is bounded by MaxDepth (≤ 64 levels tracked).
    private KeyStack _keys;

    /// <summary>A reader over <paramref name="data"/>; <paramref name="limits"/> <see langword="null"/>: <see cref="BencodeLimits.Default"/>.
    /// Input longer than <see cref="BencodeLimits.MaxInputLength"/> sets <see cref="Error"/> to <see cref="BencodeError.InputTooLarge"/> at once.</summary>
    public BencodeReader(ReadOnlySpan<byte> data, BencodeLimits? limits = null)
    {
        _data = data;
        _limits = limits ?? BencodeLimits.Default;
        _pos = 0;
        _depth = 0;
        _items = 0;
        _keys = default;
        Error = data.Length > _limits.MaxInputLength ? BencodeError.InputTooLarge : BencodeError.None;
    }

    /// <summary>The first error met (<see cref="BencodeError.None"/>: none so far); once set, every read fails.</summary>
    public BencodeError Error { get; private set; }

    /// <summary>Offset of the next byte to read in the input.</summary>
    public readonly int Position => _pos;

    /// <summary>Number of lists and dictionaries open (0 at top level).</summary>
    public readonly int Depth => _depth;

    /// <summary>True when every byte of the input has been consumed.</summary>
    public readonly bool AtEndOfInput => _pos >= _data.Length;

    private bool Fail(BencodeError error)
    {
        if (Error == BencodeError.None) Error = error;
        return false;
    }

    /// <summary>The kind of the next value, or <see cref="BencodeToken.None"/> at end of input or on error.</summary>
    public readonly BencodeToken Peek()
    {
        if (Error != BencodeError.None || _pos >= _data.Length) return BencodeToken.None;
        return _data[_pos] switch
        {
            (byte)'i' => BencodeToken.Integer,
            (byte)'l' => BencodeToken.List,
            (byte)'d' => BencodeToken.Dictionary,
            (byte)'e' => BencodeToken.End,
            >= (byte)'0' and <= (byte)'9' => BencodeToken.String,
            _ => BencodeToken.None,
        };
    }

    private bool CountItem()
    {
        if (++_items > _limits.MaxItems) return Fail(BencodeError.TooManyItems);
        return true;
    }

    /// <summary>Reads an integer (BEP 3: "i&lt;digits&gt;e"), rejecting leading zeros, "-0" and values outside <see cref="long"/>.
    /// False (with <see cref="Error"/> set) otherwise, including when the next value is not an integer.</summary>
    public bool TryReadInteger(out long value)
    {
        value = 0;
        if (Error != BencodeError.None) return false;
        if (_pos >= _data.Length) return Fail(BencodeError.Truncated);
        if (_data[_pos] != (byte)'i') return Fail(BencodeError.WrongType);
        if (!CountItem()) return false;
        var p = _pos + 1;
        var negative = false;
        if (p < _data.Length && _data[p] == (byte)'-')
        {
            negative = true;
            p++;
        }

        var start = p;
        ulong magnitude = 0;
        while (p < _data.Length && _data[p] is >= (byte)'0' and <= (byte)'9')
        {
            var digit = (ulong)(_data[p] - '0');
            if (magnitude > (ulong.MaxValue - digit) / 10) return Fail(BencodeError.IntegerOverflow);
            magnitude = (magnitude * 10) + digit;
            p++;
        }

        if (p >= _data.Length) return Fail(BencodeError.Truncated);
        if (p == start || _data[p] != (byte)'e') return Fail(BencodeError.UnexpectedByte);
        if (_data[start] == (byte)'0' && p - start > 1) return Fail(BencodeError.LeadingZero);
        if (negative && magnitude == 0) return Fail(BencodeError.NegativeZero);
        if (negative)
        {
            if (magnitude > (ulong)long.MaxValue + 1) return Fail(BencodeError.IntegerOverflow);
            value = magnitude == (ulong)long.MaxValue + 1 ? long.MinValue : -(long)magnitude;
        }
        else
        {
            if (magnitude > long.MaxValue) return Fail(BencodeError.IntegerOverflow);
            value = (long)magnitude;
        }

        _pos = p + 1;
        return true;
    }

    /// <summary>Reads a byte string (BEP 3: "&lt;length&gt;:&lt;bytes&gt;"); <paramref name="value"/> is a slice of the input, not a copy.
    /// False (with <see cref="Error"/> set) on a leading zero, a length over <see cref="BencodeLimits.MaxStringLength"/>,
    /// truncation, or when the next value is not a string.</summary>
    public bool TryReadString(out ReadOnlySpan<byte> value)
    {
        value = default;
        if (Error != BencodeError.None) return false;
        if (_pos >= _data.Length) return Fail(BencodeError.Truncated);
        if (_data[_pos] is < (byte)'0' or > (byte)'9') return Fail(BencodeError.WrongType);
        if (!CountItem()) return false;
        var p = _pos;
        long length = 0;
        while (p < _data.Length && _data[p] is >= (byte)'0' and <= (byte)'9')
        {
            length = (length * 10) + (_data[p] - '0');
            if (length > _limits.MaxStringLength) return Fail(BencodeError.StringTooLong);
            p++;
        }

        if (p >= _data.Length) return Fail(BencodeError.Truncated);
        if (_data[p] != (byte)':') return Fail(BencodeError.UnexpectedByte);
        if (_data[_pos] == (byte)'0' && p - _pos > 1) return Fail(BencodeError.LeadingZero);
        p++;
        if (length > _data.Length - p) return Fail(BencodeError.Truncated);
        value = _data.Slice(p, (int)length);
        _pos = p + (int)length;
        return true;
    }

    /// <summary>Reads a string that is a dictionary key, checking strict ascending order within the open dictionary.</summary>
    public bool TryReadKey(out ReadOnlySpan<byte> key)
    {
        if (!TryReadString(out key)) return false;
        var previous = _keys.Get(_depth);
        if (previous.Length >= 0)
        {
            var prev = _data.Slice(previous.Start, previous.Length);
            var cmp = prev.SequenceCompareTo(key);
            if (cmp == 0) return Fail(BencodeError.DuplicateKey);
            if (cmp > 0) return Fail(BencodeError.UnsortedKeys);
        }

        _keys.Set(_depth, new KeyRange(_pos - key.Length, key.Length));
        return true;
    }

    /// <summary>Consumes the 'l' that opens a list; read its items, then <see cref="TryReadEnd"/>. False (with <see cref="Error"/>
    /// set) when the next value is not a list or it would exceed <see cref="BencodeLimits.MaxDepth"/>.</summary>
    public bool TryEnterList() => TryEnter((byte)'l');

    /// <summary>Consumes the 'd' that opens a dictionary; read <see cref="TryReadKey"/> and a value per entry, then
    /// <see cref="TryReadEnd"/>. False (with <see cref="Error"/> set) when the next value is not a dictionary or it would
    /// exceed <see cref="BencodeLimits.MaxDepth"/>.</summary>
    public bool TryEnterDictionary()
    {
        if (!TryEnter((byte)'d')) return false;
        _keys.Set(_depth, new KeyRange(0, -1));
        return true;
    }

    private bool TryEnter(byte marker)
    {
        if (Error != BencodeError.None) return false;
        if (_pos >= _data.Length) return Fail(BencodeError.Truncated);
        if (_data[_pos] != marker) return Fail(BencodeError.WrongType);
        if (!CountItem()) return false;
        if (_depth + 1 > _limits.MaxDepth || _depth + 1 >= KeyStack.Capacity) return Fail(BencodeError.TooDeep);
        _depth++;
        _pos++;
        return true;
    }

    /// <summary>True (and consumes it) when the next byte closes the current list or dictionary.</summary>
    public bool TryReadEnd()
    {
        if (Error != BencodeError.None || _depth == 0) return false;
        if (_pos >= _data.Length) return Fail(BencodeError.Truncated);
        if (_data[_pos] != (byte)'e') return false;
        _pos++;
        _depth--;
        return true;
    }

    /// <summary>Skips one whole value (of any kind), validating it.</summary>
    public bool TrySkipValue()
    {
        switch (Peek())
        {
            case BencodeToken.Integer:
                return TryReadInteger(out _);
            case BencodeToken.String:
                return TryReadString(out _);
            case BencodeToken.List:
                if (!TryEnterList()) return false;
                while (!TryReadEnd())
                {
                    if (Error != BencodeError.None || !TrySkipValue()) return false;
                }

                return true;
            case BencodeToken.Dictionary:
                if (!TryEnterDictionary()) return false;
                while (!TryReadEnd())
                {
                    if (Error != BencodeError.None || !TryReadKey(out _) || !TrySkipValue()) return false;
                }

                return true;
            case BencodeToken.None when Error == BencodeError.None && _pos >= _data.Length:
                return Fail(BencodeError.Truncated);
            default:
                return Fail(BencodeError.UnexpectedByte);
        }
    }

    /// <summary>Succeeds when the whole input has been consumed.</summary>
    public bool TryReadEndOfInput()
    {
        if (Error != BencodeError.None) return false;
        return _pos == _data.Length || Fail(BencodeError.TrailingData);
    }

    /// <summary>The raw bytes of the next value (e.g. the exact "info" dictionary for an info-hash), skipping it.</summary>
    public bool TryReadRawValue(out ReadOnlySpan<byte> raw)
    {
        var start = _pos;
        raw = default;
        if (!TrySkipValue()) return false;
        raw = _data[start.._pos];
        return true;
    }

    private readonly record struct KeyRange(int Start, int Length);

    [System.Runtime.CompilerServices.InlineArray(Capacity)]
    private struct KeyStack
    {
        public const int Capacity = 65;
        private KeyRange _element;

        public readonly KeyRange Get(int depth) => this[depth];

        public void Set(int depth, KeyRange value) => this[depth] = value;
    }
}
