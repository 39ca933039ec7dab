using System.Diagnostics;

namespace Peerway.Cli.Tests;

/// <summary>
/// Issue 20, item 8: the <c>./peerway</c> launcher says on stderr, in one line, that it is building (first run) or
/// rebuilding (sources changed), and keeps stdout for the CLI. The repository's own launcher script runs in a copy of
/// the layout it expects, with a stand-in <c>dotnet</c> first on PATH (it "publishes" noisily on both streams and
/// "runs" by echoing its arguments), so the test costs milliseconds instead of a two-minute build.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")] // a bash launcher, flock and chmod
public sealed class LauncherTests : IDisposable
{
    private const string FirstRun = "building peerway (first run, about 2 minutes)…";
    private const string Rebuild = "rebuilding peerway (sources changed)…";

    private const string FakeDotnet = """
        #!/bin/sh
        if [ "$1" = publish ]; then
          echo "publish chatter on stdout"
          echo "publish chatter on stderr" >&2
          [ -f "$FAIL_BUILD" ] && { echo "Program.cs(1,1): error CS1002: ; expected"; exit 1; }
          while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
          mkdir -p "$out" && echo built > "$out/peerway.dll"
          exit 0
        fi
        shift
        echo "ran: $*"
        """;

    private readonly string _root = Directory.CreateTempSubdirectory("peerway-launcher-").FullName;

    public LauncherTests()
    {
        File.Copy(Path.Combine(RepoRoot(), "peerway"), Path.Combine(_root, "peerway"));
        Directory.CreateDirectory(Path.Combine(_root, "src", "Peerway.Cli"));
        File.WriteAllText(Path.Combine(_root, "src", "Peerway.Cli", "Peerway.Cli.csproj"), "<Project />\n");
        File.WriteAllText(Path.Combine(_root, "src", "Peerway.Cli", "Program.cs"), "// stand-in\n");
        Directory.CreateDirectory(Path.Combine(_root, "bin"));
        File.WriteAllText(Path.Combine(_root, "bin", "dotnet"), FakeDotnet.Replace("\r\n", "\n", StringComparison.Ordinal) + "\n");
        File.SetUnixFileMode(Path.Combine(_root, "bin", "dotnet"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(Path.Combine(_root, "peerway"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static string RepoRoot()
    {
        if (Environment.GetEnvironmentVariable("PEERWAY_ROOT") is { Length: > 0 } env) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Peerway.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException("Peerway.sln not found above the test binaries; set PEERWAY_ROOT");
    }

    private Task<(int Code, string Stdout, string Stderr)> LaunchAsync(params string[] args) => LaunchWithBuildAsync(cliBuild: null, args);

    /// <param name="cliBuild">PEERWAY_CLI_BUILD for the launch; never inherited (./test.sh sets it for the test run).</param>
    private async Task<(int Code, string Stdout, string Stderr)> LaunchWithBuildAsync(string? cliBuild, params string[] args)
    {
        var start = new ProcessStartInfo(Path.Combine(_root, "peerway"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _root,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["PATH"] = Path.Combine(_root, "bin") + ":" + Environment.GetEnvironmentVariable("PATH");
        start.Environment["FAIL_BUILD"] = Path.Combine(_root, "fail-build");
        start.Environment.Remove("PEERWAY_CLI_BUILD");
        if (cliBuild is not null) start.Environment["PEERWAY_CLI_BUILD"] = cliBuild;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task First_run_says_it_is_building_on_stderr_and_keeps_stdout_clean()
    {
        var (code, stdout, stderr) = await LaunchAsync("--version");

        Assert.Equal(0, code);
        Assert.Equal("ran: --version\n", stdout);
        Assert.Equal(FirstRun + "\n", stderr);
    }

    [Fact]
    public async Task A_built_launcher_is_silent_and_a_source_change_forces_a_rebuild_announced_on_stderr()
    {
        await LaunchAsync("--version");

        var quiet = await LaunchAsync("dht", "ping");
        // A source edited after the last build: the stamp written by that build is now older than Program.cs.
        File.SetLastWriteTimeUtc(Path.Combine(_root, ".build", "cli", ".stamp"), DateTime.UtcNow.AddHours(-1));
        var rebuilt = await LaunchAsync("demo");
        var quietAgain = await LaunchAsync("demo");

        Assert.Equal((0, "ran: dht ping\n", ""), quiet);
        Assert.Equal((0, "ran: demo\n", Rebuild + "\n"), rebuilt);
        Assert.Equal((0, "ran: demo\n", ""), quietAgain);
    }

    [Fact]
    public async Task A_failed_build_reports_on_stderr_only_and_exits_1()
    {
        await File.WriteAllTextAsync(Path.Combine(_root, "fail-build"), "");

        var (code, stdout, stderr) = await LaunchAsync("--version");

        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(FirstRun, lines[0]);
        Assert.Contains(lines, l => l.Contains("error CS1002", StringComparison.Ordinal));
        Assert.StartsWith("peerway: build failed", lines[^1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_given_cli_build_is_run_as_it_is_without_publishing_or_output()
    {
        var solutionBuild = Path.Combine(_root, "src", "Peerway.Cli", "bin", "Release", "net10.0");
        Directory.CreateDirectory(solutionBuild);
        await File.WriteAllTextAsync(Path.Combine(solutionBuild, "peerway.dll"), "built by dotnet build\n");

        var result = await LaunchWithBuildAsync(solutionBuild, "--version");

        Assert.Equal((0, "ran: --version\n", ""), result);
        Assert.False(Directory.Exists(Path.Combine(_root, ".build")), "the launcher published although given a build");
    }

    [Fact]
    public async Task A_given_cli_build_without_peerway_dll_fails_instead_of_building()
    {
        var empty = Directory.CreateDirectory(Path.Combine(_root, "no-build")).FullName;

        var (code, stdout, stderr) = await LaunchWithBuildAsync(empty, "--version");

        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Equal($"peerway: PEERWAY_CLI_BUILD={empty} holds no peerway.dll\n", stderr);
        Assert.False(Directory.Exists(Path.Combine(_root, ".build")), "the launcher published although given a build");
    }
}
