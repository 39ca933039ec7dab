using Peerway.Core.Multiformats;

namespace Peerway.Node.Content;

/// <summary>
/// A Peerway repository: a directory holding the block store and the list of provided roots. Chosen by
/// <c>--repo DIR</c>, else $PEERWAY_REPO, else ~/.peerway.
/// </summary>
public sealed class ContentRepo
{
    private readonly string _rootsFile;
    private readonly Lock _gate = new();

    public ContentRepo(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = System.IO.Directory.CreateDirectory(directory).FullName;
        Blocks = new FileBlockStore(Directory);
        _rootsFile = Path.Combine(Directory, "roots");
    }

    public string Directory { get; }

    public FileBlockStore Blocks { get; }

    /// <summary>The repository directory: <paramref name="explicitPath"/>, else $PEERWAY_REPO, else ~/.peerway.</summary>
    public static string ResolveDirectory(string? explicitPath)
    {
        if (!string.IsNullOrEmpty(explicitPath))
        {
            return explicitPath;
        }

        var env = Environment.GetEnvironmentVariable("PEERWAY_REPO");
        if (!string.IsNullOrEmpty(env))
        {
            return env;
        }

        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".peerway");
    }

    /// <summary>Records a root this node provides (announced by the gateway in the DHT).</summary>
    public void AddRoot(Cid cid)
    {
        ArgumentNullException.ThrowIfNull(cid);
        lock (_gate)
        {
            if (Roots().Contains(cid))
            {
                return;
            }

            File.AppendAllText(_rootsFile, cid + "\n");
        }
    }

    /// <summary>The recorded roots (unparseable lines are ignored).</summary>
    public IReadOnlyList<Cid> Roots()
    {
        lock (_gate)
        {
            if (!File.Exists(_rootsFile))
            {
                return [];
            }

            var roots = new List<Cid>();
            foreach (var line in File.ReadAllLines(_rootsFile))
            {
                if (Cid.TryParse(line.Trim(), out var cid) == MultiformatError.None && !roots.Contains(cid!))
                {
                    roots.Add(cid!);
                }
            }

            return roots;
        }
    }
}
