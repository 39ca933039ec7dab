using System.Buffers;
using System.Security.Cryptography;
using Peerway.Content.Blocks;
using Peerway.Content.DagPb;
using Peerway.Core.Multiformats;

namespace Peerway.Content.UnixFs;

/// <summary>
/// Builds UnixFS DAGs exactly as ipfs-unixfs-importer and kubo do (fixed-size chunker, balanced layout), streaming:
/// memory is one chunk plus at most <see cref="ImportOptions.MaxLinksPerNode"/> pending links per tree level, whatever
/// the file size.
/// </summary>
public sealed partial class UnixFsImporter
{
    // Room in front of a chunk for the dag-pb + UnixFS leaf headers (tags and varint lengths: at most 16 bytes).
    private const int LeafHeaderRoom = 16;
    private const int LeafTrailerRoom = 16;

    private readonly IBlockStore _store;
    private readonly ImportOptions _options;

    public UnixFsImporter(IBlockStore store, ImportOptions options)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _store = store;
        _options = options;
    }

    /// <summary>One link waiting to be gathered into a parent: CID, Tsize and the file bytes below it.</summary>
    private readonly record struct PendingLink(Cid Cid, ulong Tsize, ulong ContentSize);

    /// <summary>Imports a file's bytes from <paramref name="content"/>, storing every block; returns the root.</summary>
    public async Task<ImportResult> ImportFileAsync(Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        var chunkSize = _options.ChunkSize;
        var buffer = ArrayPool<byte>.Shared.Rent(LeafHeaderRoom + chunkSize + LeafTrailerRoom);
        try
        {
            var levels = new List<List<PendingLink>> { new(_options.MaxLinksPerNode) };
            var counts = new List<long> { 0 };
            var chunkCount = 0L;
            while (true)
            {
                // ipfs-unixfs-importer fixed-size chunker: every chunk is exactly chunkSize bytes except the last;
                // an empty input still yields one (empty) chunk.
                var read = await content.ReadAtLeastAsync(
                    buffer.AsMemory(LeafHeaderRoom, chunkSize), chunkSize, throwOnEndOfStream: false, cancellationToken);
                if (read == 0 && chunkCount > 0)
                {
                    break;
                }

                chunkCount++;
                var leaf = StoreLeaf(buffer, read);
                AddLink(levels, counts, 0, leaf);
                if (read < chunkSize)
                {
                    break;
                }
            }

            return Finish(levels, counts);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Imports an in-memory buffer (tests, small content).</summary>
    public ImportResult ImportBytes(ReadOnlySpan<byte> content)
    {
        using var stream = new MemoryStream(content.ToArray(), writable: false);
        return ImportFileAsync(stream, CancellationToken.None).GetAwaiter().GetResult();
    }

    private PendingLink StoreLeaf(byte[] buffer, int length)
    {
        var chunk = buffer.AsSpan(LeafHeaderRoom, length);
        if (_options.UseRawLeaves)
        {
            // ipfs-unixfs-importer buffer-importer: raw leaves are always CIDv1 with the raw codec.
            var cid = Cid.V1(Cid.RawCodec, Multihash.Sha2_256(chunk));
            _store.Put(cid, chunk);
            return new PendingLink(cid, (ulong)length, (ulong)length);
        }

        // A dag-pb leaf: PBNode { Data: UnixFS { Type: File, Data: chunk (absent when empty), filesize: length } }.
        Span<byte> header = stackalloc byte[LeafHeaderRoom];
        var unixHeader = UnixFsData.WriteFileLeafHeader(length, header);
        Span<byte> trailer = stackalloc byte[LeafTrailerRoom];
        var trailerLength = UnixFsData.LeafTrailer(length, trailer);
        var innerLength = unixHeader + length + trailerLength;
        Span<byte> outer = stackalloc byte[8];
        outer[0] = 0x0A; // dag-pb PBNode field 1 (Data), wire type 2
        var outerLength = 1 + Varint.Write((ulong)innerLength, outer[1..]);
        var start = LeafHeaderRoom - unixHeader - outerLength;
        outer[..outerLength].CopyTo(buffer.AsSpan(start));
        header[..unixHeader].CopyTo(buffer.AsSpan(start + outerLength));
        trailer[..trailerLength].CopyTo(buffer.AsSpan(LeafHeaderRoom + length));
        var block = buffer.AsSpan(start, outerLength + innerLength);
        var leafCid = MakeDagPbCid(block);
        _store.Put(leafCid, block);
        return new PendingLink(leafCid, (ulong)block.Length, (ulong)length);
    }

    private Cid MakeDagPbCid(ReadOnlySpan<byte> block)
    {
        var mh = Multihash.Sha2_256(block);
        return _options.CidVersion == 0 ? Cid.V0(mh) : Cid.V1(Cid.DagPbCodec, mh);
    }

    private void AddLink(List<List<PendingLink>> levels, List<long> counts, int level, PendingLink link)
    {
        if (levels.Count == level)
        {
            levels.Add(new List<PendingLink>(_options.MaxLinksPerNode));
            counts.Add(0);
        }

        levels[level].Add(link);
        counts[level]++;
        // ipfs-unixfs-importer balanced layout: batch(source, maxChildrenPerNode) then reduce each batch, level by level.
        if (levels[level].Count == _options.MaxLinksPerNode)
        {
            var parent = StoreParent(levels[level]);
            levels[level].Clear();
            AddLink(levels, counts, level + 1, parent);
        }
    }

    private ImportResult Finish(List<List<PendingLink>> levels, List<long> counts)
    {
        for (var level = 0; ; level++)
        {
            // A level holding exactly one node in total is the root (balanced.js: "if (roots.length > 1) recurse").
            // At level 0 a single chunk is the root itself (reduceSingleLeafToSelf).
            if (counts[level] == 1 && levels[level].Count == 1)
            {
                var root = levels[level][0];
                return new ImportResult(root.Cid, root.Tsize, root.ContentSize, IsDirectory: false);
            }

            if (levels[level].Count > 0)
            {
                var parent = StoreParent(levels[level]);
                levels[level].Clear();
                AddLink(levels, counts, level + 1, parent);
            }
        }
    }

    private PendingLink StoreParent(List<PendingLink> children)
    {
        var links = new List<PbLink>(children.Count);
        var blockSizes = new List<ulong>(children.Count);
        ulong contentSize = 0, childTsize = 0;
        foreach (var child in children)
        {
            // file.js reduce(): empty leaves are dropped (only an empty single-chunk file has one, and it is the root).
            if (child.ContentSize == 0)
            {
                continue;
            }

            links.Add(new PbLink(child.Cid, string.Empty, child.Tsize));
            blockSizes.Add(child.ContentSize);
            contentSize += child.ContentSize;
            childTsize += child.Tsize;
        }

        var data = new UnixFsData { Type = UnixFsType.File, FileSize = contentSize, BlockSizes = blockSizes }.Encode();
        var block = DagPbCodec.Encode(new PbNode(links, data));
        var cid = MakeDagPbCid(block);
        _store.Put(cid, block);
        return new PendingLink(cid, (ulong)block.Length + childTsize, contentSize);
    }
}
