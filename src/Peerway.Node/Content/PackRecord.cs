using System.Buffers.Binary;
using Peerway.Content.DagPb;
using Peerway.Core.Multiformats;

namespace Peerway.Node.Content;

/// <summary>Why bytes in a pack file are not a record's header. <see cref="None"/> is success.</summary>
internal enum PackRecordError
{
    None = 0,
    /// <summary>The bytes end inside the header (a torn tail after a crash, or a record still being appended).</summary>
    Truncated,
    /// <summary>The record does not start with <see cref="PackRecord.Magic"/>.</summary>
    BadMagic,
    /// <summary>The header's lengths and multihash do not match its checksum.</summary>
    BadChecksum,
    /// <summary>A block longer than <see cref="PackRecord.MaxBlockBytes"/>.</summary>
    TooLarge,
    /// <summary>A multihash length out of bounds, or bytes that are not one whole multihash.</summary>
    BadMultihash,
}

/// <summary>A record's header: the block's multihash, where its bytes start and how many there are.</summary>
internal readonly record struct PackRecordHeader(Multihash Multihash, int HeaderLength, int DataLength)
{
    /// <summary>Header and block.</summary>
    public long RecordLength => (long)HeaderLength + DataLength;
}

/// <summary>
/// One record of a pack file (<see cref="PackFiles"/>), all integers little-endian:
/// <c>magic "pwk1" | u32 FNV-1a of the bytes from the data length to the end of the multihash | u32 data length |
/// u8 multihash length | multihash | data</c>. The header is checked (magic, checksum, bounds, a whole multihash) before
/// anything is indexed; the data is not, here: every read of a block another instance wrote hashes it against the
/// multihash (as for the one-file-per-block layout), so a record whose data was damaged is never returned as the block.
/// No I/O: a pure decoder, fuzzed (tests/Peerway.Node.Tests/PackRecordTests.cs).
/// </summary>
internal static class PackRecord
{
    /// <summary>The first four bytes of every record.</summary>
    public static ReadOnlySpan<byte> Magic => "pwk1"u8;

    /// <summary>magic, checksum, data length, multihash length.</summary>
    public const int FixedLength = 13;

    /// <summary>The longest multihash stored: a one-byte code, a two-byte length and an identity digest at its bound.</summary>
    public const int MaxMultihashBytes = 3 + Multihash.MaxIdentityLength;

    /// <summary>The longest header.</summary>
    public const int MaxHeaderLength = FixedLength + MaxMultihashBytes;

    /// <summary>The largest block a record holds (a larger one goes to its own file).</summary>
    public const int MaxBlockBytes = DagPbCodec.MaxBlockSize;

    /// <summary>The header's length for <paramref name="multihash"/>.</summary>
    public static int HeaderLength(Multihash multihash)
    {
        ArgumentNullException.ThrowIfNull(multihash);
        return FixedLength + multihash.Length;
    }

    /// <summary>True when a block of this multihash and length fits a record.</summary>
    public static bool Fits(Multihash multihash, int dataLength)
    {
        ArgumentNullException.ThrowIfNull(multihash);
        return multihash.Length <= MaxMultihashBytes && dataLength <= MaxBlockBytes;
    }

    /// <summary>Writes the header of a record for <paramref name="multihash"/> and <paramref name="dataLength"/> bytes; returns its length.</summary>
    public static int WriteHeader(Multihash multihash, int dataLength, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(multihash);
        if (!Fits(multihash, dataLength)) throw new ArgumentOutOfRangeException(nameof(dataLength), "the block does not fit a pack record");
        var length = HeaderLength(multihash);
        if (destination.Length < length) throw new ArgumentException("the destination is shorter than the header", nameof(destination));
        Magic.CopyTo(destination);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], (uint)dataLength);
        destination[12] = (byte)multihash.Length;
        multihash.Bytes.CopyTo(destination[FixedLength..]);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Checksum(destination[8..length]));
        return length;
    }

    /// <summary>
    /// Reads a record's header from the start of <paramref name="source"/> (which may also hold the data and what follows).
    /// Never throws: <see cref="PackRecordError.Truncated"/> when <paramref name="source"/> ends inside the header.
    /// </summary>
    public static PackRecordError TryReadHeader(ReadOnlySpan<byte> source, out PackRecordHeader header)
    {
        header = default;
        if (source.Length < Magic.Length) return PackRecordError.Truncated;
        if (!source[..Magic.Length].SequenceEqual(Magic)) return PackRecordError.BadMagic;
        if (source.Length < FixedLength) return PackRecordError.Truncated;
        var dataLength = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]);
        int multihashLength = source[12];
        if (multihashLength is 0 or > MaxMultihashBytes) return PackRecordError.BadMultihash;
        var headerLength = FixedLength + multihashLength;
        if (source.Length < headerLength) return PackRecordError.Truncated;
        if (BinaryPrimitives.ReadUInt32LittleEndian(source[4..]) != Checksum(source[8..headerLength])) return PackRecordError.BadChecksum;
        if (dataLength > MaxBlockBytes) return PackRecordError.TooLarge;
        if (Multihash.TryDecode(source[FixedLength..headerLength], out var multihash) != MultiformatError.None) return PackRecordError.BadMultihash;
        header = new PackRecordHeader(multihash!, headerLength, (int)dataLength);
        return PackRecordError.None;
    }

    /// <summary>
    /// FNV-1a, 32 bits (http://www.isthe.com/chongo/tech/comp/fnv/), of the header from the data length on: catches a torn
    /// or overwritten header; not a defence against tampering (the block's hash is).
    /// </summary>
    internal static uint Checksum(ReadOnlySpan<byte> bytes)
    {
        var hash = 2166136261u;
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * 16777619u;
        }

        return hash;
    }
}
