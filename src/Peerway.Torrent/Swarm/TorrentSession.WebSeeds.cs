using Microsoft.Extensions.Logging;
using Peerway.Torrent.Storage;
using Peerway.Torrent.WebSeeds;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Swarm;

/// <summary>
/// BEP 19 web seeds (GetRight style): each seed is one more source for the piece picker, asked with HTTP range
/// requests (<see cref="WebSeedOptions.ConcurrentRequests"/> workers, each on a keep-alive connection of the
/// HttpClient's pool). Its pieces are verified like any peer's; errors and bad pieces back it off, and after
/// <see cref="WebSeedOptions.MaxFailures"/> in a row it is dropped. With peers present, the seed takes the most common
/// pieces first and leaves the rarest to the peers.
/// </summary>
public sealed partial class TorrentSession
{
    private readonly List<WebSeed> _webSeeds = [];
    private TaskCompletionSource _webSeedWake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Bitfield? _everyPiece;

    /// <summary>One web seed's state (guarded by the session's lock); the picker's requester object for its blocks.</summary>
    internal sealed class WebSeed(Uri url, WebSeedOptions options)
    {
        public Uri Url { get; } = url;

        public WebSeedOptions Options { get; } = options;

        public int Failures { get; set; }

        public DateTimeOffset RetryAt { get; set; }

        public bool Dropped { get; set; }

        public long Downloaded { get; set; }

        public override string ToString() => "web seed " + Url;
    }

    /// <summary>Raised (under the session's lock: do not block) when a web seed is dropped for good.</summary>
    internal event Action<Uri>? WebSeedDropped;

    /// <summary>The web seeds in use (not dropped) and the bytes each delivered.</summary>
    public IReadOnlyList<(Uri Url, long Downloaded)> WebSeedStats()
    {
        lock (_gate) return _webSeeds.Where(s => !s.Dropped).Select(s => (s.Url, s.Downloaded)).ToList();
    }

    /// <summary>Starts fetching from <paramref name="urls"/> (BEP 19) over <paramref name="http"/>; once the info dictionary is known for a magnet.</summary>
    public void AddWebSeeds(IEnumerable<Uri> urls, HttpClient http, WebSeedOptions options)
    {
        ArgumentNullException.ThrowIfNull(urls);
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        lock (_gate)
        {
            foreach (var url in urls)
            {
                if (_webSeeds.Exists(s => s.Url == url)) continue;
                var seed = new WebSeed(url, options);
                _webSeeds.Add(seed);
                for (var i = 0; i < options.ConcurrentRequests; i++) _tasks.Add(RunWebSeedAsync(seed, http, options, _cts.Token));
            }
        }
    }

    /// <summary>Called on every tick: web seed workers waiting for work (metadata, a back-off, a free piece) look again.</summary>
    private void WakeWebSeedsLocked()
    {
        if (_webSeeds.Count == 0) return;
        var wake = _webSeedWake;
        _webSeedWake = new(TaskCreationOptions.RunContinuationsAsynchronously);
        wake.TrySetResult();
    }

