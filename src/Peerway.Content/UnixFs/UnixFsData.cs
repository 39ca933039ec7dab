using Peerway.Content.Protobuf;

namespace Peerway.Content.UnixFs;

/// <summary>UnixFS spec, <c>enum DataType { Raw = 0; Directory = 1; File = 2; Metadata = 3; Symlink = 4; HAMTShard = 5; }</c>.</summary>
public enum UnixFsType
{
    /// <summary>File bytes in a dag-pb node (leaves of older importers); read like <see cref="File"/>.</summary>
    Raw = 0,
    /// <summary>A directory whose entries are the node's links.</summary>
    Directory = 1,
    /// <summary>A file, or an inner node of a file's DAG.</summary>
    File = 2,
    /// <summary>Metadata (not written by the importer).</summary>
    Metadata = 3,
    /// <summary>A symbolic link; <see cref="UnixFsData.Data"/> holds its target (not written by the importer).</summary>
    Symlink = 4,
    /// <summary>A HAMT-sharded directory (a node of a hash array mapped trie of entries).</summary>
    HamtShard = 5,
}

/// <summary>UnixFS spec <c>message UnixTime { required int64 Seconds = 1; optional fixed32 FractionalNanoseconds = 2; }</c>.</summary>
public sealed record UnixTime(long Seconds, uint? FractionalNanoseconds);

/// <summary>
/// UnixFS spec (proto2): <c>message Data { required DataType Type = 1; optional bytes Data = 2; optional uint64 filesize = 3;
/// repeated uint64 blocksizes = 4; optional uint64 hashType = 5; optional uint64 fanout = 6; optional uint32 mode = 7;
/// optional UnixTime mtime = 8; }</c>. Encoded in field order with blocksizes not packed (proto2 default), as
/// ipfs-unixfs and go-unixfs write it.
/// </summary>
public sealed record UnixFsData
{
    /// <summary>Bound on blocksizes entries when decoding (a node cannot hold more children than dag-pb links).</summary>
    public const int MaxBlockSizes = 65_536;

    private const int TypeField = 1;
    private const int DataField = 2;
    private const int FileSizeField = 3;
    private const int BlockSizesField = 4;
    private const int HashTypeField = 5;
    private const int FanoutField = 6;
    private const int ModeField = 7;
    private const int MtimeField = 8;

    /// <summary>Field 1: the node's type.</summary>
    public required UnixFsType Type { get; init; }

    /// <summary>Field 2: file bytes held in this node, a symlink target, or a HAMT bitfield; null when absent.</summary>
    public ReadOnlyMemory<byte>? Data { get; init; }

    /// <summary>Field 3: total bytes of the file under this node; null when absent.</summary>
    public ulong? FileSize { get; init; }

    /// <summary>Field 4: the file bytes under each link of this node, in link order.</summary>
    public IReadOnlyList<ulong> BlockSizes { get; init; } = [];

    /// <summary>Field 5: the HAMT's hash function (a multicodec: 0x22 murmur3-x64-64); null when absent.</summary>
    public ulong? HashType { get; init; }

    /// <summary>Field 6: the HAMT's fanout (children per node); null when absent.</summary>
    public ulong? Fanout { get; init; }

    /// <summary>Field 7: POSIX permission bits; null when absent.</summary>
    public uint? Mode { get; init; }

    /// <summary>Field 8: modification time; null when absent.</summary>
    public UnixTime? Mtime { get; init; }

