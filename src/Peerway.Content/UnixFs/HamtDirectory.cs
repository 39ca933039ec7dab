using System.Globalization;
using System.Text;
using Peerway.Content.DagPb;
using Peerway.Core.Multiformats;

namespace Peerway.Content.UnixFs;

/// <summary>
/// UnixFS HAMT-sharded directories (UnixFS spec, "HAMTDirectory"), laid out as ipfs-unixfs-importer/hamt-sharding and
/// go-unixfs do: fanout 256 (8 bits per level), names hashed with murmur3-x64-64 (the first 8 bytes of murmur3-x64-128,
/// consumed most-significant byte of h1 first), a slot holding a single entry as a link "XXname" (two upper-case hex
/// digits of the slot, then the name), and a slot shared by several entries as a sub-shard linked as "XX". Node Data is
/// the occupied-slot bitfield as a minimal big-endian integer; hashType 0x22, fanout 256.
/// </summary>
internal static class HamtDirectory
{
    /// <summary>UnixFS spec: the HAMT hash function is murmur3-x64-64, multicodec 0x22.</summary>
    public const ulong HashType = 0x22;

    /// <summary>kubo and ipfs-unixfs-importer default fanout (8 bits per level).</summary>
    public const int Fanout = 256;

    /// <summary>Bound on levels: 64 levels consume 512 bits of rehashed name (hamt-sharding's InfiniteHash).</summary>
    public const int MaxLevels = 64;

    private sealed class Bucket
    {
        public SortedDictionary<int, object> Children { get; } = [];
    }

    private sealed record Leaf(DirectoryEntry Entry, byte[] NameBytes);

    /// <summary>
    /// The slot of <paramref name="name"/> at <paramref name="level"/>. hamt-sharding's InfiniteHash: buffer k is
    /// hash(name) for k = 0 and hash(name ‖ [k]) after; each buffer is murmur3-128's first 8 bytes reversed, read 8 bits
    /// at a time from its LAST byte (ConsumableBuffer starts at the end) — i.e. the bytes of h1 from most significant down.
    /// </summary>
    public static int Slot(ReadOnlySpan<byte> name, int level)
    {
        var k = level / 8;
        ulong h1;
        if (k == 0)
        {
            h1 = Murmur3.Hash128(name).H1;
        }
        else
        {
            var extended = new byte[name.Length + 1];
            name.CopyTo(extended);
            extended[^1] = (byte)k;
            h1 = Murmur3.Hash128(extended).H1;
        }

        return (int)((h1 >> (8 * (7 - (level % 8)))) & 0xFF);
    }

    public static ImportResult Build(UnixFsImporter importer, IReadOnlyList<DirectoryEntry> entries)
    {
        var root = new Bucket();
        foreach (var entry in entries)
        {
            Insert(root, new Leaf(entry, Encoding.UTF8.GetBytes(entry.Name)), 0);
        }

        var (cid, size) = Flush(importer, root);
        return new ImportResult(cid, size, 0, IsDirectory: true);
    }

    private static void Insert(Bucket bucket, Leaf leaf, int level)
    {
        if (level >= MaxLevels)
        {
            throw new InvalidOperationException("HAMT too deep: names collide on every level.");
        }

        var slot = Slot(leaf.NameBytes, level);
        if (!bucket.Children.TryGetValue(slot, out var existing))
        {
            bucket.Children[slot] = leaf;
            return;
        }

        if (existing is Bucket child)
        {
            Insert(child, leaf, level + 1);
            return;
        }

        // hamt-sharding: a collision turns the slot into a sub-bucket holding both entries one level down.
        var sub = new Bucket();
        bucket.Children[slot] = sub;
        Insert(sub, (Leaf)existing, level + 1);
        Insert(sub, leaf, level + 1);
    }

