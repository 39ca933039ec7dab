using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Peerway.Cli.Tests;

/// <summary>
/// Runs each program in <c>samples/</c> (<c>dotnet run --no-build</c>; this project builds them through
/// non-referencing project references) and checks what it printed: the samples are the public API's first users.
/// </summary>
public sealed class SampleTests
{
    [Theory]
    [InlineData("DhtFindPeers", @"^peer 127\.0\.0\.1:6881$")]
    [InlineData("ContentByCid", @"^fetched (bafy\w+): 1048576 bytes, identical$")]
    [InlineData("IceConnect", @"^bob received: hello over ICE$")]
    [InlineData("TorrentSeedAndGet", @"^downloaded album: every file identical$")]
    public async Task Sample_runs_to_completion_on_loopback(string sample, string expected)
    {
        var root = LayeringTests.RepositoryRoot();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = root,
        };
        foreach (var arg in new[] { "run", "--no-build", "-c", Configuration(), "--project", Path.Combine(root, "samples", sample, sample + ".csproj") })
            start.ArgumentList.Add(arg);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        // A bound on a hung sample, not a speed check: each finishes in a few seconds on an idle machine.
        using var hung = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(hung.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        var output = await stdout;
        Assert.True(process.ExitCode == 0, $"{sample} exited {process.ExitCode}\n{output}\n{await stderr}");
        var match = Regex.Match(output, expected, RegexOptions.Multiline);
        Assert.True(match.Success, $"{sample} did not print /{expected}/:\n{output}");
        if (sample == "ContentByCid")
            Assert.Contains($"as {match.Groups[1].Value} (", output, StringComparison.Ordinal);
    }

    /// <summary>The configuration this test was built in (bin/Release/… or bin/Debug/…), which built the samples too.</summary>
    private static string Configuration() =>
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
}
