using Peerway.Torrent.Metainfo;

namespace Peerway.Torrent.Swarm;

/// <summary>How much a file of a torrent is wanted (libtorrent's <c>download_priority_t</c>: dont_download, default, top).</summary>
public enum FilePriority
{
    /// <summary>Not downloaded and not created on disk; pieces it shares with wanted files are still fetched (their bytes of this file kept apart).</summary>
    Skip,

    /// <summary>Downloaded (rarest first).</summary>
    Normal,

    /// <summary>Downloaded before any normal file's pieces.</summary>
    High,
}

/// <summary>Maps per-file priorities onto pieces and the storage's per-file "skipped" flags.</summary>
public static class FilePriorities
{
    /// <summary>
    /// The priority of each piece: the highest of the content files it overlaps (a piece shared by a skipped and a wanted
    /// file is wanted; zero-length and BEP 47 padding files do not count). <paramref name="contentPriorities"/> has one
    /// entry per <see cref="TorrentInfo.ContentFiles"/> entry, in order; missing entries are <see cref="FilePriority.Normal"/>.
    /// </summary>
    public static FilePriority[] ForPieces(TorrentInfo info, IReadOnlyList<FilePriority>? contentPriorities)
    {
        ArgumentNullException.ThrowIfNull(info);
        var pieces = new FilePriority[info.PieceCount];
        if (contentPriorities is null)
        {
            Array.Fill(pieces, FilePriority.Normal);
            return pieces;
        }

        var content = 0;
        foreach (var f in info.Files)
        {
            if (f.IsPadding) continue;
            var priority = content < contentPriorities.Count ? contentPriorities[content] : FilePriority.Normal;
            content++;
            if (f.Length == 0 || priority == FilePriority.Skip) continue;
            var first = (int)(f.Offset / info.PieceLength);
            var last = (int)((f.Offset + f.Length - 1) / info.PieceLength);
            for (var p = first; p <= last; p++)
            {
                if (priority > pieces[p]) pieces[p] = priority;
            }
        }

        return pieces;
    }

    /// <summary>Per entry of <see cref="TorrentInfo.Files"/> (padding included): whether it is skipped (padding files never are).</summary>
    public static bool[] SkippedFiles(TorrentInfo info, IReadOnlyList<FilePriority>? contentPriorities)
    {
        ArgumentNullException.ThrowIfNull(info);
        var skipped = new bool[info.Files.Count];
        if (contentPriorities is null) return skipped;
        var content = 0;
        for (var i = 0; i < info.Files.Count; i++)
        {
            if (info.Files[i].IsPadding) continue;
            skipped[i] = content < contentPriorities.Count && contentPriorities[content] == FilePriority.Skip;
            content++;
        }

        return skipped;
    }

    /// <summary>Checks a priority list against a torrent: one entry per content file, each a defined value.</summary>
    public static void Validate(TorrentInfo info, IReadOnlyList<FilePriority> contentPriorities)
    {
        ArgumentNullException.ThrowIfNull(info);
        ArgumentNullException.ThrowIfNull(contentPriorities);
        var count = info.ContentFiles.Count();
        if (contentPriorities.Count != count) throw new ArgumentException($"{contentPriorities.Count} priorities for {count} files", nameof(contentPriorities));
        if (contentPriorities.Any(p => !Enum.IsDefined(p))) throw new ArgumentException("not a file priority", nameof(contentPriorities));
    }
}
