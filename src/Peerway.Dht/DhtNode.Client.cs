using System.Net;
using Peerway.Core;

namespace Peerway.Dht;

// Outgoing queries: transaction ids, timeouts with retry, and the pending-query table.
public sealed partial class DhtNode
{
    private readonly Dictionary<ushort, PendingQuery> _pending = [];
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
            lock (_gate) return _pending.Count;
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
        ReadOnlySpan<byte> token = default, int? port = null, bool impliedPort = false)
    {
        if (_disposed || _pending.Count >= MaxPendingQueries) return false;
        ushort tid;
        do tid = (ushort)_random.Next(ushort.MaxValue + 1);
        while (_pending.ContainsKey(tid));

        var q = _out;
        q.Reset();
        q.Type = KrpcMessageType.Query;
        Span<byte> t = [(byte)(tid >> 8), (byte)tid];
        q.SetTransactionId(t);
        q.SetVersion(ClientVersion);
        q.Method = method;
        q.Id = _id;
        // BEP 43: "In each outgoing query message the read-only DHT node places a 'ro' key ... and sets its value to 1."
        q.ReadOnly = _options.ReadOnly;
        switch (method)
        {
            case KrpcMethod.FindNode:
                q.Target = target;
                break;
            case KrpcMethod.GetPeers:
                q.InfoHash = target;
                break;
            case KrpcMethod.AnnouncePeer:
                q.InfoHash = target;
                q.SetToken(token);
                q.Port = port;
                q.ImpliedPort = impliedPort;
                break;
        }

        // The encoded query is kept for retransmission. It is registered before it is sent, so a reply delivered
        // synchronously (by an inline scheduler) still finds it.
        // Without retries nothing is kept: the query goes out of the pooled buffer.
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(MaxEncodedLength);
        try
        {
            var length = KrpcCodec.Encode(q, buffer);
            if (length <= 0) return false;
            var datagram = buffer.AsSpan(0, length);
            var pending = new PendingQuery(tid, to, _options.QueryRetries > 0 ? datagram.ToArray() : null, _options.QueryRetries, done);
            _pending.Add(tid, pending);
            pending.Timer = _time.CreateTimer(TimerCallback, pending, _options.QueryTimeout, Timeout.InfiniteTimeSpan);
            _queriesSent++;
            Send(datagram, to);
            return true;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void OnQueryTimer(PendingQuery pending)
    {
        lock (_gate)
        {
            if (_disposed || !_pending.TryGetValue(pending.Tid, out var current) || current != pending) return;
            _timeouts++;
            if (pending.RetriesLeft > 0 && pending.Datagram is { } datagram)
            {
                pending.RetriesLeft--;
                _queriesSent++;
                Send(datagram, pending.To);
                pending.Timer?.Change(_options.QueryTimeout, Timeout.InfiniteTimeSpan);
                return;
            }

            _pending.Remove(pending.Tid);
            pending.Timer?.Dispose();
            pending.Done(null);
        }

        RunDeferred();
    }

    private void CancelAllPending()
    {
        foreach (var p in _pending.Values) p.Timer?.Dispose();
        _pending.Clear();
        foreach (var op in _lookups.ToList()) CompleteLookup(op, canceled: true);
        foreach (var wait in _simpleWaits) Defer(wait);
        _simpleWaits.Clear();
    }

    private sealed class PendingQuery(ushort tid, IPEndPoint to, byte[]? datagram, int retries, Action<KrpcMessage?> done)
    {
        public ushort Tid { get; } = tid;

        public IPEndPoint To { get; } = to;

        /// <summary>The encoded query, kept for retransmission (null when there are no retries).</summary>
        public byte[]? Datagram { get; } = datagram;

        public int RetriesLeft { get; set; } = retries;

        public ITimer? Timer { get; set; }

        public Action<KrpcMessage?> Done { get; } = done;
    }
}
