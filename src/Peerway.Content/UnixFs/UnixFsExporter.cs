using Peerway.Content.Blocks;
using Peerway.Content.DagPb;
using Peerway.Core.Multiformats;

namespace Peerway.Content.UnixFs;

/// <summary>The outcome of reading content: an error (and the block where it occurred) or success.</summary>
public sealed record ContentResult(ContentError Error, Cid? At, ulong Bytes)
{
    /// <summary>True when <see cref="Error"/> is <see cref="ContentError.None"/>.</summary>
    public bool Ok => Error == ContentError.None;

    /// <summary>A success that read <paramref name="bytes"/>.</summary>
    public static ContentResult Success(ulong bytes) => new(ContentError.None, null, bytes);

    /// <summary>A failure with <paramref name="error"/> at block <paramref name="at"/> (null: not tied to a block).</summary>
    public static ContentResult Fail(ContentError error, Cid? at) => new(error, at, 0);

    /// <summary>"ok (N bytes)" or "Error at CID", for logs.</summary>
    public override string ToString() => Ok ? $"ok ({Bytes} bytes)" : $"{Error} at {At}";
}

/// <summary>An entry of a UnixFS directory: its name, its CID and the cumulative size of its DAG (the link's Tsize).</summary>
public sealed record DirectoryLink(string Name, Cid Cid, ulong Tsize);

/// <summary>A decoded node of a UnixFS DAG (the block already verified against its CID).</summary>
public sealed record UnixFsNode(Cid Cid, byte[] Block, PbNode? Pb, UnixFsData? Data)
{
    /// <summary>True for a raw block (no dag-pb node, so no UnixFS data).</summary>
    public bool IsRaw => Pb is null;

    /// <summary>True for a directory or a HAMT-sharded directory.</summary>
    public bool IsDirectory => Data?.Type is UnixFsType.Directory or UnixFsType.HamtShard;
}

/// <summary>
/// Turns a CID back into bytes, verifying every block against its CID on the way (the store verifies on read) and
/// checking that UnixFS sizes agree with the links. Depth is bounded.
/// </summary>
public sealed class UnixFsExporter
{
    /// <summary>Bound on DAG depth: a balanced 174-ary tree of depth 12 already exceeds 2^64 bytes.</summary>
    public const int MaxDepth = 64;

    /// <summary>Bound on path segments when resolving /ipfs/{cid}/a/b/c.</summary>
    public const int MaxPathSegments = 256;

    private readonly IBlockStore _store;

    /// <summary>An exporter reading blocks from <paramref name="store"/>.</summary>
    public UnixFsExporter(IBlockStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
    }

    /// <summary>Loads, verifies and decodes one node (raw or dag-pb with UnixFS data).</summary>
    public ContentError TryLoad(Cid cid, out UnixFsNode? node)
    {
        ArgumentNullException.ThrowIfNull(cid);
        node = null;
        var error = TryGetBlock(_store, cid, out var block);
        return error != ContentError.None ? error : TryDecode(cid, block!, out node);
    }

    /// <summary>Decodes one node (raw, or dag-pb with UnixFS data) from a block already verified against <paramref name="cid"/>.</summary>
    internal static ContentError TryDecode(Cid cid, byte[] block, out UnixFsNode? node)
    {
        node = null;
        if (cid.Codec == Cid.RawCodec)
        {
            node = new UnixFsNode(cid, block, null, null);
            return ContentError.None;
        }

        if (cid.Codec != Cid.DagPbCodec)
        {
            return ContentError.UnsupportedCodec;
        }

        var error = DagPbCodec.TryDecode(block, out var pb);
        if (error != ContentError.None)
        {
            return error;
        }

        if (pb!.Data is not { } data)
        {
            return ContentError.InvalidUnixFs;
        }

        error = UnixFsData.TryDecode(data.Span, out var unixfs);
        if (error != ContentError.None)
        {
            return error;
        }

        node = new UnixFsNode(cid, block, pb, unixfs);
        return ContentError.None;
    }

    /// <summary>Gets a verified block; identity CIDs carry their block in the digest.</summary>
    public static ContentError TryGetBlock(IBlockStore store, Cid cid, out byte[]? block)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(cid);
        if (cid.Multihash.Code == Multihash.IdentityCode)
        {
            block = cid.Multihash.Digest.ToArray();
            return ContentError.None;
        }