    private async Task RunWebSeedAsync(WebSeed seed, HttpClient http, WebSeedOptions options, CancellationToken ct)
    {
        var buffer = new byte[options.RequestBytes];
        try
        {
            while (!ct.IsCancellationRequested)
            {
                Task wake;
                List<BlockRequest> picks = [];
                Metainfo.TorrentInfo? info;
                lock (_gate)
                {
                    if (seed.Dropped) return;
                    wake = _webSeedWake.Task;
                    info = _info;
                    if (info is not null && _picker is { IsDone: false } picker && _time.GetUtcNow() >= seed.RetryAt)
                    {
                        if (_everyPiece is null)
                        {
                            _everyPiece = new Bitfield(info.PieceCount);
                            _everyPiece.SetAll();
                        }

                        picks = picker.Pick(seed, _everyPiece, options.RequestBytes / picker.BlockLength, commonestFirst: true);
                    }
                }

                if (picks.Count == 0)
                {
                    await wake.WaitAsync(ct).ConfigureAwait(false);
                    continue;
                }

                var (error, detail) = await FetchBlocksAsync(seed, http, options, info!, picks, buffer, ct).ConfigureAwait(false);
                if (error == WebSeedError.None)
                {
                    await DeliverWebSeedBlocksAsync(seed, picks, buffer).ConfigureAwait(false);
                    continue;
                }

                lock (_gate)
                {
                    foreach (var r in picks) _picker?.OnRequestDropped(seed, r.Piece, r.Begin);
                    WebSeedFailedLocked(seed, $"{error}: {detail}");
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The session is stopping.
        }
    }

    /// <summary>Fetches the blocks (sorted, merged into contiguous runs, split per file) into <paramref name="buffer"/>, in pick order.</summary>
    private async Task<(WebSeedError, string)> FetchBlocksAsync(WebSeed seed, HttpClient http, WebSeedOptions options, Metainfo.TorrentInfo info,
        List<BlockRequest> picks, byte[] buffer, CancellationToken ct)
    {
        picks.Sort((a, b) => StreamOffset(info, a).CompareTo(StreamOffset(info, b)));
        var at = 0;
        var i = 0;
        while (i < picks.Count)
        {
            // A run of blocks contiguous in the torrent's stream: one range per file it covers.
            var start = StreamOffset(info, picks[i]);
            var length = picks[i].Length;
            var j = i + 1;
            while (j < picks.Count && StreamOffset(info, picks[j]) == start + length)
            {
                length += picks[j].Length;
                j++;
            }

            buffer.AsSpan(at, length).Clear(); // BEP 47 padding: zeros nobody serves.
            foreach (var range in WebSeedUrl.Ranges(seed.Url, info, start, length))
            {
                var into = buffer.AsMemory(at + (int)(range.StreamOffset - start), range.Length);
                var result = await WebSeedFetcher.FetchAsync(http, range, into, options.RequestTimeout, _time, ct).ConfigureAwait(false);
                if (result.Error != WebSeedError.None) return (result.Error, $"{range.Url} bytes {range.FileOffset}+{range.Length}: {result.Detail}");
            }

            at += length;
            i = j;
        }

        return (WebSeedError.None, "");
    }

    private static long StreamOffset(Metainfo.TorrentInfo info, BlockRequest r) => ((long)r.Piece * info.PieceLength) + r.Begin;

    /// <summary>Hands the fetched blocks (in <paramref name="picks"/>' order in <paramref name="buffer"/>) to the picker; complete pieces go to the disk queue.</summary>
    private async Task DeliverWebSeedBlocksAsync(WebSeed seed, List<BlockRequest> picks, byte[] buffer)
    {
        var complete = new List<(int Piece, PieceBuffer Data)>();
        lock (_gate)
        {
            seed.Failures = 0;
            var at = 0;
            foreach (var r in picks)
            {
                var data = buffer.AsSpan(at, r.Length);
                at += r.Length;
                if (_info is null || _picker is null || !_picker.OnBlockReceived(seed, r.Piece, r.Begin, out var cancelAt, out var done)) continue;
                _downloaded += r.Length;
                seed.Downloaded += r.Length;
                if (!_pieceBuffers.TryGetValue(r.Piece, out var piece))
                {
                    piece = _shared.Disk.Buffers.Rent(_info.PieceSize(r.Piece));
                    _pieceBuffers[r.Piece] = piece;
                }

                data.CopyTo(piece.Span(_info.PieceSize(r.Piece))[r.Begin..]);
                // Endgame: peers asked for the same block are sent a cancel.
                foreach (var other in cancelAt.OfType<PeerConnection>())
                {
                    if (other.Outstanding.Remove(r)) other.Send(w => PeerWire.WriteBlockMessage(w, PeerMessageType.Cancel, r.Piece, r.Begin, r.Length));
                }

                if (done)
                {
                    _pieceBuffers.Remove(r.Piece);
                    complete.Add((r.Piece, piece));
                }
            }
        }

        await EnqueueCompletePiecesAsync(complete).ConfigureAwait(false);
    }

    /// <summary>Hands complete pieces to the disk queue (waiting while it is full: back-pressure on the caller).</summary>
    private async Task EnqueueCompletePiecesAsync(List<(int Piece, PieceBuffer Data)> done)
    {
        foreach (var (piece, data) in done)
        {
            Interlocked.Increment(ref _diskQueued);
            try
            {
                await _shared.Disk.EnqueueAsync(this, piece, data, _cts.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or System.Threading.Channels.ChannelClosedException)
            {
                DiskItemDone();
                throw new OperationCanceledException("the session is stopping", ex);
            }
        }
    }

    /// <summary>A piece the seed contributed to failed its hash (bad data): a failure like an HTTP error.</summary>
    private void BlameWebSeedsLocked(IEnumerable<object> contributors, int piece)
    {
        foreach (var seed in contributors.OfType<WebSeed>()) WebSeedFailedLocked(seed, $"piece {piece} failed its hash check");
    }

    private void WebSeedFailedLocked(WebSeed seed, string reason)
    {
        var options = seed.Options;
        if (seed.Dropped) return;
        seed.Failures++;
        if (seed.Failures >= options.MaxFailures)
        {
            seed.Dropped = true;
            _log.LogWarning("dropping {Seed} after {Failures} failures in a row; last: {Reason}", seed, seed.Failures, reason);
            WebSeedDropped?.Invoke(seed.Url);
            return;
        }

        var delay = options.Backoff * Math.Pow(2, seed.Failures - 1);
        if (delay > options.MaxBackoff) delay = options.MaxBackoff;
        seed.RetryAt = _time.GetUtcNow() + delay;
        _log.LogWarning("{Seed} failed ({Reason}); retrying in {Delay:0.#} s", seed, reason, delay.TotalSeconds);
    }
}
