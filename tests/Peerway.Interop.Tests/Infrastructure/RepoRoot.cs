namespace Peerway.Interop.Tests.Infrastructure;

/// <summary>Finds the repository root: $PEERWAY_ROOT, else the nearest ancestor holding Peerway.sln.</summary>
internal static class RepoRoot
{
    public static string? TryFind()
    {
        var env = Environment.GetEnvironmentVariable("PEERWAY_ROOT");
        if (!string.IsNullOrEmpty(env) && File.Exists(Path.Combine(env, "Peerway.sln"))) return Path.GetFullPath(env);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Peerway.sln"))) return dir.FullName;
        }

        return null;
    }

    public static string Find() =>
        TryFind() ?? throw new InvalidOperationException(
            $"Peerway.sln not found above {AppContext.BaseDirectory}; set PEERWAY_ROOT.");
}
