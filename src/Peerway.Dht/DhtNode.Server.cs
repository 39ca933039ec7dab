using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Peerway.Core;

namespace Peerway.Dht;

// Incoming datagrams: decoding, answering queries (BEP 5), matching replies, learning contacts and our address (BEP 42).
public sealed partial class DhtNode
{
    // Per-query scratch lists (used under _gate), so answering a query allocates no collections.
    // Nodes to ping from one table update (Learn, a ping's answer): at most one, emptied before any ping is sent.
    private readonly List<RoutingEntry> _toPingScratch = new(1);
    private readonly List<IPEndPoint> _valuesScratch = []; // grows on first use: most nodes never serve values

    private void OnDatagram(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        _handlerThread = Environment.CurrentManagedThreadId;
        try
        {
            if (remote.Address.IsIPv4MappedToIPv6) remote = new IPEndPoint(remote.Address.MapToIPv4(), remote.Port);
            lock (_gate)
            {
                if (_disposed) return;
                _bytesReceived += datagram.Length;
                var error = KrpcCodec.Decode(datagram, _in);
                if (error != KrpcError.None) OnMalformed(error, remote);
                else if (_in.Type == KrpcMessageType.Query) OnQuery(_in, remote);
                else OnReply(_in, remote);
            }

            RunDeferred();
        }
        finally
        {
            _handlerThread = 0;
        }
    }

    private void OnMalformed(KrpcError error, IPEndPoint remote)
    {
        _malformedDropped++;
        _log.LogDebug("Malformed datagram from {Remote}: {Error}", remote, error);
        // BEP 5 error replies go only to parseable queries: a well-formed dictionary with "y" = "q" and a "t". Anything
        // else (random bytes, truncated bencode, a dictionary without "y") gets nothing, so a stranger cannot get more
        // bytes back than it sent. Replies are never answered; a read-only node (BEP 43) answers nothing.
        if (error is KrpcError.DatagramTooLarge or KrpcError.MalformedBencode or KrpcError.NotADictionary) return;
        if (!_in.HasTransactionId || !_in.HasType || _in.Type != KrpcMessageType.Query || _options.ReadOnly) return;
        if (!_limiter.TryAcquire(remote.Address, _time.GetUtcNow()))
        {
            _rateLimitedDropped++;
            return;
        }

        SendError(_in.TransactionId, remote, KrpcErrorCode.Protocol, $"Protocol Error: {error}");
    }

    private void OnQuery(KrpcMessage query, IPEndPoint remote)
    {
        _queriesReceived++;
        // BEP 43: a read-only node "no longer responds to 'query' messages that it receives".
        if (_options.ReadOnly) return;
        var now = _time.GetUtcNow();
        if (!_limiter.TryAcquire(remote.Address, now))
        {
            _rateLimitedDropped++;
            return;
        }

        switch (query.Method)
        {
            case KrpcMethod.Ping:
                SendReply(query, remote, nodesFor: null, withToken: false, values: null);
                break;
            case KrpcMethod.FindNode:
                SendReply(query, remote, nodesFor: query.Target, withToken: false, values: null);
                break;
            case KrpcMethod.GetPeers:
            {
                var values = _store.Get(query.InfoHash!.Value, now, MaxValuesPerReply, remote.AddressFamily, _valuesScratch);
                // BEP 5: reply with "values" when we have peers, else the closest "nodes"; both carry a token. We add
                // the nodes in both cases (as libtorrent does) so lookups converge while collecting values.
                SendReply(query, remote, nodesFor: query.InfoHash, withToken: true, values: values.Count > 0 ? values : null);
                break;
            }

            case KrpcMethod.AnnouncePeer:
                if (!_tokens.Validate(remote.Address, query.Token, now))
                {
                    // BEP 5: a token that does not match the requester's IP is refused.
                    SendError(query.TransactionId, remote, KrpcErrorCode.Protocol, "Bad token");
                    return;
                }

                // BEP 5: "implied_port": the peer's port is the source port of the UDP packet.
                var port = query.ImpliedPort ? remote.Port : query.Port!.Value;
                _store.Add(query.InfoHash!.Value, new IPEndPoint(remote.Address, port), now);
                SendReply(query, remote, nodesFor: null, withToken: false, values: null);
                break;
            case KrpcMethod.Get:
                OnGet(query, remote, now);
                break;
            case KrpcMethod.SampleInfohashes:
                OnSampleInfohashes(query, remote, now);
                break;
            case KrpcMethod.Put:
                if (!OnPut(query, remote, now)) return;
                break;
            default:
                // BEP 5: "unknown query methods carrying target or info_hash are answered like find_node" (forward
                // compatibility); anything else is error 204.
                if ((query.Target ?? query.InfoHash) is { } target) SendReply(query, remote, nodesFor: target, withToken: false, values: null);
                else SendError(query.TransactionId, remote, KrpcErrorCode.MethodUnknown, "Method Unknown");
                break;
        }

        // BEP 43: read-only nodes ("ro": 1) are not added to routing tables.
        if (!query.ReadOnly) Learn(query.Id, remote, responded: false, now);
    }

