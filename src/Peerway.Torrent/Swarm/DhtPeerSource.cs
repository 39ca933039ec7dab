using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Dht;

namespace Peerway.Torrent.Swarm;

/// <summary>How often the DHT is asked for peers.</summary>
public sealed record DhtPeerSourceOptions
{
    /// <summary>While the download is incomplete (and at start): look up and announce this often.</summary>
    public TimeSpan SearchInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Once complete (seeding): re-announce this often. BEP 5: stored peers expire, so announce again.</summary>
    public TimeSpan AnnounceInterval { get; init; } = TimeSpan.FromMinutes(5);

    public void Validate()
    {
        if (SearchInterval <= TimeSpan.Zero || AnnounceInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(SearchInterval), "intervals must be positive");
    }
}

/// <summary>
/// The DHT as a peer source (BEP 5): get_peers for the info-hash feeds the session, and announce_peer with the
/// session's TCP port makes it findable. Never used for private torrents (BEP 27). Peers learned through the BEP 5
/// PORT message are pinged into the routing table.
/// </summary>
public sealed class DhtPeerSource : IAsyncDisposable
{
    private readonly TorrentSession _session;
    private readonly DhtNode _dht;
    private readonly DhtPeerSourceOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _cts = new();
    private Task? _loop;

    public DhtPeerSource(TorrentSession session, DhtNode dht, DhtPeerSourceOptions options, TimeProvider time, ILogger? logger = null)
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
        _loop = LoopAsync(_cts.Token);
    }

    private void OnDhtNodeSeen(System.Net.IPEndPoint node) => _ = _dht.PingAsync(node, _cts.Token);

    private async Task LoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (!_session.IsPrivate)
                {
                    // BEP 5: get_peers returns peers (or closer nodes and a token); announce_peer then stores our port.
                    var result = await _dht.AnnounceAsync(_session.InfoHash, _session.ListenPort, impliedPort: false, ct).ConfigureAwait(false);
                    Interlocked.Increment(ref _lookups);
                    Interlocked.Add(ref _peersFound, result.Lookup.Peers.Count);
                    _session.AddPeers(result.Lookup.Peers);
                    _log.LogDebug("DHT: {Peers} peers for {InfoHash}, announced to {Count} nodes", result.Lookup.Peers.Count, _session.InfoHash, result.AnnouncedTo);
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
        await _cts.CancelAsync().ConfigureAwait(false);
        if (_loop is not null) await _loop.ConfigureAwait(false);
        _cts.Dispose();
    }
}
