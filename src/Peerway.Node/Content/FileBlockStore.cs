using Peerway.Content;
using Peerway.Content.Blocks;
using Peerway.Core.Multiformats;

namespace Peerway.Node.Content;

/// <summary>
/// Blocks on disk. New blocks are appended to pack files (<see cref="PackFiles"/>: <c>packs/NNNNNN.pack</c>, a record per
/// block), so storing one costs a write rather than a file's creation. Blocks too large for a record, and every block of
/// a repository written before packs, are one file per block named by the base32 of its multihash (as kubo's flatfs keys
/// blocks by multihash), sharded by the two characters before the last ("next-to-last/2"); reads look in both. Such a
/// file is written to a temporary file renamed into place, so a crash never leaves a partial block under its final
/// name (a pack's torn tail is never indexed). Reads verify the hash, except
/// for a block this instance wrote itself (up to <see cref="MaxTrustedWrites"/> of them): <see cref="IBlockStore.Put"/>'s
/// caller has computed or verified its hash moments before, so reading it back (as `ipfs get -o` exports the DAG it
/// just fetched, each block already verified against its CID on arrival) does not hash it a second time. Blocks
/// written by another instance or another process are verified on every read.
/// </summary>
public sealed class FileBlockStore : IBlockStore
{
    /// <summary>Blocks written by this instance whose reads skip the hash; past it, reads verify again.</summary>
    internal const int MaxTrustedWrites = 1 << 16;

    private readonly string _root;
    private readonly bool _writePacks;
    private readonly Lock _gate = new();
    private readonly HashSet<Cid> _written = [];

    public FileBlockStore(string directory)
        : this(directory, writePacks: true)
    {
    }

    /// <param name="directory">The repository.</param>
    /// <param name="writePacks">False: every block is written to a file of its own, as before packs (tests of that layout).</param>
    internal FileBlockStore(string directory, bool writePacks)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        _root = Path.Combine(directory, "blocks");
        Directory.CreateDirectory(_root);
        _writePacks = writePacks;
        Packs = new PackFiles(Path.Combine(directory, "packs"), MaxTrustedWrites);
    }

    /// <summary>The pack files (test hook).</summary>
    internal PackFiles Packs { get; }

    public bool Has(Cid cid)
    {
        ArgumentNullException.ThrowIfNull(cid);
        return Packs.Contains(cid.Multihash, refresh: false) || File.Exists(PathOf(cid)) || Packs.Contains(cid.Multihash, refresh: true);
    }

    public ContentError TryGet(Cid cid, out byte[]? block)
    {
        ArgumentNullException.ThrowIfNull(cid);
        // The packs' index first, then a file of its own (no exception on a miss: a fetch into a new repository asks for
        // every block before it arrives), then what other processes appended to packs since the last look.
        var packed = Packs.TryGet(cid, refresh: false, out block);
        if (packed != ContentError.NotFound) return packed;
        var path = PathOf(cid);
        if (!File.Exists(path)) return Packs.TryGet(cid, refresh: true, out block);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException)
        {
            return ContentError.NotFound;
        }
        catch (DirectoryNotFoundException)
        {
            return ContentError.NotFound;
        }

        if (!WrittenHere(cid) && !BlockVerifier.Verify(cid, bytes))
        {
            return ContentError.HashMismatch;
        }

        block = bytes;
        return ContentError.None;
    }

    public void Put(Cid cid, ReadOnlySpan<byte> block)
    {
        var path = PathOf(cid);
        if (File.Exists(path))
        {
            return;
        }

        if (_writePacks && PackRecord.Fits(cid.Multihash, block.Length))
        {
            Packs.Append(cid.Multihash, block);
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + "." + Environment.ProcessId + "." + Environment.CurrentManagedThreadId + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
        {
            stream.Write(block);
        }

        File.Move(temp, path, overwrite: true);
        lock (_gate)
        {
            if (_written.Count < MaxTrustedWrites) _written.Add(cid);
        }
    }

    private bool WrittenHere(Cid cid)
    {
        lock (_gate) return _written.Contains(cid);
    }

    /// <summary>Test hook: the file a block lives in.</summary>
    internal string PathOf(Cid cid)
    {
        ArgumentNullException.ThrowIfNull(cid);
        var key = Multibase.EncodeBase32Raw(cid.Multihash.Bytes);
        var shard = key.Substring(key.Length - 3, 2);
        return Path.Combine(_root, shard, key + ".data");
    }
}
