using Peerway.Torrent.Storage;

namespace Peerway.Torrent.Swarm;

/// <summary>A block to request: piece index, offset and length (BEP 3: 16 KiB blocks, the last one shorter).</summary>
internal readonly record struct BlockRequest(int Piece, int Begin, int Length);

/// <summary>
/// Chooses which blocks to request from a peer. Not thread-safe: owned by the swarm's single state lock.
/// Policy (BEP 3 "piece selection", and the classic BitTorrent client's):
/// 1. finish pieces already started (strict priority), 2. random first pieces until a few are complete,
/// 3. rarest first with a random tie-break, 4. endgame: once every missing block is requested, request
/// outstanding blocks from other peers too, and cancel the duplicates when one arrives.
/// File priorities (see <see cref="SetPiecePriorities"/>): a skipped piece is never picked, and high-priority pieces
/// are started before normal ones (libtorrent's piece priorities).
/// Streaming (see <see cref="SetPieceDeadline"/>, libtorrent's <c>set_piece_deadline</c>): pieces with a deadline come
/// before everything else, earliest deadline first, and once all their blocks are requested they are in their own
/// endgame (a block may be asked of a second peer); the rest of the picking is unchanged.
/// </summary>
internal sealed class PiecePicker
{
    /// <summary>Until this many pieces are complete, pick random pieces (something to share quickly).</summary>
    public const int RandomFirstPieces = 4;

    /// <summary>How many of the earliest deadline pieces may have a block requested from a second peer.</summary>
    public const int DeadlineEndgamePieces = 2;

    private readonly int _pieceCount;
    private readonly Func<int, int> _pieceSize;
    private readonly Random _random;
    private readonly int[] _availability;
    private readonly Bitfield _have;
    private readonly Dictionary<int, PartialPiece> _partial = [];
    private int _unrequestedMissingBlocks;
    private FilePriority[] _priority;

    /// <summary>Time-critical pieces (streaming readers): piece → deadline; earlier deadlines are picked first.</summary>
    private readonly Dictionary<int, long> _deadlines = [];

    /// <summary>Wanted (not skipped) pieces not verified yet.</summary>
    private int _wantedMissing;

    public PiecePicker(int pieceCount, Func<int, int> pieceSize, Bitfield have, Random random)
    {
        ArgumentNullException.ThrowIfNull(have);
        _pieceCount = pieceCount;
        _pieceSize = pieceSize;
        _random = random;
        _availability = new int[pieceCount];
        _have = have;
        _priority = new FilePriority[pieceCount];
        Array.Fill(_priority, FilePriority.Normal);
        for (var p = 0; p < pieceCount; p++)
        {
            if (!have[p])
            {
                _unrequestedMissingBlocks += BlockCount(p);
                _wantedMissing++;
            }
        }
    }

    /// <summary>True once every piece not skipped is verified (the download of what was selected is done).</summary>
    public bool IsDone => _wantedMissing == 0;

    /// <summary>Whether <paramref name="piece"/> is wanted (some file it overlaps is not skipped).</summary>
    public bool IsWanted(int piece) => _priority[piece] != FilePriority.Skip;

    /// <summary>
    /// Sets each piece's priority (<see cref="FilePriorities.ForPieces"/>); may change at any time. A started piece that
    /// becomes skipped keeps what it received but is not asked for any more.
    /// </summary>
    public void SetPiecePriorities(IReadOnlyList<FilePriority> priorities)
    {
        ArgumentNullException.ThrowIfNull(priorities);
        if (priorities.Count != _pieceCount) throw new ArgumentException($"{priorities.Count} priorities for {_pieceCount} pieces", nameof(priorities));
        _priority = [.. priorities];
        _wantedMissing = 0;
        _unrequestedMissingBlocks = 0;
        for (var p = 0; p < _pieceCount; p++)
        {
            if (_have[p] || !IsWanted(p)) continue;
            _wantedMissing++;
            if (!_partial.TryGetValue(p, out var partial))
            {
                _unrequestedMissingBlocks += BlockCount(p);
                continue;
            }

            foreach (var b in partial.Blocks)
            {
                if (!b.Received && b.Requesters.Count == 0) _unrequestedMissingBlocks++;
            }
        }
    }

