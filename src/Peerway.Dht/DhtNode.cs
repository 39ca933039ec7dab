using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;
using Peerway.Core.Bencoding;
using Peerway.Net;

namespace Peerway.Dht;

/// <summary>
/// A Mainline DHT node (BEP 5, BEP 42) over an injected <see cref="IDatagramSocket"/> and <see cref="TimeProvider"/>.
/// The node owns the socket and disposes it.
/// </summary>
/// <remarks>
/// Threading: all mutable state (routing table, pending queries, lookups, peer store, tokens, rate limiter, counters)
/// is guarded by one lock, <c>_gate</c>. Datagrams (socket handler) and timers (TimeProvider) take it, advance the state
/// machines and send under it (<see cref="IDatagramSocket.Send"/> never blocks). Task completions are deferred until the
/// lock is released and then run inline (no thread-pool hop), so under a single-threaded discrete-event scheduler a
/// run is deterministic. Consequently an <c>await</c> on this API may resume on the socket's receive thread (or a timer
/// thread): long blocking work there delays datagram processing. Disposing the node from such a continuation is safe.
/// </remarks>
public sealed partial class DhtNode : IAsyncDisposable
{
    /// <summary>BEP 5: a node is good if it responded within the last 15 minutes.</summary>
    internal static readonly TimeSpan GoodFor = TimeSpan.FromMinutes(15);

    /// <summary>Outstanding queries at once (memory bound); further queries fail immediately.</summary>
    internal const int MaxPendingQueries = 4096;

    /// <summary>Peers looked up for one get_peers reply; <see cref="MaxGetPeersReplyBytes"/> usually keeps fewer.</summary>
    internal const int MaxValuesPerReply = 100;

    /// <summary>
    /// Largest get_peers reply we send: "values" are cut to fit 1,024 bytes, the budget of jech's dht (Transmission's
    /// DHT: "In order to make sure we fit within 1024 octets, we limit ourselves to 50 peers"). One datagram that is
    /// never fragmented (IPv6's minimum MTU is 1,280), and a bound on what a stranger's ~100-byte query can draw:
    /// about 85 IPv4 or 30 IPv6 peers besides the 8 closest nodes and the token.
    /// </summary>
    internal const int MaxGetPeersReplyBytes = 1024;

    /// <summary>BEP 20-style client version "v": "PW" then version 0.1.</summary>
    internal static ReadOnlySpan<byte> ClientVersion => "PW\0\u0001"u8;

    private readonly Lock _gate = new();
    private readonly IDatagramSocket _socket;
    private readonly TimeProvider _time;
    private readonly DhtOptions _options;
    private readonly ILogger _log;
    private readonly Random _random;
    private readonly KrpcMessage _in = new();
    private readonly KrpcMessage _out = new();
    private readonly PeerStore _store;
    private readonly ItemStore _items;
    private readonly TokenManager _tokens;
    private readonly RateLimiter _limiter;
    private readonly ExternalAddressVoter _voter = new();
    private readonly List<Action> _deferred = [];
    private RoutingTable _table;
    private NodeId _id;
    private ITimer? _maintenance;
    private bool _started;
    private bool _disposed;
    private volatile int _handlerThread;
    private long _queriesReceived, _responsesReceived, _errorsReceived, _malformedDropped, _rateLimitedDropped;
    private long _queriesSent, _timeouts, _bytesSent, _bytesReceived, _lookupsStarted;

    /// <summary>A node on <paramref name="socket"/>; every timer runs on <paramref name="time"/>. Call <see cref="Start"/> next.</summary>
    public DhtNode(IDatagramSocket socket, TimeProvider time, DhtOptions options, ILogger<DhtNode>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _socket = socket;
        _time = time;
        _options = options;
        _log = logger ?? (ILogger)NullLogger.Instance;
        _random = options.RandomSeed is { } seed ? new Random(seed) : new Random();
        LocalEndPoint = socket.LocalEndPoint;
        _id = options.NodeId ?? NodeId.Random(_random);
        var now = time.GetUtcNow();
        _table = new RoutingTable(_id, options.K, GoodFor, now);
        _store = new PeerStore(options.MaxStoredPeers, options.MaxPeersPerInfoHash, options.PeerTtl);
        _items = new ItemStore(options.MaxStoredItems, options.MaxStoredItemsPerIp, options.ItemLifetime);
        _tokens = new TokenManager(options.TokenRotation, _random, now);
        _limiter = new RateLimiter(options.MaxQueriesPerIpPerSecond, options.RateLimitBurst);
    }

    /// <summary>Our node id (it may change once, when BEP 42 requires an id matching the learned external IP).</summary>
    public NodeId Id
    {
        get
        {
            lock (_gate) return _id;
        }
    }

    /// <summary>The socket's bound address and port.</summary>
    public IPEndPoint LocalEndPoint { get; }

    private AddressFamily Family => LocalEndPoint.AddressFamily;

    /// <summary>Counters (datagrams, queries, timeouts, bytes), the routing table and peer store sizes, and the BEP 42 external-address vote, read at once.</summary>
    public DhtStats Stats
    {
        get
        {
            lock (_gate)
            {
                _store.Expire(_time.GetUtcNow());
                _items.Expire(_time.GetUtcNow());
                return new DhtStats(_queriesReceived, _responsesReceived, _errorsReceived, _malformedDropped, _rateLimitedDropped,
                    _queriesSent, _timeouts, _bytesSent, _bytesReceived, _table.Count, _store.Count, _store.InfoHashCount, _voter.Current,
                    _items.Count, _lookupsStarted);
            }
        }
    }

