using Peerway.Core.Multiformats;

namespace Peerway.Content.UnixFs;

/// <summary>Writes <paramref name="data"/> at byte <paramref name="offset"/> of the file being assembled.</summary>
public delegate void FileRangeWriter(long offset, ReadOnlySpan<byte> data);

/// <summary>
/// Writes a UnixFS file (ipfs/specs UNIXFS.md: a raw leaf, or a dag-pb <c>File</c>/<c>Raw</c> node whose data is its own
/// bytes followed by its children's, one <c>blocksizes</c> entry per link) while its blocks arrive, each at its offset,
/// instead of storing the whole DAG first and exporting it after the last block. Blocks must come after their parent
/// (as <see cref="Blocks.DagFetcher"/> hands them out, already verified against their CIDs), in any order otherwise. Every
/// node's sizes are checked as <see cref="UnixFsExporter.ExportFileAsync"/> checks them, so the leaves' ranges partition
/// the file: once <see cref="IsComplete"/>, every byte of it was written exactly once. Anything else (a directory, a
/// malformed node, a CID that appears under two parents and so arrives once for two places) leaves it incomplete, and
/// the caller exports from the store as before.
/// </summary>
public sealed class UnixFsFileAssembler
{
    private readonly FileRangeWriter _write;
    private readonly Dictionary<Cid, List<Place>> _pending = [];
    private ulong _written;

    /// <summary>Assembles the file named by <paramref name="root"/> through <paramref name="write"/>.</summary>
    public UnixFsFileAssembler(Cid root, FileRangeWriter write)
    {
        ArgumentNullException.ThrowIfNull(root);
        _write = write ?? throw new ArgumentNullException(nameof(write));
        _pending[root] = [new Place(0, null, 0)];
    }

    /// <summary>Why the file cannot be assembled here (the first problem seen), or <see cref="ContentError.None"/>.</summary>
    public ContentError Error { get; private set; }

    /// <summary>The file's length, known once the root block arrived.</summary>
    public ulong? Length { get; private set; }

    /// <summary>True when every byte of the file was written: no block is missing and every size agreed.</summary>
    public bool IsComplete => Error == ContentError.None && Length is { } length && _pending.Count == 0 && _written == length;

    /// <summary>Takes one verified block of the DAG; blocks that are not (or no longer) awaited are ignored.</summary>
    public void Accept(Cid cid, byte[] block)
    {
        ArgumentNullException.ThrowIfNull(cid);
        ArgumentNullException.ThrowIfNull(block);
        if (Error != ContentError.None || !_pending.Remove(cid, out var places)) return;
        var error = UnixFsExporter.TryDecode(cid, block, out var node);
        if (error != ContentError.None)
        {
            Error = error;
            return;
        }

        foreach (var place in places)
        {
            error = PlaceNode(node!, place);
            if (error != ContentError.None)
            {
                Error = error;
                return;
            }
        }
    }

    private ContentError PlaceNode(UnixFsNode node, Place place)
    {
        if (place.Depth > UnixFsExporter.MaxDepth) return ContentError.TooLarge;
        if (node.IsRaw)
        {
            if (place.Expected is { } e && e != (ulong)node.Block.Length) return ContentError.InvalidUnixFs;
            if (place.Depth == 0) Length = (ulong)node.Block.Length;
            Write(place.Offset, node.Block);
            return ContentError.None;
        }

        var unixfs = node.Data!;
        if (unixfs.Type is not (UnixFsType.File or UnixFsType.Raw)) return ContentError.InvalidUnixFs;
        var links = node.Pb!.Links;
        // UNIXFS.md: a file node with children has one blocksizes entry per link.
        if (links.Count > 0 && unixfs.BlockSizes.Count != links.Count) return ContentError.InvalidUnixFs;
        var own = unixfs.Data is { } d ? (ulong)d.Length : 0UL;
        var total = own;
        foreach (var size in unixfs.BlockSizes)
        {
            if (size > long.MaxValue - total) return ContentError.TooLarge;
            total += size;
        }

        if ((place.Expected is { } exp && exp != total) || (unixfs.FileSize is { } fs && fs != total && links.Count > 0)) return ContentError.InvalidUnixFs;
        if (place.Depth == 0)
        {
            if (total > long.MaxValue) return ContentError.TooLarge;
            Length = total;
        }

        if (unixfs.Data is { } bytes && bytes.Length > 0) Write(place.Offset, bytes.Span);
        var at = place.Offset + own;
        for (var i = 0; i < links.Count; i++)
        {
            if (!_pending.TryGetValue(links[i].Hash, out var list)) _pending[links[i].Hash] = list = [];
            list.Add(new Place(at, unixfs.BlockSizes[i], place.Depth + 1));
            at += unixfs.BlockSizes[i];
        }

        return ContentError.None;
    }

    private void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        _write((long)offset, data);
        _written += (ulong)data.Length;
    }

    private readonly record struct Place(ulong Offset, ulong? Expected, int Depth);
}
