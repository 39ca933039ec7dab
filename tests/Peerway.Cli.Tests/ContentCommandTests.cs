using Peerway.TestSupport;
namespace Peerway.Cli.Tests;

/// <summary>The content commands' CLI contract: `add` prints only the root CID; user errors exit 2 with one line.</summary>
public sealed class ContentCommandTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-content-cli");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Add_prints_only_the_root_cid_and_car_round_trips_through_the_repo()
    {
        var file = Path.Combine(_temp.Path, "hello.txt");
        await File.WriteAllTextAsync(file, "hello world\n");
        var repo = Path.Combine(_temp.Path, "repo");

        var add = await InProcessCli.RunAsync("add", file, "--repo", repo);

        // `ipfs add` of "hello world\n" is QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o (kubo docs example).
        Assert.Equal(0, add.ExitCode);
        Assert.Equal(["QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"], add.StdoutLines);
        Assert.Empty(add.Stderr);

        var car = Path.Combine(_temp.Path, "x.car");
        Assert.Equal(0, (await InProcessCli.RunAsync("car", "export", add.StdoutLines[0], "-o", car, "--repo", repo)).ExitCode);
        var import = await InProcessCli.RunAsync("car", "import", car, "--repo", Path.Combine(_temp.Path, "other"));
        Assert.Equal(0, import.ExitCode);
        Assert.Equal(add.StdoutLines, import.StdoutLines);
    }

    [Fact]
    public async Task A_missing_block_is_a_runtime_failure()
    {
        var result = await InProcessCli.RunAsync("car", "export", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", "-o",
            Path.Combine(_temp.Path, "x.car"), "--repo", Path.Combine(_temp.Path, "empty"));
        Assert.Equal(1, result.ExitCode);
        Assert.Single(result.StderrLines);
        Assert.False(File.Exists(Path.Combine(_temp.Path, "x.car")));
    }

    public static TheoryData<string[]> UsageErrors => new()
    {
        new[] { "add", "/definitely/not/here" },
        new[] { "add", "/etc/hostname", "--cid-version", "2" },
        new[] { "add", "/etc/hostname", "--chunk-size", "0" },
        new[] { "add", "/etc/hostname", "--chunk-size", "2000000" },
        new[] { "cat", "not-a-cid" },
        new[] { "car", "export", "bafybad", "-o", "x.car" },
        new[] { "car", "export", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o" },
        new[] { "car", "import", "/definitely/not/here.car" },
        new[] { "gateway", "--port", "70000" },
        new[] { "fetch", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", "-o", "out" },
        new[] { "fetch", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", "-o", "out", "--gateway", "ftp://x" },
    };

    [Theory]
    [MemberData(nameof(UsageErrors))]
    public async Task User_errors_exit_2_with_one_line(string[] args)
    {
        var result = await InProcessCli.RunAsync([.. args, "--repo", Path.Combine(_temp.Path, "repo")]);
        Assert.Equal(2, result.ExitCode);
        Assert.Single(result.StderrLines);
        Assert.Empty(result.Stdout);
    }
}