    /// <summary>Encodes this message in field order.</summary>
    public byte[] Encode()
    {
        var buffer = new byte[EncodedSize()];
        var writer = new ProtoWriter(buffer);
        writer.WriteVarintField(TypeField, (ulong)Type);
        if (Data is { } data)
        {
            writer.WriteBytesField(DataField, data.Span);
        }

        if (FileSize is { } fileSize)
        {
            writer.WriteVarintField(FileSizeField, fileSize);
        }

        foreach (var size in BlockSizes)
        {
            writer.WriteVarintField(BlockSizesField, size);
        }

        if (HashType is { } hashType)
        {
            writer.WriteVarintField(HashTypeField, hashType);
        }

        if (Fanout is { } fanout)
        {
            writer.WriteVarintField(FanoutField, fanout);
        }

        if (Mode is { } mode)
        {
            writer.WriteVarintField(ModeField, mode);
        }

        if (Mtime is { } mtime)
        {
            writer.WriteLengthDelimitedHeader(MtimeField, MtimeSize(mtime));
            writer.WriteVarintField(1, (ulong)mtime.Seconds);
            if (mtime.FractionalNanoseconds is { } ns)
            {
                writer.WriteFixed32Field(2, ns);
            }
        }

        return buffer;
    }

    /// <summary>
    /// The encoded header of a UnixFS File leaf holding <paramref name="dataLength"/> bytes (Type, then the Data field
    /// header); the leaf's message is this header, the bytes, then filesize — see <see cref="LeafTrailer"/>.
    /// </summary>
    internal static int WriteFileLeafHeader(int dataLength, Span<byte> destination)
    {
        var writer = new ProtoWriter(destination);
        writer.WriteVarintField(TypeField, (ulong)UnixFsType.File);
        if (dataLength > 0)
        {
            writer.WriteLengthDelimitedHeader(DataField, dataLength);
        }

        return writer.Position;
    }

    /// <summary>The filesize field that follows a File leaf's data.</summary>
    internal static int LeafTrailer(int dataLength, Span<byte> destination)
    {
        var writer = new ProtoWriter(destination);
        writer.WriteVarintField(FileSizeField, (ulong)dataLength);
        return writer.Position;
    }

    private int EncodedSize()
    {
        var size = ProtoWriter.VarintFieldSize(TypeField, (ulong)Type);
        if (Data is { } data)
        {
            size += ProtoWriter.BytesFieldSize(DataField, data.Length);
        }

        if (FileSize is { } fileSize)
        {
            size += ProtoWriter.VarintFieldSize(FileSizeField, fileSize);
        }

        foreach (var s in BlockSizes)
        {
            size += ProtoWriter.VarintFieldSize(BlockSizesField, s);
        }

        if (HashType is { } hashType)
        {
            size += ProtoWriter.VarintFieldSize(HashTypeField, hashType);
        }

        if (Fanout is { } fanout)
        {
            size += ProtoWriter.VarintFieldSize(FanoutField, fanout);
        }

        if (Mode is { } mode)
        {
            size += ProtoWriter.VarintFieldSize(ModeField, mode);
        }

        if (Mtime is { } mtime)
        {
            size += ProtoWriter.BytesFieldSize(MtimeField, MtimeSize(mtime));
        }

        return size;
    }

    private static int MtimeSize(UnixTime mtime) =>
        ProtoWriter.VarintFieldSize(1, (ulong)mtime.Seconds) + (mtime.FractionalNanoseconds is null ? 0 : 5);