    /// <summary>BEP 51: the closest nodes to "target", how many info-hashes we store ("num"), a random sample of at most
    /// <see cref="DhtOptions.MaxInfohashSamples"/> of them, and when to ask again ("interval").</summary>
    private void OnSampleInfohashes(KrpcMessage query, IPEndPoint remote, DateTimeOffset now)
    {
        var sampleBytes = System.Buffers.ArrayPool<byte>.Shared.Rent(NodeId.Length * DhtOptions.MaxInfohashSamplesLimit);
        try
        {
            var n = _store.Sample(now, _options.MaxInfohashSamples, _random, sampleBytes);
            SendReply(query, remote, nodesFor: query.Target, withToken: false, values: null, sample: (sampleBytes.AsMemory(0, n * NodeId.Length), _store.InfoHashCount));
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(sampleBytes);
        }
    }

    /// <summary>BEP 44 get: the closest nodes and a write token, and the item when we hold it — for a mutable item only
    /// when its "seq" is newer than the one the requester says it has (then "seq" alone tells it it is up to date).</summary>
    private void OnGet(KrpcMessage query, IPEndPoint remote, DateTimeOffset now)
    {
        var item = _items.Get(query.Target!.Value, now);
        SendReply(query, remote, nodesFor: query.Target, withToken: true, values: null, item: item, knownSeq: query.ItemSeq);
    }

    /// <summary>
    /// BEP 44 put: checks the token, the value's size (205), the salt's (207) and the signature (206), then CAS (301) and
    /// the sequence number (302) against what is stored; stores only what verifies. Returns false when it answered with
    /// an error (the sender is then not learnt from this query).
    /// </summary>
    private bool OnPut(KrpcMessage query, IPEndPoint remote, DateTimeOffset now)
    {
        if (!_tokens.Validate(remote.Address, query.Token, now))
        {
            SendError(query.TransactionId, remote, KrpcErrorCode.Protocol, "Bad token");
            return false;
        }

        var value = query.ItemValue.Span;
        if (value.Length > Bep44.MaxValueLength)
        {
            SendError(query.TransactionId, remote, KrpcErrorCode.MessageTooBig, "Message (v field) too big.");
            return false;
        }

        DhtItem item;
        if (query.ItemKey is null && query.ItemSignature is null)
        {
            item = DhtItem.Immutable(value);
        }
        else
        {
            var salt = query.ItemSalt ?? [];
            if (salt.Length > Bep44.MaxSaltLength)
            {
                SendError(query.TransactionId, remote, KrpcErrorCode.SaltTooBig, "salt (salt field) too big.");
                return false;
            }

            if (query.ItemKey is not { Length: Bep44.PublicKeyLength } key || query.ItemSignature is not { } signature || query.ItemSeq is not { } seq
                || !Bep44.Verify(key, signature, salt, seq, value))
            {
                SendError(query.TransactionId, remote, KrpcErrorCode.InvalidSignature, "Invalid signature");
                return false;
            }

            item = new DhtItem(Bep44.MutableTarget(key, salt), value.ToArray(), key, salt, seq, signature);
            if (_items.Get(item.Target, now) is { } stored)
            {
                if (query.ItemCas is { } cas && cas != stored.Sequence)
                {
                    SendError(query.TransactionId, remote, KrpcErrorCode.CasMismatch, "The CAS hash mismatched, re-read value and try again.");
                    return false;
                }

                // BEP 44: a put with a lower seq is refused; the same seq refreshes the item only if the value is the same.
                if (seq < stored.Sequence || (seq == stored.Sequence && !value.SequenceEqual(stored.Value)))
                {
                    SendError(query.TransactionId, remote, KrpcErrorCode.SequenceNotNewer, "Sequence number less than current.");
                    return false;
                }
            }
        }

        _items.Put(item, remote.Address, now);
        SendReply(query, remote, nodesFor: null, withToken: false, values: null);
        return true;
    }

