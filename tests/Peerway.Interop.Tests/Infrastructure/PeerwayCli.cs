namespace Peerway.Interop.Tests.Infrastructure;

/// <summary>Runs the repository's <c>./peerway</c> launcher (which builds the CLI once, Release).</summary>
internal static class PeerwayCli
{
    /// <summary>The first launch may build the CLI; later ones start in well under a second.</summary>
    public static readonly TimeSpan DefaultLifetime = TimeSpan.FromMinutes(4);

    public static string Launcher => Path.Combine(RepoRoot.Find(), "peerway");

    /// <summary>Starts <c>./peerway args</c> (a long-running command such as <c>dht serve</c>).</summary>
    public static ExternalProcess Start(params string[] args) => Start(DefaultLifetime, args);

    public static ExternalProcess Start(TimeSpan lifetime, params string[] args) =>
        ExternalProcess.Start(Launcher, args, lifetime, RepoRoot.Find());

    /// <summary>Runs <c>./peerway args</c> to completion.</summary>
    public static async Task<CliResult> RunAsync(params string[] args)
    {
        await using var p = Start(args);
        var code = await p.WaitForExitAsync(DefaultLifetime);
        return new CliResult(code, p.StdoutLines, p.Stderr);
    }
}

internal sealed record CliResult(int ExitCode, IReadOnlyList<string> StdoutLines, string Stderr)
{
    public override string ToString() =>
        $"exit {ExitCode}\n--- stdout ---\n{string.Join('\n', StdoutLines)}\n--- stderr ---\n{Stderr}";
}
