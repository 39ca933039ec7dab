using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;
using Peerway.Net;

namespace Peerway.Dht.Log;

/// <summary>Timings and bounds of a <see cref="LogReplica"/>.</summary>
public sealed record LogReplicaOptions
{
    /// <summary>How often a follower looks up the head in the DHT (and an owner's <c>serve</c> rereads its directory).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the head is put again and the holder announced again. BEP 44 items and BEP 5 peers expire
    /// (2 hours and 30 minutes here), so well under both.</summary>
    public TimeSpan RepublishInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>How long one request to a peer (connect, or one reply) may take before the peer is skipped.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Incoming connections served at once; more are closed at once.</summary>
    public int MaxConnections { get; init; } = 32;

    /// <summary>Peers a follower tries in one sync round.</summary>
    public int MaxPeersPerSync { get; init; } = 16;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for a value out of range.</summary>
    public void Validate()
    {
        if (PollInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(PollInterval), PollInterval, "must be positive");
        if (RepublishInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(RepublishInterval), RepublishInterval, "must be positive");
        if (RequestTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(RequestTimeout), RequestTimeout, "must be positive");
        if (MaxConnections < 1) throw new ArgumentOutOfRangeException(nameof(MaxConnections), MaxConnections, "must be at least 1");
        if (MaxPeersPerSync < 1) throw new ArgumentOutOfRangeException(nameof(MaxPeersPerSync), MaxPeersPerSync, "must be at least 1");
    }
}

/// <summary>How a sync round ended.</summary>
public enum LogSyncStatus
{
    /// <summary>No head that verifies was found in the DHT.</summary>
    NoHead,

    /// <summary>The copy already holds the newest head found.</summary>
    UpToDate,

    /// <summary>New entries were fetched, verified and kept.</summary>
    Synced,

    /// <summary>A newer head was found but no peer served its entries (none found, unreachable, or dropped).</summary>
    NoPeer,

    /// <summary>A signed head of a length held has another root: the owner forked the log (the proof is kept).</summary>
    Fork,
}

/// <summary>What one <see cref="LogReplica.SyncAsync"/> round did.</summary>
public sealed record LogSyncResult(LogSyncStatus Status, long Length, LogHead? Head, int PeersTried, ForkProof? Fork);

