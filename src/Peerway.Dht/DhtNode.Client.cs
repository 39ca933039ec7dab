using System.Net;
using Peerway.Core;

namespace Peerway.Dht;

// Outgoing queries: transaction ids, timeouts with retry, and the pending-query table.
public sealed partial class DhtNode
{
    /// <summary>Outstanding queries by transaction id; null while there are none (most nodes, most of the time: a
    /// simulator holds 10^6 nodes).</summary>
    private Dictionary<ushort, PendingQuery>? _pending;
    private TimerCallback? _onTimer;

    /// <summary>The one timer callback of this node (not one delegate per query): state is the timed-out
    /// <see cref="PendingQuery"/>, or null for the maintenance timer.</summary>
    private TimerCallback TimerCallback => _onTimer ??= OnTimer;

    private void OnTimer(object? state)
    {
        if (state is PendingQuery pending) OnQueryTimer(pending);
        else OnMaintenance();
    }

    /// <summary>Outstanding queries (for tests of the memory bound).</summary>
    internal int PendingQueryCount
    {
        get
        {
            lock (_gate) return _pending?.Count ?? 0;
        }
    }

    /// <summary>IPs tracked by the rate limiter (for tests of the memory bound).</summary>
    internal int RateLimitedIps
    {
        get
        {
            lock (_gate) return _limiter.Tracked;
        }
    }

    /// <summary>
    /// Sends a query and calls <paramref name="done"/> under the lock with the reply (response or error; valid only during
    /// the call) or null after the last retry timed out. Returns false (and never calls back) when the pending-query
    /// table is full or the node is disposed.
    /// </summary>
    private bool SendQuery(IPEndPoint to, KrpcMethod method, NodeId? target, Action<KrpcMessage?> done,
        byte[]? token = null, int? port = null, bool impliedPort = false) =>
        SendQuery(new PendingQuery(to, method, target) { Done = done, Token = token, Port = port, ImpliedPort = impliedPort });

    /// <summary>A lookup's query to <paramref name="candidate"/>: the reply goes to <see cref="OnLookupReply"/> (no closure
    /// per query: a simulator sends 10^7 of them).</summary>
    private bool SendLookupQuery(LookupOperation op, Candidate candidate) =>
        SendQuery(new PendingQuery(candidate.EndPoint, op.Lookup.Kind switch
        {
            LookupKind.GetPeers => KrpcMethod.GetPeers,
            LookupKind.Get => KrpcMethod.Get,
            _ => KrpcMethod.FindNode,
        }, op.Lookup.Target)
        {
            Operation = op,
            Candidate = candidate,
        });

    /// <summary>A ping-before-evict of the node <paramref name="id"/>: the reply goes to <see cref="OnEvictPingReply"/>.</summary>
    private bool SendEvictPing(IPEndPoint to, NodeId id) => SendQuery(new PendingQuery(to, KrpcMethod.Ping, null) { PingedId = id });

    /// <summary>Registers <paramref name="pending"/> under a fresh transaction id, sends it and starts its timeout.</summary>
    private bool SendQuery(PendingQuery pending)
    {
        if (_disposed || _pending?.Count >= MaxPendingQueries) return false;
        ushort tid;
        do tid = (ushort)_random.Next(ushort.MaxValue + 1);
        while (_pending?.ContainsKey(tid) == true);
        pending.Tid = tid;
        pending.RetriesLeft = _options.QueryRetries;
        return EncodeAndSendQuery(pending, register: true);
    }

