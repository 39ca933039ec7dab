using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core.Threading;

namespace Peerway.Torrent.Swarm;

/// <summary>How often the DHT is asked for peers.</summary>
public sealed record DhtPeerSourceOptions
{
    /// <summary>While the download is incomplete (and at start): look up and announce this often.</summary>
    public TimeSpan SearchInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Once complete (seeding): re-announce this often. BEP 5: stored peers expire, so announce again.</summary>
    public TimeSpan AnnounceInterval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> when a setting is out of range.</summary>
    public void Validate()
    {
        if (SearchInterval <= TimeSpan.Zero || AnnounceInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(SearchInterval), "intervals must be positive");
    }
}

/// <summary>
/// The DHT as a peer source (BEP 5): get_peers for the info-hash feeds the session, and announce_peer with the
/// session's TCP port makes it findable. Never used for private torrents (BEP 27). Peers learned through the BEP 5
/// PORT message are pinged into the routing table; the loop and every ping it starts are tracked and awaited on disposal.
/// </summary>
internal sealed class DhtPeerSource : IAsyncDisposable
{
    private readonly TorrentSession _session;
    private readonly ITorrentDht _dht;
    private readonly Lock _gate = new();
    private readonly BackgroundTasks _tasks = new();
    private readonly DhtPeerSourceOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _cts = new();

    /// <summary>Set under <c>_gate</c> when disposal starts: no ping is started after it.</summary>
    private bool _stopping;

    public DhtPeerSource(TorrentSession session, ITorrentDht dht, DhtPeerSourceOptions options, TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(dht);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _session = session;
        _dht = dht;
        _options = options;
        _time = time;
        _log = logger ?? NullLogger.Instance;
    }

    public int Lookups => Volatile.Read(ref _lookups);

    public int PeersFound => Volatile.Read(ref _peersFound);

    private int _lookups;
    private int _peersFound;

    public void Start()
    {
        _session.DhtNodeSeen += OnDhtNodeSeen;
        _tasks.Track(LoopAsync(_cts.Token));
    }

    private void OnDhtNodeSeen(System.Net.IPEndPoint node)
    {
        lock (_gate)
        {
            if (_stopping) return;
            _tasks.Track(PingAsync(node, _cts.Token));
        }
    }

    private async Task PingAsync(System.Net.IPEndPoint node, CancellationToken ct)
    {
        try
        {
            await _dht.AddNodeAsync(node, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private async Task LoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (!_session.IsPrivate)
                {
                    // BEP 5: get_peers returns peers (or closer nodes and a token); announce_peer then stores our port.
                    var peers = await _dht.AnnounceAsync(_session.InfoHash, _session.ListenPort, ct).ConfigureAwait(false);
                    Interlocked.Increment(ref _lookups);
                    Interlocked.Add(ref _peersFound, peers.Count);
                    _session.AddPeers(peers);
                    _log.LogDebug("DHT: {Peers} peers for {InfoHash}", peers.Count, _session.InfoHash);
                }

                var wait = _session.Completed.IsCompletedSuccessfully ? _options.AnnounceInterval : _options.SearchInterval;
                await Task.Delay(wait, _time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _session.DhtNodeSeen -= OnDhtNodeSeen;
        lock (_gate)
        {
            if (_stopping) return;
            _stopping = true;
        }

        // Cancelled outside the lock: cancellation callbacks run inline.
        await _cts.CancelAsync().ConfigureAwait(false);
        await _tasks.WhenAllAsync().ConfigureAwait(false);
        _cts.Dispose();
    }
}