    /// <summary>
    /// Gives <paramref name="piece"/> a deadline (libtorrent's <c>set_piece_deadline</c>; any monotonic unit, e.g.
    /// milliseconds): it is requested before any piece without one, earlier deadlines first, whatever its rarity.
    /// A piece already verified is ignored; the deadline goes when the piece verifies or is reset.
    /// </summary>
    public void SetPieceDeadline(int piece, long deadline)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(piece);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(piece, _pieceCount);
        if (_have[piece]) return;
        _deadlines[piece] = deadline;
    }

    /// <summary>Takes the deadline off <paramref name="piece"/> (libtorrent's <c>reset_piece_deadline</c>).</summary>
    public void ResetPieceDeadline(int piece) => _deadlines.Remove(piece);

    /// <summary>Takes every deadline off (libtorrent's <c>clear_piece_deadlines</c>).</summary>
    public void ClearPieceDeadlines() => _deadlines.Clear();

    /// <summary>The deadline of <paramref name="piece"/>; <see cref="long.MaxValue"/> when it has none.</summary>
    public long Deadline(int piece) => _deadlines.TryGetValue(piece, out var d) ? d : long.MaxValue;

    /// <summary>The pieces with a deadline, not yet verified.</summary>
    public IReadOnlyCollection<int> DeadlinePieces => _deadlines.Keys;

    public int BlockLength { get; init; } = Metainfo.TorrentLimits.BlockLength;

    /// <summary>True once every missing block has been requested at least once.</summary>
    public bool InEndgame => _unrequestedMissingBlocks == 0 && !IsDone;

    public int Availability(int piece) => _availability[piece];

    public IReadOnlyCollection<int> PartialPieces => _partial.Keys;

    public int BlockCount(int piece) => (_pieceSize(piece) + BlockLength - 1) / BlockLength;

    public void AddAvailability(Bitfield peerHas)
    {
        ArgumentNullException.ThrowIfNull(peerHas);
        foreach (var p in peerHas.SetIndices()) _availability[p]++;
    }

    public void RemoveAvailability(Bitfield peerHas)
    {
        ArgumentNullException.ThrowIfNull(peerHas);
        foreach (var p in peerHas.SetIndices()) _availability[p] = Math.Max(0, _availability[p] - 1);
    }

    public void AddAvailability(int piece) => _availability[piece]++;

    /// <summary>Whether the peer has any piece we still need.</summary>
    public bool IsInteresting(Bitfield peerHas)
    {
        ArgumentNullException.ThrowIfNull(peerHas);
        for (var p = 0; p < _pieceCount; p++)
        {
            if (peerHas[p] && !_have[p] && IsWanted(p)) return true;
        }

        return false;
    }

    /// <summary>
    /// Picks up to <paramref name="count"/> blocks that <paramref name="peer"/> (which has <paramref name="peerHas"/>) should
    /// be asked for, marking them requested. <paramref name="allowedFast"/> restricts the choice (BEP 6, while choked).
    /// </summary>
    /// <param name="peer">Identifies the peer the blocks are requested from (its requests are tracked by this key).</param>
    /// <param name="peerHas">The pieces the peer has.</param>
    /// <param name="count">Most blocks to pick.</param>
    /// <param name="allowedFast">BEP 6: when not null, only these pieces may be picked (the peer chokes us).</param>
    /// <param name="excluded">Pieces not to pick; null: none.</param>
    /// <param name="commonestFirst">Start the most available pieces first instead of the rarest (a web seed, which leaves the rare ones to peers).</param>
    public List<BlockRequest> Pick(object peer, Bitfield peerHas, int count, IReadOnlySet<int>? allowedFast = null, IReadOnlySet<int>? excluded = null, bool commonestFirst = false)
    {
        ArgumentNullException.ThrowIfNull(peerHas);
        var result = new List<BlockRequest>();
        if (count <= 0) return result;
        // A filter value and loops, not closures and LINQ: this runs for every connection on every tick and every
        // received batch (the 1,000-client simulated swarm calls it millions of times). The choices are the same.
        var filter = new Filter(this, peerHas, allowedFast, excluded, HighOnly: false);

        // 0. Streaming: pieces with a deadline first, earliest first (libtorrent's time-critical pieces), then their endgame.
        if (_deadlines.Count > 0)
        {
            PickDeadlinePieces(peer, count, result, filter);
            if (result.Count >= count) return result;
        }

        // 1. Finish started pieces first (higher priority first, then fewest remaining blocks, so pieces complete and can be shared).
        if (_partial.Count > 0)
        {
            var started = SortedPartials(byPriority: true);
            try
            {
                foreach (var partial in started)
                {
                    if (!filter.Eligible(partial.Piece)) continue;
                    TakeUnrequested(partial, peer, count, result);
                    if (result.Count >= count) return result;
                }
            }
            finally
            {
                ReturnSorted(started);
            }
        }

        // 2/3. Start new pieces: random first, then rarest first with a random tie-break; high-priority pieces before the rest.
        var high = true;
        while (result.Count < count)
        {
            var eligible = filter with { HighOnly = high };
            var next = _have.SetCount < RandomFirstPieces ? PickRandom(eligible) : PickRarest(eligible, commonestFirst);
            if (next < 0 && high)
            {
                high = false;
                continue;
            }

            if (next < 0) break;
            var partial = new PartialPiece(next, BlockCount(next));
            _partial.Add(next, partial);
            TakeUnrequested(partial, peer, count, result);
        }

        // 4. Endgame: every missing block is requested; ask this peer for blocks others are slow to deliver.
        if (result.Count < count && InEndgame && _partial.Count > 0)
        {
            var started = SortedPartials(byPriority: false);
            try
            {
                foreach (var partial in started)
                {
                    if (!filter.Eligible(partial.Piece)) continue;
                    for (var b = 0; b < partial.Blocks.Length && result.Count < count; b++)
                    {
                        ref var block = ref partial.Blocks[b];
                        if (block.Received || block.Requesters.Contains(peer)) continue;
                        block.Requesters.Add(peer);
                        result.Add(Block(partial.Piece, b));
                    }
                }
            }
            finally
            {
                ReturnSorted(started);
            }
        }

        return result;
    }

    /// <summary>Which pieces a pick may take: the peer has it, we do not, it is wanted, allowed and not excluded.</summary>
    private readonly record struct Filter(PiecePicker Picker, Bitfield PeerHas, IReadOnlySet<int>? AllowedFast, IReadOnlySet<int>? Excluded, bool HighOnly)
    {
        public bool Eligible(int p) =>
            (!HighOnly || Picker._priority[p] == FilePriority.High) && PeerHas[p] && !Picker._have[p] && Picker.IsWanted(p) &&
            (AllowedFast is null || AllowedFast.Contains(p)) && (Excluded is null || Excluded.Count == 0 || !Excluded.Contains(p));
    }

    /// <summary>A list reused between picks (a pick may run inside another only through a caller's callback: then a new one).</summary>
    private List<PartialPiece>? _sortedSpare;

    /// <summary>
    /// The started pieces in the order a stable sort of <c>_partial.Values</c> gives (what OrderBy did): by priority
    /// (highest first) when <paramref name="byPriority"/>, then fewest remaining blocks, ties in enumeration order.
    /// </summary>
    private List<PartialPiece> SortedPartials(bool byPriority)
    {
        var list = _sortedSpare ?? new List<PartialPiece>(_partial.Count);
        _sortedSpare = null;
        list.Clear();
        foreach (var p in _partial.Values)
        {
            p.Order = list.Count;
            list.Add(p);
        }

        if (list.Count > 1) list.Sort(byPriority ? _byPriorityThenRemaining ??= ByPriorityThenRemaining : ByRemaining);
        return list;
    }

    private Comparison<PartialPiece>? _byPriorityThenRemaining;

    private int ByPriorityThenRemaining(PartialPiece a, PartialPiece b) =>
        _priority[a.Piece] != _priority[b.Piece] ? ((int)_priority[b.Piece]).CompareTo((int)_priority[a.Piece]) : ByRemaining(a, b);

    private static int ByRemaining(PartialPiece a, PartialPiece b) =>
        a.Remaining != b.Remaining ? a.Remaining.CompareTo(b.Remaining) : a.Order.CompareTo(b.Order);

    private void ReturnSorted(List<PartialPiece> list)
    {
        list.Clear();
        _sortedSpare = list;
    }

    private void PickDeadlinePieces(object peer, int count, List<BlockRequest> result, Filter filter)
    {
        var ordered = _deadlines.Where(d => filter.Eligible(d.Key)).OrderBy(d => d.Value).ThenBy(d => d.Key).Select(d => d.Key).ToList();
        foreach (var piece in ordered)
        {
            if (!_partial.TryGetValue(piece, out var partial))
            {
                partial = new PartialPiece(piece, BlockCount(piece));
                _partial.Add(piece, partial);
            }

            TakeUnrequested(partial, peer, count, result);
            if (result.Count >= count) return;
        }

        // Endgame for time-critical pieces (libtorrent requests a late time-critical block from a second peer): every
        // block of the earliest deadline pieces is out, so ask this peer too for those only one other peer has been
        // asked for; the duplicate is cancelled when the first copy arrives (OnBlockReceived).
        foreach (var piece in ordered.Take(DeadlineEndgamePieces))
        {
            var partial = _partial[piece];
            for (var b = 0; b < partial.Blocks.Length && result.Count < count; b++)
            {
                ref var block = ref partial.Blocks[b];
                if (block.Received || block.Requesters.Count != 1 || block.Requesters.Contains(peer)) continue;
                block.Requesters.Add(peer);
                result.Add(Block(piece, b));
            }

            if (result.Count >= count) return;
        }
    }

    private void TakeUnrequested(PartialPiece partial, object peer, int count, List<BlockRequest> result)
    {
        for (var b = 0; b < partial.Blocks.Length && result.Count < count; b++)
        {
            ref var block = ref partial.Blocks[b];
            if (block.Received || block.Requesters.Count > 0) continue;
            block.Requesters.Add(peer);
            _unrequestedMissingBlocks--;
            result.Add(Block(partial.Piece, b));
        }
    }

    private BlockRequest Block(int piece, int block)
    {
        var begin = block * BlockLength;
        return new BlockRequest(piece, begin, Math.Min(BlockLength, _pieceSize(piece) - begin));
    }

    private int PickRandom(in Filter eligible)
    {
        // Reservoir sampling over the eligible, unstarted pieces: uniform without building a list.
        var chosen = -1;
        var seen = 0;
        for (var p = 0; p < _pieceCount; p++)
        {
            if (!eligible.Eligible(p) || _partial.ContainsKey(p)) continue;
            if (_random.Next(++seen) == 0) chosen = p;
        }

        return chosen;
    }

    private int PickRarest(in Filter eligible, bool commonestFirst)
    {
        var chosen = -1;
        var best = int.MaxValue;
        var ties = 0;
        for (var p = 0; p < _pieceCount; p++)
        {
            if (!eligible.Eligible(p) || _partial.ContainsKey(p)) continue;
            var a = commonestFirst ? -_availability[p] : _availability[p];
            if (a < best)
            {
                best = a;
                chosen = p;
                ties = 1;
            }
            else if (a == best && _random.Next(++ties) == 0)
            {
                chosen = p;
            }
        }

        return chosen;
    }

    /// <summary>
    /// Records a received block. Returns the other peers that were also asked for it (endgame: send them a cancel),
    /// and whether the piece now has every block. A block nobody asked this peer for is ignored (returns false).
    /// </summary>
    public bool OnBlockReceived(object peer, int piece, int begin, out IReadOnlyList<object> cancelAt, out bool pieceComplete)
    {
        cancelAt = [];
        pieceComplete = false;
        if (!_partial.TryGetValue(piece, out var partial) || begin % BlockLength != 0) return false;
        var b = begin / BlockLength;
        if (b >= partial.Blocks.Length) return false;
        ref var block = ref partial.Blocks[b];
        if (block.Received || !block.Requesters.Contains(peer)) return false;
        block.Received = true;
        block.From = peer;
        partial.Remaining--;
        // Outside the endgame the block was asked of this peer alone: no list (this runs once per 16 KiB received).
        if (block.Requesters.Count > 1) cancelAt = block.Requesters.Where(r => !ReferenceEquals(r, peer)).ToList();
        block.Requesters.Clear();
        pieceComplete = partial.Remaining == 0;
        return true;
    }

    /// <summary>A request that will not be answered (choke, reject, disconnect, timeout): the block can be picked again.</summary>
    public void OnRequestDropped(object peer, int piece, int begin)
    {
        if (!_partial.TryGetValue(piece, out var partial) || begin % BlockLength != 0) return;
        var b = begin / BlockLength;
        if (b >= partial.Blocks.Length) return;
        ref var block = ref partial.Blocks[b];
        if (block.Received || !block.Requesters.Remove(peer)) return;
        if (block.Requesters.Count == 0 && IsWanted(piece)) _unrequestedMissingBlocks++;
    }

    /// <summary>The peers that supplied the blocks of a complete piece (to blame if its hash fails).</summary>
    public IReadOnlyList<object> Contributors(int piece) =>
        _partial.TryGetValue(piece, out var p) ? p.Blocks.Where(b => b.From is not null).Select(b => b.From!).Distinct().ToList() : [];

    /// <summary>The piece verified and was written: it is done.</summary>
    public void OnPieceVerified(int piece)
    {
        _partial.Remove(piece);
        _deadlines.Remove(piece);
        if (!_have[piece] && IsWanted(piece)) _wantedMissing--;
        _have.Set(piece);
    }

    /// <summary>The piece failed its hash: every block goes back to unrequested.</summary>
    public void OnPieceFailed(int piece)
    {
        if (!_partial.Remove(piece, out var partial)) return;
        // Received and requested blocks were both counted out of the unrequested total; all of them are needed again.
        if (IsWanted(piece)) _unrequestedMissingBlocks += partial.Blocks.Length;
    }

    private sealed class PartialPiece(int piece, int blocks)
    {
        public int Piece { get; } = piece;
        public BlockState[] Blocks { get; } = Enumerable.Range(0, blocks).Select(_ => new BlockState { Requesters = [] }).ToArray();
        public int Remaining { get; set; } = blocks;

        /// <summary>Scratch for <see cref="SortedPartials"/>: the piece's place in the enumeration being sorted.</summary>
        public int Order { get; set; }
    }

    private struct BlockState
    {
        public List<object> Requesters;
        public bool Received;
        public object? From;
    }
}