/// <summary>
/// Serves and follows a tamper-evident log (issue 17, item 6) over the DHT. The head is a BEP 44 mutable item (salt =
/// the log's name, <see cref="LogHead"/>), put again every <see cref="LogReplicaOptions.RepublishInterval"/> by the
/// owner and by every follower (the signature is the owner's, so anyone may store it). Holders announce themselves
/// with BEP 5 announce_peer under <see cref="SwarmId"/>, with the port of their log server (a stream listener that
/// speaks <see cref="LogWire"/>). A follower finds the head, finds holders with get_peers, asks one for the
/// consistency proof from the length it holds to the new head (RFC 9162 §2.1.4), then each missing entry with its
/// inclusion proof (§2.1.3); a holder whose proof or entry does not verify is dropped (with the index of the bad entry)
/// and the next one tried. Entries are kept only once the whole range reproduces the signed root.
/// </summary>
/// <remarks>
/// Threading: the <see cref="LogDirectory"/> is touched only under <c>_gate</c> (serving and syncing may overlap). The
/// replica does not own the <see cref="DhtNode"/> or the transport; it owns its listener and the connection tasks,
/// which <see cref="DisposeAsync"/> stops and awaits.
/// </remarks>
public sealed class LogReplica : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly DhtNode _dht;
    private readonly IStreamTransport _transport;
    private readonly TimeProvider _time;
    private readonly LogReplicaOptions _options;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly HashSet<Task> _connections = [];
    private readonly Dictionary<IPEndPoint, string> _dropped = [];
    private LogDirectory _dir;
    private IStreamListener? _listener;
    private Task? _acceptLoop;
    private int _disposed;

    /// <summary>A replica of <paramref name="log"/> on <paramref name="dht"/>, serving over <paramref name="transport"/>.</summary>
    public LogReplica(LogDirectory log, DhtNode dht, IStreamTransport transport, TimeProvider time, LogReplicaOptions options, ILogger<LogReplica>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(dht);
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _dir = log;
        _dht = dht;
        _transport = transport;
        _time = time;
        _options = options;
        _log = logger ?? (ILogger)NullLogger.Instance;
        Target = Bep44.MutableTarget(log.PublicKey, Encoding.UTF8.GetBytes(log.Name));
        SwarmId = DeriveSwarmId(log.PublicKey, log.Name);
    }

    /// <summary>The BEP 44 target of the log's heads.</summary>
    public NodeId Target { get; }

    /// <summary>The info-hash under which holders announce themselves: SHA-1("peerway-log" + the heads' target), so it
    /// is not the item's own target.</summary>
    public NodeId SwarmId { get; }

    /// <summary>The log server's bound endpoint, once <see cref="ListenAsync"/> ran.</summary>
    public IPEndPoint? LocalEndPoint => _listener?.LocalEndPoint;

    /// <summary>Entries held.</summary>
    public long Length
    {
        get
        {
            lock (_gate) return _dir.Length;
        }
    }

    /// <summary>Peers dropped for serving what does not verify, with the reason (e.g. "entry 3 does not match the signed head").</summary>
    public IReadOnlyDictionary<IPEndPoint, string> DroppedPeers
    {
        get
        {
            lock (_gate) return new Dictionary<IPEndPoint, string>(_dropped);
        }
    }

    /// <summary>SHA-1("peerway-log" + the BEP 44 target of the log's heads).</summary>
    public static NodeId DeriveSwarmId(ReadOnlySpan<byte> publicKey, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var target = Bep44.MutableTarget(publicKey, Encoding.UTF8.GetBytes(name));
        return new NodeId(SHA1.HashData([.. "peerway-log"u8, .. target.ToArray()]));
    }

    /// <summary>Starts the log server on <paramref name="localEndPoint"/>; returns the bound endpoint.</summary>
    public async Task<IPEndPoint> ListenAsync(IPEndPoint localEndPoint, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (_listener is not null) throw new InvalidOperationException("The log server is already listening.");
        _listener = await _transport.ListenAsync(localEndPoint, ct).ConfigureAwait(false);
        _acceptLoop = AcceptLoopAsync(_listener);
        return _listener.LocalEndPoint;
    }

    /// <summary>Rereads the directory (the owner's <c>log append</c> may run in another process); true when it grew.</summary>
    public bool Reload()
    {
        lock (_gate)
        {
            var again = LogDirectory.Open(_dir.DirectoryPath);
            if (again.Length <= _dir.Length) return false;
            _dir = again;
            return true;
        }
    }

    /// <summary>Puts the latest head held (if any) into the DHT and announces this holder under <see cref="SwarmId"/>
    /// (when listening); returns how many nodes stored the head.</summary>
    public async Task<int> PublishAsync(CancellationToken ct)
    {
        LogHead? head;
        lock (_gate) head = _dir.LatestHead();
        var stored = 0;
        if (head is not null)
        {
            var put = await _dht.PutItemAsync(head.ToItem(), ct).ConfigureAwait(false);
            stored = put.StoredOn;
            _log.LogDebug("Log {Target}: head of length {Length} stored on {Nodes} nodes", Target, head.Length, stored);
        }

        if (_listener is { } listener && head is not null)
        {
            await _dht.AnnounceAsync(SwarmId, listener.LocalEndPoint.Port, impliedPort: false, ct).ConfigureAwait(false);
        }

        return stored;
    }

    /// <summary>One follower round: the newest head in the DHT, then the missing entries from a holder, verified.
    /// <paramref name="extraPeers"/> are tried after those found in the DHT.</summary>
    public async Task<LogSyncResult> SyncAsync(IReadOnlyList<IPEndPoint>? extraPeers, CancellationToken ct)
    {
        string name;
        byte[] publicKey;
        lock (_gate) (name, publicKey) = (_dir.Name, _dir.PublicKey);
        var found = await _dht.GetMutableAsync(publicKey, Encoding.UTF8.GetBytes(name), ct).ConfigureAwait(false);
        if (found.Item is not { } item || LogHead.FromItem(item) is not { } head || head.Name != name) return new LogSyncResult(LogSyncStatus.NoHead, Length, null, 0, null);

        long have;
        lock (_gate)
        {
            have = _dir.Length;
            if (head.Length <= have)
            {
                var fork = _dir.Receive(head);
                return fork is null
                    ? new LogSyncResult(LogSyncStatus.UpToDate, have, head, 0, null)
                    : new LogSyncResult(LogSyncStatus.Fork, have, head, 0, fork);
            }
        }

        var peers = new List<IPEndPoint>();
        var lookup = await _dht.GetPeersAsync(SwarmId, ct).ConfigureAwait(false);
        foreach (var p in lookup.Peers.Concat(extraPeers ?? []))
        {
            if (!IsSelf(p) && !peers.Contains(p)) peers.Add(p);
        }

        var tried = 0;
        foreach (var peer in peers)
        {
            lock (_gate)
            {
                if (_dropped.ContainsKey(peer)) continue;
            }

            if (tried++ == _options.MaxPeersPerSync) break;
            var outcome = await FetchFromAsync(peer, head, have, ct).ConfigureAwait(false);
            if (outcome is not null) return outcome;
        }

        return new LogSyncResult(LogSyncStatus.NoPeer, have, head, tried, null);
    }

    /// <summary>
    /// Runs until <paramref name="ct"/> is cancelled: publishes the head and announces every republish interval; each
    /// poll interval an owner rereads its directory (publishing a new head at once) and, with <paramref name="follow"/>,
    /// a follower syncs (publishing what it gained at once). <paramref name="onSync"/> sees each round's result,
    /// <paramref name="onPublish"/> each publication (the head put, and on how many nodes).
    /// </summary>
    public async Task RunAsync(bool follow, IReadOnlyList<IPEndPoint>? extraPeers, Action<LogSyncResult>? onSync, Action<LogHead?, int>? onPublish, CancellationToken ct)
    {
        var nextPublish = _time.GetUtcNow();
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (follow)
                {
                    var result = await SyncAsync(extraPeers, ct).ConfigureAwait(false);
                    onSync?.Invoke(result);
                    if (result.Status == LogSyncStatus.Synced) nextPublish = _time.GetUtcNow();
                }
                else if (Reload())
                {
                    nextPublish = _time.GetUtcNow();
                }

                if (_time.GetUtcNow() >= nextPublish)
                {
                    var stored = await PublishAsync(ct).ConfigureAwait(false);
                    LogHead? head;
                    lock (_gate) head = _dir.LatestHead();
                    onPublish?.Invoke(head, stored);
                    nextPublish = _time.GetUtcNow() + _options.RepublishInterval;
                }

                await Task.Delay(_options.PollInterval, _time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                _log.LogWarning("Log {Target}: {Message}", Target, ex.Message);
                await Task.Delay(_options.PollInterval, _time, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Stops the server and awaits every connection it serves.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        // Cancel, not CancelAsync: the callbacks (the accept loop, idle reads) run inline on this thread, as everything
        // else does under a single-threaded scheduler; CancelAsync would hand them to the thread pool.
#pragma warning disable VSTHRD103 // see above
        _stop.Cancel();
#pragma warning restore VSTHRD103
        if (_listener is not null) await _listener.DisposeAsync().ConfigureAwait(false);
        if (_acceptLoop is not null) await _acceptLoop.ConfigureAwait(false);
        Task[] connections;
        lock (_gate) connections = [.. _connections];
        await Task.WhenAll(connections).ConfigureAwait(false);
        _stop.Dispose();
    }

    private bool IsSelf(IPEndPoint peer) =>
        _listener?.LocalEndPoint is { } local && peer.Port == local.Port
        && (peer.Address.Equals(local.Address) || local.Address.Equals(IPAddress.Any) || local.Address.Equals(IPAddress.IPv6Any)
            || peer.Address.Equals(_dht.LocalEndPoint.Address));

    /// <summary>Fetches entries <paramref name="have"/>..head.Length-1 from <paramref name="peer"/>: a result when done
    /// (or when a fork shows), null to try the next peer (unreachable, or dropped for a bad proof or entry).</summary>
    private async Task<LogSyncResult?> FetchFromAsync(IPEndPoint peer, LogHead head, long have, CancellationToken ct)
    {
        IStreamConnection? connection = null;
        try
        {
            using (var connect = Deadline(ct))
            {
                connection = await _transport.ConnectAsync(peer, connect.Token).ConfigureAwait(false);
            }

            byte[] oldRoot;
            lock (_gate) oldRoot = _dir.Root(have);
            if (have > 0)
            {
                var cons = await AskAsync(connection, new LogRequest(LogRequestKind.Consistency, Target, have, head.Length), ct).ConfigureAwait(false);
                if (cons?.Proof is not { } proof) return Drop(peer, cons?.Error ?? "no consistency proof");
                if (!MerkleTree.VerifyConsistency(have, head.Length, oldRoot, head.Root, proof))
                {
                    return Drop(peer, $"the consistency proof from {have} to {head.Length} entries does not verify");
                }
            }

            var entries = new List<byte[]>();
            for (var i = have; i < head.Length; i++)
            {
                var reply = await AskAsync(connection, new LogRequest(LogRequestKind.Entry, Target, i, head.Length), ct).ConfigureAwait(false);
                if (reply?.Entry is not { } entry || reply.Proof is not { } proof)
                {
                    return reply?.Error is { } error ? Skip(peer, error) : Drop(peer, $"no entry {i}");
                }

                if (entry.Length > LogDirectory.MaxEntryLength || !MerkleTree.VerifyInclusion(MerkleTree.LeafHash(entry), i, head.Length, proof, head.Root))
                {
                    return Drop(peer, $"entry {i} does not match the signed head");
                }

                entries.Add(entry);
            }

            try
            {
                lock (_gate)
                {
                    // Another round may have taken entries meanwhile: only append onto the length these were fetched for.
                    if (_dir.Length != have) return new LogSyncResult(LogSyncStatus.UpToDate, _dir.Length, head, 1, null);
                    _dir.AppendVerified(entries, head);
                }
            }
            catch (InvalidDataException ex)
            {
                return Drop(peer, ex.Message);
            }

            _log.LogInformation("Log {Target}: {Count} entries from {Peer}, now {Length}", Target, entries.Count, peer, head.Length);
            return new LogSyncResult(LogSyncStatus.Synced, head.Length, head, 1, null);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return Skip(peer, "timed out");
        }
        catch (IOException ex)
        {
            return Skip(peer, ex.Message);
        }
        finally
        {
            if (connection is not null) await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private LogSyncResult? Drop(IPEndPoint peer, string reason)
    {
        lock (_gate) _dropped[peer] = reason;
        _log.LogWarning("Log {Target}: dropped {Peer}: {Reason}", Target, peer, reason);
        return null;
    }

    private LogSyncResult? Skip(IPEndPoint peer, string reason)
    {
        _log.LogDebug("Log {Target}: skipped {Peer}: {Reason}", Target, peer, reason);
        return null;
    }

    private RequestDeadline Deadline(CancellationToken ct) => new(_options.RequestTimeout, _time, ct);

    private async Task<LogReply?> AskAsync(IStreamConnection connection, LogRequest request, CancellationToken ct)
    {
        using var deadline = Deadline(ct);
        await LogWire.WriteFrameAsync(connection.Stream, LogWire.EncodeRequest(request), deadline.Token).ConfigureAwait(false);
        var frame = await LogWire.ReadFrameAsync(connection.Stream, LogWire.MaxFrameLength, deadline.Token).ConfigureAwait(false);
        return frame is null ? null : LogWire.DecodeReply(frame);
    }

    private async Task AcceptLoopAsync(IStreamListener listener)
    {
        while (true)
        {
            IStreamConnection? connection;
            try
            {
                connection = await listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (connection is null) return;
            bool full;
            lock (_gate) full = _connections.Count >= _options.MaxConnections;
            if (full)
            {
                connection.Abort();
                await connection.DisposeAsync().ConfigureAwait(false);
                continue;
            }

            // Kept until it ends (DisposeAsync awaits what is left); a served connection never faults (ServeAsync
            // catches what a peer can cause), so the continuation only forgets it.
            var task = ServeAsync(connection);
            lock (_gate) _connections.Add(task);
            _ = task.ContinueWith(Forget, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private void Forget(Task task)
    {
        lock (_gate) _connections.Remove(task);
    }

    private async Task ServeAsync(IStreamConnection connection)
    {
        await using (connection.ConfigureAwait(false))
        {
            try
            {
                while (true)
                {
                    byte[]? frame;
                    using (var idle = Deadline(_stop.Token))
                    {
                        frame = await LogWire.ReadFrameAsync(connection.Stream, LogWire.MaxRequestLength, idle.Token).ConfigureAwait(false);
                    }

                    if (frame is null || LogWire.DecodeRequest(frame) is not { } request) return;
                    var reply = Answer(request);
                    using var write = Deadline(_stop.Token);
                    await LogWire.WriteFrameAsync(connection.Stream, LogWire.EncodeReply(reply), write.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
                // Idle too long, or stopping.
            }
            catch (IOException ex)
            {
                _log.LogDebug("Log {Target}: connection from {Peer} ended: {Message}", Target, connection.RemoteEndPoint, ex.Message);
            }
        }
    }

    /// <summary>Answers one request from what this copy holds.</summary>
    private LogReply Answer(LogRequest request)
    {
        if (request.Target != Target) return Refuse("not this log");
        lock (_gate)
        {
            var length = _dir.Length;
            switch (request.Kind)
            {
                case LogRequestKind.Head:
                    return _dir.LatestHead() is { } head ? new LogReply(head.Length, head.Root, head.Signature, null, null, null) : Refuse("no head");
                case LogRequestKind.Entry when request.B <= length && request.A < request.B:
                    byte[] entry;
                    try
                    {
                        entry = _dir.ReadEntry(request.A);
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                    {
                        return Refuse($"entry {request.A} unreadable");
                    }

                    return new LogReply(null, null, null, entry, _dir.InclusionProof(request.A, request.B), null);
                case LogRequestKind.Consistency when request.A >= 1 && request.A <= request.B && request.B <= length:
                    return new LogReply(null, null, null, null, _dir.ConsistencyProof(request.A, request.B), null);
                default:
                    return Refuse($"only {length} entries held");
            }
        }
    }

    private static LogReply Refuse(string why) => new(null, null, null, null, null, why);

    /// <summary>A token cancelled by the caller's or after the timeout on the replica's clock.</summary>
    private sealed class RequestDeadline : IDisposable
    {
        private readonly CancellationTokenSource _timer;
        private readonly CancellationTokenSource _linked;

        public RequestDeadline(TimeSpan timeout, TimeProvider time, CancellationToken ct)
        {
            _timer = new CancellationTokenSource(timeout, time);
            _linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _timer.Token);
        }

        public CancellationToken Token => _linked.Token;

        public void Dispose()
        {
            _linked.Dispose();
            _timer.Dispose();
        }
    }
}
