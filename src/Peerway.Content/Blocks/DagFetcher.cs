using Peerway.Content.DagPb;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;

namespace Peerway.Content.Blocks;

/// <summary>Somewhere blocks can be fetched from (gateways, peers). Implementations need not be trusted.</summary>
public interface IBlockSource
{
    /// <summary>Fetches the bytes claimed to be <paramref name="cid"/>; null when no source has it.</summary>
    Task<byte[]?> FetchAsync(Cid cid, CancellationToken cancellationToken);

    /// <summary>
    /// True when <see cref="FetchAsync"/> only ever returns bytes that hash to the CID asked, checked by the source itself
    /// (a Bitswap client matches each block by the CID rebuilt from its bytes): <see cref="DagFetcher"/> then stores them
    /// without hashing them a second time. False (the default) for a source that passes on what it was sent.
    /// </summary>
    bool VerifiesBlocks => false;
}

/// <summary>
/// Copies a whole DAG from an untrusted <see cref="IBlockSource"/> into a store, verifying every block against the CID
/// that named it before storing it or following its links (or taking the word of a source that checked it itself,
/// <see cref="IBlockSource.VerifiesBlocks"/>): a bad source cannot inject data.
/// </summary>
public static class DagFetcher
{
    /// <summary>Fetches one block at a time (depth first).</summary>
    public static Task<ContentResult> FetchDagAsync(IBlockSource source, IBlockStore store, Cid root, CancellationToken cancellationToken) =>
        FetchDagAsync(source, store, root, parallelism: 1, cancellationToken);

    /// <summary>
    /// Fetches with up to <paramref name="parallelism"/> blocks in flight (for sources that spread requests over several
    /// peers, as Bitswap does): every block is still verified against the CID that named it before it is stored or its
    /// links followed. Stops at the first block no source has or that does not verify.
    /// </summary>
    public static Task<ContentResult> FetchDagAsync(IBlockSource source, IBlockStore store, Cid root, int parallelism, CancellationToken cancellationToken) =>
        FetchDagAsync(source, store, root, parallelism, onBlock: null, cancellationToken);

    /// <summary>
    /// As <see cref="FetchDagAsync(IBlockSource, IBlockStore, Cid, int, CancellationToken)"/>, and hands every block of the
    /// DAG to <paramref name="onBlock"/> once, verified, after its parent and before its children are asked for (blocks
    /// already in the store too): a caller can write a file as it arrives (<see cref="UnixFs.UnixFsFileAssembler"/>)
    /// instead of exporting it from the store after the last block.
    /// </summary>
    public static async Task<ContentResult> FetchDagAsync(IBlockSource source, IBlockStore store, Cid root, int parallelism, Action<Cid, byte[]>? onBlock, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(root);
        ArgumentOutOfRangeException.ThrowIfLessThan(parallelism, 1);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var seen = new HashSet<Cid> { root };
        var frontier = new Stack<(Cid Cid, int Depth)>();
        frontier.Push((root, 0));
        var running = new Dictionary<Task<byte[]?>, (Cid Cid, int Depth)>();
        var fetched = 0UL;
        var failure = (ContentResult?)null;
        try
        {
            while (failure is null && (frontier.Count > 0 || running.Count > 0))
            {
                while (failure is null && frontier.Count > 0 && running.Count < parallelism)
                {
                    var (cid, depth) = frontier.Pop();
                    if (depth > UnixFsExporter.MaxDepth || seen.Count > Car.DagWalker.MaxBlocks)
                    {
                        failure = ContentResult.Fail(ContentError.TooLarge, cid);
                        break;
                    }

                    if (UnixFsExporter.TryGetBlock(store, cid, out var held) == ContentError.None)
                    {
                        onBlock?.Invoke(cid, held!);
                        failure = Follow(cid, held!, depth, frontier, seen);
                        continue;
                    }

                    running.Add(source.FetchAsync(cid, stop.Token), (cid, depth));
                }

                if (failure is not null || running.Count == 0) break;
                var done = await Task.WhenAny(running.Keys).ConfigureAwait(false);
                var (doneCid, doneDepth) = running[done];
                running.Remove(done);
                var block = await done.ConfigureAwait(false);
                if (block is null)
                {
                    failure = ContentResult.Fail(ContentError.NotFound, doneCid);
                }
                else if (!source.VerifiesBlocks && !BlockVerifier.Verify(doneCid, block))
                {
                    failure = ContentResult.Fail(ContentError.HashMismatch, doneCid);
                }
                else
                {
                    store.Put(doneCid, block);
                    fetched++;
                    onBlock?.Invoke(doneCid, block);
                    failure = Follow(doneCid, block, doneDepth, frontier, seen);
                }
            }
        }
        finally
        {
            // Whatever ended the walk, the fetches still in flight are withdrawn and awaited.
            await stop.CancelAsync().ConfigureAwait(false);
            await ((Task)Task.WhenAll(running.Keys)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        return failure ?? ContentResult.Success(fetched);
    }

    private static ContentResult? Follow(Cid cid, byte[] block, int depth, Stack<(Cid Cid, int Depth)> frontier, HashSet<Cid> seen)
    {
        var children = new Stack<(Cid Cid, int Depth)>();
        var error = DagLinks.PushChildren(cid, block, depth, children);
        if (error != ContentError.None) return ContentResult.Fail(error, cid);
        // PushChildren leaves the first link on top; keep that order on the frontier (first links fetched first).
        var ordered = children.ToArray();
        for (var i = ordered.Length - 1; i >= 0; i--)
        {
            if (seen.Add(ordered[i].Cid)) frontier.Push(ordered[i]);
        }

        return null;
    }
}
