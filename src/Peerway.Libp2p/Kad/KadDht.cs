using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core.Multiformats;
using Peerway.Libp2p.Protocols;

namespace Peerway.Libp2p.Kad;

/// <summary>Options of a <see cref="KadDht"/> (defaults as go-libp2p-kad-dht and js-libp2p's @libp2p/kad-dht).</summary>
public sealed record KadDhtOptions
{
    /// <summary>Bucket size and the number of closest peers a lookup converges on.</summary>
    public int K { get; init; } = 20;

    /// <summary>Queries in flight in one lookup.</summary>
    public int Alpha { get; init; } = 3;

    /// <summary>How long a provider record is kept (the spec's 48 h).</summary>
    public TimeSpan ProviderTtl { get; init; } = TimeSpan.FromHours(48);

    /// <summary>Provider records kept per key.</summary>
    public int MaxProvidersPerKey { get; init; } = 20;

    /// <summary>Keys with provider records kept at once; a new key past this is refused.</summary>
    public int MaxProviderKeys { get; init; } = 100_000;

    /// <summary>Time one query (dial, stream, answer) may take.</summary>
    public TimeSpan QueryTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How often <see cref="KadDht.StartReproviding"/> announces the keys again: kubo's Reprovider.Interval (22 h), well
    /// inside the 48 h a record lives, so the closest peers never let it expire.
    /// </summary>
    public TimeSpan ReprovideInterval { get; init; } = TimeSpan.FromHours(22);

    /// <summary>Client mode: queries others but neither serves <c>/ipfs/kad/1.0.0</c> nor advertises it.</summary>
    public bool ClientMode { get; init; }

