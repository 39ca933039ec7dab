using Microsoft.Extensions.Time.Testing;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Tests.Swarm;

public sealed class ChokerTests
{
    private sealed class Peer(string name, double down, double up, bool interested = true) : IChokeCandidate
    {
        public string Name { get; } = name;
        public bool PeerInterested { get; set; } = interested;
        public double DownloadRate { get; set; } = down;
        public double UploadRate { get; set; } = up;
        public bool AmWaiting { get; set; }
        public DateTimeOffset LastBlockReceived { get; set; }
        public override string ToString() => Name;
    }

    [Fact]
    public void Unchokes_four_best_by_download_rate_when_leeching_and_upload_rate_when_seeding()
    {
        var time = new FakeTimeProvider();
        var peers = Enumerable.Range(0, 8).Select(i => new Peer($"p{i}", down: i * 100, up: (8 - i) * 100)).ToList();
        peers.Add(new Peer("uninterested", 10_000, 10_000, interested: false));
        var choker = new Choker(time, new ChokerOptions(), new Random(1));
        var leeching = choker.Rechoke(peers, seeding: false);
        Assert.Equal(5, leeching.Count);
        Assert.Subset(leeching.Cast<Peer>().Select(p => p.Name).ToHashSet(), new HashSet<string> { "p7", "p6", "p5", "p4" });
        Assert.DoesNotContain(peers[^1], leeching);
        var choker2 = new Choker(time, new ChokerOptions(), new Random(1));
        var seeding = choker2.Rechoke(peers, seeding: true);
        Assert.Subset(seeding.Cast<Peer>().Select(p => p.Name).ToHashSet(), new HashSet<string> { "p0", "p1", "p2", "p3" });
    }

    [Fact]
    public void Optimistic_unchoke_rotates_every_30_seconds()
    {
        var time = new FakeTimeProvider();
        var peers = Enumerable.Range(0, 20).Select(i => new Peer($"p{i}", 1000 - i, 0)).ToList();
        var choker = new Choker(time, new ChokerOptions(), new Random(7));
        choker.Rechoke(peers, false);
        var first = choker.Optimistic;
        Assert.NotNull(first);
        Assert.DoesNotContain(first, peers.Take(4));
        time.Advance(TimeSpan.FromSeconds(10));
        choker.Rechoke(peers, false);
        time.Advance(TimeSpan.FromSeconds(10));
        choker.Rechoke(peers, false);
        Assert.Same(first, choker.Optimistic);
        var seen = new HashSet<IChokeCandidate> { first };
        for (var i = 0; i < 10; i++)
        {
            time.Advance(TimeSpan.FromSeconds(30));
            choker.Rechoke(peers, false);
            seen.Add(choker.Optimistic!);
        }

        Assert.True(seen.Count > 3);
    }

    [Fact]
    public void Snubbed_peer_loses_its_regular_slot()
    {
        var time = new FakeTimeProvider();
        var fast = new Peer("fast", 1_000_000, 0) { AmWaiting = true, LastBlockReceived = time.GetUtcNow() };
        var others = Enumerable.Range(0, 4).Select(i => new Peer($"p{i}", 10 + i, 0)).ToList();
        var all = others.Append(fast).ToList();
        var choker = new Choker(time, new ChokerOptions { UploadSlots = 4 }, new Random(0));
        Assert.Contains(fast, choker.Rechoke(all, false));
        time.Advance(TimeSpan.FromSeconds(61));
        Assert.True(choker.IsSnubbed(fast));
        var regular = choker.Rechoke(all, false).Where(p => !ReferenceEquals(p, choker.Optimistic));
        Assert.DoesNotContain(fast, regular);
        fast.LastBlockReceived = time.GetUtcNow();
        Assert.False(choker.IsSnubbed(fast));
    }

    [Fact]
    public void Rate_meter_uses_a_sliding_window()
    {
        var time = new FakeTimeProvider();
        var meter = new RateMeter(time, TimeSpan.FromSeconds(10));
        meter.Add(10_000);
        time.Advance(TimeSpan.FromSeconds(5));
        meter.Add(10_000);
        Assert.Equal(2000, meter.Rate);
        time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(1000, meter.Rate);
        Assert.Equal(20_000, meter.Total);
    }
}
