namespace Peerway.Torrent.Swarm;

/// <summary>Choker settings (BEP 3 "choking", and the reference client's constants).</summary>
public sealed record ChokerOptions
{
    /// <summary>Regular unchoke slots, given to the best peers by rate.</summary>
    public int UploadSlots { get; init; } = 4;

    /// <summary>BEP 3: "the choker … recalculates every ten seconds".</summary>
    public TimeSpan RechokeInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>BEP 3: the optimistic unchoke "rotates every 30 seconds".</summary>
    public TimeSpan OptimisticInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Anti-snubbing: a peer that sent us no block for this long while we wanted some is snubbed.</summary>
    public TimeSpan SnubTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> when a setting is out of range.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(UploadSlots, 1);
        if (RechokeInterval <= TimeSpan.Zero || OptimisticInterval <= TimeSpan.Zero || SnubTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(RechokeInterval), "intervals must be positive");
        }
    }
}

/// <summary>What the choker needs to know about a peer.</summary>
internal interface IChokeCandidate
{
    /// <summary>The peer is interested in our pieces.</summary>
    bool PeerInterested { get; }

    /// <summary>Bytes/s received from the peer (the leeching criterion: reciprocate).</summary>
    double DownloadRate { get; }

    /// <summary>Bytes/s sent to the peer (the seeding criterion).</summary>
    double UploadRate { get; }

    /// <summary>We are interested and have requests outstanding with the peer.</summary>
    bool AmWaiting { get; }

    /// <summary>When the peer last sent us a block (or when we became interested, if never).</summary>
    DateTimeOffset LastBlockReceived { get; }
}

/// <summary>
/// Tit-for-tat choking (BEP 3): the <see cref="ChokerOptions.UploadSlots"/> interested peers with the best rate
/// (download rate while leeching, upload rate while seeding) are unchoked; one more random choked, interested peer
/// is unchoked optimistically and rotated every 30 s; snubbed peers lose their regular slot. Not thread-safe.
/// </summary>
internal sealed class Choker
{
    private readonly TimeProvider _time;
    private readonly ChokerOptions _options;
    private readonly Random _random;
    private DateTimeOffset _optimisticSince = DateTimeOffset.MinValue;

    public Choker(TimeProvider time, ChokerOptions options, Random random)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _time = time;
        _options = options;
        _random = random;
    }

    public IChokeCandidate? Optimistic { get; private set; }

    public bool IsSnubbed(IChokeCandidate peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return peer.AmWaiting && _time.GetUtcNow() - peer.LastBlockReceived >= _options.SnubTimeout;
    }

    /// <summary>Returns the set of peers to unchoke; every other peer is choked.</summary>
    public IReadOnlySet<IChokeCandidate> Rechoke(IReadOnlyCollection<IChokeCandidate> peers, bool seeding)
    {
        ArgumentNullException.ThrowIfNull(peers);
        var now = _time.GetUtcNow();
        var unchoked = new HashSet<IChokeCandidate>(ReferenceEqualityComparer.Instance);
        var regular = peers
            .Where(p => p.PeerInterested && (seeding || !IsSnubbed(p)))
            .OrderByDescending(p => seeding ? p.UploadRate : p.DownloadRate)
            .Take(_options.UploadSlots);
        foreach (var p in regular) unchoked.Add(p);

        // Optimistic unchoke: keep the current one for 30 s, then rotate to a random choked, interested peer.
        var rotate = Optimistic is null || !peers.Contains(Optimistic) || now - _optimisticSince >= _options.OptimisticInterval;
        if (rotate)
        {
            var choices = peers.Where(p => p.PeerInterested && !unchoked.Contains(p)).ToList();
            Optimistic = choices.Count == 0 ? null : choices[_random.Next(choices.Count)];
            _optimisticSince = now;
        }

        if (Optimistic is not null) unchoked.Add(Optimistic);
        return unchoked;
    }
}

/// <summary>A transfer rate over a sliding window, timed by a <see cref="TimeProvider"/>. Not thread-safe.</summary>
internal sealed class RateMeter(TimeProvider time, TimeSpan window)
{
    private readonly Queue<(long Timestamp, long Bytes)> _samples = new();
    private long _windowBytes;

    public long Total { get; private set; }

    public void Add(long bytes)
    {
        Total += bytes;
        _windowBytes += bytes;
        _samples.Enqueue((time.GetTimestamp(), bytes));
        Trim();
    }

    /// <summary>Bytes per second over the window.</summary>
    public double Rate
    {
        get
        {
            Trim();
            return _windowBytes / window.TotalSeconds;
        }
    }

    private void Trim()
    {
        var now = time.GetTimestamp();
        while (_samples.Count > 0 && time.GetElapsedTime(_samples.Peek().Timestamp, now) > window)
        {
            _windowBytes -= _samples.Dequeue().Bytes;
        }
    }
}
