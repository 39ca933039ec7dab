using Peerway.Content;
using Peerway.Content.Blocks;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;

namespace Peerway.Node.Content;

/// <summary>What <see cref="UnixFsTreeWriter.WriteAsync"/> did, or why it stopped (and at which block or path).</summary>
public sealed record TreeWriteResult(ContentError Error, Cid? At, string? Path, int Files, int Directories, ulong Bytes, IReadOnlyList<string> SkippedSymlinks)
{
    public bool Ok => Error == ContentError.None;
}

/// <summary>
/// Writes a UnixFS file or directory tree (flat and HAMT-sharded directories) from a block store to the file system,
/// as <c>ipfs get</c> does, verifying every block (the store verifies on read, the exporter checks sizes). Names come
/// from the network, so each is checked (<see cref="UnixFsExporter.IsSafeName"/>) and every path is confirmed to stay
/// below the destination. A tree is written into a temporary sibling directory and renamed into place only when
/// complete, so a failure leaves nothing behind. Symbolic links are not created (their targets are untrusted); they
/// are reported as skipped.
/// </summary>
public static class UnixFsTreeWriter
{
    public static async Task<TreeWriteResult> WriteAsync(IBlockStore store, Cid root, string destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(root);
        ArgumentException.ThrowIfNullOrEmpty(destination);
        var exporter = new UnixFsExporter(store);
        var error = exporter.TryLoad(root, out var node);
        if (error != ContentError.None)
        {
            return Fail(error, root, null);
        }

        var target = Path.GetFullPath(destination);
        var temp = Path.Combine(Path.GetDirectoryName(target)!, "." + Path.GetFileName(target) + "." + Guid.NewGuid().ToString("N")[..8] + ".partial");
        if (!node!.IsDirectory)
        {
            var file = await WriteFileAsync(exporter, node, temp, cancellationToken).ConfigureAwait(false);
            if (!file.Ok)
            {
                File.Delete(temp);
                return Fail(file.Error, file.At, destination);
            }

            File.Move(temp, target, overwrite: true);
            return new TreeWriteResult(ContentError.None, null, null, 1, 0, file.Bytes, []);
        }

        if (Directory.Exists(target) || File.Exists(target))
        {
            throw new IOException($"{destination} already exists (a directory is never merged into existing files)");
        }

        Directory.CreateDirectory(temp);
        var result = await WriteTreeAsync(exporter, node, temp, destination, cancellationToken).ConfigureAwait(false);
        if (!result.Ok)
        {
            Directory.Delete(temp, recursive: true);
            return result;
        }

        Directory.Move(temp, target);
        return result;
    }

    private static async Task<TreeWriteResult> WriteTreeAsync(UnixFsExporter exporter, UnixFsNode root, string temp, string shownRoot, CancellationToken cancellationToken)
    {
        var files = 0;
        var directories = 1;
        var bytes = 0UL;
        var skipped = new List<string>();
        var prefix = temp + Path.DirectorySeparatorChar;
        var stack = new Stack<(UnixFsNode Node, string Path, string Shown, int Depth)>();
        stack.Push((root, temp, shownRoot, 0));
        while (stack.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (directory, path, shown, depth) = stack.Pop();
            var error = exporter.TryListDirectory(directory, out var entries);
            if (error != ContentError.None)
            {
                return Fail(error, directory.Cid, shown);
            }

            foreach (var entry in entries!)
            {
                var childPath = Path.GetFullPath(Path.Join(path, entry.Name));
                var childShown = shown + "/" + entry.Name;
                // Defence in depth: names are already checked; the path must still be strictly inside the tree.
                if (!childPath.StartsWith(prefix, StringComparison.Ordinal))
                {
                    return Fail(ContentError.UnsafeName, entry.Cid, childShown);
                }

                error = exporter.TryLoad(entry.Cid, out var child);
                if (error != ContentError.None)
                {
                    return Fail(error, entry.Cid, childShown);
                }

                if (child!.IsDirectory)
                {
                    if (depth + 1 > UnixFsExporter.MaxDepth)
                    {
                        return Fail(ContentError.TooLarge, entry.Cid, childShown);
                    }

                    Directory.CreateDirectory(childPath);
                    directories++;
                    stack.Push((child, childPath, childShown, depth + 1));
                }
                else if (child.Data?.Type == UnixFsType.Symlink)
                {
                    skipped.Add(childShown);
                }
                else
                {
                    var file = await WriteFileAsync(exporter, child, childPath, cancellationToken).ConfigureAwait(false);
                    if (!file.Ok)
                    {
                        return Fail(file.Error, file.At, childShown);
                    }

                    files++;
                    bytes += file.Bytes;
                }
            }
        }

        return new TreeWriteResult(ContentError.None, null, null, files, directories, bytes, skipped);
    }

    private static async Task<ContentResult> WriteFileAsync(UnixFsExporter exporter, UnixFsNode node, string path, CancellationToken cancellationToken)
    {
        // CreateNew: never follow or replace something already there (names are unique per directory).
        var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16);
        await using (stream.ConfigureAwait(false))
        {
            return await exporter.ExportFileAsync(node.Cid, stream, cancellationToken).ConfigureAwait(false);
        }
    }

    private static TreeWriteResult Fail(ContentError error, Cid? at, string? path) => new(error, at, path, 0, 0, 0, []);
}