    /// <summary>Checks the options.</summary>
    public KadDhtOptions Validated()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(K, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(Alpha, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ProviderTtl, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxProvidersPerKey, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxProviderKeys, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(QueryTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ReprovideInterval, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(ReprovideInterval, ProviderTtl);
        return this;
    }
}

/// <summary>A provider found in the DHT: the peer and the addresses it (or the DHT) gave.</summary>
public sealed record KadProvider(PeerId Peer, IReadOnlyList<Multiaddr> Addresses);

/// <summary>
/// The IPFS Kademlia DHT, <c>/ipfs/kad/1.0.0</c> (libp2p specs, kad-dht/README.md): a routing table of server-mode peers
/// by XOR distance over SHA-256 of their ids, separate from Mainline's; FIND_NODE, GET_PROVIDERS, ADD_PROVIDER and PING
/// answered in server mode (one varint-length-prefixed message each way per request, several per stream); provider
/// records kept with expiry, only for the peer that sent them; iterative lookups (α queries in flight, converging on
/// the K closest) for finding peers, providing and finding providers. Peers join the table when identify shows they
/// serve the protocol, or when they answer a query.
/// </summary>
public sealed class KadDht : IAsyncDisposable
{
    /// <summary>The protocol of the public IPFS DHT (Amino).</summary>
    public const string ProtocolId = "/ipfs/kad/1.0.0";

    private readonly Libp2pHost _host;
    private readonly TimeProvider _time;
    private readonly KadDhtOptions _options;
    private readonly ILogger _log;
    private readonly byte[] _self;
    private readonly Lock _gate = new();
    private readonly List<Entry>[] _buckets = [.. Enumerable.Range(0, 257).Select(_ => new List<Entry>())];
    private readonly Dictionary<string, Dictionary<PeerId, (KadProvider Provider, DateTimeOffset Expires)>> _providers = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _cts = new();
    private readonly Lock _reprovideGate = new();
    private ITimer? _reprovideTimer;
    private Func<IReadOnlyList<Cid>>? _reprovideKeys;
    private Task _reprovideRound = Task.CompletedTask;
    private bool _reproviding;
    private int _disposed;

    /// <summary>
    /// Creates the DHT on <paramref name="host"/> (in server mode it handles <see cref="ProtocolId"/>). <paramref name="time"/>
    /// is the clock of reproviding rounds and provider-record expiry, default the host's: a clock of its own lets a test
    /// move the DHT's hours without moving the connections' timers (Yamux write deadlines) under real I/O.
    /// </summary>
    public KadDht(Libp2pHost host, KadDhtOptions? options = null, ILogger? log = null, TimeProvider? time = null)
    {
        _host = host ?? throw new ArgumentNullException(nameof(host));
        _time = time ?? host.Time;
        _options = (options ?? new KadDhtOptions()).Validated();
        _log = log ?? NullLogger.Instance;
        _self = SHA256.HashData(host.PeerId.Bytes);
        if (!_options.ClientMode) host.Handle(ProtocolId, ServeAsync);
        host.Connected += OnConnected;
    }

    /// <summary>Peers in the routing table.</summary>
    public int RoutingTableSize
    {
        get
        {
            lock (_gate) return _buckets.Sum(b => b.Count);
        }
    }

    /// <summary>Keys for which provider records are held.</summary>
    public int ProviderKeys
    {
        get
        {
            lock (_gate) return _providers.Count;
        }
    }

    /// <summary>Dials <paramref name="peers"/>, adds those that answer to the table and looks up our own id (the spec's bootstrap).</summary>
    public async Task<int> BootstrapAsync(IEnumerable<Multiaddr> peers, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(peers);
        var reached = 0;
        foreach (var address in peers)
        {
            var id = address.PeerId;
            if (id is null) continue;
            var answer = await QueryAsync(new KadPeer(id, [address]), new KadMessage { Type = KadMessageType.FindNode, Key = _host.PeerId.Bytes.ToArray() }, ct).ConfigureAwait(false);
            if (answer is not null) reached++;
        }

        await LookupAsync(_host.PeerId.Bytes.ToArray(), KadMessageType.FindNode, 0, ct).ConfigureAwait(false);
        return reached;
    }

    /// <summary>Announces that this peer provides <paramref name="cid"/> to the K peers closest to its multihash; returns how many took it.</summary>
    public async Task<int> ProvideAsync(Cid cid, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(cid);
        var key = cid.Multihash.Bytes.ToArray();
        var self = new KadPeer(_host.PeerId, [.. _host.ListenAddresses.Select(StripPeer)]);
        lock (_gate) StoreProviderLocked(key, new KadProvider(self.Id, self.Addresses));
        var (closest, _) = await LookupAsync(key, KadMessageType.FindNode, 0, ct).ConfigureAwait(false);
        var message = new KadMessage { Type = KadMessageType.AddProvider, Key = key };
        message.ProviderPeers.Add(self);
        var sent = await Task.WhenAll(closest.Select(p => SendAsync(p, message, ct))).ConfigureAwait(false);
        return sent.Count(ok => ok);
    }

    /// <summary>
    /// Raised after each reproviding round with the number of keys announced again; by then the round counts as over,
    /// so the next tick of the clock starts another.
    /// </summary>
    public event Action<int>? Reprovided;

    /// <summary>Raised when a peer's ADD_PROVIDER is accepted: the key (a multihash) and the provider.</summary>
    public event Action<ReadOnlyMemory<byte>, PeerId>? ProviderAdded;

    /// <summary>
    /// Announces the keys <paramref name="keys"/> gives again every <see cref="KadDhtOptions.ReprovideInterval"/> on the
    /// host's <see cref="TimeProvider"/> (the spec: provider records expire, so providers re-publish them; kubo's
    /// reprovider). The keys are asked for at each round, so a repository's new roots are included. One round at a time:
    /// a round still running when the next is due makes that one skip. The timer exists from this call on, so a clock
    /// advanced afterwards fires it.
    /// </summary>
    public void StartReproviding(Func<IReadOnlyList<Cid>> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        lock (_reprovideGate)
        {
            if (_reprovideTimer is not null) throw new InvalidOperationException("already reproviding");
            _reprovideKeys = keys;
            _reprovideTimer = _time.CreateTimer(static s => ((KadDht)s!).OnReprovideDue(), this, _options.ReprovideInterval, _options.ReprovideInterval);
        }
    }

    private void OnReprovideDue()
    {
        lock (_reprovideGate)
        {
            if (_reproviding || _cts.IsCancellationRequested || _reprovideKeys is null) return;
            _reproviding = true;
            _reprovideRound = ReprovideAsync(_reprovideKeys, _cts.Token);
        }
    }

    /// <summary>Ends a round: from here a tick starts the next one (before <see cref="Reprovided"/> is raised, so
    /// whoever reacts to it and moves the clock is not skipped).</summary>
    private void EndReprovideRound()
    {
        lock (_reprovideGate) _reproviding = false;
    }

    private async Task ReprovideAsync(Func<IReadOnlyList<Cid>> keys, CancellationToken ct)
    {
        await Task.Yield(); // off the timer's thread
        var announced = 0;
        try
        {
            foreach (var cid in keys())
            {
                try
                {
                    if (await ProvideAsync(cid, ct).ConfigureAwait(false) > 0) announced++;
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (IOException ex)
                {
                    _log.LogDebug("kad: reproviding {Cid} failed: {Message}", cid, ex.Message);
                }
            }
        }
        finally
        {
            EndReprovideRound();
        }

        _log.LogDebug("kad: reprovided {Count} keys", announced);
        Reprovided?.Invoke(announced);
    }

    /// <summary>Finds up to <paramref name="max"/> providers of <paramref name="cid"/>: the local records, then a lookup.</summary>
    public async Task<IReadOnlyList<KadProvider>> FindProvidersAsync(Cid cid, int max, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(cid);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        var key = cid.Multihash.Bytes.ToArray();
        var found = new Dictionary<PeerId, KadProvider>();
        foreach (var p in LocalProviders(key)) found.TryAdd(p.Peer, p);
        if (found.Count >= max) return [.. found.Values.Take(max)];
        var (_, providers) = await LookupAsync(key, KadMessageType.GetProviders, max - found.Count, ct).ConfigureAwait(false);
        foreach (var p in providers) found.TryAdd(p.Peer, p);
        return [.. found.Values.Take(max)];
    }

    /// <summary>The K peers closest to <paramref name="peer"/>'s id that a lookup finds.</summary>
    public async Task<IReadOnlyList<KadProvider>> FindClosestPeersAsync(PeerId peer, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(peer);
        var (closest, _) = await LookupAsync(peer.Bytes.ToArray(), KadMessageType.FindNode, 0, ct).ConfigureAwait(false);
        return [.. closest.Select(p => new KadProvider(p.Id, p.Addresses))];
    }

    private static Multiaddr StripPeer(Multiaddr a) => a.TryGetTcpEndPoint(out var endPoint) ? Multiaddr.FromTcp(endPoint!) : a;

    internal IReadOnlyList<KadProvider> LocalProviders(byte[] key)
    {
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            if (!_providers.TryGetValue(Convert.ToBase64String(key), out var set)) return [];
            foreach (var stale in set.Where(p => p.Value.Expires <= now).Select(p => p.Key).ToList()) set.Remove(stale);
            return [.. set.Values.Select(v => v.Provider)];
        }
    }

    private bool StoreProviderLocked(byte[] key, KadProvider provider)
    {
        var name = Convert.ToBase64String(key);
        if (!_providers.TryGetValue(name, out var set))
        {
            if (_providers.Count >= _options.MaxProviderKeys) return false;
            _providers[name] = set = [];
        }

        if (set.Count >= _options.MaxProvidersPerKey && !set.ContainsKey(provider.Peer))
        {
            // Full: the record that expires first makes room.
            set.Remove(set.MinBy(p => p.Value.Expires).Key);
        }

        set[provider.Peer] = (provider, _time.GetUtcNow() + _options.ProviderTtl);
        return true;
    }

    /// <summary>
    /// The iterative lookup (kad-dht/README.md "Peer routing"): query the α closest unqueried candidates, merge the
    /// closer peers they return, until the K closest known have all answered (or failed). For GET_PROVIDERS it stops
    /// once <paramref name="wanted"/> providers are found.
    /// </summary>
    private async Task<(IReadOnlyList<KadPeer> Closest, IReadOnlyList<KadProvider> Providers)> LookupAsync(byte[] key, KadMessageType type, int wanted, CancellationToken ct)
    {
        var target = SHA256.HashData(key);
        var candidates = new Dictionary<PeerId, (KadPeer Peer, byte[] Distance)>();
        var queried = new HashSet<PeerId>();
        var answered = new HashSet<PeerId>();
        var providers = new Dictionary<PeerId, KadProvider>();
        foreach (var p in Closest(target, _options.K)) candidates[p.Id] = (p, Xor(SHA256.HashData(p.Id.Bytes), target));
        var running = new Dictionary<Task<KadMessage?>, KadPeer>();
        while (true)
        {
            var closestK = candidates.Values.OrderBy(c => c.Distance, DistanceComparer.Instance).Take(_options.K).ToList();
            var done = closestK.All(c => queried.Contains(c.Peer.Id)) || (type == KadMessageType.GetProviders && providers.Count >= wanted);
            if (!done)
            {
                foreach (var (peer, _) in closestK.Where(c => !queried.Contains(c.Peer.Id)))
                {
                    if (running.Count >= _options.Alpha) break;
                    queried.Add(peer.Id);
                    running.Add(QueryAsync(peer, new KadMessage { Type = type, Key = key }, ct), peer);
                }
            }

            if (running.Count == 0) break;
            var finished = await Task.WhenAny(running.Keys).ConfigureAwait(false);
            var from = running[finished];
            running.Remove(finished);
            var answer = await finished.ConfigureAwait(false);
            if (answer is null)
            {
                candidates.Remove(from.Id);
                continue;
            }

            answered.Add(from.Id);
            foreach (var p in answer.ProviderPeers) providers.TryAdd(p.Id, new KadProvider(p.Id, p.Addresses));
            foreach (var p in answer.CloserPeers)
            {
                if (p.Id.Equals(_host.PeerId) || p.Addresses.Count == 0 || candidates.ContainsKey(p.Id) || queried.Contains(p.Id)) continue;
                candidates[p.Id] = (p, Xor(SHA256.HashData(p.Id.Bytes), target));
            }
        }

        await ((Task)Task.WhenAll(running.Keys)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        var closest = candidates.Values.Where(c => answered.Contains(c.Peer.Id)).OrderBy(c => c.Distance, DistanceComparer.Instance).Take(_options.K).Select(c => c.Peer).ToList();
        return (closest, [.. providers.Values]);
    }

    /// <summary>One request and its answer on a new stream; null when the peer cannot be reached or answers badly.</summary>
    private async Task<KadMessage?> QueryAsync(KadPeer peer, KadMessage request, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct, _cts.Token);
        deadline.CancelAfter(_options.QueryTimeout);
        try
        {
            var connection = await ConnectAsync(peer, deadline.Token).ConfigureAwait(false);
            if (connection is null) return null;
            await using var stream = await connection.OpenStreamAsync(ProtocolId, deadline.Token).ConfigureAwait(false);
            await LengthPrefixed.WriteAsync(stream, request.Encode(), deadline.Token).ConfigureAwait(false);
            var raw = await LengthPrefixed.ReadAsync(stream, KadMessage.MaxMessage, deadline.Token).ConfigureAwait(false);
            if (KadMessage.TryDecode(raw, out var answer) != Libp2pError.None || answer!.Type != request.Type)
            {
                _log.LogDebug("kad: a bad answer from {Peer}", peer.Id);
                return null;
            }

            Add(new KadPeer(connection.RemotePeer, peer.Addresses.Count > 0 ? peer.Addresses : [connection.RemoteAddress]));
            return answer;
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or EndOfStreamException or ObjectDisposedException or Libp2pProtocolException or System.Net.Sockets.SocketException)
        {
            _log.LogDebug("kad: query to {Peer} failed: {Message}", peer.Id, ex.Message);
            if (ct.IsCancellationRequested) throw;
            Remove(peer.Id);
            return null;
        }
    }

    /// <summary>A request that expects no answer (ADD_PROVIDER).</summary>
    private async Task<bool> SendAsync(KadPeer peer, KadMessage message, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct, _cts.Token);
        deadline.CancelAfter(_options.QueryTimeout);
        try
        {
            var connection = await ConnectAsync(peer, deadline.Token).ConfigureAwait(false);
            if (connection is null) return false;
            await using var stream = await connection.OpenStreamAsync(ProtocolId, deadline.Token).ConfigureAwait(false);
            await LengthPrefixed.WriteAsync(stream, message.Encode(), deadline.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or Libp2pProtocolException or System.Net.Sockets.SocketException)
        {
            _log.LogDebug("kad: {Type} to {Peer} failed: {Message}", message.Type, peer.Id, ex.Message);
            if (ct.IsCancellationRequested) throw;
            return false;
        }
    }

    private async Task<Libp2pConnection?> ConnectAsync(KadPeer peer, CancellationToken ct)
    {
        var existing = _host.Connections.FirstOrDefault(c => c.RemotePeer.Equals(peer.Id));
        if (existing is not null) return existing;
        foreach (var address in peer.Addresses)
        {
            if (!address.TryGetTcpEndPoint(out _)) continue;
            try
            {
                return await _host.DialAsync(address.PeerId is null ? address.WithPeer(peer.Id) : address, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or Libp2pProtocolException or System.Net.Sockets.SocketException)
            {
                _log.LogDebug("kad: cannot dial {Address}: {Message}", address, ex.Message);
            }
        }

        return null;
    }

    /// <summary>Server side: answers each request on the stream until the peer closes it.</summary>
    private async Task ServeAsync(Stream stream, Libp2pConnection connection, CancellationToken ct)
    {
        while (true)
        {
            byte[] raw;
            try
            {
                raw = await LengthPrefixed.ReadAsync(stream, KadMessage.MaxMessage, ct).ConfigureAwait(false);
            }
            catch (EndOfStreamException)
            {
                return;
            }
            catch (Libp2pProtocolException ex)
            {
                _log.LogDebug("kad: a bad frame from {Peer}: {Message}", connection.RemotePeer, ex.Message);
                return;
            }

            if (KadMessage.TryDecode(raw, out var request) != Libp2pError.None)
            {
                _log.LogDebug("kad: a malformed request from {Peer}", connection.RemotePeer);
                return;
            }

            var answer = Answer(request!, connection);
            if (answer is not null) await LengthPrefixed.WriteAsync(stream, answer.Encode(), ct).ConfigureAwait(false);
        }
    }

    private KadMessage? Answer(KadMessage request, Libp2pConnection from)
    {
        var reply = new KadMessage { Type = request.Type, Key = request.Key };
        switch (request.Type)
        {
            case KadMessageType.Ping:
                return reply;
            case KadMessageType.FindNode:
                reply.CloserPeers.AddRange(Closest(SHA256.HashData(request.Key), _options.K).Where(p => !p.Id.Equals(from.RemotePeer)));
                return reply;
            case KadMessageType.GetProviders:
                reply.ProviderPeers.AddRange(LocalProviders(request.Key).Select(p => new KadPeer(p.Peer, p.Addresses)));
                reply.CloserPeers.AddRange(Closest(SHA256.HashData(request.Key), _options.K).Where(p => !p.Id.Equals(from.RemotePeer)));
                return reply;
            case KadMessageType.AddProvider:
                // kad-dht/README.md: a provider record is accepted only for the peer that sends it.
                foreach (var p in request.ProviderPeers.Where(p => p.Id.Equals(from.RemotePeer)))
                {
                    var addresses = p.Addresses.Count > 0 ? p.Addresses : [from.RemoteAddress];
                    bool stored;
                    lock (_gate) stored = StoreProviderLocked(request.Key, new KadProvider(p.Id, addresses));
                    if (stored) ProviderAdded?.Invoke(request.Key, p.Id);
                    else _log.LogDebug("kad: provider store full; a record from {Peer} refused", from.RemotePeer);
                }

                return null;
            default:
                // PUT_VALUE / GET_VALUE (IPNS, public keys) are not kept here: answered empty, as a node without the record.
                return reply;
        }
    }

    private void OnConnected(Libp2pConnection connection)
    {
        var info = connection.LatestIdentify;
        if (info is null || !info.Protocols.Contains(ProtocolId)) return;
        var addresses = info.ListenAddresses.Where(a => a.TryGetTcpEndPoint(out _)).ToList();
        Add(new KadPeer(connection.RemotePeer, addresses.Count > 0 ? addresses : [connection.RemoteAddress]));
    }

    private void Add(KadPeer peer)
    {
        if (peer.Id.Equals(_host.PeerId)) return;
        var hash = SHA256.HashData(peer.Id.Bytes);
        var bucket = _buckets[CommonPrefix(Xor(hash, _self))];
        lock (_gate)
        {
            var at = bucket.FindIndex(e => e.Peer.Id.Equals(peer.Id));
            if (at >= 0)
            {
                bucket.RemoveAt(at);
            }
            else if (bucket.Count >= _options.K)
            {
                // A full bucket keeps its long-lived peers (Kademlia §2.2); the newcomer is not added.
                return;
            }

            bucket.Add(new Entry(peer, hash));
        }
    }

    private void Remove(PeerId id)
    {
        var distance = Xor(SHA256.HashData(id.Bytes), _self);
        lock (_gate) _buckets[CommonPrefix(distance)].RemoveAll(e => e.Peer.Id.Equals(id));
    }

    private List<KadPeer> Closest(byte[] target, int count)
    {
        lock (_gate)
        {
            return [.. _buckets.SelectMany(b => b).OrderBy(e => Xor(e.Hash, target), DistanceComparer.Instance).Take(count).Select(e => e.Peer)];
        }
    }

    private static byte[] Xor(byte[] a, byte[] b)
    {
        var r = new byte[a.Length];
        for (var i = 0; i < r.Length; i++) r[i] = (byte)(a[i] ^ b[i]);
        return r;
    }

    private static int CommonPrefix(byte[] distance)
    {
        for (var i = 0; i < distance.Length; i++)
        {
            if (distance[i] != 0) return (i * 8) + System.Numerics.BitOperations.LeadingZeroCount(distance[i]) - 24;
        }

        return 256;
    }

    /// <summary>Cancels the queries in flight (the DHT starts no task of its own: each query is awaited by its caller).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _host.Connected -= OnConnected;
        await _cts.CancelAsync().ConfigureAwait(false);
        Task round;
        lock (_reprovideGate) round = _reprovideRound;
        if (_reprovideTimer is not null) await _reprovideTimer.DisposeAsync().ConfigureAwait(false);
        await round.ConfigureAwait(false);
        _cts.Dispose();
    }

    /// <summary>A routing-table entry with the SHA-256 of its peer id, hashed once when it is added.</summary>
    private sealed record Entry(KadPeer Peer, byte[] Hash);

    private sealed class DistanceComparer : IComparer<byte[]>
    {
        public static readonly DistanceComparer Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
