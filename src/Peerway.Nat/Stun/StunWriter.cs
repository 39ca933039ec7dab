using System.Buffers.Binary;
using System.IO.Hashing;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Peerway.Nat.Stun;

/// <summary>
/// Writes one STUN message into a caller's buffer (RFC 8489 §5, §14). Attributes are appended in call order;
/// MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT go last, in that order. Throws only on programming
/// errors (a buffer too small, a value over the spec's bound), never on network input.
/// </summary>
public ref struct StunWriter
{
    private readonly Span<byte> _buffer;
    private int _length;

    /// <summary>
    /// Starts a message of <paramref name="method"/> and <paramref name="cls"/> in <paramref name="buffer"/>: writes the
    /// 20-byte header with the magic cookie and <paramref name="transactionId"/>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="transactionId"/> is not 12 bytes, or <paramref name="buffer"/> is shorter than 20.</exception>
    public StunWriter(Span<byte> buffer, StunMethod method, StunClass cls, ReadOnlySpan<byte> transactionId)
    {
        if (transactionId.Length != StunLimits.TransactionIdSize) throw new ArgumentException("A transaction id is 12 bytes.", nameof(transactionId));
        if (buffer.Length < StunLimits.HeaderSize) throw new ArgumentException("Buffer too small.", nameof(buffer));
        _buffer = buffer;
        BinaryPrimitives.WriteUInt16BigEndian(buffer, StunMessage.EncodeType(method, cls));
        BinaryPrimitives.WriteUInt16BigEndian(buffer[2..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(buffer[4..], StunLimits.MagicCookie);
        transactionId.CopyTo(buffer[8..]);
        _length = StunLimits.HeaderSize;
    }

    /// <summary>Bytes written so far (a complete message at every step).</summary>
    public readonly int Length => _length;

    /// <summary>The message written so far (a slice of the caller's buffer, <see cref="Length"/> bytes).</summary>
    public readonly ReadOnlySpan<byte> Written => _buffer[.._length];

    private readonly ReadOnlySpan<byte> TransactionId => _buffer.Slice(8, StunLimits.TransactionIdSize);

    /// <summary>Reserves an attribute of <paramref name="length"/> value bytes (zero padded) and returns the value span.</summary>
    public Span<byte> Reserve(ushort type, int length)
    {
        var padded = StunMessage.Pad4(length);
        if (length > ushort.MaxValue || _length + 4 + padded > Math.Min(_buffer.Length, StunLimits.MaxMessageSize))
        {
            throw new InvalidOperationException("The STUN message does not fit its buffer.");
        }

        BinaryPrimitives.WriteUInt16BigEndian(_buffer[_length..], type);
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[(_length + 2)..], (ushort)length);
        var value = _buffer.Slice(_length + 4, length);
        _buffer.Slice(_length + 4 + length, padded - length).Clear();
        _length += 4 + padded;
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[2..], (ushort)(_length - StunLimits.HeaderSize));
        return value;
    }

    /// <summary>Appends an attribute with <paramref name="value"/> as its value (padded to 4 bytes).</summary>
    /// <exception cref="InvalidOperationException">The message does not fit the buffer.</exception>
    public void Add(ushort type, ReadOnlySpan<byte> value) => value.CopyTo(Reserve(type, value.Length));

    /// <summary>Appends an attribute whose value is <paramref name="value"/> in UTF-8 (USERNAME, REALM, NONCE, SOFTWARE).</summary>
    /// <exception cref="InvalidOperationException">The message does not fit the buffer.</exception>
    public void AddUtf8(ushort type, string value)
    {
        var bytes = Encoding.UTF8.GetByteCount(value);
        Encoding.UTF8.GetBytes(value, Reserve(type, bytes));
    }

    /// <summary>Appends a 4-byte big-endian attribute (LIFETIME, PRIORITY, CHANGE-REQUEST).</summary>
    /// <exception cref="InvalidOperationException">The message does not fit the buffer.</exception>
    public void AddUInt32(ushort type, uint value) => BinaryPrimitives.WriteUInt32BigEndian(Reserve(type, 4), value);

    /// <summary>Appends an 8-byte big-endian attribute (ICE-CONTROLLING, ICE-CONTROLLED, RESERVATION-TOKEN).</summary>
    /// <exception cref="InvalidOperationException">The message does not fit the buffer.</exception>
    public void AddUInt64(ushort type, ulong value) => BinaryPrimitives.WriteUInt64BigEndian(Reserve(type, 8), value);

    /// <summary>Appends an attribute with an empty value (USE-CANDIDATE, DONT-FRAGMENT).</summary>
    /// <exception cref="InvalidOperationException">The message does not fit the buffer.</exception>
    public void AddFlag(ushort type) => Reserve(type, 0);

    /// <summary>RFC 8489 §14.1: MAPPED-ADDRESS layout (also OTHER-ADDRESS, RESPONSE-ORIGIN, ALTERNATE-SERVER).</summary>
    public void AddAddress(ushort type, IPEndPoint endPoint)
    {
        var v6 = endPoint.AddressFamily == AddressFamily.InterNetworkV6;
        var value = Reserve(type, v6 ? 20 : 8);
        value[0] = 0;
        value[1] = v6 ? (byte)2 : (byte)1;
        BinaryPrimitives.WriteUInt16BigEndian(value[2..], (ushort)endPoint.Port);
        endPoint.Address.TryWriteBytes(value[4..], out _);
    }

    /// <summary>RFC 8489 §14.2: XOR-MAPPED-ADDRESS (also XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS).</summary>
    public void AddXorAddress(ushort type, IPEndPoint endPoint)
    {
        Span<byte> tid = stackalloc byte[StunLimits.TransactionIdSize];
        TransactionId.CopyTo(tid);
        AddAddress(type, endPoint);
        var valueLength = endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? 20 : 8;
        StunAttributes.XorInPlace(_buffer.Slice(_length - valueLength + 2, valueLength - 2), tid);
    }

    /// <summary>RFC 8489 §14.8: ERROR-CODE with class (hundreds) and number, then a UTF-8 reason.</summary>
    public void AddErrorCode(int code, string? reason = null)
    {
        if (code is < 300 or > 699) throw new ArgumentOutOfRangeException(nameof(code));
        reason ??= StunErrorCode.DefaultReason(code);
        var bytes = Encoding.UTF8.GetByteCount(reason);
        if (bytes > StunLimits.MaxReasonBytes) throw new ArgumentException("Reason phrase too long.", nameof(reason));
        var value = Reserve(StunAttributeType.ErrorCode, 4 + bytes);
        value[0] = 0;
        value[1] = 0;
        value[2] = (byte)(code / 100);
        value[3] = (byte)(code % 100);
        Encoding.UTF8.GetBytes(reason, value[4..]);
    }

    /// <summary>RFC 8489 §14.13: UNKNOWN-ATTRIBUTES, a list of 16-bit types.</summary>
    public void AddUnknownAttributes(ReadOnlySpan<ushort> types)
    {
        var value = Reserve(StunAttributeType.UnknownAttributes, types.Length * 2);
        for (var i = 0; i < types.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(value[(2 * i)..], types[i]);
    }

    /// <summary>RFC 8489 §14.11: PASSWORD-ALGORITHMS, (algorithm, empty parameters) pairs.</summary>
    public void AddPasswordAlgorithms(ReadOnlySpan<StunPasswordAlgorithm> algorithms)
    {
        var value = Reserve(StunAttributeType.PasswordAlgorithms, algorithms.Length * 4);
        for (var i = 0; i < algorithms.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(value[(4 * i)..], (ushort)algorithms[i]);
            BinaryPrimitives.WriteUInt16BigEndian(value[(4 * i + 2)..], 0);
        }
    }

    /// <summary>
    /// RFC 8489 §14.5: HMAC-SHA1 over the message up to this attribute, with the header length already counting it.
    /// </summary>
    public void AddMessageIntegrity(ReadOnlySpan<byte> key)
    {
        var covered = _length;
        var value = Reserve(StunAttributeType.MessageIntegrity, StunLimits.MessageIntegritySize);
        HMACSHA1.HashData(key, _buffer[..covered], value);
    }

    /// <summary>RFC 8489 §14.6: HMAC-SHA256 (full 32 bytes) over the message up to this attribute.</summary>
    public void AddMessageIntegritySha256(ReadOnlySpan<byte> key)
    {
        var covered = _length;
        var value = Reserve(StunAttributeType.MessageIntegritySha256, StunLimits.MessageIntegritySha256Size);
        HMACSHA256.HashData(key, _buffer[..covered], value);
    }

    /// <summary>RFC 8489 §14.7: CRC-32 of the message up to this attribute, XOR 0x5354554e.</summary>
    public void AddFingerprint()
    {
        var covered = _length;
        var value = Reserve(StunAttributeType.Fingerprint, 4);
        BinaryPrimitives.WriteUInt32BigEndian(value, Crc32.HashToUInt32(_buffer[..covered]) ^ StunLimits.FingerprintXor);
    }
}
