using Peerway.Core;

namespace Peerway.Dht;

// BEP 44: storing arbitrary data in the DHT — get and put of immutable and mutable items.
public sealed partial class DhtNode
{
    /// <summary>BEP 44 get of an immutable item: a lookup of <paramref name="target"/> keeping the first value whose SHA-1
    /// is the target (a value that does not hash to it is ignored: nobody can make us return another).</summary>
    public async Task<DhtItemResult> GetImmutableAsync(NodeId target, CancellationToken ct)
    {
        var op = await RunLookupAsync(target, LookupKind.Get, [], ct, reply =>
            reply.HasItemValue && reply.ItemKey is null && reply.ItemValue.Length is > 0 and <= Bep44.MaxValueLength
            && Bep44.ImmutableTarget(reply.ItemValue.Span) == target
                ? DhtItem.Immutable(reply.ItemValue.Span)
                : null).ConfigureAwait(false);
        return new DhtItemResult(op.Item, op.Result!);
    }

    /// <summary>BEP 44 get of a mutable item: a lookup of SHA-1(<paramref name="publicKey"/> + <paramref name="salt"/>)
    /// keeping the item with the highest sequence number whose signature verifies with that key and salt.</summary>
    public async Task<DhtItemResult> GetMutableAsync(ReadOnlyMemory<byte> publicKey, ReadOnlyMemory<byte> salt, CancellationToken ct)
    {
        var target = Bep44.MutableTarget(publicKey.Span, salt.Span);
        var op = await RunLookupAsync(target, LookupKind.Get, [], ct, reply => ReadMutable(reply, publicKey.Span, salt.Span, target)).ConfigureAwait(false);
        return new DhtItemResult(op.Item, op.Result!);
    }

    /// <summary>BEP 44 put of an immutable item: a get lookup for its target (collecting write tokens), then put to the
    /// k closest nodes that gave one. <paramref name="value"/> is bencoded (e.g. <c>12:Hello World!</c>).</summary>
    public async Task<DhtPutResult> PutImmutableAsync(ReadOnlyMemory<byte> value, CancellationToken ct)
    {
        CheckValue(value.Span);
        var item = DhtItem.Immutable(value.Span);
        var op = await RunLookupAsync(item.Target, LookupKind.Get, [], ct).ConfigureAwait(false);
        var (stored, errors) = await PutToClosestAsync(op, item, cas: null).ConfigureAwait(false);
        return new DhtPutResult(item, stored, errors, op.Result!);
    }

    /// <summary>
    /// BEP 44 put of a mutable item signed by <paramref name="key"/>: a get lookup for its target (write tokens, and the
    /// newest stored version), then put to the k closest nodes that gave a token. Without <paramref name="sequence"/>
    /// the sequence number is one above the highest found (1 when none). With <paramref name="cas"/>, nodes store it
    /// only if their copy has that sequence number (BEP 44 compare-and-swap).
    /// </summary>
    public async Task<DhtPutResult> PutMutableAsync(DhtSigningKey key, ReadOnlyMemory<byte> salt, ReadOnlyMemory<byte> value,
        long? sequence, long? cas, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        CheckValue(value.Span);
        if (salt.Length > Bep44.MaxSaltLength) throw new ArgumentException($"A BEP 44 salt is at most {Bep44.MaxSaltLength} bytes.", nameof(salt));
        var target = Bep44.MutableTarget(key.PublicKey, salt.Span);
        var publicKey = key.PublicKey;
        var op = await RunLookupAsync(target, LookupKind.Get, [], ct, reply => ReadMutable(reply, publicKey, salt.Span, target)).ConfigureAwait(false);
        var seq = sequence ?? (op.Item is { } newest ? newest.Sequence + 1 : 1);
        var item = DhtItem.Mutable(key, salt.Span, seq, value.Span);
        var (stored, errors) = await PutToClosestAsync(op, item, cas).ConfigureAwait(false);
        return new DhtPutResult(item, stored, errors, op.Result!);
    }

    /// <summary>
    /// BEP 44 put of an item signed elsewhere (e.g. a log head republished by a follower, which holds no key: a mutable
    /// item's signature is over its content, so anyone may store it again): a get lookup for its target, then put to the
    /// k closest nodes that gave a write token. Throws <see cref="ArgumentException"/> when the item does not verify.
    /// </summary>
    public async Task<DhtPutResult> PutItemAsync(DhtItem item, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(item);
        if (!Bep44.IsValid(item)) throw new ArgumentException("The item does not verify (BEP 44).", nameof(item));
        var op = await RunLookupAsync(item.Target, LookupKind.Get, [], ct).ConfigureAwait(false);
        var (stored, errors) = await PutToClosestAsync(op, item, cas: null).ConfigureAwait(false);
        return new DhtPutResult(item, stored, errors, op.Result!);
    }

    private static void CheckValue(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty || value.Length > Bep44.MaxValueLength)
        {
            throw new ArgumentException($"A BEP 44 value is 1 to {Bep44.MaxValueLength} bytes of bencode (got {value.Length}).", nameof(value));
        }

        var reader = new Peerway.Core.Bencoding.BencodeReader(value);
        if (!reader.TrySkipValue() || !reader.TryReadEndOfInput()) throw new ArgumentException("A BEP 44 value must be one bencoded value.", nameof(value));
    }

    private static DhtItem? ReadMutable(KrpcMessage reply, ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> salt, NodeId target)
    {
        if (!reply.HasItemValue || reply.ItemKey is not { } k || !k.AsSpan().SequenceEqual(publicKey) || reply.ItemSignature is not { } sig
            || reply.ItemSeq is not { } seq || reply.ItemValue.Length > Bep44.MaxValueLength)
        {
            return null;
        }

        // BEP 44 replies do not carry the salt: the requester verifies with the salt it asked for.
        var value = reply.ItemValue.Span;
        return Bep44.Verify(k, sig, salt, seq, value) ? new DhtItem(target, value.ToArray(), k, salt.ToArray(), seq, sig) : null;
    }

    /// <summary>Puts <paramref name="item"/> to the closest nodes of a finished get lookup that gave a write token;
    /// returns how many accepted and the BEP 44 error codes of those that refused.</summary>
    private async Task<(int Stored, IReadOnlyList<int> Errors)> PutToClosestAsync(LookupOperation op, DhtItem item, long? cas)
    {
        var tcs = new TaskCompletionSource<(int, IReadOnlyList<int>)>();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var outstanding = 0;
            var accepted = 0;
            var errors = new List<int>();
            Action cancel = () => tcs.TrySetResult((accepted, errors));
            foreach (var c in op.Lookup.ClosestAnswered(withToken: true))
            {
                var sent = SendQuery(new PendingQuery(c.EndPoint, KrpcMethod.Put, item.Target)
                {
                    Token = c.Token,
                    Item = item,
                    Cas = cas,
                    Done = reply =>
                    {
                        if (reply is { Type: KrpcMessageType.Response }) accepted++;
                        else if (reply is { Type: KrpcMessageType.Error } error) errors.Add(error.ErrorCode);
                        if (--outstanding == 0)
                        {
                            _simpleWaits.Remove(cancel);
                            Defer(() => tcs.TrySetResult((accepted, errors)));
                        }
                    },
                });
                if (sent) outstanding++;
            }

            if (outstanding == 0) tcs.TrySetResult((0, errors));
            else _simpleWaits.Add(cancel);
        }

        RunDeferred();
        return await tcs.Task.ConfigureAwait(false);
    }
}
