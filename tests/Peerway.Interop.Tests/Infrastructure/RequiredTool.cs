namespace Peerway.Interop.Tests.Infrastructure;

/// <summary>
/// Third-party programs the interop tests drive. Under <c>CI=true</c> a missing program FAILS the test with a clear
/// message (DEVELOPERS.md: "a missing peer is a failure, never a skip"); elsewhere the test is skipped at discovery
/// through <see cref="RequiresToolFactAttribute"/>.
/// </summary>
internal static class RequiredTool
{
    /// <summary>True when the environment variable CI is "true" (as .ci/run sets it).</summary>
    public static bool IsCi =>
        string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>The full path of <paramref name="program"/> on PATH, or null.</summary>
    public static string? Find(string program)
    {
        ArgumentException.ThrowIfNullOrEmpty(program);
        if (Path.IsPathRooted(program)) return File.Exists(program) ? program : null;
        var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, program);
            if (File.Exists(candidate)) return candidate;
        }

        return null;
    }

    /// <summary>
    /// The full path of <paramref name="program"/>; fails the test with an installation hint when it is missing
    /// (reached only under CI, or when a test forgot <see cref="RequiresToolFactAttribute"/>).
    /// </summary>
    public static string Require(string program, string installHint)
    {
        var found = Find(program);
        if (found is null)
        {
            Assert.Fail($"required program '{program}' is not installed ({installHint}); ./test.sh installs it.");
        }

        return found!;
    }

    /// <summary>
    /// The npm peers directory (tests/interop-peers) with node_modules installed; fails like <see cref="Require"/>.
    /// </summary>
    public static string RequireNpmPeers()
    {
        var dir = Path.Combine(RepoRoot.Find(), "tests", "interop-peers");
        if (!Directory.Exists(Path.Combine(dir, "node_modules", "bittorrent-dht")))
        {
            Assert.Fail($"npm peers are not installed in {dir} (run `npm ci` there, or ./test.sh).");
        }

        return dir;
    }

    /// <summary>Why a test needing <paramref name="programs"/> must be skipped here, or null to run it.</summary>
    internal static string? SkipReason(IEnumerable<string> programs, bool needsNpmPeers)
    {
        if (IsCi) return null;
        var missing = programs.Where(p => Find(p) is null).ToList();
        if (needsNpmPeers)
        {
            var root = RepoRoot.TryFind();
            if (root is null || !Directory.Exists(Path.Combine(root, "tests", "interop-peers", "node_modules", "bittorrent-dht")))
            {
                missing.Add("tests/interop-peers/node_modules");
            }
        }

        return missing.Count == 0 ? null : $"not installed: {string.Join(", ", missing)} (run ./test.sh; under CI=true this fails)";
    }
}

/// <summary>
/// A fact that needs third-party programs: skipped when one is missing, unless CI=true, where it runs and the test
/// fails through <see cref="RequiredTool.Require"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
internal sealed class RequiresToolFactAttribute : FactAttribute
{
    public RequiresToolFactAttribute(params string[] programs)
    {
        Programs = programs;
        var reason = RequiredTool.SkipReason(programs, NeedsNpmPeers);
        if (reason is not null) Skip = reason;
    }

    public IReadOnlyList<string> Programs { get; }

    /// <summary>Also require tests/interop-peers/node_modules (bittorrent-dht).</summary>
    public bool NeedsNpmPeers
    {
        get => _needsNpmPeers;
        set
        {
            _needsNpmPeers = value;
            var reason = RequiredTool.SkipReason(Programs, value);
            if (reason is not null) Skip = reason;
        }
    }

    private bool _needsNpmPeers;
}
