using System.Diagnostics;
using System.Security.Cryptography;
using Peerway.Node;
using Peerway.Torrent.Metainfo;
using Peerway.TestSupport;

namespace Peerway.Cli.Tests;

/// <summary>
/// `get` and `fetch` never destroy data they did not write (issue 20, item 3): what is already at the output path is
/// resume data when it fits, left untouched (exit 2) when it does not, unless `--overwrite`; symbolic links and other
/// non-regular files are refused and never followed, so nothing outside the output directory changes.
/// </summary>
public sealed class ExistingOutputTests : IDisposable
{
    private const int PieceLength = 16384;
    private readonly TempDirectory _temp = new("peerway-existing");

    public void Dispose() => _temp.Dispose();

    private string Dl => Path.Combine(_temp.Path, "dl");

    /// <summary>A single-file torrent of 13 pieces (the last one short) and its content.</summary>
    private async Task<(string Torrent, string Source, byte[] Content)> SingleFileTorrentAsync()
    {
        var content = RandomNumberGenerator.GetBytes((12 * PieceLength) + 5_000);
        var source = Path.Combine(Directory.CreateDirectory(Path.Combine(_temp.Path, "src")).FullName, "data.bin");
        await File.WriteAllBytesAsync(source, content);
        return (await CreateAsync(source), source, content);
    }

    /// <summary>A multi-file torrent "tree" holding a.bin and sub/b.bin.</summary>
    private async Task<(string Torrent, string Source)> MultiFileTorrentAsync()
    {
        var source = Path.Combine(_temp.Path, "src", "tree");
        Directory.CreateDirectory(Path.Combine(source, "sub"));
        await File.WriteAllBytesAsync(Path.Combine(source, "a.bin"), RandomNumberGenerator.GetBytes(40_000));
        await File.WriteAllBytesAsync(Path.Combine(source, "sub", "b.bin"), RandomNumberGenerator.GetBytes(30_000));
        return (await CreateAsync(source), source);
    }

