namespace Peerway.Content.Protobuf;

/// <summary>Protocol Buffers wire types (protobuf encoding guide, "Message Structure").</summary>
internal enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    Fixed32 = 5,
}

/// <summary>A minimal, bounded protobuf reader over a span: tags, varints, length-delimited fields, fixed32.</summary>
internal ref struct ProtoReader
{
    /// <summary>Protobuf encoding guide: a varint is at most 10 bytes.</summary>
    public const int MaxVarintLength = 10;

    private readonly ReadOnlySpan<byte> _data;
    private int _position;

    public ProtoReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _position = 0;
    }

    public readonly bool End => _position >= _data.Length;

    public readonly int Position => _position;

    public ContentError TryReadVarint(out ulong value)
    {
        value = 0;
        for (var i = 0; i < MaxVarintLength; i++)
        {
            if (_position >= _data.Length)
            {
                return ContentError.Truncated;
            }

            var b = _data[_position++];
            if (i == 9 && b > 1)
            {
                return ContentError.VarintOverflow;
            }

            value |= (ulong)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                return ContentError.None;
            }
        }

        return ContentError.VarintOverflow;
    }

    public ContentError TryReadTag(out int field, out WireType wireType)
    {
        field = 0;
        wireType = WireType.Varint;
        var error = TryReadVarint(out var tag);
        if (error != ContentError.None)
        {
            return error;
        }

        var fieldNumber = tag >> 3;
        // Protobuf: field numbers are 1 .. 2^29 - 1.
        if (fieldNumber is 0 or > 536_870_911)
        {
            return ContentError.UnknownField;
        }

        field = (int)fieldNumber;
        var wt = (int)(tag & 7);
        if (wt is not (0 or 1 or 2 or 5))
        {
            return ContentError.WrongWireType;
        }

        wireType = (WireType)wt;
        return ContentError.None;
    }

    public ContentError TryReadBytes(out ReadOnlySpan<byte> bytes, out int offset)
    {
        bytes = default;
        offset = 0;
        var error = TryReadVarint(out var length);
        if (error != ContentError.None)
        {
            return error;
        }

        if (length > (ulong)(_data.Length - _position))
        {
            return ContentError.Truncated;
        }

        offset = _position;
        bytes = _data.Slice(_position, (int)length);
        _position += (int)length;
        return ContentError.None;
    }

    public ContentError TryReadFixed32(out uint value)
    {
        value = 0;
        if (_data.Length - _position < 4)
        {
            return ContentError.Truncated;
        }

        value = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(_data[_position..]);
        _position += 4;
        return ContentError.None;
    }

    /// <summary>Skips a field's value of the given wire type.</summary>
    public ContentError TrySkip(WireType wireType)
    {
        switch (wireType)
        {
            case WireType.Varint:
                return TryReadVarint(out _);
            case WireType.LengthDelimited:
                return TryReadBytes(out _, out _);
            case WireType.Fixed32:
                return TryReadFixed32(out _);
            default:
                if (_data.Length - _position < 8)
                {
                    return ContentError.Truncated;
                }

                _position += 8;
                return ContentError.None;
        }
    }
}

/// <summary>A minimal protobuf writer into a span sized by the caller.</summary>
internal ref struct ProtoWriter
{
    private readonly Span<byte> _destination;
    private int _position;

    public ProtoWriter(Span<byte> destination)
    {
        _destination = destination;
        _position = 0;
    }

    public readonly int Position => _position;

    public static int VarintSize(ulong value)
    {
        var n = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            n++;
        }

        return n;
    }

    public static int TagSize(int field) => VarintSize((ulong)field << 3);

    public static int BytesFieldSize(int field, int length) => TagSize(field) + VarintSize((ulong)length) + length;

    public static int VarintFieldSize(int field, ulong value) => TagSize(field) + VarintSize(value);

    public void WriteVarint(ulong value)
    {
        while (value >= 0x80)
        {
            _destination[_position++] = (byte)(value | 0x80);
            value >>= 7;
        }

        _destination[_position++] = (byte)value;
    }

    public void WriteTag(int field, WireType wireType) => WriteVarint(((ulong)field << 3) | (uint)wireType);

    public void WriteVarintField(int field, ulong value)
    {
        WriteTag(field, WireType.Varint);
        WriteVarint(value);
    }

    public void WriteBytesField(int field, ReadOnlySpan<byte> bytes)
    {
        WriteTag(field, WireType.LengthDelimited);
        WriteVarint((ulong)bytes.Length);
        bytes.CopyTo(_destination[_position..]);
        _position += bytes.Length;
    }

    /// <summary>Writes a length-delimited header; the caller writes <paramref name="length"/> bytes next.</summary>
    public void WriteLengthDelimitedHeader(int field, int length)
    {
        WriteTag(field, WireType.LengthDelimited);
        WriteVarint((ulong)length);
    }

    public void WriteFixed32Field(int field, uint value)
    {
        WriteTag(field, WireType.Fixed32);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(_destination[_position..], value);
        _position += 4;
    }

    public void WriteRaw(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_destination[_position..]);
        _position += bytes.Length;
    }
}