    private static (Cid Cid, ulong Size) Flush(UnixFsImporter importer, Bucket bucket)
    {
        var links = new List<PbLink>(bucket.Children.Count);
        ulong childrenSize = 0;
        var bitfield = new byte[Fanout / 8];
        foreach (var (slot, child) in bucket.Children)
        {
            var label = slot.ToString("X2", CultureInfo.InvariantCulture);
            bitfield[bitfield.Length - 1 - (slot / 8)] |= (byte)(1 << (slot % 8));
            if (child is Bucket sub)
            {
                var (cid, size) = Flush(importer, sub);
                links.Add(new PbLink(cid, label, size));
                childrenSize += size;
            }
            else
            {
                var leaf = (Leaf)child;
                links.Add(new PbLink(leaf.Entry.Child.Cid, label + leaf.Entry.Name, leaf.Entry.Child.Tsize));
                childrenSize += leaf.Entry.Child.Tsize;
            }
        }

        links.Sort(static (a, b) => UnixFsImporter.CompareNames(a.Name!, b.Name!));
        // sparse-array bitField(): trailing zero bytes (leading, once reversed to big-endian) are dropped, keeping one.
        var first = 0;
        while (first < bitfield.Length - 1 && bitfield[first] == 0)
        {
            first++;
        }

        var data = new UnixFsData
        {
            Type = UnixFsType.HamtShard,
            Data = bitfield.AsMemory(first),
            HashType = HashType,
            Fanout = Fanout,
        }.Encode();
        var block = DagPbCodec.Encode(new PbNode(links, data));
        var blockCid = importer.StoreDagPb(block);
        return (blockCid, (ulong)block.Length + childrenSize);
    }

    /// <summary>
    /// Appends every entry of a HAMT directory to <paramref name="entries"/>: a link named "XX" is a sub-shard (loaded and
    /// walked, at most <see cref="MaxLevels"/> deep), a link "XXname" is the entry "name".
    /// </summary>
    public static ContentError TryList(UnixFsExporter exporter, UnixFsNode root, List<DirectoryLink> entries)
    {
        var stack = new Stack<(UnixFsNode Node, int Level)>();
        stack.Push((root, 0));
        while (stack.Count > 0)
        {
            var (node, level) = stack.Pop();
            if (node.Data is not { Type: UnixFsType.HamtShard, Fanout: Fanout } || level >= MaxLevels)
            {
                return level >= MaxLevels ? ContentError.TooLarge : ContentError.InvalidUnixFs;
            }

            foreach (var link in node.Pb!.Links)
            {
                if (link.Name is not { Length: >= 2 } name)
                {
                    return ContentError.InvalidUnixFs;
                }

                if (name.Length > 2)
                {
                    if (entries.Count == UnixFsImporter.MaxDirectoryEntries)
                    {
                        return ContentError.TooLarge;
                    }

                    entries.Add(new DirectoryLink(name[2..], link.Hash, link.Tsize ?? 0));
                    continue;
                }

                var error = exporter.TryLoad(link.Hash, out var shard);
                if (error != ContentError.None)
                {
                    return error;
                }

                stack.Push((shard!, level + 1));
            }
        }

        return ContentError.None;
    }

    /// <summary>Finds <paramref name="name"/> below a HAMT shard node, loading sub-shards as needed.</summary>
    public static ContentError TryFind(UnixFsExporter exporter, UnixFsNode node, string name, out Cid? cid)
    {
        cid = null;
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var current = node;
        for (var level = 0; level < MaxLevels; level++)
        {
            if (current.Data is not { Type: UnixFsType.HamtShard, Fanout: Fanout })
            {
                return ContentError.InvalidUnixFs;
            }

            var label = Slot(nameBytes, level).ToString("X2", CultureInfo.InvariantCulture);
            PbLink? match = null;
            foreach (var link in current.Pb!.Links)
            {
                if (link.Name is { } n && n.StartsWith(label, StringComparison.Ordinal)
                    && (n.Length == 2 || string.Equals(n[2..], name, StringComparison.Ordinal)))
                {
                    match = link;
                    break;
                }
            }

            if (match is null)
            {
                return ContentError.NotFound;
            }

            if (match.Name!.Length > 2)
            {
                cid = match.Hash;
                return ContentError.None;
            }

            var error = exporter.TryLoad(match.Hash, out var next);
            if (error != ContentError.None)
            {
                return error;
            }

            current = next!;
        }

        return ContentError.TooLarge;
    }
}
