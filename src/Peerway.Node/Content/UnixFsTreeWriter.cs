using Microsoft.Win32.SafeHandles;
using Peerway.Content;
using Peerway.Content.Blocks;
using Peerway.Content.UnixFs;
using Peerway.Core.IO;
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
/// are reported as skipped. Nothing of the user's is destroyed: a symbolic link or non-regular file at the destination
/// is refused, never followed or replaced; an existing file is kept when it already holds the content, completed when
/// it holds a prefix of it, and otherwise left untouched (<see cref="OutputConflictException"/>) unless overwriting
/// was asked for; a directory is never merged into anything that exists.
/// </summary>
public static class UnixFsTreeWriter
{
    public static Task<TreeWriteResult> WriteAsync(IBlockStore store, Cid root, string destination, CancellationToken cancellationToken) =>
        WriteAsync(store, root, destination, overwrite: false, cancellationToken);

    /// <param name="overwrite">Replace an existing regular file at <paramref name="destination"/> whose content differs.</param>
    public static async Task<TreeWriteResult> WriteAsync(IBlockStore store, Cid root, string destination, bool overwrite, CancellationToken cancellationToken)
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
            return await WriteSingleFileAsync(exporter, node, target, temp, destination, overwrite, cancellationToken).ConfigureAwait(false);
        }

        // lstat, not stat: a link (even a dangling one) is something of the user's at that path.
        if (new FileInfo(target).LinkTarget is not null)
        {
            throw OutputConflictException.For(destination, OutputConflict.SymbolicLink);
        }

        if (Directory.Exists(target) || File.Exists(target))
        {
            throw new OutputConflictException(destination, OutputConflict.Exists, $"{destination} already exists (a directory is never merged into existing files)");
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

    /// <summary>
    /// Exports the file into <paramref name="temp"/>, then compares it with what is at <paramref name="target"/>: an
    /// identical file is kept as it is (the temporary copy is dropped), a prefix of the content is completed, anything
    /// else is refused unless <paramref name="overwrite"/>. The target is opened without following links
    /// (<see cref="OutputDirectory"/>), and the copy is renamed into place, which replaces a directory entry and never
    /// writes through one.
    /// </summary>
    private static async Task<TreeWriteResult> WriteSingleFileAsync(UnixFsExporter exporter, UnixFsNode node, string target, string temp, string shown, bool overwrite, CancellationToken cancellationToken)
    {
        using var parent = OutputDirectory.Open(Path.GetDirectoryName(target)!, create: false);
        using var existing = parent.OpenExistingFile([Path.GetFileName(target)], writable: false);
        var file = await WriteFileAsync(exporter, node, temp, cancellationToken).ConfigureAwait(false);
        if (!file.Ok)
        {
            File.Delete(temp);
            return Fail(file.Error, file.At, shown);
        }

        if (existing is not null)
        {
            var match = await CompareAsync(existing, temp, cancellationToken).ConfigureAwait(false);
            if (match == Match.Identical)
            {
                File.Delete(temp);
                return new TreeWriteResult(ContentError.None, null, null, 1, 0, file.Bytes, []);
            }

            if (match == Match.Different && !overwrite)
            {
                File.Delete(temp);
                throw new OutputConflictException(shown, OutputConflict.DoesNotFit, $"{shown} exists and does not fit {node.Cid} (other content)");
            }
        }

        // No overwrite when nothing was there: whatever appeared in between is not replaced (link(2) fails with EEXIST).
        File.Move(temp, target, overwrite: existing is not null);
        return new TreeWriteResult(ContentError.None, null, null, 1, 0, file.Bytes, []);
    }

    private enum Match
    {
        Identical,
        Prefix,
        Different,
    }

    /// <summary>Whether the existing file holds the content (<paramref name="written"/>), a prefix of it, or something else.</summary>
    private static async Task<Match> CompareAsync(SafeFileHandle existing, string written, CancellationToken cancellationToken)
    {
        var length = RandomAccess.GetLength(existing);
        using var copy = File.OpenHandle(written, FileMode.Open, FileAccess.Read);
        if (length > RandomAccess.GetLength(copy)) return Match.Different;
        var a = new byte[1 << 16];
        var b = new byte[1 << 16];
        for (long at = 0; at < length;)
        {
            var n = await RandomAccess.ReadAsync(existing, a.AsMemory(0, (int)Math.Min(a.Length, length - at)), at, cancellationToken).ConfigureAwait(false);
            if (n == 0) return Match.Different; // shrunk while we read: not the file we measured
            var m = await RandomAccess.ReadAsync(copy, b.AsMemory(0, n), at, cancellationToken).ConfigureAwait(false);
            if (m != n || !a.AsSpan(0, n).SequenceEqual(b.AsSpan(0, n))) return Match.Different;
            at += n;
        }

        return length == RandomAccess.GetLength(copy) ? Match.Identical : Match.Prefix;
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
