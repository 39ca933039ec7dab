using System.Buffers;


namespace Peerway.Libp2p;

/// <summary>
/// The few protobuf encodings libp2p's messages need (protobuf encoding guide): varint and length-delimited fields,
/// written in field order as libp2p's specs require for signed data ("deterministic encoding").
/// </summary>
internal sealed class ProtoWriter
{
    private readonly ArrayBufferWriter<byte> _buffer = new();

    public ReadOnlySpan<byte> Written => _buffer.WrittenSpan;

    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

    public ProtoWriter Varint(int field, ulong value)
    {
        WriteRawVarint(((ulong)field << 3) | 0);
        WriteRawVarint(value);
        return this;
    }

    public ProtoWriter Bytes(int field, ReadOnlySpan<byte> value)
    {
        WriteRawVarint(((ulong)field << 3) | 2);
        WriteRawVarint((ulong)value.Length);
        _buffer.Write(value);
        return this;
    }

    public ProtoWriter String(int field, string value) => Bytes(field, System.Text.Encoding.UTF8.GetBytes(value));

    private void WriteRawVarint(ulong value)
    {
        var span = _buffer.GetSpan(10);
        _buffer.Advance(Core.Multiformats.Varint.Write(value, span));
    }
}

/// <summary>One protobuf field read by <see cref="ProtoFields"/>: its number, wire type and value.</summary>
internal readonly ref struct ProtoField
{
    public ProtoField(int number, int wireType, ulong varint, ReadOnlySpan<byte> bytes)
    {
        Number = number;
        WireType = wireType;
        Varint = varint;
        Bytes = bytes;
    }

    public int Number { get; }

    /// <summary>0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.</summary>
    public int WireType { get; }

    public ulong Varint { get; }

    public ReadOnlySpan<byte> Bytes { get; }
}

/// <summary>A bounded protobuf field reader over a span: typed errors, never throws, unknown fields skipped by the caller.</summary>
internal ref struct ProtoFields
{
    private ReadOnlySpan<byte> _rest;

    public ProtoFields(ReadOnlySpan<byte> message) => _rest = message;

    public Libp2pError Error { get; private set; }

    /// <summary>Reads the next field; false at the end or on an error (then <see cref="Error"/> says which).</summary>
    public bool Next(out ProtoField field)
    {
        field = default;
        if (_rest.IsEmpty || Error != Libp2pError.None) return false;
        if (!TryVarint(out var key)) return false;
        var number = key >> 3;
        var wire = (int)(key & 7);
        if (number is 0 or > int.MaxValue)
        {
            Error = Libp2pError.BadWireType;
            return false;
        }

        switch (wire)
        {
            case 0:
                if (!TryVarint(out var v)) return false;
                field = new ProtoField((int)number, 0, v, default);
                return true;
            case 1 or 5:
                var size = wire == 1 ? 8 : 4;
                if (_rest.Length < size) return Fail(Libp2pError.Truncated);
                field = new ProtoField((int)number, wire, 0, _rest[..size]);
                _rest = _rest[size..];
                return true;
            case 2:
                if (!TryVarint(out var length)) return false;
                if (length > (ulong)_rest.Length) return Fail(Libp2pError.Truncated);
                field = new ProtoField((int)number, 2, 0, _rest[..(int)length]);
                _rest = _rest[(int)length..];
                return true;
            default:
                return Fail(Libp2pError.BadWireType);
        }
    }

    private bool TryVarint(out ulong value)
    {
        // Protobuf varints may be up to 10 bytes and need not be minimal (unlike multiformats' unsigned-varint).
        value = 0;
        for (var i = 0; i < 10; i++)
        {
            if (i >= _rest.Length) return Fail(Libp2pError.Truncated);
            var b = _rest[i];
            if (i == 9 && b > 1) return Fail(Libp2pError.BadVarint);
            value |= (ulong)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                _rest = _rest[(i + 1)..];
                return true;
            }
        }

        return Fail(Libp2pError.BadVarint);
    }

    private bool Fail(Libp2pError error)
    {
        Error = error;
        return false;
    }
}
