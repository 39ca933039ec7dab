using Peerway.Content;
using Peerway.Core.Multiformats;
using Peerway.Node.Content;
using Peerway.TestSupport;

namespace Peerway.Node.Tests;

public sealed class FileBlockStoreTests : IDisposable
{
    private readonly TempDirectory _temp = new("peerway-blocks");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Blocks_in_files_of_their_own_round_trip_and_are_verified_on_read()
    {
        var store = new FileBlockStore(_temp.Path, writePacks: false);
        var block = "some block"u8.ToArray();
        var cid = Cid.V1(Cid.RawCodec, Multihash.Sha256(block));
        Assert.False(store.Has(cid));
        Assert.Equal(ContentError.NotFound, store.TryGet(cid, out _));

        store.Put(cid, block);
        Assert.True(store.Has(cid));
        Assert.Equal(ContentError.None, store.TryGet(cid, out var read));
        Assert.Equal(block, read);
        // The same multihash under another codec is the same stored block (keyed by multihash, like kubo's flatfs).
        Assert.True(store.Has(Cid.V1(Cid.DagPbCodec, cid.Multihash)));

        File.WriteAllBytes(store.PathOf(cid), "tampered!!"u8.ToArray());
        // Another instance (another process, a later run) did not write it: every read is verified.
        Assert.Equal(ContentError.HashMismatch, new FileBlockStore(_temp.Path).TryGet(cid, out var bad));
        Assert.Null(bad);
        Assert.Empty(Directory.GetFiles(_temp.Path, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void A_block_this_instance_wrote_is_read_back_without_hashing_it_again()
    {
        var store = new FileBlockStore(_temp.Path, writePacks: false);
        var block = "verified by the caller"u8.ToArray();
        var cid = Cid.V1(Cid.RawCodec, Multihash.Sha256(block));
        store.Put(cid, block);
        // The caller of Put vouched for the hash (IBlockStore's contract), so this instance does not hash it again; the
        // changed bytes show that no hash was computed. A fresh instance verifies.
        var changed = "changed on disk later"u8.ToArray();
        File.WriteAllBytes(store.PathOf(cid), changed);
        Assert.Equal(ContentError.None, store.TryGet(cid, out var read));
        Assert.Equal(changed, read);
        Assert.Equal(ContentError.HashMismatch, new FileBlockStore(_temp.Path).TryGet(cid, out _));
    }

    [Fact]
    public void Repo_records_roots_once_and_resolves_its_directory()
    {
        var repo = new ContentRepo(_temp.Path);
        var cid = Cid.V1(Cid.RawCodec, Multihash.Sha256("x"u8));
        repo.AddRoot(cid);
        repo.AddRoot(cid);
        Assert.Equal([cid], new ContentRepo(_temp.Path).Roots());
        Assert.Equal("/explicit", ContentRepo.ResolveDirectory("/explicit"));
    }
}