    /// <summary>Starts receiving (socket.Start) and the maintenance timer. Call once.</summary>
    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_started) throw new InvalidOperationException("The node is already started.");
            _started = true;
            var period = MaintenancePeriod;
            _maintenance = _time.CreateTimer(TimerCallback, null, period, period);
        }

        _socket.Start(OnDatagram);
        _log.LogInformation("DHT node {Id} listening on {EndPoint}", Id, LocalEndPoint);
    }

    /// <summary>A snapshot of every node in the routing table's buckets (not the replacement caches).</summary>
    public IReadOnlyList<NodeContact> RoutingTableNodes()
    {
        lock (_gate) return _table.Entries.Select(e => e.ToContact()).ToList();
    }

    /// <summary>
    /// The state file: a bencoded dictionary {"id": 20 bytes, "nodes": compact IPv4 node info, "nodes6": compact IPv6}.
    /// A node paired with one of the other family (<see cref="PairWith"/>, BEP 32) saves both routing tables.
    /// </summary>
    public byte[] SaveState()
    {
        NodeId id;
        DhtNode? sibling;
        lock (_gate) (id, sibling) = (_id, _sibling);
        var nodes = SavableContacts();
        // One lock at a time (see PairWith): the pair's table is read under its own gate only.
        if (sibling is not null) nodes.AddRange(sibling.SavableContacts());

        var dict = new BDictionary();
        dict.Add("id", new BString(id.ToArray()));
        dict.Add("nodes", new BString(KrpcCodec.WriteCompactNodes(nodes, AddressFamily.InterNetwork)));
        var v6 = KrpcCodec.WriteCompactNodes(nodes, AddressFamily.InterNetworkV6);
        if (v6.Length > 0) dict.Add("nodes6", new BString(v6));
        return Bencode.Encode(dict);
    }

    private List<NodeContact> SavableContacts()
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            return _table.Entries.Where(e => e.State(now, GoodFor) != NodeState.Bad).Select(e => e.ToContact()).ToList();
        }
    }

    /// <summary>Reads a state file written by <see cref="SaveState"/>, or throws <see cref="FormatException"/>.</summary>
    public static DhtState LoadState(ReadOnlySpan<byte> data) =>
        TryLoadState(data, out var state) ? state! : throw new FormatException("Not a DHT state file (expected a bencoded dictionary with a 20-byte \"id\" and compact \"nodes\").");

    /// <summary>Reads a state file written by <see cref="SaveState"/>; false (never throws) when it is not one.</summary>
    public static bool TryLoadState(ReadOnlySpan<byte> data, out DhtState? state)
    {
        state = null;
        if (!Bencode.TryDecode(data, out var value, out _) || value is not BDictionary dict) return false;
        if (dict["id"] is not BString idBytes || !NodeId.TryRead(idBytes.Value.Span, out var id)) return false;
        var nodes = new List<NodeContact>();
        if (dict["nodes"] is BString v4)
        {
            if (v4.Value.Length % KrpcCodec.CompactNodeLength != 0) return false;
            nodes.AddRange(KrpcCodec.ReadCompactNodes(v4.Value.Span, AddressFamily.InterNetwork));
        }

        if (dict["nodes6"] is BString v6)
        {
            if (v6.Value.Length % KrpcCodec.CompactNode6Length != 0) return false;
            nodes.AddRange(KrpcCodec.ReadCompactNodes(v6.Value.Span, AddressFamily.InterNetworkV6));
        }

        state = new DhtState(id, nodes);
        return true;
    }

    /// <summary>Cancels pending queries and lookups, stops the timers and disposes the socket.</summary>
    public async ValueTask DisposeAsync()
    {
        List<Action> completions;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _maintenance?.Dispose();
            CancelAllPending();
            completions = [.. _deferred];
            _deferred.Clear();
        }

        foreach (var c in completions) c();
        if (Environment.CurrentManagedThreadId == _handlerThread)
        {
            // Disposed from a continuation running inside our own datagram handler: a socket waits for its receive
            // loop on dispose, so let the handler return first.
            await Task.Run(_socket.Dispose).ConfigureAwait(false);
        }
        else
        {
            _socket.Dispose();
        }
    }

    private void Defer(Action action) => _deferred.Add(action);

    /// <summary>Runs completions queued under the lock, after it is released.</summary>
    private void RunDeferred()
    {
        while (true)
        {
            Action[] todo;
            lock (_gate)
            {
                if (_deferred.Count == 0) return;
                todo = [.. _deferred];
                _deferred.Clear();
            }

            foreach (var action in todo) action();
        }
    }

    private void Send(ReadOnlySpan<byte> datagram, IPEndPoint to)
    {
        _bytesSent += datagram.Length;
        _socket.Send(datagram, to);
    }

    /// <summary>Largest message we encode: 100 IPv6 values (21 bytes each) + 8 IPv6 nodes + id, token, ip, t, v.</summary>
    internal const int MaxEncodedLength = 4096;

    /// <summary>Encodes <paramref name="message"/> into a pooled buffer and sends it (no per-node send buffer, so a
    /// simulator can hold many nodes).</summary>
    private void EncodeAndSend(KrpcMessage message, IPEndPoint to)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(MaxEncodedLength);
        try
        {
            var length = KrpcCodec.Encode(message, buffer);
            if (length > 0) Send(buffer.AsSpan(0, length), to);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
