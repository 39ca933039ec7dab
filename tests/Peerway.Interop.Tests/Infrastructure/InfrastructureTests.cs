namespace Peerway.Interop.Tests.Infrastructure;

public sealed class InfrastructureTests
{
    [Fact]
    public void A_missing_program_skips_locally_and_never_skips_under_ci()
    {
        var reason = RequiredTool.SkipReason(["peerway-no-such-program-xyz"], needsNpmPeers: false);

        if (RequiredTool.IsCi) Assert.Null(reason);
        else Assert.Contains("peerway-no-such-program-xyz", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Require_fails_the_test_with_the_program_name()
    {
        var ex = Assert.ThrowsAny<Exception>(() => RequiredTool.Require("peerway-no-such-program-xyz", "apt-get install nothing"));
        Assert.Contains("peerway-no-such-program-xyz", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Installed_programs_and_the_repository_are_found()
    {
        Assert.NotNull(RequiredTool.Find("sh"));
        Assert.True(File.Exists(Path.Combine(RepoRoot.Find(), "Peerway.sln")));
        Assert.InRange(FreePort.Udp(), 1, 65535);
    }

    [Fact]
    public async Task External_processes_report_lines_exit_codes_and_are_killed_on_dispose()
    {
        await using (var echo = ExternalProcess.Start("sh", ["-c", "echo out; echo err >&2; exit 3"], TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(3, await echo.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(["out"], echo.StdoutLines);
            Assert.Equal(["err"], echo.StderrLines);
        }

        var sleeper = ExternalProcess.Start("sh", ["-c", "echo ready; sleep 300"], TimeSpan.FromSeconds(60));
        Assert.Equal("ready", await sleeper.WaitForStdoutAsync(l => l == "ready", TimeSpan.FromSeconds(30)));
        await sleeper.DisposeAsync();
        Assert.True(sleeper.HasExitedAfterDispose);
    }
}
