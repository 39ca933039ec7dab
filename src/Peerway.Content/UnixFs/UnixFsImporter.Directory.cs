using System.Text;
using Peerway.Content.DagPb;
using Peerway.Core.Multiformats;

namespace Peerway.Content.UnixFs;

/// <summary>A named child of a directory being built.</summary>
public sealed record DirectoryEntry(string Name, ImportResult Child);

public sealed partial class UnixFsImporter
{
    /// <summary>Bound on entries in one directory.</summary>
    public const int MaxDirectoryEntries = 1_000_000;

    /// <summary>
    /// Builds a UnixFS directory from already imported children. A plain Directory node while the estimated link bytes
    /// (name bytes + CID bytes per link: kubo's SizeEstimationLinks, ipfs-unixfs-importer's "links-bytes") stay at or below
    /// <see cref="ImportOptions.ShardSplitThresholdBytes"/>; a HAMT-sharded directory above it.
    /// </summary>
    public ImportResult ImportDirectory(IReadOnlyList<DirectoryEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count > MaxDirectoryEntries)
        {
            throw new ArgumentOutOfRangeException(nameof(entries), "too many directory entries.");
        }

        var unique = new Dictionary<string, DirectoryEntry>(StringComparer.Ordinal);
        var estimate = 0L;
        foreach (var entry in entries)
        {
            ValidateName(entry.Name);
            if (!unique.TryAdd(entry.Name, entry))
            {
                throw new ArgumentException($"duplicate directory entry '{entry.Name}'.", nameof(entries));
            }

            // kubo (boxo BasicDirectory, SizeEstimationLinks): every link counts, sub-directories included, as
            // len(name) + len(CID). ipfs-unixfs-importer 17 counts only children that have a CID when it estimates
            // (files and empty directories, not non-empty sub-directories): where they disagree Peerway follows kubo
            // (docs/ARCHITECTURE.md, "HAMT threshold").
            estimate += Encoding.UTF8.GetByteCount(entry.Name) + entry.Child.Cid.Length;
        }

        if (estimate > _options.ShardSplitThresholdBytes)
        {
            return HamtDirectory.Build(this, entries);
        }

        var sorted = entries.ToList();
        sorted.Sort(static (a, b) => CompareNames(a.Name, b.Name));
        var links = new List<PbLink>(sorted.Count);
        ulong tsize = 0;
        foreach (var entry in sorted)
        {
            links.Add(new PbLink(entry.Child.Cid, entry.Name, entry.Child.Tsize));
            tsize += entry.Child.Tsize;
        }

        var data = new UnixFsData { Type = UnixFsType.Directory }.Encode();
        var block = DagPbCodec.Encode(new PbNode(links, data));
        var cid = StoreDagPb(block);
        return new ImportResult(cid, (ulong)block.Length + tsize, 0, IsDirectory: true);
    }

    /// <summary>Stores a dag-pb block under a CID of the configured version.</summary>
    internal Cid StoreDagPb(byte[] block)
    {
        var cid = MakeDagPbCid(block);
        _store.Put(cid, block);
        return cid;
    }

    /// <summary>@ipld/dag-pb prepare(): links sorted by the UTF-8 bytes of their names, a prefix first.</summary>
    internal static int CompareNames(string a, string b)
    {
        var x = Encoding.UTF8.GetBytes(a);
        var y = Encoding.UTF8.GetBytes(b);
        return x.AsSpan().SequenceCompareTo(y);
    }

    private static void ValidateName(string name)
    {
        if (string.IsNullOrEmpty(name) || name is "." or ".." || name.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"invalid directory entry name '{name}'.", nameof(name));
        }
    }
}
