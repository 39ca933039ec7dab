using System.Text;
using Peerway.Content.Protobuf;
using Peerway.Core.Multiformats;

namespace Peerway.Content.DagPb;

/// <summary>
/// The dag-pb codec (IPLD dag-pb spec). Encoding is canonical: every PBLink before Data; in a link Hash, then Name
/// (written whenever it is a string, even empty — as @ipld/dag-pb and go-merkledag do), then Tsize. Decoding is strict
/// (spec "Strict Decoding"): fields in that order, each at most once, no unknown fields, Hash required.
/// </summary>
public static class DagPbCodec
{
    /// <summary>Bitswap spec: implementations must handle blocks up to 2 MiB; larger dag-pb blocks are refused.</summary>
    public const int MaxBlockSize = 2 * 1024 * 1024;

    /// <summary>Bound on links in one node (a 2 MiB block holds fewer 36-byte-hash links than this).</summary>
    public const int MaxLinks = 65_536;

    private const int DataField = 1;
    private const int LinksField = 2;
    private const int HashField = 1;
    private const int NameField = 2;
    private const int TsizeField = 3;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Encodes <paramref name="node"/> canonically.</summary>
    public static byte[] Encode(PbNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var size = 0;
        var linkSizes = new int[node.Links.Count];
        for (var i = 0; i < node.Links.Count; i++)
        {
            linkSizes[i] = LinkSize(node.Links[i]);
            size += ProtoWriter.BytesFieldSize(LinksField, linkSizes[i]);
        }

        if (node.Data is { } data)
        {
            size += ProtoWriter.BytesFieldSize(DataField, data.Length);
        }

        var buffer = new byte[size];
        var writer = new ProtoWriter(buffer);
        for (var i = 0; i < node.Links.Count; i++)
        {
            var link = node.Links[i];
            writer.WriteLengthDelimitedHeader(LinksField, linkSizes[i]);
            writer.WriteBytesField(HashField, link.Hash.Bytes);
            if (link.Name is not null)
            {
                writer.WriteBytesField(NameField, Encoding.UTF8.GetBytes(link.Name));
            }

            if (link.Tsize is { } tsize)
            {
                writer.WriteVarintField(TsizeField, tsize);
            }
        }

        if (node.Data is { } d)
        {
            writer.WriteBytesField(DataField, d.Span);
        }

        return buffer;
    }

    /// <summary>
    /// Writes a leaf node holding only <c>Data</c> whose payload is <paramref name="dataHeader"/> followed by
    /// <paramref name="payload"/> (used by the importer to build UnixFS leaves without an intermediate copy).
    /// </summary>
    internal static int WriteDataOnlyNode(ReadOnlySpan<byte> dataHeader, ReadOnlySpan<byte> payload, Span<byte> destination)
    {
        var writer = new ProtoWriter(destination);
        writer.WriteLengthDelimitedHeader(DataField, dataHeader.Length + payload.Length);
        writer.WriteRaw(dataHeader);
        writer.WriteRaw(payload);
        return writer.Position;
    }

    /// <summary>Decodes a dag-pb block strictly.</summary>
    public static ContentError TryDecode(ReadOnlySpan<byte> block, out PbNode? node)
    {
        node = null;
        if (block.Length > MaxBlockSize)
        {
            return ContentError.TooLarge;
        }

        var reader = new ProtoReader(block);
        var links = new List<PbLink>();
        ReadOnlyMemory<byte>? data = null;
        while (!reader.End)
        {
            var error = reader.TryReadTag(out var field, out var wireType);
            if (error != ContentError.None)
            {
                return error;
            }

            if (field is not (DataField or LinksField))
            {
                return ContentError.UnknownField;
            }

            if (wireType != WireType.LengthDelimited)
            {
                return ContentError.WrongWireType;
            }

            error = reader.TryReadBytes(out var bytes, out _);
            if (error != ContentError.None)
            {
                return error;
            }

            if (field == DataField)
            {
                if (data is not null)
                {
                    return ContentError.DuplicateField;
                }

                data = bytes.ToArray();
                continue;
            }

            // dag-pb spec: Links must come before Data.
            if (data is not null)
            {
                return ContentError.FieldOrder;
            }

            if (links.Count >= MaxLinks)
            {
                return ContentError.TooLarge;
            }

            error = TryDecodeLink(bytes, out var link);
            if (error != ContentError.None)
            {
                return error;
            }

            links.Add(link!);
        }

        node = new PbNode(links, data);
        return ContentError.None;
    }

    private static ContentError TryDecodeLink(ReadOnlySpan<byte> bytes, out PbLink? link)
    {
        link = null;
        var reader = new ProtoReader(bytes);
        Cid? hash = null;
        string? name = null;
        ulong? tsize = null;
        var lastField = 0;
        while (!reader.End)
        {
            var error = reader.TryReadTag(out var field, out var wireType);
            if (error != ContentError.None)
            {
                return error;
            }

            if (field is not (HashField or NameField or TsizeField))
            {
                return ContentError.UnknownField;
            }

            // dag-pb spec: Hash, Name, Tsize in field order, each at most once.
            if (field == lastField)
            {
                return ContentError.DuplicateField;
            }

            if (field < lastField)
            {
                return ContentError.FieldOrder;
            }

            lastField = field;
            if (field == TsizeField)
            {
                if (wireType != WireType.Varint)
                {
                    return ContentError.WrongWireType;
                }

                error = reader.TryReadVarint(out var t);
                if (error != ContentError.None)
                {
                    return error;
                }

                tsize = t;
                continue;
            }

            if (wireType != WireType.LengthDelimited)
            {
                return ContentError.WrongWireType;
            }

            error = reader.TryReadBytes(out var value, out _);
            if (error != ContentError.None)
            {
                return error;
            }

            if (field == HashField)
            {
                if (Cid.TryDecode(value, out hash) != MultiformatError.None)
                {
                    return ContentError.InvalidCid;
                }
            }
            else
            {
                try
                {
                    name = StrictUtf8.GetString(value);
                }
                catch (DecoderFallbackException)
                {
                    return ContentError.InvalidName;
                }
            }
        }

        if (hash is null)
        {
            return ContentError.MissingField;
        }

        link = new PbLink(hash, name, tsize);
        return ContentError.None;
    }

    private static int LinkSize(PbLink link)
    {
        var size = ProtoWriter.BytesFieldSize(HashField, link.Hash.Length);
        if (link.Name is not null)
        {
            size += ProtoWriter.BytesFieldSize(NameField, Encoding.UTF8.GetByteCount(link.Name));
        }

        if (link.Tsize is { } tsize)
        {
            size += ProtoWriter.VarintFieldSize(TsizeField, tsize);
        }

        return size;
    }
}
