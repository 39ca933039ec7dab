using FsCheck;
using FsCheck.Xunit;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Tests.Swarm;

public sealed class PiecePickerTests
{
    private const int Block = 16384;

    private static Bitfield All(int n)
    {
        var b = new Bitfield(n);
        b.SetAll();
        return b;
    }

    private static Bitfield Of(int n, params int[] pieces)
    {
        var b = new Bitfield(n);
        foreach (var p in pieces) b.Set(p);
        return b;
    }

    private static Bitfield HaveFirst(int n, int count) => Of(n, Enumerable.Range(0, count).ToArray());

    [Fact]
    public void Rarest_first_after_random_first()
    {
        var have = HaveFirst(20, PiecePicker.RandomFirstPieces);
        var picker = new PiecePicker(20, _ => 2 * Block, have, new Random(1));
        // Pieces 10..19 are held by three peers, pieces 4..9 by two, piece 7 by one.
        picker.AddAvailability(All(20));
        picker.AddAvailability(All(20));
        picker.AddAvailability(Of(20, Enumerable.Range(10, 10).ToArray()));
        picker.AddAvailability(7);
        var picks = picker.Pick("p", All(20), 2);
        Assert.All(picks, r => Assert.InRange(r.Piece, 4, 9));
        Assert.NotEqual(7, picks[0].Piece);
        var seen = new HashSet<int>();
        for (var seed = 0; seed < 40; seed++)
        {
            var p = new PiecePicker(20, _ => 2 * Block, HaveFirst(20, PiecePicker.RandomFirstPieces), new Random(seed));
            p.AddAvailability(Of(20, 10, 11, 12));
            seen.Add(p.Pick("p", All(20), 1)[0].Piece);
        }

        // Random tie-break among the equally rare pieces 4..9 and 13..19.
        Assert.True(seen.Count > 3);
        Assert.DoesNotContain(10, seen);
    }

    [Fact]
    public void Random_first_pieces_are_not_in_order()
    {
        var firsts = Enumerable.Range(0, 30).Select(seed =>
        {
            var p = new PiecePicker(100, _ => Block, new Bitfield(100), new Random(seed));
            return p.Pick("p", All(100), 1)[0].Piece;
        }).Distinct().Count();
        Assert.True(firsts > 10);
    }

    [Fact]
    public void Started_pieces_are_finished_first_and_blocks_are_not_requested_twice()
    {
        var picker = new PiecePicker(10, _ => 4 * Block, HaveFirst(10, 5), new Random(3));
        var a = picker.Pick("a", All(10), 2);
        Assert.Equal(2, a.Count);
        Assert.Equal(a[0].Piece, a[1].Piece);
        var b = picker.Pick("b", All(10), 2);
        Assert.All(b, r => Assert.Equal(a[0].Piece, r.Piece));
        Assert.Empty(a.Select(r => r.Begin).Intersect(b.Select(r => r.Begin)));
        var lastPieceSize = new PiecePicker(2, p => p == 1 ? Block + 100 : 2 * Block, new Bitfield(2), new Random(0));
        var blocks = lastPieceSize.Pick("a", Of(2, 1), 5);
        Assert.Equal([Block, 100], blocks.Select(r => r.Length));
    }

    [Fact]
    public void Endgame_duplicates_requests_and_reports_cancels()
    {
        var picker = new PiecePicker(2, _ => 2 * Block, Of(2, 0), new Random(0));
        var a = picker.Pick("a", All(2), 10);
        Assert.Equal(2, a.Count);
        Assert.True(picker.InEndgame);
        var b = picker.Pick("b", All(2), 10);
        Assert.Equal(a, b);
        Assert.True(picker.OnBlockReceived("b", 1, 0, out var cancel, out var complete));
        Assert.Equal(["a"], cancel);
        Assert.False(complete);
        Assert.False(picker.OnBlockReceived("a", 1, 0, out _, out _));
        Assert.True(picker.OnBlockReceived("a", 1, Block, out _, out complete));
        Assert.True(complete);
        Assert.Equal(new object[] { "b", "a" }.OrderBy(x => x), picker.Contributors(1).OrderBy(x => x));
    }

    [Fact]
    public void Dropped_requests_and_failed_pieces_are_picked_again()
    {
        var picker = new PiecePicker(1, _ => 2 * Block, new Bitfield(1), new Random(0));
        var a = picker.Pick("a", All(1), 10);
        Assert.Empty(picker.Pick("b", new Bitfield(1), 10));
        picker.OnRequestDropped("a", 0, Block);
        Assert.False(picker.InEndgame);
        var b = picker.Pick("b", All(1), 10);
        Assert.Equal(new BlockRequest(0, Block, Block), b[0]); // then endgame duplicates of what "a" holds
        picker.OnBlockReceived("a", 0, 0, out _, out _);
        picker.OnBlockReceived("b", 0, Block, out _, out var complete);
        Assert.True(complete);
        picker.OnPieceFailed(0);
        Assert.Equal(2, picker.Pick("c", All(1), 10).Count);
    }

    [Fact]
    public void Allowed_fast_restricts_choice_and_interest_tracks_have()
    {
        var picker = new PiecePicker(8, _ => Block, new Bitfield(8), new Random(0));
        var picks = picker.Pick("a", All(8), 8, new HashSet<int> { 3, 5 });
        Assert.Equal([3, 5], picks.Select(p => p.Piece).Order());
        Assert.True(picker.IsInteresting(Of(8, 1)));
        picker.OnBlockReceived("a", 3, 0, out _, out _);
        picker.OnPieceVerified(3);
        Assert.False(picker.IsInteresting(Of(8, 3)));
    }

    [Property(MaxTest = 50)]
    public bool Excluded_pieces_are_never_picked(PositiveInt seed, NonEmptyArray<byte> excludedRaw)
    {
        const int n = 40;
        var have = HaveFirst(n, PiecePicker.RandomFirstPieces);
        var picker = new PiecePicker(n, _ => 2 * Block, have, new Random(seed.Get));
        picker.AddAvailability(All(n));
        var excluded = excludedRaw.Get.Select(b => b % n).ToHashSet();
        var picks = picker.Pick("p", All(n), 2 * n, excluded: excluded);
        var wanted = Enumerable.Range(PiecePicker.RandomFirstPieces, n - PiecePicker.RandomFirstPieces).Count(p => !excluded.Contains(p));
        // Every block of every other missing piece is picked, and none of an excluded piece.
        return picks.All(r => !excluded.Contains(r.Piece)) && picks.Count == Math.Min(2 * n, 2 * wanted);
    }
}
