using Peerway.Core.Multiformats;

namespace Peerway.Content.Blocks;

/// <summary>
/// A content-addressed block store. <see cref="TryGet"/> verifies every block against its CID before returning it, so a
/// corrupted or tampered store is detected, never served. Implementations are thread-safe: the importer stores leaves
/// from several threads at once.
/// </summary>
public interface IBlockStore
{
    /// <summary>True when the store holds a block for <paramref name="cid"/> (not verified: <see cref="TryGet"/> verifies).</summary>
    bool Has(Cid cid);

    /// <summary>Returns the verified block, <see cref="ContentError.NotFound"/>, or <see cref="ContentError.HashMismatch"/>.</summary>
    ContentError TryGet(Cid cid, out byte[]? block);

    /// <summary>Stores <paramref name="block"/> under <paramref name="cid"/>; the caller has computed or verified the hash.</summary>
    void Put(Cid cid, ReadOnlySpan<byte> block);

    /// <summary>False when <see cref="Put"/> discards blocks (only CIDs are wanted): the importer then skips assembling them.</summary>
    bool KeepsBlocks => true;
}

/// <summary>Checks a block against a CID (sha2-256 or identity multihash).</summary>
public static class BlockVerifier
{
    /// <summary>True when <paramref name="block"/> hashes to <paramref name="cid"/>'s multihash (for identity, equals its digest).</summary>
    public static bool Verify(Cid cid, ReadOnlySpan<byte> block)
    {
        ArgumentNullException.ThrowIfNull(cid);
        return cid.Multihash.Matches(block);
    }
}

/// <summary>An in-memory block store (tests, the verifying fetcher's scratch space).</summary>
public sealed class MemoryBlockStore : IBlockStore
{
    private readonly Dictionary<Multihash, byte[]> _blocks = [];
    private readonly Lock _gate = new();

    /// <summary>Number of blocks stored (a CIDv0 and its CIDv1 share one entry: blocks are keyed by multihash).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _blocks.Count;
            }
        }
    }

    /// <summary>True when a block is stored under <paramref name="cid"/>'s multihash.</summary>
    public bool Has(Cid cid)
    {
        ArgumentNullException.ThrowIfNull(cid);
        lock (_gate)
        {
            return _blocks.ContainsKey(cid.Multihash);
        }
    }

    /// <summary>Returns the stored block after checking it against <paramref name="cid"/>: <see cref="ContentError.None"/>,
    /// <see cref="ContentError.NotFound"/>, or <see cref="ContentError.HashMismatch"/> (then <paramref name="block"/> is null).</summary>
    public ContentError TryGet(Cid cid, out byte[]? block)
    {
        ArgumentNullException.ThrowIfNull(cid);
        lock (_gate)
        {
            _blocks.TryGetValue(cid.Multihash, out block);
        }

        if (block is null)
        {
            return ContentError.NotFound;
        }

        if (!BlockVerifier.Verify(cid, block))
        {
            block = null;
            return ContentError.HashMismatch;
        }

        return ContentError.None;
    }

    /// <summary>Stores a copy of <paramref name="block"/> under <paramref name="cid"/>'s multihash, replacing any block there.</summary>
    public void Put(Cid cid, ReadOnlySpan<byte> block)
    {
        ArgumentNullException.ThrowIfNull(cid);
        var copy = block.ToArray();
        lock (_gate)
        {
            _blocks[cid.Multihash] = copy;
        }
    }

    /// <summary>Test hook: replaces stored bytes without checking them (to simulate corruption).</summary>
    internal void Corrupt(Cid cid, byte[] bytes)
    {
        lock (_gate)
        {
            _blocks[cid.Multihash] = bytes;
        }
    }
}

/// <summary>Discards blocks (for computing CIDs only, like <c>ipfs add --only-hash</c>).</summary>
public sealed class NullBlockStore : IBlockStore
{
    /// <summary>False: <see cref="Put"/> discards blocks.</summary>
    public bool KeepsBlocks => false;

    /// <summary>False: nothing is ever stored.</summary>
    public bool Has(Cid cid) => false;

    /// <summary><see cref="ContentError.NotFound"/>, always.</summary>
    public ContentError TryGet(Cid cid, out byte[]? block)
    {
        block = null;
        return ContentError.NotFound;
    }

    /// <summary>Discards the block.</summary>
    public void Put(Cid cid, ReadOnlySpan<byte> block)
    {
    }
}
