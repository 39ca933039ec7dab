using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;

namespace Peerway.Torrent.Tests.Storage;

public sealed class PieceBufferTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pw-piecebuf-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static long Address(ReadOnlySpan<byte> span) => (long)Unsafe.ByteOffset(ref Unsafe.NullRef<byte>(), ref MemoryMarshal.GetReference(span));

    [Theory]
    [InlineData(1)]
    [InlineData(16_384)]
    [InlineData(262_144)]
    [InlineData(262_145)]
    public void Rented_buffers_are_page_aligned_and_hold_the_piece(int length)
    {
        var pool = new PieceBufferPool();
        var buffer = pool.Rent(length);
        Assert.True(buffer.Capacity >= length);
        Assert.Equal(0, buffer.Capacity % DirectIo.Alignment);
        Assert.Equal(0, Address(buffer.Span(length)) % DirectIo.Alignment);
        buffer.Span(buffer.Capacity).Fill(7); // the whole capacity is usable
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        Assert.Equal(0, Address(buffer.Span(length)) % DirectIo.Alignment); // pinned: a compacting GC does not move it
    }

    [Fact]
    public void A_returned_buffer_is_reused_for_a_piece_of_its_size_only_and_the_pool_is_bounded()
    {
        var pool = new PieceBufferPool();
        var a = pool.Rent(262_144);
        pool.Return(a);
        Assert.Same(a, pool.Rent(262_144 - 100)); // the last piece of a torrent is shorter
        pool.Return(a);
        Assert.NotSame(a, pool.Rent(16_384)); // more than twice the size: kept for larger pieces
        Assert.NotSame(a, pool.Rent(262_145));
        Assert.Equal(1, pool.FreeCount);

        var big = Enumerable.Range(0, (PieceBufferPool.MaxRetainedBytes / (4 << 20)) + 2).Select(_ => pool.Rent(4 << 20)).ToList();
        foreach (var b in big) pool.Return(b);
        Assert.Equal(1 + ((PieceBufferPool.MaxRetainedBytes - 262_144) / (4 << 20)), pool.FreeCount); // a, and what fits beside it
    }

    /// <summary>
    /// Pieces assembled in pooled buffers go to O_DIRECT as they are; an unaligned piece still takes the staging copy.
    /// Both write the same bytes, across a file boundary and an unaligned file tail.
    /// </summary>
    [Fact]
    public async Task A_page_aligned_piece_is_written_directly_without_the_staging_copy()
    {
        var src = Path.Combine(_dir, "src", "set");
        Directory.CreateDirectory(src);
        var content = RandomNumberGenerator.GetBytes(40_000 + 30_000);
        await File.WriteAllBytesAsync(Path.Combine(src, "a"), content[..40_000]);
        await File.WriteAllBytesAsync(Path.Combine(src, "b"), content[40_000..]);
        var bytes = await TorrentCreator.CreateAsync(src, new TorrentCreateOptions { PieceLength = 16_384 });
        Assert.True(MetainfoParser.TryParse(bytes, out var meta, out _));
        var info = meta!.Info;
        var pool = new PieceBufferPool();

        foreach (var aligned in new[] { true, false })
        {
            var dl = Path.Combine(_dir, aligned ? "aligned" : "unaligned");
            using (var storage = TorrentStorage.Open(info, dl, create: true, directWrites: true))
            {
                Assert.True(storage.HasDirectWrites, "the test directory's filesystem has no O_DIRECT");
                for (var p = 0; p < info.PieceCount; p++)
                {
                    var size = info.PieceSize(p);
                    var buffer = pool.Rent(size + 1);
                    var piece = aligned ? buffer.Span(size) : buffer.Span(size + 1)[1..];
                    content.AsSpan(p * info.PieceLength, size).CopyTo(piece);
                    Assert.True(storage.TryWriteVerifiedPiece(p, piece));
                    pool.Return(buffer);
                }

                Assert.True(storage.IsComplete);
                Assert.Equal(aligned ? 0 : info.PieceCount, storage.StagedWrites);
            }

            Assert.Equal(content, (await File.ReadAllBytesAsync(Path.Combine(dl, "set", "a"))).Concat(await File.ReadAllBytesAsync(Path.Combine(dl, "set", "b"))));
        }
    }
}
