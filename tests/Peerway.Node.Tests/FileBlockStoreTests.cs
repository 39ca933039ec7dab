using Peerway.Content;
using Peerway.Core.Multiformats;
using Peerway.Node.Content;

namespace Peerway.Node.Tests;

public sealed class FileBlockStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("peerway-blocks-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Blocks_round_trip_and_are_verified_on_read()
    {
        var store = new FileBlockStore(_dir);
        var block = "some block"u8.ToArray();
        var cid = Cid.V1(Cid.RawCodec, Multihash.Sha2_256(block));
        Assert.False(store.Has(cid));
        Assert.Equal(ContentError.NotFound, store.TryGet(cid, out _));

        store.Put(cid, block);
        Assert.True(store.Has(cid));
        Assert.Equal(ContentError.None, store.TryGet(cid, out var read));
        Assert.Equal(block, read);
        // The same multihash under another codec is the same stored block (keyed by multihash, like kubo's flatfs).
        Assert.True(store.Has(Cid.V1(Cid.DagPbCodec, cid.Multihash)));

        File.WriteAllBytes(store.PathOf(cid), "tampered!!"u8.ToArray());
        Assert.Equal(ContentError.HashMismatch, store.TryGet(cid, out var bad));
        Assert.Null(bad);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void Repo_records_roots_once_and_resolves_its_directory()
    {
        var repo = new ContentRepo(_dir);
        var cid = Cid.V1(Cid.RawCodec, Multihash.Sha2_256("x"u8));
        repo.AddRoot(cid);
        repo.AddRoot(cid);
        Assert.Equal([cid], new ContentRepo(_dir).Roots());
        Assert.Equal("/explicit", ContentRepo.ResolveDirectory("/explicit"));
    }
}
