using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Core;

namespace Peerway.Dht;

// Iterative lookups (Kademlia §2.3) and the public async operations built on them.
public sealed partial class DhtNode
{
    private readonly HashSet<LookupOperation> _lookups = [];
    private readonly HashSet<Action> _simpleWaits = [];

    /// <summary>BEP 5 ping: the remote node's id, or null when it did not answer (after the retries).</summary>
    public Task<NodeId?> PingAsync(IPEndPoint endPoint, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        ct.ThrowIfCancellationRequested();
        var tcs = new TaskCompletionSource<NodeId?>();
        Action cancel = () => tcs.TrySetCanceled(ct);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var sent = SendQuery(endPoint, KrpcMethod.Ping, null, reply =>
            {
                _simpleWaits.Remove(cancel);
                NodeId? id = reply is { Type: KrpcMessageType.Response } r ? r.Id : null;
                Defer(() => tcs.TrySetResult(id));
            });
            if (!sent) return Task.FromResult<NodeId?>(null);
            _simpleWaits.Add(cancel);
        }

        var registration = ct.Register(cancel);
        _ = tcs.Task.ContinueWith(_ => registration.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return tcs.Task;
    }

    /// <summary>BEP 51: asks the node at <paramref name="endPoint"/> for a sample of the info-hashes it stores (and the
    /// nodes it knows closest to <paramref name="target"/>); null when it does not answer (or answers with an error, as
    /// nodes without BEP 51 do).</summary>
    public Task<DhtSampleResult?> SampleInfohashesAsync(IPEndPoint endPoint, NodeId target, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        ct.ThrowIfCancellationRequested();
        var tcs = new TaskCompletionSource<DhtSampleResult?>();
        Action cancel = () => tcs.TrySetCanceled(ct);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var sent = SendQuery(new PendingQuery(endPoint, KrpcMethod.SampleInfohashes, target)
            {
                Done = reply =>
                {
                    _simpleWaits.Remove(cancel);
                    DhtSampleResult? result = null;
                    if (reply is { Type: KrpcMessageType.Response } r)
                    {
                        var samples = new List<NodeId>(r.Samples.Length / NodeId.Length);
                        for (var i = 0; i + NodeId.Length <= r.Samples.Length; i += NodeId.Length) samples.Add(new NodeId(r.Samples.Span.Slice(i, NodeId.Length)));
                        var nodes = KrpcCodec.ReadCompactNodes(Family == System.Net.Sockets.AddressFamily.InterNetworkV6 ? r.Nodes6.Span : r.Nodes.Span, Family);
                        result = new DhtSampleResult(r.Id, samples, r.Num ?? samples.Count, TimeSpan.FromSeconds(r.Interval ?? 0), nodes);
                    }

                    Defer(() => tcs.TrySetResult(result));
                },
            });
            if (!sent) return Task.FromResult<DhtSampleResult?>(null);
            _simpleWaits.Add(cancel);
        }

        var registration = ct.Register(cancel);
        _ = tcs.Task.ContinueWith(_ => registration.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return tcs.Task;
    }

    /// <summary>An iterative find_node lookup (Kademlia §2.3): the k closest nodes to <paramref name="target"/> that answered.</summary>
    public async Task<LookupResult> FindNodeAsync(NodeId target, CancellationToken ct)
    {
        var op = await RunLookupAsync(target, LookupKind.FindNode, [], ct).ConfigureAwait(false);
        return op.Result!;
    }

    /// <summary>An iterative get_peers lookup (BEP 5): the peers stored for <paramref name="infoHash"/> by the nodes on the way.</summary>
    public async Task<GetPeersResult> GetPeersAsync(NodeId infoHash, CancellationToken ct)
    {
        var op = await RunLookupAsync(infoHash, LookupKind.GetPeers, [], ct).ConfigureAwait(false);
        return new GetPeersResult(op.Peers!, op.Result!);
    }

