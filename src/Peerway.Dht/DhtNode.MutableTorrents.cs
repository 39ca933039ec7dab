using System.Runtime.CompilerServices;
using Peerway.Core;

namespace Peerway.Dht;

// BEP 46 on the node: resolve, publish and follow a mutable torrent.
public sealed partial class DhtNode
{
    /// <summary>
    /// BEP 46: "Consumers issue a get request using the target ID of the mutable item": the newest item of the link's key
    /// and salt that verifies (BEP 44), read as a torrent pointer; null when none is found or its value is not one.
    /// BEP 32: a node paired with one of the other family (<see cref="PairWith"/>) asks both DHTs and keeps the higher seq.
    /// </summary>
    public async Task<MutableTorrentUpdate?> ResolveMutableTorrentAsync(MutableTorrentLink link, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(link);
        var newest = await GetMutableDualStackAsync(link.PublicKey, link.Salt, ct).ConfigureAwait(false);
        return newest is { } item && Bep46.TryDecodeValue(item.Value, out var infoHash)
            ? new MutableTorrentUpdate(item.Sequence, infoHash, item)
            : null;
    }

    /// <summary>
    /// BEP 46: "Publishers should issue a mutable put request when they want to notify consumers about an update of a
    /// torrent": puts <c>{ih: infoHash}</c> signed by <paramref name="key"/> with the sequence number one above the
    /// highest found (1 when none). BEP 32: paired, the highest is looked for in both DHTs and the item put in both
    /// (<see cref="DhtPutResult.StoredOn"/> counts the nodes of both).
    /// </summary>
    public async Task<DhtPutResult> PublishMutableTorrentAsync(DhtSigningKey key, ReadOnlyMemory<byte> salt, NodeId infoHash, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        var value = Bep46.EncodeValue(infoHash);
        if (Pair is null) return await PutMutableAsync(key, salt, value, sequence: null, cas: null, ct).ConfigureAwait(false);
        if (salt.Length > Bep44.MaxSaltLength) throw new ArgumentException($"A BEP 44 salt is at most {Bep44.MaxSaltLength} bytes.", nameof(salt));
        var newest = await GetMutableDualStackAsync(key.PublicKey, salt, ct).ConfigureAwait(false);
        var item = DhtItem.Mutable(key, salt.Span, newest is null ? 1 : newest.Sequence + 1, value);
        return await PutItemDualStackAsync(item, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// BEP 46: "Periodically polling such ID by issuing get requests allows consumers to be notified about updates":
    /// gets the link's item now and then every <paramref name="interval"/> (on this node's <see cref="TimeProvider"/>),
    /// yielding the first torrent pointer found and then each one with a higher sequence number. Ends when
    /// <paramref name="ct"/> is cancelled (an <see cref="OperationCanceledException"/>).
    /// </summary>
    public async IAsyncEnumerable<MutableTorrentUpdate> FollowMutableTorrentAsync(MutableTorrentLink link, TimeSpan interval,
        [EnumeratorCancellation] CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(link);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        long last = -1;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var update = await ResolveMutableTorrentAsync(link, ct).ConfigureAwait(false);
            if (update is not null && update.Sequence > last)
            {
                last = update.Sequence;
                yield return update;
            }

            await Task.Delay(interval, _time, ct).ConfigureAwait(false);
        }
    }
}
