using Peerway.Core.Multiformats;

namespace Peerway.Content.UnixFs;

/// <summary>UnixFS HAMT-sharded directories (UnixFS spec, "HAMTDirectory"): lookup and building.</summary>
internal static partial class HamtDirectory
{
    public static ContentError TryFind(UnixFsExporter exporter, UnixFsNode node, string name, out Cid? cid)
    {
        cid = null;
        _ = exporter;
        _ = node;
        _ = name;
        return ContentError.UnsupportedCodec;
    }

    public static ImportResult Build(UnixFsImporter importer, IReadOnlyList<DirectoryEntry> entries)
    {
        _ = importer;
        _ = entries;
        throw new NotSupportedException("HAMT-sharded directories are not built yet.");
    }
}
