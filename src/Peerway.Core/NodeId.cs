using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Peerway.Core;

/// <summary>
/// A 160-bit identifier (Kademlia node id, BitTorrent info-hash). Ordered as a big-endian unsigned integer;
/// distance is the XOR metric of Kademlia §2.1.
/// </summary>
public readonly struct NodeId : IEquatable<NodeId>, IComparable<NodeId>
{
    /// <summary>Length of an id in bytes (BEP 5: 160-bit ids).</summary>
    public const int Length = 20;

    /// <summary>Number of bits in an id.</summary>
    public const int Bits = 160;

    // Stored as 2×ulong + uint, big-endian, so comparisons and XOR are branch-light and allocation-free.
    private readonly ulong _a;
    private readonly ulong _b;
    private readonly uint _c;

    private NodeId(ulong a, ulong b, uint c)
    {
        _a = a;
        _b = b;
        _c = c;
    }

    /// <summary>The all-zero id (the default value).</summary>
    public static NodeId Zero => default;

    /// <summary>The largest id (all bits set).</summary>
    public static NodeId Max => new(ulong.MaxValue, ulong.MaxValue, uint.MaxValue);

    /// <summary>Reads an id from exactly 20 bytes.</summary>
    public NodeId(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Length)
        {
            throw new ArgumentException($"A node id is {Length} bytes, got {bytes.Length}.", nameof(bytes));
        }

        _a = BinaryPrimitives.ReadUInt64BigEndian(bytes);
        _b = BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]);
        _c = BinaryPrimitives.ReadUInt32BigEndian(bytes[16..]);
    }

    /// <summary>Reads an id when <paramref name="bytes"/> holds exactly 20 bytes.</summary>
    public static bool TryRead(ReadOnlySpan<byte> bytes, out NodeId id)
    {
        if (bytes.Length != Length)
        {
            id = default;
            return false;
        }

        id = new NodeId(bytes);
        return true;
    }

    /// <summary>A uniformly random id from a cryptographic source.</summary>
    public static NodeId Random()
    {
        Span<byte> b = stackalloc byte[Length];
        RandomNumberGenerator.Fill(b);
        return new NodeId(b);
    }

    /// <summary>A random id drawn from <paramref name="random"/> (deterministic for simulations and tests).</summary>
    public static NodeId Random(System.Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        Span<byte> b = stackalloc byte[Length];
        random.NextBytes(b);
        return new NodeId(b);
    }

    /// <summary>SHA-1 of <paramref name="data"/> as an id (info-hash of bencoded info dictionaries).</summary>
    public static NodeId Sha1(ReadOnlySpan<byte> data)
    {
        Span<byte> h = stackalloc byte[Length];
        SHA1.HashData(data, h);
        return new NodeId(h);
    }

    /// <summary>Writes the 20 bytes, big-endian, into <paramref name="destination"/>; throws <see cref="ArgumentOutOfRangeException"/>
    /// when it is shorter than <see cref="Length"/>.</summary>
    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _a);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _b);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], _c);
    }

    /// <summary>The 20 bytes, big-endian, in a new array.</summary>
    public byte[] ToArray()
    {
        var b = new byte[Length];
        WriteTo(b);
        return b;
    }

    /// <summary>Kademlia §2.1: d(x, y) = x XOR y, read as an unsigned integer.</summary>
    public NodeId Xor(NodeId other) => new(_a ^ other._a, _b ^ other._b, _c ^ other._c);

    /// <summary>The XOR distance (<see cref="Xor"/>).</summary>
    public static NodeId operator ^(NodeId x, NodeId y) => x.Xor(y);

    /// <summary>Number of leading zero bits (160 for <see cref="Zero"/>).</summary>
    public int LeadingZeroCount()
    {
        if (_a != 0) return System.Numerics.BitOperations.LeadingZeroCount(_a);
        if (_b != 0) return 64 + System.Numerics.BitOperations.LeadingZeroCount(_b);
        if (_c != 0) return 128 + System.Numerics.BitOperations.LeadingZeroCount(_c);
        return Bits;
    }

    /// <summary>Length of the common bit prefix of two ids.</summary>
    public int CommonPrefixLength(NodeId other) => Xor(other).LeadingZeroCount();

    /// <summary>The bit at <paramref name="index"/>, 0 being the most significant.</summary>
    public bool GetBit(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Bits);
        if (index < 64) return ((_a >> (63 - index)) & 1) != 0;
        if (index < 128) return ((_b >> (127 - index)) & 1) != 0;
        return ((_c >> (159 - index)) & 1) != 0;
    }

    /// <summary>A copy with the bit at <paramref name="index"/> set to <paramref name="value"/>.</summary>
    public NodeId WithBit(int index, bool value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Bits);
        ulong a = _a, b = _b;
        uint c = _c;
        if (index < 64)
        {
            var m = 1UL << (63 - index);
            a = value ? a | m : a & ~m;
        }
        else if (index < 128)
        {
            var m = 1UL << (127 - index);
            b = value ? b | m : b & ~m;
        }
        else
        {
            var m = 1U << (159 - index);
            c = value ? c | m : c & ~m;
        }

        return new NodeId(a, b, c);
    }

    /// <summary>True when this id is closer to <paramref name="target"/> than <paramref name="other"/> is.</summary>
    public bool IsCloserTo(NodeId target, NodeId other) => (this ^ target).CompareTo(other ^ target) < 0;

    /// <summary>Compares as 160-bit unsigned big-endian integers; with XOR distances, orders by closeness (Kademlia §2.1).</summary>
    public int CompareTo(NodeId other)
    {
        var r = _a.CompareTo(other._a);
        if (r != 0) return r;
        r = _b.CompareTo(other._b);
        return r != 0 ? r : _c.CompareTo(other._c);
    }

    /// <summary>True when all 160 bits are equal.</summary>
    public bool Equals(NodeId other) => _a == other._a && _b == other._b && _c == other._c;

    /// <summary>True when <paramref name="obj"/> is a <see cref="NodeId"/> equal to this one.</summary>
    public override bool Equals([NotNullWhen(true)] object? obj) => obj is NodeId other && Equals(other);

    /// <summary>A hash of the 160 bits.</summary>
    public override int GetHashCode() => HashCode.Combine(_a, _b, _c);

    /// <summary>True when all 160 bits are equal.</summary>
    public static bool operator ==(NodeId left, NodeId right) => left.Equals(right);

    /// <summary>True when any bit differs.</summary>
    public static bool operator !=(NodeId left, NodeId right) => !left.Equals(right);

    /// <summary>Unsigned 160-bit comparison (<see cref="CompareTo"/>).</summary>
    public static bool operator <(NodeId left, NodeId right) => left.CompareTo(right) < 0;

    /// <summary>Unsigned 160-bit comparison (<see cref="CompareTo"/>).</summary>
    public static bool operator >(NodeId left, NodeId right) => left.CompareTo(right) > 0;

    /// <summary>Unsigned 160-bit comparison (<see cref="CompareTo"/>).</summary>
    public static bool operator <=(NodeId left, NodeId right) => left.CompareTo(right) <= 0;

    /// <summary>Unsigned 160-bit comparison (<see cref="CompareTo"/>).</summary>
    public static bool operator >=(NodeId left, NodeId right) => left.CompareTo(right) >= 0;

    /// <summary>40 lower-case hex digits.</summary>
    public override string ToString()
    {
        Span<byte> b = stackalloc byte[Length];
        WriteTo(b);
        return Convert.ToHexStringLower(b);
    }

    /// <summary>Parses 40 hex digits (either case).</summary>
    public static bool TryParseHex(ReadOnlySpan<char> hex, out NodeId id)
    {
        id = default;
        if (hex.Length != Length * 2) return false;
        Span<byte> b = stackalloc byte[Length];
        if (Convert.FromHexString(hex, b, out _, out var written) != System.Buffers.OperationStatus.Done || written != Length)
        {
            return false;
        }

        id = new NodeId(b);
        return true;
    }

    /// <summary>Parses 40 hex digits (either case); throws <see cref="FormatException"/> otherwise.</summary>
    public static NodeId ParseHex(string hex) =>
        TryParseHex(hex, out var id) ? id : throw new FormatException($"'{hex}' is not 40 hex digits.");
}
