using System.IO.Enumeration;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Swarm;

namespace Peerway.Cli;

/// <summary>`--only GLOB…` and `--skip GLOB…` as file priorities.</summary>
internal static class FileSelection
{
    /// <summary>
    /// A file is wanted when it matches some --only glob (or none is given) and no --skip glob. Globs match the file's
    /// path in the torrent (`dir/file.ext`; a single-file torrent's name), `*` and `?` crossing `/`. Null: no globs.
    /// </summary>
    public static Func<TorrentInfo, IReadOnlyList<FilePriority>?>? FromGlobs(string[]? only, string[]? skip)
    {
        only ??= [];
        skip ??= [];
        if (only.Length == 0 && skip.Length == 0) return null;
        if (only.Concat(skip).Any(string.IsNullOrWhiteSpace)) throw new UsageException("--only/--skip need a non-empty glob");
        return info => [.. info.ContentFiles.Select(f =>
        {
            var path = info.IsMultiFile ? f.RelativePath : info.Name;
            var wanted = (only.Length == 0 || only.Any(g => Matches(g, path))) && !skip.Any(g => Matches(g, path));
            return wanted ? FilePriority.Normal : FilePriority.Skip;
        })];
    }

    private static bool Matches(string glob, string path) => FileSystemName.MatchesSimpleExpression(glob, path, ignoreCase: false);
}