    /// <summary>Decodes a UnixFS Data message (the Data field of a dag-pb node). Unknown fields are skipped.</summary>
    public static ContentError TryDecode(ReadOnlySpan<byte> bytes, out UnixFsData? result)
    {
        result = null;
        var reader = new ProtoReader(bytes);
        UnixFsType? type = null;
        ReadOnlyMemory<byte>? data = null;
        ulong? fileSize = null, hashType = null, fanout = null;
        uint? mode = null;
        UnixTime? mtime = null;
        var blockSizes = new List<ulong>();
        while (!reader.End)
        {
            var error = reader.TryReadTag(out var field, out var wireType);
            if (error != ContentError.None)
            {
                return error;
            }

            switch (field)
            {
                case TypeField or FileSizeField or HashTypeField or FanoutField or ModeField:
                {
                    if (wireType != WireType.Varint)
                    {
                        return ContentError.WrongWireType;
                    }

                    error = reader.TryReadVarint(out var v);
                    if (error != ContentError.None)
                    {
                        return error;
                    }

                    switch (field)
                    {
                        case TypeField:
                            if (v > (ulong)UnixFsType.HamtShard)
                            {
                                return ContentError.UnknownUnixFsType;
                            }

                            type = (UnixFsType)v;
                            break;
                        case FileSizeField:
                            fileSize = v;
                            break;
                        case HashTypeField:
                            hashType = v;
                            break;
                        case FanoutField:
                            fanout = v;
                            break;
                        default:
                            mode = (uint)v;
                            break;
                    }

                    break;
                }

                case DataField:
                {
                    if (wireType != WireType.LengthDelimited)
                    {
                        return ContentError.WrongWireType;
                    }

                    error = reader.TryReadBytes(out var d, out _);
                    if (error != ContentError.None)
                    {
                        return error;
                    }

                    data = d.ToArray();
                    break;
                }

                case BlockSizesField:
                {
                    error = ReadBlockSizes(ref reader, wireType, blockSizes);
                    if (error != ContentError.None)
                    {
                        return error;
                    }

                    break;
                }

                case MtimeField:
                {
                    if (wireType != WireType.LengthDelimited)
                    {
                        return ContentError.WrongWireType;
                    }

                    error = reader.TryReadBytes(out var m, out _);
                    if (error != ContentError.None)
                    {
                        return error;
                    }

                    error = TryDecodeMtime(m, out mtime);
                    if (error != ContentError.None)
                    {
                        return error;
                    }

                    break;
                }

                default:
                    error = reader.TrySkip(wireType);
                    if (error != ContentError.None)
                    {
                        return error;
                    }

                    break;
            }
        }

        if (type is null)
        {
            return ContentError.MissingField;
        }

        result = new UnixFsData
        {
            Type = type.Value,
            Data = data,
            FileSize = fileSize,
            BlockSizes = blockSizes,
            HashType = hashType,
            Fanout = fanout,
            Mode = mode,
            Mtime = mtime,
        };
        return ContentError.None;
    }

    private static ContentError ReadBlockSizes(ref ProtoReader reader, WireType wireType, List<ulong> blockSizes)
    {
        if (wireType == WireType.Varint)
        {
            if (blockSizes.Count >= MaxBlockSizes)
            {
                return ContentError.TooLarge;
            }

            var error = reader.TryReadVarint(out var v);
            if (error == ContentError.None)
            {
                blockSizes.Add(v);
            }

            return error;
        }

        if (wireType != WireType.LengthDelimited)
        {
            return ContentError.WrongWireType;
        }

        // Protobuf: a parser must accept packed encoding for repeated scalars even when the schema says unpacked.
        var e = reader.TryReadBytes(out var packed, out _);
        if (e != ContentError.None)
        {
            return e;
        }

        var inner = new ProtoReader(packed);
        while (!inner.End)
        {
            if (blockSizes.Count >= MaxBlockSizes)
            {
                return ContentError.TooLarge;
            }

            e = inner.TryReadVarint(out var v);
            if (e != ContentError.None)
            {
                return e;
            }

            blockSizes.Add(v);
        }

        return ContentError.None;
    }

    private static ContentError TryDecodeMtime(ReadOnlySpan<byte> bytes, out UnixTime? mtime)
    {
        mtime = null;
        var reader = new ProtoReader(bytes);
        long? seconds = null;
        uint? nanos = null;
        while (!reader.End)
        {
            var error = reader.TryReadTag(out var field, out var wireType);
            if (error != ContentError.None)
            {
                return error;
            }

            if (field == 1 && wireType == WireType.Varint)
            {
                error = reader.TryReadVarint(out var s);
                seconds = (long)s;
            }
            else if (field == 2 && wireType == WireType.Fixed32)
            {
                error = reader.TryReadFixed32(out var n);
                nanos = n;
            }
            else
            {
                error = reader.TrySkip(wireType);
            }

            if (error != ContentError.None)
            {
                return error;
            }
        }

        if (seconds is null)
        {
            return ContentError.MissingField;
        }

        mtime = new UnixTime(seconds.Value, nanos);
        return ContentError.None;
    }
}
