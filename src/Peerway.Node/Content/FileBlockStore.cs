using Peerway.Content;
using Peerway.Content.Blocks;
using Peerway.Core.Multiformats;

namespace Peerway.Node.Content;

/// <summary>
/// Blocks on disk, one file per block named by the base32 of its multihash (as kubo's flatfs keys blocks by
/// multihash), sharded by the two characters before the last ("next-to-last/2"). Writes go to a temporary file
/// renamed into place, so a crash never leaves a partial block under its final name; reads verify the hash, except
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
    private readonly Lock _gate = new();
    private readonly HashSet<Cid> _written = [];

    public FileBlockStore(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        _root = Path.Combine(directory, "blocks");
        Directory.CreateDirectory(_root);
    }

    public bool Has(Cid cid) => File.Exists(PathOf(cid));

    public ContentError TryGet(Cid cid, out byte[]? block)
    {
        block = null;
        var path = PathOf(cid);
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