    private void SendReply(KrpcMessage query, IPEndPoint remote, NodeId? nodesFor, bool withToken, List<IPEndPoint>? values,
        DhtItem? item = null, long? knownSeq = null, (ReadOnlyMemory<byte> Samples, int Num)? sample = null)
    {
        var reply = _out;
        reply.Reset();
        reply.Type = KrpcMessageType.Response;
        reply.SetTransactionId(query.TransactionId);
        reply.SetVersion(ClientVersion);
        reply.Id = _id;
        reply.ExternalAddress = remote; // BEP 42: tell the requester the address we see it at.
        // The compact node info is built in a pooled buffer, not a per-node one (a simulator holds 10^6 nodes).
        byte[]? nodes = null;
        try
        {
            if (nodesFor is { } target)
            {
                // BEP 32: "want" asks for "n4" ("nodes") and/or "n6" ("nodes6"); without it (or when we serve none of the
                // families asked for) the reply carries the family the query came over. The other family's nodes come
                // from the paired node of a dual-stack host (PairWith).
                var want = query.Want & (FamilyWant(Family) | (_sibling is null ? DhtWant.None : FamilyWant(_sibling.Family)));
                if (want == DhtWant.None) want = FamilyWant(remote.AddressFamily);
                nodes = System.Buffers.ArrayPool<byte>.Shared.Rent(_options.K * (KrpcCodec.CompactNodeLength + KrpcCodec.CompactNode6Length));
                var n4 = (want & DhtWant.N4) != 0 ? WriteClosestOf(AddressFamily.InterNetwork, target, nodes.AsSpan(0, _options.K * KrpcCodec.CompactNodeLength)) : -1;
                var v6 = nodes.AsMemory(_options.K * KrpcCodec.CompactNodeLength);
                var n6 = (want & DhtWant.N6) != 0 ? WriteClosestOf(AddressFamily.InterNetworkV6, target, v6.Span) : -1;
                // BEP 5: the key is there even when the table has no good node yet ("nodes": "").
                if (n4 >= 0)
                {
                    reply.Nodes = nodes.AsMemory(0, n4);
                    reply.NodesKeyAlways = true;
                }

                if (n6 >= 0)
                {
                    reply.Nodes6 = v6[..n6];
                    reply.Nodes6KeyAlways = true;
                }
            }

            if (withToken)
            {
                Span<byte> token = stackalloc byte[TokenManager.TokenLength];
                _tokens.Create(remote.Address, _time.GetUtcNow(), token);
                reply.SetToken(token);
            }

            if (values is not null) FitValues(reply, values, remote.AddressFamily);
            reply.Values = values is { Count: > 0 } ? values : null;
            if (sample is { } s)
            {
                reply.Samples = s.Samples;
                reply.Num = s.Num;
                reply.Interval = (int)_options.InfohashSampleInterval.TotalSeconds;
            }

            if (item is not null)
            {
                if (item.IsMutable)
                {
                    reply.ItemSeq = item.Sequence;
                    if (knownSeq is null || item.Sequence > knownSeq)
                    {
                        reply.ItemKey = item.PublicKey;
                        reply.ItemSignature = item.Signature;
                        reply.ItemValue = item.Value;
                        reply.HasItemValue = true;
                    }
                }
                else
                {
                    reply.ItemValue = item.Value;
                    reply.HasItemValue = true;
                }
            }

            EncodeAndSend(reply, remote);
        }
        finally
        {
            reply.Nodes = default;
            reply.Nodes6 = default;
            reply.NodesKeyAlways = false;
            reply.Nodes6KeyAlways = false;
            if (nodes is not null) System.Buffers.ArrayPool<byte>.Shared.Return(nodes);
        }
    }

