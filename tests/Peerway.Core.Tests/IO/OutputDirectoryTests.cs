using Peerway.Core.IO;
using Peerway.TestSupport;

namespace Peerway.Core.Tests.IO;

/// <summary>Opening below an output directory never follows a link and never replaces what is there.</summary>
public sealed class OutputDirectoryTests : IDisposable
{
    private readonly TempDirectory _temp = new("pw-output");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Creates_missing_directories_and_opens_what_it_created()
    {
        using var output = OutputDirectory.Open(Path.Combine(_temp.Path, "out"), create: true);
        using (var created = output.CreateFile(["a", "b", "c.bin"]))
        {
            RandomAccess.Write(created, "hello"u8, 0);
        }

        Assert.Equal("hello"u8.ToArray(), File.ReadAllBytes(Path.Combine(_temp.Path, "out", "a", "b", "c.bin")));
        using var again = output.OpenExistingFile(["a", "b", "c.bin"], writable: false);
        Assert.Equal(5, RandomAccess.GetLength(again!));
        Assert.Null(output.OpenExistingFile(["a", "missing", "c.bin"], writable: false));
    }

    [Fact]
    public void Create_never_replaces_an_entry_that_is_already_there()
    {
        var outside = Path.Combine(_temp.Path, "outside.bin");
        Directory.CreateDirectory(Path.Combine(_temp.Path, "out"));
        File.WriteAllBytes(Path.Combine(_temp.Path, "out", "plain.bin"), [7]);
        File.CreateSymbolicLink(Path.Combine(_temp.Path, "out", "dangling.bin"), outside);
        using var output = OutputDirectory.Open(Path.Combine(_temp.Path, "out"), create: false);

        Assert.Equal(OutputConflict.Exists, Assert.Throws<OutputConflictException>(() => output.CreateFile(["plain.bin"])).Conflict);
        // O_CREAT through a dangling link would create its target: O_EXCL and O_NOFOLLOW refuse instead.
        Assert.Equal(OutputConflict.SymbolicLink, Assert.Throws<OutputConflictException>(() => output.CreateFile(["dangling.bin"])).Conflict);
        Assert.False(File.Exists(outside));
        Assert.Equal([7], File.ReadAllBytes(Path.Combine(_temp.Path, "out", "plain.bin")));
    }

    [Fact]
    public void The_output_directory_itself_may_be_reached_through_a_link()
    {
        // The user chose it: ~/Downloads may well be a link. Only what lies below it is never followed.
        var real = Directory.CreateDirectory(Path.Combine(_temp.Path, "real")).FullName;
        var link = Path.Combine(_temp.Path, "link");
        File.CreateSymbolicLink(link, real);
        using var output = OutputDirectory.Open(link, create: false);
        output.CreateFile(["x"]).Dispose();

        Assert.True(File.Exists(Path.Combine(real, "x")));
    }

    /// <summary>Sync opens the directory itself (O_DIRECTORY) to fsync it: a directory syncs, a file or a missing path is an error.</summary>
    [Fact]
    public void Sync_fsyncs_a_directory_and_refuses_what_is_not_one()
    {
        var file = Path.Combine(_temp.Path, "f");
        File.WriteAllText(file, "x");
        OutputDirectory.Sync(_temp.Path);
        Assert.ThrowsAny<IOException>(() => OutputDirectory.Sync(file));
        Assert.ThrowsAny<IOException>(() => OutputDirectory.Sync(Path.Combine(_temp.Path, "missing")));
    }
}