    private async Task<string> CreateAsync(string source)
    {
        var torrent = Path.Combine(_temp.Path, Path.GetFileName(source) + ".torrent");
        var create = await InProcessCli.RunAsync("create", source, "-o", torrent, "--piece-size", PieceLength.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(create.ExitCode == 0, create.ToString());
        return torrent;
    }

    /// <summary>A seeder of <paramref name="source"/> on loopback (the engine `peerway share` runs).</summary>
    private static async Task<TorrentHost> SeedAsync(string torrent, string source)
    {
        var meta = await TorrentCommands.LoadTorrentAsync(torrent, CancellationToken.None);
        var host = new TorrentHost(new TorrentHostOptions { InfoHash = meta.InfoHash, Info = meta.Info, Path = source, ContentIsSource = true });
        await host.StartAsync(CancellationToken.None);
        return host;
    }

    private static Task<CliRun> GetAsync(string what, string dl, int? seederPort, params string[] more)
    {
        string[] args = ["get", what, "-o", dl, "--timeout", "120", .. more];
        if (seederPort is { } port) args = [.. args, "--peer", $"127.0.0.1:{port}"];
        return InProcessCli.RunAsync(args).WaitAsync(TimeSpan.FromMinutes(3));
    }

    /// <summary>What a file is on disk, to show it was not touched: its bytes (SHA-256) and mtime.</summary>
    private static (string Sha256, DateTime Mtime) Snapshot(string path) => (Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))), File.GetLastWriteTimeUtc(path));

    private static void AssertUsageError(CliRun run, string expected)
    {
        Assert.True(run.ExitCode == 2, run.ToString());
        var line = Assert.Single(run.StderrLines);
        Assert.Contains(expected, line, StringComparison.Ordinal);
    }

    private static void MakeFifo(string path)
    {
        using var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", [path]) { UseShellExecute = false })!;
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
    }

    [Fact]
    public async Task An_existing_complete_copy_is_kept_untouched_and_nothing_is_downloaded()
    {
        var (torrent, _, content) = await SingleFileTorrentAsync();
        var target = Path.Combine(Directory.CreateDirectory(Dl).FullName, "data.bin");
        await File.WriteAllBytesAsync(target, content);
        var before = Snapshot(target);

        // No peer at all: completing proves no piece was downloaded.
        var run = await GetAsync(torrent, Dl, seederPort: null);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains(run.StdoutLines, l => l.StartsWith("complete:", StringComparison.Ordinal));
        Assert.Contains(run.StderrLines, l => l == "resume: 13 pieces kept, 13 rechecked");
        var after = Snapshot(target);
        Assert.Equal(before.Sha256, after.Sha256);
        Assert.Equal(before.Mtime, after.Mtime); // written just now: not even its mtime is ours to change
    }

    [Fact]
    public async Task An_existing_partial_copy_is_completed()
    {
        var (torrent, source, content) = await SingleFileTorrentAsync();
        var target = Path.Combine(Directory.CreateDirectory(Dl).FullName, "data.bin");
        await File.WriteAllBytesAsync(target, content.AsSpan(0, (6 * PieceLength) + 100).ToArray());
        await using var seeder = await SeedAsync(torrent, source);

        var run = await GetAsync(torrent, Dl, seeder.Session.ListenPort);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains(run.StderrLines, l => l.StartsWith("resume: 6 pieces kept", StringComparison.Ordinal));
        Assert.Equal(content, await File.ReadAllBytesAsync(target));
    }

    [Theory]
    [InlineData("larger")] // the torrent's bytes and more: preallocating would truncate the rest
    [InlineData("other")] // same size, not one piece verifies
    public async Task A_file_that_does_not_fit_is_left_untouched_unless_overwrite(string kind)
    {
        var (torrent, source, content) = await SingleFileTorrentAsync();
        var target = Path.Combine(Directory.CreateDirectory(Dl).FullName, "data.bin");
        await File.WriteAllBytesAsync(target, kind == "larger" ? [.. content, .. RandomNumberGenerator.GetBytes(1000)] : RandomNumberGenerator.GetBytes(content.Length));
        var before = Snapshot(target);

        var refused = await GetAsync(torrent, Dl, seederPort: null);

        AssertUsageError(refused, "does not fit the torrent");
        Assert.Contains("--overwrite", refused.Stderr, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(target));

        await using var seeder = await SeedAsync(torrent, source);
        var replaced = await GetAsync(torrent, Dl, seeder.Session.ListenPort, "--overwrite");
        Assert.True(replaced.ExitCode == 0, replaced.ToString());
        Assert.Equal(content, await File.ReadAllBytesAsync(target));
    }

    [Fact]
    public async Task A_symbolic_link_is_refused_even_with_overwrite_and_its_target_outside_is_untouched()
    {
        var (torrent, source, content) = await SingleFileTorrentAsync();
        var victim = Path.Combine(Directory.CreateDirectory(Path.Combine(_temp.Path, "outside")).FullName, "victim.bin");
        await File.WriteAllBytesAsync(victim, RandomNumberGenerator.GetBytes(content.Length + 10));
        var before = Snapshot(victim);
        var link = Path.Combine(Directory.CreateDirectory(Dl).FullName, "data.bin");
        File.CreateSymbolicLink(link, victim);
        await using var seeder = await SeedAsync(torrent, source);

        foreach (var extra in new[] { Array.Empty<string>(), ["--overwrite"] })
        {
            var run = await GetAsync(torrent, Dl, seeder.Session.ListenPort, extra);
            AssertUsageError(run, "symbolic link");
            Assert.Equal(before, Snapshot(victim));
            Assert.Equal(victim, new FileInfo(link).LinkTarget);
        }
    }

    [Fact]
    public async Task A_symbolic_link_is_refused_when_the_magnet_metadata_arrives()
    {
        var (torrent, source, content) = await SingleFileTorrentAsync();
        var meta = await TorrentCommands.LoadTorrentAsync(torrent, CancellationToken.None);
        var victim = Path.Combine(Directory.CreateDirectory(Path.Combine(_temp.Path, "outside")).FullName, "victim.bin");
        await File.WriteAllBytesAsync(victim, RandomNumberGenerator.GetBytes(content.Length));
        var before = Snapshot(victim);
        File.CreateSymbolicLink(Path.Combine(Directory.CreateDirectory(Dl).FullName, "data.bin"), victim);
        await using var seeder = await SeedAsync(torrent, source);

        var run = await GetAsync(new MagnetLink(meta.InfoHash, "data.bin", [], []).ToString(), Dl, seeder.Session.ListenPort);

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains(run.StderrLines, l => l.StartsWith("peerway: ", StringComparison.Ordinal) && l.Contains("symbolic link", StringComparison.Ordinal));
        Assert.Equal(before, Snapshot(victim));
    }

    [Theory]
    [InlineData("tree")] // the torrent's top directory
    [InlineData("tree/sub")] // a directory inside it
    public async Task A_symbolic_link_in_a_directory_component_is_refused_and_nothing_outside_is_written(string linked)
    {
        var (torrent, source) = await MultiFileTorrentAsync();
        var outside = Directory.CreateDirectory(Path.Combine(_temp.Path, "outside")).FullName;
        var link = Path.Combine(Dl, linked);
        Directory.CreateDirectory(Path.GetDirectoryName(link)!);
        File.CreateSymbolicLink(link, outside);
        await using var seeder = await SeedAsync(torrent, source);

        var run = await GetAsync(torrent, Dl, seeder.Session.ListenPort, "--overwrite");

        AssertUsageError(run, "symbolic link");
        Assert.Empty(Directory.GetFileSystemEntries(outside));
    }

    [Fact]
    public async Task A_fifo_is_refused()
    {
        var (torrent, _, _) = await SingleFileTorrentAsync();
        var fifo = Path.Combine(Directory.CreateDirectory(Dl).FullName, "data.bin");
        MakeFifo(fifo);

        var run = await GetAsync(torrent, Dl, seederPort: null, "--overwrite");

        AssertUsageError(run, "not a regular file");
    }

    // fetch: the blocks are added to the same repository first, so `fetch` finds them locally and never asks the
    // gateway (it is not contacted); what is tested is how the file is written.
    private async Task<(string Cid, byte[] Content, string Repo)> AddAsync(int length)
    {
        var repo = Path.Combine(_temp.Path, "repo");
        var content = RandomNumberGenerator.GetBytes(length);
        var file = Path.Combine(Directory.CreateDirectory(Path.Combine(_temp.Path, "src")).FullName, "content.bin");
        await File.WriteAllBytesAsync(file, content);
        var add = await InProcessCli.RunAsync("add", file, "--repo", repo);
        Assert.True(add.ExitCode == 0, add.ToString());
        return (Assert.Single(add.StdoutLines), content, repo);
    }

    private static Task<CliRun> FetchAsync(string cid, string output, string repo, params string[] more) =>
        InProcessCli.RunAsync(["fetch", cid, "-o", output, "--gateway", "http://127.0.0.1:9/", "--repo", repo, .. more]).WaitAsync(TimeSpan.FromMinutes(2));

    [Fact]
    public async Task Fetch_keeps_an_identical_file_completes_a_prefix_and_refuses_other_content_unless_overwrite()
    {
        var (cid, content, repo) = await AddAsync(300_000);
        var target = Path.Combine(Directory.CreateDirectory(Dl).FullName, "out.bin");

        await File.WriteAllBytesAsync(target, content);
        File.SetLastWriteTimeUtc(target, new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc)); // a copy written afresh would differ
        var same = Snapshot(target);
        var kept = await FetchAsync(cid, target, repo);
        Assert.True(kept.ExitCode == 0, kept.ToString());
        Assert.Equal(same, Snapshot(target));

        await File.WriteAllBytesAsync(target, content.AsSpan(0, 1000).ToArray());
        var completed = await FetchAsync(cid, target, repo);
        Assert.True(completed.ExitCode == 0, completed.ToString());
        Assert.Equal(content, await File.ReadAllBytesAsync(target));

        await File.WriteAllBytesAsync(target, RandomNumberGenerator.GetBytes(1000));
        var other = Snapshot(target);
        var refused = await FetchAsync(cid, target, repo);
        AssertUsageError(refused, "does not fit");
        Assert.Contains("--overwrite", refused.Stderr, StringComparison.Ordinal);
        Assert.Equal(other, Snapshot(target));

        var replaced = await FetchAsync(cid, target, repo, "--overwrite");
        Assert.True(replaced.ExitCode == 0, replaced.ToString());
        Assert.Equal(content, await File.ReadAllBytesAsync(target));
    }

    [Fact]
    public async Task Fetch_refuses_a_symbolic_link_and_leaves_its_target_outside_untouched()
    {
        var (cid, content, repo) = await AddAsync(50_000);
        var victim = Path.Combine(Directory.CreateDirectory(Path.Combine(_temp.Path, "outside")).FullName, "victim.bin");
        await File.WriteAllBytesAsync(victim, RandomNumberGenerator.GetBytes(content.Length));
        var before = Snapshot(victim);
        var link = Path.Combine(Directory.CreateDirectory(Dl).FullName, "out.bin");
        File.CreateSymbolicLink(link, victim);

        var run = await FetchAsync(cid, link, repo, "--overwrite");

        AssertUsageError(run, "symbolic link");
        Assert.Equal(before, Snapshot(victim));
        Assert.Equal(victim, new FileInfo(link).LinkTarget); // the link itself is not replaced either
    }

    [Fact]
    public async Task Fetch_refuses_a_fifo()
    {
        var (cid, _, repo) = await AddAsync(50_000);
        var fifo = Path.Combine(Directory.CreateDirectory(Dl).FullName, "out.bin");
        MakeFifo(fifo);

        var run = await FetchAsync(cid, fifo, repo, "--overwrite");

        AssertUsageError(run, "not a regular file");
        Assert.True(new FileInfo(fifo).Exists);
        Assert.Equal(0, new FileInfo(fifo).Length);
    }

    [Theory]
    [InlineData(true)] // a link to an existing directory
    [InlineData(false)] // a dangling link: a directory would be created through it
    public async Task Fetch_of_a_directory_refuses_a_symbolic_link_at_the_output(bool linkedExists)
    {
        var repo = Path.Combine(_temp.Path, "repo");
        var tree = Path.Combine(_temp.Path, "src", "tree");
        Directory.CreateDirectory(tree);
        await File.WriteAllBytesAsync(Path.Combine(tree, "a.bin"), RandomNumberGenerator.GetBytes(1000));
        var add = await InProcessCli.RunAsync("add", tree, "--repo", repo);
        Assert.True(add.ExitCode == 0, add.ToString());
        var outside = Directory.CreateDirectory(Path.Combine(_temp.Path, "outside")).FullName;
        var link = Path.Combine(Directory.CreateDirectory(Dl).FullName, "tree");
        File.CreateSymbolicLink(link, linkedExists ? outside : Path.Combine(outside, "new"));

        var run = await FetchAsync(Assert.Single(add.StdoutLines), link, repo);

        AssertUsageError(run, "symbolic link");
        Assert.Empty(Directory.GetFileSystemEntries(outside));
    }
}
