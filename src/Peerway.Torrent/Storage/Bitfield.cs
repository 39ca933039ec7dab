using System.Numerics;

namespace Peerway.Torrent.Storage;

/// <summary>A set of piece indices, in the BEP 3 wire layout: the high bit of the first byte is piece 0.</summary>
public sealed class Bitfield
{
    private readonly byte[] _bytes;

    /// <summary>An empty set of <paramref name="count"/> pieces. Throws <see cref="ArgumentOutOfRangeException"/> when negative.</summary>
    public Bitfield(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Count = count;
        _bytes = new byte[(count + 7) / 8];
    }

    /// <summary>Number of pieces.</summary>
    public int Count { get; }

    /// <summary>Number of pieces in the set.</summary>
    public int SetCount { get; private set; }

    /// <summary>True when every piece is in the set.</summary>
    public bool IsComplete => SetCount == Count;

    /// <summary>True when no piece is in the set.</summary>
    public bool IsEmpty => SetCount == 0;

    /// <summary>True when piece <paramref name="index"/> is in the set.</summary>
    public bool this[int index] => (_bytes[index >> 3] & (0x80 >> (index & 7))) != 0;

    /// <summary>Sets a bit; returns false if it was already set.</summary>
    public bool Set(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        var mask = (byte)(0x80 >> (index & 7));
        if ((_bytes[index >> 3] & mask) != 0) return false;
        _bytes[index >> 3] |= mask;
        SetCount++;
        return true;
    }

    /// <summary>Clears a bit; returns false if it was not set.</summary>
    public bool Clear(int index)
    {
        var mask = (byte)(0x80 >> (index & 7));
        if ((_bytes[index >> 3] & mask) == 0) return false;
        _bytes[index >> 3] &= (byte)~mask;
        SetCount--;
        return true;
    }

    /// <summary>Puts every piece in the set.</summary>
    public void SetAll()
    {
        for (var i = 0; i < Count; i++) Set(i);
    }

    /// <summary>The bits in the BEP 3 wire layout (spare bits of the last byte zero).</summary>
    public ReadOnlySpan<byte> AsSpan() => _bytes;

    /// <summary>An independent copy.</summary>
    public Bitfield Clone()
    {
        var copy = new Bitfield(Count) { SetCount = SetCount };
        _bytes.CopyTo(copy._bytes);
        return copy;
    }

    /// <summary>The pieces in the set, ascending.</summary>
    public IEnumerable<int> SetIndices()
    {
        for (var i = 0; i < Count; i++)
        {
            if (this[i]) yield return i;
        }
    }

    /// <summary>BEP 3: a bitfield of the wrong length, or with spare bits set, is an error (the peer is dropped).</summary>
    public static bool TryFromBytes(ReadOnlySpan<byte> bytes, int count, out Bitfield? bitfield)
    {
        bitfield = null;
        if (bytes.Length != (count + 7) / 8) return false;
        if (count % 8 != 0 && (bytes[^1] & (0xFF >> (count % 8))) != 0) return false;
        var b = new Bitfield(count);
        bytes.CopyTo(b._bytes);
        var set = 0;
        foreach (var x in bytes) set += BitOperations.PopCount(x);
        b.SetCount = set;
        bitfield = b;
        return true;
    }
}