    /// <summary>get_peers lookup, then announce_peer to the k closest responders with the tokens they gave (BEP 5).</summary>
    public async Task<AnnounceResult> AnnounceAsync(NodeId infoHash, int port, bool impliedPort, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(port, impliedPort ? 0 : 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, ushort.MaxValue);
        var op = await RunLookupAsync(infoHash, LookupKind.GetPeers, [], ct).ConfigureAwait(false);
        var lookup = new GetPeersResult(op.Peers!, op.Result!);
        var tcs = new TaskCompletionSource<int>();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var targets = op.Lookup.ClosestAnswered(withToken: true);
            var outstanding = 0;
            var accepted = 0;
            Action cancel = () => tcs.TrySetResult(accepted);
            foreach (var c in targets)
            {
                var sent = SendQuery(c.EndPoint, KrpcMethod.AnnouncePeer, infoHash, reply =>
                {
                    if (reply is { Type: KrpcMessageType.Response }) accepted++;
                    if (--outstanding == 0)
                    {
                        _simpleWaits.Remove(cancel);
                        Defer(() => tcs.TrySetResult(accepted));
                    }
                }, c.Token, port, impliedPort);
                if (sent) outstanding++;
            }

            if (outstanding == 0) tcs.TrySetResult(0);
            else _simpleWaits.Add(cancel);
        }

