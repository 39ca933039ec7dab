using System.Formats.Tar;
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Peerway.Content;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;

namespace Peerway.Node.Daemon;

public sealed partial class KuboApi
{
    /// <summary>
    /// <c>get</c>: the file or directory at <c>arg</c> as a tar stream, as kubo returns it (each entry named from the
    /// last path segment, or the CID for a bare CID; a directory's entries below it; files 0644, directories 0755).
    /// Only what the node holds is served (offline, as kubo with <c>--offline</c>); <c>compress</c> is refused.
    /// </summary>
    private async Task GetAsync(HttpContext context)
    {
        var q = context.Request.Query;
        if (q.TryGetValue("compress", out var compress) && compress.ToString() is "true" or "1" || q.TryGetValue("compression-level", out var level) && level.ToString() is not ("" or "-1" or "0"))
        {
            await Error("get: compress is not supported by this node").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        var exporter = new UnixFsExporter(_repo.Blocks);
        if (await ResolveArgAsync(context, exporter).ConfigureAwait(false) is not { } resolved) return;
        if (exporter.TryLoad(resolved.Target, out var node) != ContentError.None)
        {
            await Error($"block was not found locally (offline): {resolved.Target}").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        context.Response.ContentType = "application/x-tar";
        var tar = new TarWriter(context.Response.Body, TarEntryFormat.Pax, leaveOpen: true);
        await using (tar.ConfigureAwait(false))
        {
            var error = await WriteTreeAsync(exporter, tar, node!, resolved.Name, 0, context.RequestAborted).ConfigureAwait(false);
            if (error is not null)
            {
                // The status is sent: a broken stream is how kubo reports a failure mid-archive too.
                _log.LogWarning("get {Cid}: {Error}", resolved.Target, error);
                context.Abort();
            }
        }
    }

    /// <summary>Writes <paramref name="node"/> under <paramref name="name"/>, a directory's entries after it; returns an error or null.</summary>
    private static async Task<string?> WriteTreeAsync(UnixFsExporter exporter, TarWriter tar, UnixFsNode node, string name, int depth, CancellationToken ct)
    {
        if (depth > UnixFsExporter.MaxDepth) return "too deep";
        if (node.IsDirectory)
        {
            var error = exporter.TryListDirectory(node, out var entries);
            if (error != ContentError.None) return $"{error} at {node.Cid}";
            await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, name) { Mode = TarDirectoryMode, ModificationTime = DateTimeOffset.UnixEpoch }, ct).ConfigureAwait(false);
            foreach (var entry in entries!)
            {
                if (exporter.TryLoad(entry.Cid, out var child) != ContentError.None) return $"block was not found locally (offline): {entry.Cid}";
                if (await WriteTreeAsync(exporter, tar, child!, name + "/" + entry.Name, depth + 1, ct).ConfigureAwait(false) is { } failed) return failed;
            }

            return null;
        }

        // A tar header states the size before the data: the file is exported to a temporary file first (not to memory).
        var temp = new FileStream(Path.Combine(Path.GetTempPath(), $"peerway-get-{Guid.NewGuid():N}"), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 81920, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        await using (temp.ConfigureAwait(false))
        {
            var result = await exporter.ExportFileAsync(node.Cid, temp, ct).ConfigureAwait(false);
            if (!result.Ok) return result.ToString();
            temp.Position = 0;
            await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = TarFileMode, ModificationTime = DateTimeOffset.UnixEpoch, DataStream = temp }, ct).ConfigureAwait(false);
        }

        return null;
    }

    private const UnixFileMode TarFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private const UnixFileMode TarDirectoryMode = TarFileMode | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
}
