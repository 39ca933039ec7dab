using Peerway.Content.Blocks;
using Peerway.Content.DagPb;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;

namespace Peerway.Content.Car;

/// <summary>One verified CAR block.</summary>
public sealed record CarBlock(Cid Cid, byte[] Data);

/// <summary>Reads a CARv1 stream, verifying each block's hash against its CID.</summary>
public sealed class CarReader
{
    private readonly Stream _stream;

    /// <summary>A reader of <paramref name="stream"/> (not disposed by the reader).</summary>
    public CarReader(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
    }

    /// <summary>Reads the header; call once, first.</summary>
    public async Task<(ContentError Error, CarHeader? Header)> ReadHeaderAsync(CancellationToken cancellationToken)
    {
        var (error, length, body) = await ReadFramedAsync(CarCodec.MaxHeaderLength, cancellationToken).ConfigureAwait(false);
        if (error != ContentError.None)
        {
            return (error == ContentError.NotFound ? ContentError.Truncated : error, null);
        }

        _ = length;
        error = CarCodec.TryDecodeHeaderCbor(body, out var header);
        return (error, header);
    }

    /// <summary>Reads the next block; (None, null) at the end of the stream.</summary>
    public async Task<(ContentError Error, CarBlock? Block)> ReadBlockAsync(CancellationToken cancellationToken)
    {
        var (error, _, body) = await ReadFramedAsync(CarCodec.MaxSectionLength, cancellationToken).ConfigureAwait(false);
        if (error == ContentError.NotFound)
        {
            return (ContentError.None, null);
        }

        if (error != ContentError.None)
        {
            return (error, null);
        }

        error = CarCodec.TryDecodeSectionBody(body, out var cid, out var offset);
        return error != ContentError.None ? (error, null) : (ContentError.None, new CarBlock(cid!, body[offset..]));
    }

    // Reads varint(length) then length bytes. NotFound signals a clean end of stream before any byte.
    private async Task<(ContentError Error, int Length, byte[] Body)> ReadFramedAsync(int max, CancellationToken cancellationToken)
    {
        var prefix = new byte[Varint.MaxLength];
        var n = 0;
        while (true)
        {
            var read = await _stream.ReadAsync(prefix.AsMemory(n, 1), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return (n == 0 ? ContentError.NotFound : ContentError.Truncated, 0, []);
            }

            n++;
            if ((prefix[n - 1] & 0x80) == 0)
            {
                break;
            }

            if (n == Varint.MaxLength)
            {
                return (ContentError.VarintOverflow, 0, []);
            }
        }

        var varintError = Varint.TryRead(prefix.AsSpan(0, n), out var length, out _);
        if (varintError != MultiformatError.None)
        {
            return (ContentError.VarintOverflow, 0, []);
        }

        if (length == 0 || length > (ulong)max)
        {
            return (length == 0 ? ContentError.InvalidCid : ContentError.TooLarge, 0, []);
        }

        var body = new byte[(int)length];
        var got = await _stream.ReadAtLeastAsync(body, body.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        return got < body.Length ? (ContentError.Truncated, 0, []) : (ContentError.None, (int)length, body);
    }
}

/// <summary>Writes CARv1 streams.</summary>
public static class CarWriter
{
    /// <summary>
    /// Writes the DAG below <paramref name="root"/> as a CARv1 with that single root, blocks in depth-first pre-order
    /// without duplicates (as <c>ipfs dag export</c> orders them). Every block is verified as it is read.
    /// </summary>
    public static async Task<ContentResult> ExportDagAsync(IBlockStore store, Cid root, Stream output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(output);
        await output.WriteAsync(CarCodec.EncodeHeader([root]), cancellationToken).ConfigureAwait(false);
        var blocks = 0UL;
        var result = await DagWalker.WalkAsync(store, root, async (cid, block, ct) =>
        {
            var header = new byte[Varint.MaxLength + cid.Length];
            var n = CarCodec.WriteSectionHeader(cid, block.Length, header);
            await output.WriteAsync(header.AsMemory(0, n), ct).ConfigureAwait(false);
            await output.WriteAsync(block, ct).ConfigureAwait(false);
            blocks++;
        }, cancellationToken).ConfigureAwait(false);
        return result.Ok ? ContentResult.Success(blocks) : result;
    }

    /// <summary>Imports every block of a CAR into <paramref name="store"/> (each verified); returns the header.</summary>
    public static async Task<(ContentResult Result, CarHeader? Header)> ImportAsync(Stream input, IBlockStore store, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(store);
        var reader = new CarReader(input);
        var (error, header) = await reader.ReadHeaderAsync(cancellationToken).ConfigureAwait(false);
        if (error != ContentError.None)
        {
            return (ContentResult.Fail(error, null), null);
        }

        var count = 0UL;
        while (true)
        {
            var (blockError, block) = await reader.ReadBlockAsync(cancellationToken).ConfigureAwait(false);
            if (blockError != ContentError.None)
            {
                return (ContentResult.Fail(blockError, null), header);
            }

            if (block is null)
            {
                return (ContentResult.Success(count), header);
            }

            store.Put(block.Cid, block.Data);
            count++;
        }
    }
}

/// <summary>Walks a DAG (dag-pb and raw) depth-first, pre-order, each block once, verifying every block.</summary>
public static class DagWalker
{
    /// <summary>Bound on blocks visited in one walk.</summary>
    public const long MaxBlocks = 100_000_000;

    /// <summary>Calls <paramref name="visit"/> with each block of the DAG under <paramref name="root"/>, depth-first, pre-order, each
    /// CID once, after verifying it. On success <see cref="ContentResult.Bytes"/> is the number of blocks visited (not bytes).
    /// Fails with the store's error, a decoding error, or <see cref="ContentError.TooLarge"/> past <see cref="MaxBlocks"/> blocks
    /// or <see cref="UnixFsExporter.MaxDepth"/> levels, naming the block in <see cref="ContentResult.At"/>.</summary>
    public static async Task<ContentResult> WalkAsync(
        IBlockStore store, Cid root, Func<Cid, byte[], CancellationToken, ValueTask> visit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(visit);
        var seen = new HashSet<Cid>();
        var stack = new Stack<(Cid Cid, int Depth)>();
        stack.Push((root, 0));
        while (stack.Count > 0)
        {
            var (cid, depth) = stack.Pop();
            if (!seen.Add(cid))
            {
                continue;
            }

            if (seen.Count > MaxBlocks || depth > UnixFsExporter.MaxDepth)
            {
                return ContentResult.Fail(ContentError.TooLarge, cid);
            }

            var error = UnixFsExporter.TryGetBlock(store, cid, out var block);
            if (error != ContentError.None)
            {
                return ContentResult.Fail(error, cid);
            }

            await visit(cid, block!, cancellationToken).ConfigureAwait(false);
            error = DagLinks.PushChildren(cid, block, depth, stack);
            if (error != ContentError.None)
            {
                return ContentResult.Fail(error, cid);
            }
        }

        return ContentResult.Success((ulong)seen.Count);
    }
}
