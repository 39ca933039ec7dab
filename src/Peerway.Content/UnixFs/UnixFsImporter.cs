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

    /// <summary>An importer writing blocks to <paramref name="store"/>; throws what <see cref="ImportOptions.Validate"/> throws for
    /// <paramref name="options"/>.</summary>
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
    /// A content of a few chunks is imported at once; anything larger on its own thread (the work is CPU-bound and
    /// blocking); see <see cref="ImportFile"/>.
    /// </remarks>
    public Task<ImportResult> ImportFileAsync(Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (IsSmall(content is FileStream { CanSeek: true } file ? Math.Max(0, file.Length - file.Position) : RemainingOf(content)))
        {
            return Task.FromResult(ImportFile(content, cancellationToken));
        }

        return Task.Factory.StartNew(
            () => ImportFile(content, cancellationToken), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Threads pay off only for more than a few chunks.</summary>
    private bool IsSmall(long remaining) => remaining >= 0 && remaining <= SmallFileChunks * (long)_options.ChunkSize;

    /// <summary>Imports a file's bytes from <paramref name="content"/>, storing every block; returns the root.</summary>
    /// <remarks>
    /// Leaves are read, hashed and stored on <see cref="ImportOptions.HashParallelism"/> threads, a batch of 16 chunks
    /// at a time (a seekable <see cref="FileStream"/> is memory-mapped one batch window at a time and hashed in place,
    /// or read with positional reads if it cannot be mapped; any other stream is read in order) while this thread
    /// builds the tree. Memory: a few batches per worker plus at most <see cref="ImportOptions.MaxLinksPerNode"/>
    /// pending links per tree level, whatever the file size.
    /// </remarks>
    public ImportResult ImportFile(Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        // Only the workers read a mapping: files imported inline (one thread, or small) are read.
        var mapAbove = _options.MapFiles && _options.HashParallelism > 1 ? SmallFileChunks * (long)_options.ChunkSize : long.MaxValue;
        using var source = new ChunkSource(content, _options.ChunkSize, mapAbove);
        var levels = new List<List<PendingLink>> { new(_options.MaxLinksPerNode) };
        var counts = new List<long> { 0 };
        void Consume(in PreparedLeaf leaf) =>
            AddLink(levels, counts, 0, new PendingLink(leaf.Cid, (ulong)leaf.Length, leaf.ContentSize));

        if (_options.HashParallelism == 1 || IsSmall(source.Remaining))
        {
            ImportInline(source, Consume, cancellationToken);
        }
        else
        {
            using var pipeline = new LeafPipeline(this, source, _options.HashParallelism);
            pipeline.Run(Consume, cancellationToken);
        }

        return Finish(levels, counts);
    }

    /// <summary>Files of at most this many chunks are imported on the calling thread alone.</summary>
    private const int SmallFileChunks = 4;

    private void ImportInline(ChunkSource source, LeafConsumer consume, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(LeafHeaderRoom + _options.ChunkSize + LeafTrailerRoom);
        try
        {
            for (long index = 0; ; index++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var length = source.Read(index, buffer.AsSpan(LeafHeaderRoom, _options.ChunkSize));
                // An empty input is one empty chunk; an input ending on a chunk boundary has no empty last chunk.
                if (length == 0 && index > 0)
                {
                    return;
                }

                consume(StoreLeaf(buffer, length));
                if (length < _options.ChunkSize)
                {
                    return;
                }
            }
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
        return ImportFile(stream, CancellationToken.None);
    }

    /// <summary>Builds, hashes and stores the leaf block of a chunk read at <see cref="LeafHeaderRoom"/>.</summary>
    /// <remarks>Runs on the pipeline's workers, so blocks are written in parallel (<see cref="IBlockStore.Put"/> is thread-safe).</remarks>
    private PreparedLeaf StoreLeaf(byte[] buffer, int length)
    {
        var leaf = PrepareLeaf(buffer, length);
        _store.Put(leaf.Cid, buffer.AsSpan(leaf.Start, leaf.Length));
        return leaf;
    }

    /// <summary>Builds the leaf block for a chunk (read at <see cref="LeafHeaderRoom"/>) in place and hashes it.</summary>
    private PreparedLeaf PrepareLeaf(byte[] buffer, int length)
    {
        var chunk = buffer.AsSpan(LeafHeaderRoom, length);
        if (_options.UseRawLeaves)
        {
            // ipfs-unixfs-importer buffer-importer: raw leaves are always CIDv1 with the raw codec.
            return new PreparedLeaf(Cid.V1(Cid.RawCodec, Multihash.Sha256(chunk)), LeafHeaderRoom, length, (ulong)length);
        }

        Span<byte> header = stackalloc byte[LeafHeaderRoom];
        var headerLength = WriteLeafHeader(length, header);
        var trailerLength = UnixFsData.LeafTrailer(length, buffer.AsSpan(LeafHeaderRoom + length, LeafTrailerRoom));
        var start = LeafHeaderRoom - headerLength;
        header[..headerLength].CopyTo(buffer.AsSpan(start));
        var blockLength = headerLength + length + trailerLength;
        return new PreparedLeaf(DagPbCid(Multihash.Sha256(buffer.AsSpan(start, blockLength))), start, blockLength, (ulong)length);
    }

    /// <summary>
    /// Writes what precedes a chunk of <paramref name="length"/> bytes in its dag-pb leaf — PBNode { Data: UnixFS { Type:
    /// File, Data: chunk (absent when empty), filesize: length } } — and returns its length; the chunk and then
    /// <see cref="UnixFsData.LeafTrailer"/> follow.
    /// </summary>
    private static int WriteLeafHeader(int length, Span<byte> header)
    {
        Span<byte> unixHeader = stackalloc byte[LeafHeaderRoom];
        var unixLength = UnixFsData.WriteFileLeafHeader(length, unixHeader);
        Span<byte> trailer = stackalloc byte[LeafTrailerRoom];
        var innerLength = unixLength + length + UnixFsData.LeafTrailer(length, trailer);
        header[0] = 0x0A; // dag-pb PBNode field 1 (Data), wire type 2
        var outerLength = 1 + Varint.Write((ulong)innerLength, header[1..]);
        unixHeader[..unixLength].CopyTo(header[outerLength..]);
        return outerLength + unixLength;
    }

    private Cid DagPbCid(Multihash multihash) =>
        _options.CidVersion == 0 ? Cid.V0(multihash) : Cid.V1(Cid.DagPbCodec, multihash);

    private Cid MakeDagPbCid(ReadOnlySpan<byte> block) => DagPbCid(Multihash.Sha256(block));

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