    private static DhtWant FamilyWant(AddressFamily family) => family == AddressFamily.InterNetworkV6 ? DhtWant.N6 : DhtWant.N4;

    /// <summary>
    /// BEP 5: "the queried node should respond with ... the compact node info for the K (8) closest good nodes in its own
    /// routing table" (a node that only queried us, never answered, is not handed out until it answers), from the table
    /// of <paramref name="family"/>: ours, or the paired node's (BEP 32 dual stack). Returns the bytes written, 0 when
    /// the paired node is busy this instant (its lock is only tried: two paired nodes answering at once never wait on
    /// each other), -1 when neither node is of that family.
    /// </summary>
    private int WriteClosestOf(AddressFamily family, NodeId target, Span<byte> into)
    {
        if (family == Family) return WriteClosest(_table, family, target, into);
        if (_sibling is not { } sibling || sibling.Family != family) return -1;
        if (!sibling._gate.TryEnter()) return 0;
        try
        {
            return WriteClosest(sibling._table, family, target, into);
        }
        finally
        {
            sibling._gate.Exit();
        }
    }

    private int WriteClosest(RoutingTable table, AddressFamily family, NodeId target, Span<byte> into)
    {
        Span<int> closest = stackalloc int[_options.K];
        closest = closest[..table.Closest(target, _options.K, _time.GetUtcNow(), closest, family, goodOnly: true)];
        var size = family == AddressFamily.InterNetworkV6 ? KrpcCodec.CompactNode6Length : KrpcCodec.CompactNodeLength;
        var n = 0;
        foreach (var location in closest)
        {
            if (n + size > into.Length) break;
            ref readonly var e = ref table.At(location);
            var entry = into.Slice(n, size);
            e.Id.WriteTo(entry);
            if (KrpcCodec.WriteCompactEndPoint(e.EndPoint, entry[NodeId.Length..]) < 0) continue;
            n += size;
        }

        return n;
    }

