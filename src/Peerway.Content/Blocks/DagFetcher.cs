using Peerway.Content.DagPb;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;

namespace Peerway.Content.Blocks;

/// <summary>Somewhere blocks can be fetched from (gateways, peers). Implementations need not be trusted.</summary>
public interface IBlockSource
{
    /// <summary>Fetches the bytes claimed to be <paramref name="cid"/>; null when no source has it.</summary>
    Task<byte[]?> FetchAsync(Cid cid, CancellationToken cancellationToken);
}

/// <summary>
/// Copies a whole DAG from an untrusted <see cref="IBlockSource"/> into a store, verifying every block against the CID
/// that named it before storing it or following its links: a bad source cannot inject data.
/// </summary>
public static class DagFetcher
{
    public static async Task<ContentResult> FetchDagAsync(IBlockSource source, IBlockStore store, Cid root, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(root);
        var seen = new HashSet<Cid>();
        var stack = new Stack<(Cid Cid, int Depth)>();
        stack.Push((root, 0));
        var fetched = 0UL;
        while (stack.Count > 0)
        {
            var (cid, depth) = stack.Pop();
            if (!seen.Add(cid))
            {
                continue;
            }

            if (depth > UnixFsExporter.MaxDepth || seen.Count > Car.DagWalker.MaxBlocks)
            {
                return ContentResult.Fail(ContentError.TooLarge, cid);
            }

            var error = UnixFsExporter.TryGetBlock(store, cid, out var block);
            if (error != ContentError.None)
            {
                block = await source.FetchAsync(cid, cancellationToken).ConfigureAwait(false);
                if (block is null)
                {
                    return ContentResult.Fail(ContentError.NotFound, cid);
                }

                if (!BlockVerifier.Verify(cid, block))
                {
                    return ContentResult.Fail(ContentError.HashMismatch, cid);
                }

                store.Put(cid, block);
                fetched++;
            }

            error = DagLinks.PushChildren(cid, block, depth, stack);
            if (error != ContentError.None)
            {
                return ContentResult.Fail(error, cid);
            }
        }

        return ContentResult.Success(fetched);
    }
}
