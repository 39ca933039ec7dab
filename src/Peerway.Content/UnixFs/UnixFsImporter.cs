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

    /// <summary>A leaf block built and hashed in its chunk buffer, not yet stored.</summary>
    private readonly record struct PreparedLeaf(Cid Cid, int Start, int Length, ulong ContentSize);

    /// <summary>Imports a file's bytes from <paramref name="content"/>, storing every block; returns the root.</summary>
    /// <remarks>
    /// Chunks are read in batches of <see cref="ImportOptions.HashParallelism"/> × 4; while one batch's leaves are hashed
    /// in parallel (then stored and linked in order), the next batch is read. Memory: two batches of chunks plus the
    /// pending links, whatever the file size.
    /// </remarks>
    public async Task<ImportResult> ImportFileAsync(Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        var batchSize = _options.HashParallelism * 4;
        var current = new Batch(batchSize, LeafHeaderRoom + _options.ChunkSize + LeafTrailerRoom);
        var next = new Batch(batchSize, LeafHeaderRoom + _options.ChunkSize + LeafTrailerRoom);
        try
        {
            var levels = new List<List<PendingLink>> { new(_options.MaxLinksPerNode) };
            var counts = new List<long> { 0 };
            var prepared = new PreparedLeaf[batchSize];
            var parallel = new ParallelOptions { MaxDegreeOfParallelism = _options.HashParallelism, CancellationToken = cancellationToken };
            var (n, done) = await FillAsync(content, current, first: true, cancellationToken).ConfigureAwait(false);
            while (n > 0)
            {
                var batch = current;
                var reading = done ? null : Task.Run(() => FillAsync(content, next, first: false, cancellationToken), cancellationToken);
                if (n == 1)
                {
                    prepared[0] = PrepareLeaf(batch.Buffers[0], batch.Lengths[0]);
                }
                else
                {
                    Parallel.For(0, n, parallel, i => prepared[i] = PrepareLeaf(batch.Buffers[i], batch.Lengths[i]));
                }

                for (var i = 0; i < n; i++)
                {
                    var leaf = prepared[i];
                    _store.Put(leaf.Cid, batch.Buffers[i].AsSpan(leaf.Start, leaf.Length));
                    AddLink(levels, counts, 0, new PendingLink(leaf.Cid, (ulong)leaf.Length, leaf.ContentSize));
                }

                if (reading is null)
                {
                    break;
                }

                (n, done) = await reading.ConfigureAwait(false);
                (current, next) = (next, current);
            }

            return Finish(levels, counts);
        }
        finally
        {
            current.Return();
            next.Return();
        }
    }

    /// <summary>Chunk buffers (rented) and the length read into each.</summary>
    private sealed class Batch
    {
        public Batch(int size, int bufferLength)
        {
            Buffers = new byte[size][];
            Lengths = new int[size];
            for (var i = 0; i < size; i++)
            {
                Buffers[i] = ArrayPool<byte>.Shared.Rent(bufferLength);
            }
        }

        public byte[][] Buffers { get; }

        public int[] Lengths { get; }

        public void Return()
        {
            foreach (var buffer in Buffers)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>
    /// Reads up to a batch of chunks. ipfs-unixfs-importer fixed-size chunker: every chunk is exactly ChunkSize bytes
    /// except the last; an empty input still yields one (empty) chunk. Done = the input has ended.
    /// </summary>
    private async Task<(int Count, bool Done)> FillAsync(Stream content, Batch batch, bool first, CancellationToken cancellationToken)
    {
        var chunkSize = _options.ChunkSize;
        var n = 0;
        while (n < batch.Buffers.Length)
        {
            var read = await content.ReadAtLeastAsync(
                batch.Buffers[n].AsMemory(LeafHeaderRoom, chunkSize), chunkSize, throwOnEndOfStream: false, cancellationToken)
                .ConfigureAwait(false);
            if (read == 0 && !(first && n == 0))
            {
                return (n, true);
            }

            batch.Lengths[n++] = read;
            if (read < chunkSize)
            {
                return (n, true);
            }
        }

        return (n, false);
    }

    /// <summary>Imports an in-memory buffer (tests, small content).</summary>
    public ImportResult ImportBytes(ReadOnlySpan<byte> content)
    {
        using var stream = new MemoryStream(content.ToArray(), writable: false);
        return ImportFileAsync(stream, CancellationToken.None).GetAwaiter().GetResult();
    }

    /// <summary>Builds the leaf block for a chunk (read at <see cref="LeafHeaderRoom"/>) in place and hashes it.</summary>
    private PreparedLeaf PrepareLeaf(byte[] buffer, int length)
    {
        var chunk = buffer.AsSpan(LeafHeaderRoom, length);
        if (_options.UseRawLeaves)
        {
            // ipfs-unixfs-importer buffer-importer: raw leaves are always CIDv1 with the raw codec.
            return new PreparedLeaf(Cid.V1(Cid.RawCodec, Multihash.Sha2_256(chunk)), LeafHeaderRoom, length, (ulong)length);
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
        var blockLength = outerLength + innerLength;
        return new PreparedLeaf(MakeDagPbCid(buffer.AsSpan(start, blockLength)), start, blockLength, (ulong)length);
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
