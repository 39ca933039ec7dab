namespace Peerway.Core.IO;

/// <summary>Why an entry already on an output path was not written into.</summary>
public enum OutputConflict
{
    /// <summary>A symbolic link: never followed below the output directory, whatever it points to.</summary>
    SymbolicLink,

    /// <summary>A FIFO, socket, device or directory where a regular file belongs.</summary>
    NotRegularFile,

    /// <summary>Something other than a directory where a directory belongs.</summary>
    NotDirectory,

    /// <summary>A regular file whose size or content does not fit what would be written there (replaced only on request).</summary>
    DoesNotFit,

    /// <summary>The path exists and is never written into (a directory is never merged into existing files).</summary>
    Exists,
}

/// <summary>
/// An output path holds something that is not ours to write into: nothing was written there. Front ends report it as a
/// usage error (the user chose the output path); <see cref="Conflict"/> says whether consent to overwrite would help.
/// </summary>
public sealed class OutputConflictException : IOException
{
    /// <summary>An entry at <paramref name="path"/> of the kind <paramref name="conflict"/>, described by <paramref name="message"/>
    /// (<see cref="For"/> builds the standard message).</summary>
    public OutputConflictException(string path, OutputConflict conflict, string message)
        : base(message)
    {
        Path = path;
        Conflict = conflict;
    }

    /// <summary>A conflict at an unnamed path, <see cref="OutputConflict.Exists"/>.</summary>
    public OutputConflictException()
        : this("", OutputConflict.Exists, "the output path is in use")
    {
    }

    /// <summary>A conflict at an unnamed path, <see cref="OutputConflict.Exists"/>, described by <paramref name="message"/>.</summary>
    public OutputConflictException(string message)
        : this("", OutputConflict.Exists, message)
    {
    }

    /// <summary>A conflict at an unnamed path caused by <paramref name="innerException"/>; <see cref="Conflict"/> keeps its
    /// default value, <see cref="OutputConflict.SymbolicLink"/>, so prefer the other constructors.</summary>
    public OutputConflictException(string message, Exception innerException)
        : base(message, innerException)
    {
        Path = "";
    }

    /// <summary>The path as the caller named it.</summary>
    public string Path { get; }

    /// <summary>What was found on the path; only <see cref="OutputConflict.DoesNotFit"/> can be resolved by consent to overwrite.</summary>
    public OutputConflict Conflict { get; }

    /// <summary>The standard message for a path whose entry is not the kind of file system object expected.</summary>
    public static OutputConflictException For(string path, OutputConflict conflict) => new(path, conflict, conflict switch
    {
        OutputConflict.SymbolicLink => $"{path} is a symbolic link: refusing to follow it (remove it or choose another output directory)",
        OutputConflict.NotRegularFile => $"{path} is not a regular file (a FIFO, socket, device or directory): refusing to write to it",
        OutputConflict.NotDirectory => $"{path} is not a directory: refusing to replace it",
        OutputConflict.DoesNotFit => $"{path} exists and does not fit",
        _ => $"{path} already exists",
    });
}