    /// <summary>Drops the last <paramref name="values"/> until the reply fits <see cref="MaxGetPeersReplyBytes"/>.</summary>
    private static void FitValues(KrpcMessage reply, List<IPEndPoint> values, AddressFamily family)
    {
        reply.Values = null;
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(MaxEncodedLength);
        try
        {
            // "6:values" + "l" ... "e", each value a compact address as a bencoded string ("6:" + 6 or "18:" + 18 bytes).
            var room = MaxGetPeersReplyBytes - KrpcCodec.Encode(reply, buffer) - "6:valuesle".Length;
            var each = family == AddressFamily.InterNetworkV6 ? 3 + KrpcCodec.CompactNode6Length - NodeId.Length : 2 + KrpcCodec.CompactNodeLength - NodeId.Length;
            var fit = Math.Clamp(room / each, 0, values.Count);
            values.RemoveRange(fit, values.Count - fit);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void SendError(ReadOnlySpan<byte> transactionId, IPEndPoint remote, KrpcErrorCode code, string text)
    {
        var reply = _out;
        reply.Reset();
        reply.Type = KrpcMessageType.Error;
        reply.SetTransactionId(transactionId);
        reply.SetVersion(ClientVersion);
        reply.ErrorCode = (int)code;
        reply.ErrorMessage = text;
        EncodeAndSend(reply, remote);
    }

    /// <summary>A reply (response or error) to one of our queries: match it by transaction id and source address.</summary>
    private void OnReply(KrpcMessage reply, IPEndPoint remote)
    {
        if (reply.TransactionId.Length != 2) return;
        var tid = (ushort)((reply.TransactionId[0] << 8) | reply.TransactionId[1]);
        if (_pending is null || !_pending.TryGetValue(tid, out var pending) || !pending.To.Equals(remote)) return; // unsolicited or spoofed
        RemovePending(tid);
        pending.Timer?.Dispose();
        var now = _time.GetUtcNow();
        if (reply.Type == KrpcMessageType.Error)
        {
            _errorsReceived++;
        }
        else
        {
            _responsesReceived++;
            Learn(reply.Id, remote, responded: true, now);
            // BEP 42 "ip": compact address then port; the address bytes are the vote (no endpoint made per reply).
            if (reply.ExternalAddressCompact is { IsEmpty: false } seen && _voter.Vote(remote.Address, seen[..^2])) OnExternalAddress(_voter.Current!, now);
        }

        Complete(pending, reply);
    }

    /// <summary>Adds a node we heard from to the routing table (subject to BEP 42) and pings questionable ones.</summary>
    private void Learn(NodeId id, IPEndPoint endPoint, bool responded, DateTimeOffset now)
    {
        if (endPoint.Port == 0 || endPoint.AddressFamily != Family) return;
        var verified = Bep42.IsAcceptable(id, endPoint.Address);
        if (_options.EnforceBep42 && !verified) return;
        // Scratch list: nothing re-enters Learn while the table fills it; it is copied before pinging (which may).
        var toPing = _toPingScratch;
        toPing.Clear();
        if (responded && _table.Contains(id)) _table.OnResponded(id, now, toPing);
        else if (_table.Add(id, endPoint, verified, responded, now, toPing) is AddOutcome.Added or AddOutcome.Replaced && !responded
            && _table.TryMarkPinging(id, out var added))
        {
            // BEP 5: a node that has only queried us is questionable and is not handed out in replies (good nodes only);
            // ping it once so it can become good, or be replaced when it stays silent.
            toPing.Add(added);
        }

        PingAll(toPing);
    }

    /// <summary>Pings the nodes in <paramref name="toPing"/> (a scratch list, emptied first: pinging may re-enter).</summary>
    private void PingAll(List<RoutingEntry> toPing)
    {
        if (toPing.Count == 0) return;
        if (toPing.Count == 1)
        {
            // The usual case: one node, no copy of the list.
            var one = toPing[0];
            toPing.Clear();
            PingBeforeEvict(one);
            return;
        }

        var pings = toPing.ToArray();
        toPing.Clear();
        foreach (var entry in pings) PingBeforeEvict(entry);
    }

    // BEP 5: ping a questionable node before evicting it; the candidate waits in the replacement cache meanwhile.
    private void PingBeforeEvict(in RoutingEntry entry)
    {
        if (!SendEvictPing(entry.EndPoint, entry.Id)) _table.ClearPinging(entry.Id);
    }

    private void OnEvictPingReply(NodeId id, KrpcMessage? reply)
    {
        var now = _time.GetUtcNow();
        var toPing = _toPingScratch;
        toPing.Clear();
        if (reply is { Type: KrpcMessageType.Response } r && r.Id == id) _table.OnResponded(id, now, toPing);
        else _table.OnFailed(id, now, evict: true);
        PingAll(toPing);
    }

    private void OnExternalAddress(IPAddress address, DateTimeOffset now)
    {
        _log.LogInformation("External address learned from BEP 42 votes: {Address}", address);
        // BEP 42: a node whose id does not match its external IP regenerates a compliant id (unless one was configured).
        if (_options.NodeId is not null || Bep42.IsExempt(address) || Bep42.IsCompliant(_id, address)) return;
        _id = Bep42.GenerateId(address, (byte)_random.Next(256), _random);
        _table = _table.Rebase(_id, now);
        _log.LogInformation("Node id changed to {Id} to comply with BEP 42 for {Address}", _id, address);
    }
}
