using Peerway.TestSupport;
namespace Peerway.Node.Tests;

public sealed class StateFileTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-state");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void A_missing_file_reads_as_null() => Assert.Null(StateFile.TryRead(Path.Combine(_temp.Path, "none")));

    [Fact]
    public void Writes_replace_the_file_and_leave_no_temporary_files()
    {
        var path = Path.Combine(_temp.Path, "sub", "dht.state");

        StateFile.WriteAtomic(path, [1, 2, 3]);
        var first = StateFile.TryRead(path);
        StateFile.WriteAtomic(path, [9, 8]);
        var second = StateFile.TryRead(path);

        Assert.Equal([1, 2, 3], first);
        Assert.Equal([9, 8], second);
        Assert.Equal(["dht.state"], Directory.GetFiles(Path.Combine(_temp.Path, "sub")).Select(Path.GetFileName));
    }

    [Fact]
    public void An_oversized_file_is_refused()
    {
        var path = Path.Combine(_temp.Path, "big");
        using (var fs = File.Create(path)) fs.SetLength(StateFile.MaxBytes + 1);

        Assert.Throws<InvalidDataException>(() => StateFile.TryRead(path));
    }

    [Fact]
    public void A_failed_write_keeps_the_old_file()
    {
        var path = Path.Combine(_temp.Path, "keep.state");
        StateFile.WriteAtomic(path, [7]);
        var blocker = Path.Combine(_temp.Path, "keep.state.dir");
        Directory.CreateDirectory(blocker);

        // The target is a directory: the rename fails, the temporary file is removed, nothing else changes.
        Assert.ThrowsAny<IOException>(() => StateFile.WriteAtomic(blocker, [1]));
        Assert.Equal([7], StateFile.TryRead(path));
        Assert.Empty(Directory.GetFiles(_temp.Path, "*.tmp"));
    }
}