        return store.TryGet(cid, out block);
    }

    /// <summary>Writes the file named by <paramref name="cid"/> to <paramref name="output"/>.</summary>
    public async Task<ContentResult> ExportFileAsync(Cid cid, Stream output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(cid);
        ArgumentNullException.ThrowIfNull(output);
        var written = 0UL;
        // Depth-first with an explicit stack: (cid, depth, expected content size or null).
        var stack = new Stack<(Cid Cid, int Depth, ulong? Expected)>();
        stack.Push((cid, 0, null));
        while (stack.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (current, depth, expected) = stack.Pop();
            if (depth > MaxDepth)
            {
                return ContentResult.Fail(ContentError.TooLarge, current);
            }

            var error = TryLoad(current, out var node);
            if (error != ContentError.None)
            {
                return ContentResult.Fail(error, current);
            }

            if (node!.IsRaw)
            {
                if (expected is { } e && e != (ulong)node.Block.Length)
                {
                    return ContentResult.Fail(ContentError.InvalidUnixFs, current);
                }

                await output.WriteAsync(node.Block, cancellationToken).ConfigureAwait(false);
                written += (ulong)node.Block.Length;
                continue;
            }

            var unixfs = node.Data!;
            if (unixfs.Type is not (UnixFsType.File or UnixFsType.Raw))
            {
                return ContentResult.Fail(ContentError.InvalidUnixFs, current);
            }

            var links = node.Pb!.Links;
            // UnixFS spec: a file node with children has one blocksizes entry per link.
            if (links.Count > 0 && unixfs.BlockSizes.Count != links.Count)
            {
                return ContentResult.Fail(ContentError.InvalidUnixFs, current);
            }

            var own = unixfs.Data is { } d ? (ulong)d.Length : 0UL;
            var total = own;
            foreach (var size in unixfs.BlockSizes)
            {
                total += size;
            }

            if ((expected is { } exp && exp != total) || (unixfs.FileSize is { } fs && fs != total && links.Count > 0))
            {
                return ContentResult.Fail(ContentError.InvalidUnixFs, current);
            }

            if (unixfs.Data is { } bytes && bytes.Length > 0)
            {
                await output.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
                written += (ulong)bytes.Length;
            }

            for (var i = links.Count - 1; i >= 0; i--)
            {
                stack.Push((links[i].Hash, depth + 1, unixfs.BlockSizes[i]));
            }
        }

        return ContentResult.Success(written);
    }

    /// <summary>
    /// Resolves a path below a directory CID (flat directories and HAMT shards); returns the CID the path names.
    /// </summary>
    public ContentError TryResolvePath(Cid root, IReadOnlyList<string> segments, out Cid? target)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(segments);
        target = null;
        if (segments.Count > MaxPathSegments)
        {
            return ContentError.TooLarge;
        }

        var current = root;
        foreach (var segment in segments)
        {
            var error = TryLoad(current, out var node);
            if (error != ContentError.None)
            {
                return error;
            }

            if (!node!.IsDirectory)
            {
                return ContentError.NotFound;
            }

            error = node.Data!.Type == UnixFsType.HamtShard
                ? HamtDirectory.TryFind(this, node, segment, out var next)
                : TryFindFlat(node, segment, out next);
            if (error != ContentError.None)
            {
                return error;
            }

            current = next!;
        }

        target = current;
        return ContentError.None;
    }

    /// <summary>
    /// Lists a directory's entries (a flat Directory node, or every shard of a HAMT directory). Unless
    /// <paramref name="requireSafeNames"/> is false, every name must pass <see cref="IsSafeName"/> and be unique
    /// (<see cref="ContentError.UnsafeName"/>). Bounded by <see cref="UnixFsImporter.MaxDirectoryEntries"/>.
    /// </summary>
    public ContentError TryListDirectory(UnixFsNode directory, out IReadOnlyList<DirectoryLink>? entries, bool requireSafeNames = true)
    {
        ArgumentNullException.ThrowIfNull(directory);
        entries = null;
        var list = new List<DirectoryLink>();
        var error = directory.Data?.Type switch
        {
            UnixFsType.Directory => ListFlat(directory, list),
            UnixFsType.HamtShard => HamtDirectory.TryList(this, directory, list),
            _ => ContentError.InvalidUnixFs,
        };
        if (error != ContentError.None)
        {
            return error;
        }

        var names = new HashSet<string>(list.Count, StringComparer.Ordinal);
        foreach (var entry in list)
        {
            if (requireSafeNames && (!IsSafeName(entry.Name) || !names.Add(entry.Name)))
            {
                return ContentError.UnsafeName;
            }
        }

        entries = list;
        return ContentError.None;
    }

    /// <summary>
    /// Whether a name from the network can become a file name: not empty, not "." or "..", no '/' (a path separator)
    /// and no NUL (which ends a C path).
    /// </summary>
    public static bool IsSafeName(string name) =>
        !string.IsNullOrEmpty(name) && name is not ("." or "..") && name.AsSpan().IndexOfAny('/', '\0') < 0;

    private static ContentError ListFlat(UnixFsNode node, List<DirectoryLink> list)
    {
        if (node.Pb!.Links.Count > UnixFsImporter.MaxDirectoryEntries)
        {
            return ContentError.TooLarge;
        }

        foreach (var link in node.Pb.Links)
        {
            list.Add(new DirectoryLink(link.Name ?? string.Empty, link.Hash, link.Tsize ?? 0));
        }

        return ContentError.None;
    }

    private static ContentError TryFindFlat(UnixFsNode node, string name, out Cid? cid)
    {
        cid = null;
        foreach (var link in node.Pb!.Links)
        {
            if (string.Equals(link.Name, name, StringComparison.Ordinal))
            {
                cid = link.Hash;
                return ContentError.None;
            }
        }

        return ContentError.NotFound;
    }
}