        var announced = await tcs.Task.ConfigureAwait(false);
        return new AnnounceResult(announced, lookup);
    }

    /// <summary>BEP 5 bootstrap: a find_node lookup for our own id through the routers (ids unknown) and known nodes.</summary>
    public async Task<int> BootstrapAsync(IReadOnlyList<IPEndPoint> routers, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(routers);
        NodeId self;
        lock (_gate) self = _id;
        await RunLookupAsync(self, LookupKind.FindNode, routers.Where(r => r.AddressFamily == Family).ToList(), ct).ConfigureAwait(false);
        return RefreshFarBucketsThenCount();
    }

    private int RefreshFarBucketsThenCount()
    {
        int count;
        lock (_gate)
        {
            StartFarBucketRefresh();
            count = _table.Count;
        }

        RunDeferred();
        return count;
    }

    /// <summary>
    /// With <see cref="DhtOptions.RefreshBucketsAfterBootstrap"/>: after the self-lookup only the buckets near our id are
    /// well filled; a find_node for a random id in each other bucket (the BEP 5 refresh, done now instead of 15 minutes
    /// later) fills them in the background, so lookups from a fresh node converge in fewer hops. Call under the lock.
    /// </summary>
    private void StartFarBucketRefresh()
    {
        if (!_options.RefreshBucketsAfterBootstrap || _disposed || _table.Count == 0) return;
        for (var i = 0; i < _table.BucketCount - 1; i++) StartLookup(_table.RandomIdInBucket(i, _random), LookupKind.FindNode, []);
    }

    /// <summary>Pings saved contacts so a restarted node rejoins without a bootstrap router, then looks up its own id;
    /// returns the routing table size.</summary>
    public async Task<int> RestoreAsync(IReadOnlyList<NodeContact> nodes, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var pings = nodes.Where(n => n.EndPoint.AddressFamily == Family).Take(MaxPendingQueries / 2).Select(n => PingAsync(n.EndPoint, ct)).ToList();
        await Task.WhenAll(pings).ConfigureAwait(false);
        int count;
        NodeId self;
        lock (_gate) (count, self) = (_table.Count, _id);
        if (count == 0) return 0;
        await RunLookupAsync(self, LookupKind.FindNode, [], ct).ConfigureAwait(false);
        return RefreshFarBucketsThenCount();
    }

    private Task<LookupOperation> RunLookupAsync(NodeId target, LookupKind kind, IReadOnlyList<IPEndPoint> routers, CancellationToken ct,
        Func<KrpcMessage, DhtItem?>? readItem = null)
    {
        ct.ThrowIfCancellationRequested();
        LookupOperation op;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            op = StartLookup(target, kind, routers, readItem);
            _lookupsStarted++;
        }

        RunDeferred();
        if (ct.CanBeCanceled && !op.Completion.Task.IsCompleted)
        {
            var registration = ct.Register(() =>
            {
                lock (_gate) CompleteLookup(op, canceled: true, ct);
                RunDeferred();
            });
            _ = op.Completion.Task.ContinueWith(_ => registration.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        return op.Completion.Task;
    }

    /// <summary>Starts a lookup seeded with the closest known nodes (and routers); call under the lock.</summary>
    private LookupOperation StartLookup(NodeId target, LookupKind kind, IReadOnlyList<IPEndPoint> routers, Func<KrpcMessage, DhtItem?>? readItem = null)
    {
        var now = _time.GetUtcNow();
        var lookup = new Lookup(target, kind, _options.K, _options.Alpha, _options.DisjointPaths, now);
        var op = new LookupOperation(lookup) { ReadItem = readItem };
        _lookups.Add(op);
        var seeds = _table.Closest(target, _options.K * _options.DisjointPaths, now).Select(e => ((NodeId?)e.Id, e.EndPoint));
        lookup.Seed(routers.Select(r => ((NodeId?)null, r)).Concat(seeds));
        Advance(op);
        return op;
    }

    private void Advance(LookupOperation op)
    {
        // A rented array per call, not a list per round: a reply delivered synchronously may re-enter Advance.
        var buffer = System.Buffers.ArrayPool<Candidate>.Shared.Rent(op.Lookup.MaxQueriesAtOnce);
        try
        {
            while (!op.Lookup.IsDone)
            {
                var count = op.Lookup.NextQueries(buffer);
                if (count == 0) break;
                var failed = false;
                for (var i = 0; i < count; i++)
                {
                    if (SendLookupQuery(op, buffer[i])) continue;
                    Lookup.OnFailure(buffer[i]);
                    failed = true;
                }

                if (!failed) break;
            }
        }
        finally
        {
            System.Buffers.ArrayPool<Candidate>.Shared.Return(buffer, clearArray: true);
        }

        if (op.Lookup.IsDone) CompleteLookup(op, canceled: false);
    }

    private void OnLookupReply(LookupOperation op, Candidate candidate, KrpcMessage? reply)
    {
        if (!_lookups.Contains(op)) return;
        if (reply is null)
        {
            Lookup.OnFailure(candidate);
            if (candidate.Id is { } id) _table.OnFailed(id, _time.GetUtcNow(), evict: false);
        }
        else if (reply.Type == KrpcMessageType.Error)
        {
            Lookup.OnFailure(candidate);
        }
        else
        {
            var nodes = Family == System.Net.Sockets.AddressFamily.InterNetworkV6 ? reply.Nodes6.Span : reply.Nodes.Span;
            op.Lookup.OnResponse(candidate, reply.Id, nodes, Family, _id, LocalEndPoint, op.Lookup.Kind == LookupKind.GetPeers ? reply.Values : null, reply.Token);
            ShareWithSibling(reply);
            if (op.ReadItem is { } read && read(reply) is { } item && (op.Item is null || item.Sequence > op.Item.Sequence)) op.Item = item;
        }

        Advance(op);
    }

    private void CompleteLookup(LookupOperation op, bool canceled, CancellationToken ct = default)
    {
        if (!_lookups.Remove(op)) return;
        op.Lookup.Cancel();
        if (canceled)
        {
            Defer(() => op.Completion.TrySetCanceled(ct));
            return;
        }

        var lookup = op.Lookup;
        var closest = lookup.ClosestAnswered().Select(c => new NodeContact(c.Id!.Value, c.EndPoint)).ToList();
        op.Result = new LookupResult(closest, lookup.Rounds, lookup.QueriesSent, lookup.Responses, _time.GetUtcNow() - lookup.Started);
        op.Peers = [.. lookup.Peers];
        _log.LogDebug("Lookup {Target} done: {Closest} closest, {Rounds} rounds, {Queries} queries, {Peers} peers",
            lookup.Target, closest.Count, lookup.Rounds, lookup.QueriesSent, lookup.Peers.Count);
        Defer(() => op.Completion.TrySetResult(op));
    }

    private sealed class LookupOperation(Lookup lookup)
    {
        public Lookup Lookup { get; } = lookup;

        public TaskCompletionSource<LookupOperation> Completion { get; } = new();

        public LookupResult? Result { get; set; }

        public IReadOnlyList<IPEndPoint>? Peers { get; set; }

        /// <summary>BEP 44 get: turns a reply into the item it carries when that item verifies (else null).</summary>
        public Func<KrpcMessage, DhtItem?>? ReadItem { get; init; }

        /// <summary>BEP 44 get: the verified item with the highest sequence number seen so far.</summary>
        public DhtItem? Item { get; set; }
    }
}