    /// <summary>Encodes the query of <paramref name="pending"/> and sends it; with <paramref name="register"/> (the first
    /// send) it is registered before it is sent, so a reply delivered synchronously (by an inline scheduler) still finds
    /// it. A retransmission encodes the query again from the pending entry: no copy of the datagram is kept.</summary>
    private bool EncodeAndSendQuery(PendingQuery pending, bool register)
    {
        var q = _out;
        q.Reset();
        q.Type = KrpcMessageType.Query;
        Span<byte> t = [(byte)(pending.Tid >> 8), (byte)pending.Tid];
        q.SetTransactionId(t);
        q.SetVersion(ClientVersion);
        q.Method = pending.Method;
        q.Id = _id;
        // BEP 43: "In each outgoing query message the read-only DHT node places a 'ro' key ... and sets its value to 1."
        q.ReadOnly = _options.ReadOnly;
        switch (pending.Method)
        {
            case KrpcMethod.FindNode:
                q.Target = pending.Target;
                q.Want = _sibling is null ? DhtWant.None : DhtWant.N4 | DhtWant.N6; // BEP 32: a dual-stack node asks for both
                break;
            case KrpcMethod.GetPeers:
                q.InfoHash = pending.Target;
                q.Want = _sibling is null ? DhtWant.None : DhtWant.N4 | DhtWant.N6;
                break;
            case KrpcMethod.AnnouncePeer:
                q.InfoHash = pending.Target;
                q.SetToken(pending.Token);
                q.Port = pending.Port;
                q.ImpliedPort = pending.ImpliedPort;
                break;
            case KrpcMethod.Get:
            case KrpcMethod.SampleInfohashes:
                q.Target = pending.Target;
                break;
            case KrpcMethod.Put when pending.Item is { } item:
                // BEP 44 put: the value, and for a mutable item its key, signature, salt, seq (and cas when asked).
                q.SetToken(pending.Token);
                q.ItemValue = item.Value;
                q.HasItemValue = true;
                if (item.IsMutable)
                {
                    q.ItemKey = item.PublicKey;
                    q.ItemSignature = item.Signature;
                    q.ItemSalt = item.Salt;
                    q.ItemSeq = item.Sequence;
                    q.ItemCas = pending.Cas;
                }

                break;
        }

        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(MaxEncodedLength);
        try
        {
            var length = KrpcCodec.Encode(q, buffer);
            if (length <= 0) return false;
            if (register)
            {
                (_pending ??= []).Add(pending.Tid, pending);
                pending.Timer = _time.CreateTimer(TimerCallback, pending, _options.QueryTimeout, Timeout.InfiniteTimeSpan);
            }

            _queriesSent++;
            Send(buffer.AsSpan(0, length), pending.To);
            return true;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Forgets the query <paramref name="tid"/>, and the table when it was the last one.</summary>
    private void RemovePending(ushort tid)
    {
        _pending!.Remove(tid);
        if (_pending.Count == 0) _pending = null;
    }

    /// <summary>Hands the reply (null: timed out) to whoever sent the query.</summary>
    private void Complete(PendingQuery pending, KrpcMessage? reply)
    {
        if (pending.Operation is { } op) OnLookupReply(op, pending.Candidate!, reply);
        else if (pending.PingedId is { } id) OnEvictPingReply(id, reply);
        else pending.Done!(reply);
    }

    private void OnQueryTimer(PendingQuery pending)
    {
        lock (_gate)
        {
            if (_disposed || _pending is null || !_pending.TryGetValue(pending.Tid, out var current) || current != pending) return;
            _timeouts++;
            if (pending.RetriesLeft > 0)
            {
                pending.RetriesLeft--;
                EncodeAndSendQuery(pending, register: false);
                pending.Timer?.Change(_options.QueryTimeout, Timeout.InfiniteTimeSpan);
                return;
            }

            RemovePending(pending.Tid);
            pending.Timer?.Dispose();
            Complete(pending, null);
        }

        RunDeferred();
    }

    private void CancelAllPending()
    {
        if (_pending is not null)
        {
            foreach (var p in _pending.Values) p.Timer?.Dispose();
            _pending = null;
        }

        foreach (var op in _lookups.ToList()) CompleteLookup(op, canceled: true);
        foreach (var wait in _simpleWaits) Defer(wait);
        _simpleWaits.Clear();
    }

    /// <summary>An outstanding query: what was asked (to encode it again for a retransmission) and who waits for the
    /// reply — a lookup (<see cref="Operation"/> and <see cref="Candidate"/>), a ping-before-evict
    /// (<see cref="PingedId"/>) or a callback (<see cref="Done"/>). One object per query.</summary>
    private sealed class PendingQuery(IPEndPoint to, KrpcMethod method, NodeId? target)
    {
        public ushort Tid { get; set; }

        public IPEndPoint To { get; } = to;

        public KrpcMethod Method { get; } = method;

        /// <summary>"target" (find_node) or "info_hash" (get_peers, announce_peer).</summary>
        public NodeId? Target { get; } = target;

        public byte[]? Token { get; init; }

        public int? Port { get; init; }

        public bool ImpliedPort { get; init; }

        /// <summary>The item of a BEP 44 put.</summary>
        public DhtItem? Item { get; init; }

        /// <summary>"cas" of a BEP 44 put.</summary>
        public long? Cas { get; init; }

        public int RetriesLeft { get; set; }

        public ITimer? Timer { get; set; }

        public LookupOperation? Operation { get; init; }

        public Candidate? Candidate { get; init; }

        public NodeId? PingedId { get; init; }

        public Action<KrpcMessage?>? Done { get; init; }
    }
}
