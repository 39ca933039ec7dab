using System.Net;
using System.Net.Sockets;
using Peerway.Core;

namespace Peerway.Dht;

// BEP 32: "There are two distinct DHTs: the IPv4 DHT, and the IPv6 DHT." A dual-stack host runs one node per family
// (each with its own socket and routing table) and pairs them: each answers "want" for the other family from the
// other's table, asks for both families itself, and hands the other family's nodes it hears of to its pair.
public sealed partial class DhtNode
{
    private DhtNode? _sibling;

    /// <summary>The node of the other address family this node is paired with (<see cref="PairWith"/>), or null.</summary>
    public DhtNode? Pair
    {
        get
        {
            lock (_gate) return _sibling;
        }
    }

    /// <summary>
    /// BEP 32 dual stack: pairs this node with <paramref name="other"/>, a node of the other address family on the same
    /// host (BEP 32 recommends the same node id for both). From then on each answers a find_node/get_peers "want" for
    /// the other's family from the other's routing table, sends <c>want: ["n4", "n6"]</c> in its own find_node and
    /// get_peers queries, and passes the other family's nodes it is told of to the other (which pings them before
    /// trusting them). Call once per pair, before or after <see cref="Start"/>.
    /// </summary>
    public void PairWith(DhtNode other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Family == Family) throw new ArgumentException("BEP 32 pairs an IPv4 node with an IPv6 node: both are " + Family + ".", nameof(other));
        if (Family is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)) throw new InvalidOperationException("Only IPv4 and IPv6 nodes pair.");
        // One lock at a time: the two gates are never held together (WriteClosestOf only tries the other's).
        lock (_gate)
        {
            if (_sibling is not null && !ReferenceEquals(_sibling, other)) throw new InvalidOperationException("The node is already paired.");
            _sibling = other;
        }

        lock (other._gate)
        {
            if (other._sibling is not null && !ReferenceEquals(other._sibling, this)) throw new InvalidOperationException("The other node is already paired.");
            other._sibling = this;
        }
    }

    /// <summary>
    /// BEP 32 dual stack: "a node [...] participating in both DHTs" looks up and announces on each. get_peers and
    /// announce_peer (<see cref="AnnounceAsync"/>) on this node and, when paired, on its pair at once; the peers both
    /// return (IPv4 and IPv6 endpoints) merged, duplicates dropped. Unpaired: this node's lookup alone.
    /// </summary>
    public async Task<IReadOnlyList<IPEndPoint>> AnnounceDualStackAsync(NodeId infoHash, int port, bool impliedPort, CancellationToken ct)
    {
        var pair = Pair;
        var mine = AnnounceAsync(infoHash, port, impliedPort, ct);
        if (pair is null) return (await mine.ConfigureAwait(false)).Lookup.Peers;
        var theirs = pair.AnnounceAsync(infoHash, port, impliedPort, ct);
        var both = await Task.WhenAll(mine, theirs).ConfigureAwait(false);
        return both.SelectMany(a => a.Lookup.Peers).Distinct().ToList();
    }

    /// <summary>
    /// BEP 32 dual stack for BEP 44 puts of an item signed elsewhere: <see cref="PutItemAsync"/> on this node and, when
    /// paired, on its pair at once. The result counts the nodes of both DHTs that stored it (errors of both, this node's lookup).
    /// </summary>
    public async Task<DhtPutResult> PutItemDualStackAsync(DhtItem item, CancellationToken ct)
    {
        var pair = Pair;
        var mine = PutItemAsync(item, ct);
        if (pair is null) return await mine.ConfigureAwait(false);
        var theirs = pair.PutItemAsync(item, ct);
        await Task.WhenAll(mine, theirs).ConfigureAwait(false);
        return Merge(await mine.ConfigureAwait(false), await theirs.ConfigureAwait(false));
    }

    /// <summary>BEP 44 get of a mutable item on this node and, when paired, its pair: the item of the higher sequence
    /// number of the two (each already verified against the key and salt).</summary>
    private async Task<DhtItem?> GetMutableDualStackAsync(ReadOnlyMemory<byte> publicKey, ReadOnlyMemory<byte> salt, CancellationToken ct)
    {
        var pair = Pair;
        var mine = GetMutableAsync(publicKey, salt, ct);
        if (pair is null) return (await mine.ConfigureAwait(false)).Item;
        var theirs = pair.GetMutableAsync(publicKey, salt, ct);
        var both = await Task.WhenAll(mine, theirs).ConfigureAwait(false);
        return both.Select(r => r.Item).Where(i => i is not null).MaxBy(i => i!.Sequence);
    }

    private static DhtPutResult Merge(DhtPutResult mine, DhtPutResult theirs) =>
        mine with { StoredOn = mine.StoredOn + theirs.StoredOn, Errors = [.. mine.Errors, .. theirs.Errors] };

    /// <summary>BEP 32: a reply's nodes of the paired node's family ("nodes6" to an IPv4 node, "nodes" to an IPv6 one),
    /// handed to the pair once our lock is released.</summary>
    private void ShareWithSibling(KrpcMessage reply)
    {
        if (_sibling is not { } sibling) return;
        var other = Family == AddressFamily.InterNetworkV6 ? reply.Nodes.Span : reply.Nodes6.Span;
        if (other.IsEmpty) return;
        var contacts = KrpcCodec.ReadCompactNodes(other, sibling.Family);
        Defer(() => sibling.LearnFromSibling(contacts));
    }

    private void LearnFromSibling(IReadOnlyList<NodeContact> contacts)
    {
        lock (_gate)
        {
            if (_disposed) return;
            var now = _time.GetUtcNow();
            // Heard of, not heard from: added as questionable and pinged (BEP 5), so only nodes that answer become good.
            foreach (var c in contacts)
            {
                if (c.Id != _id) Learn(c.Id, c.EndPoint, responded: false, now);
            }
        }

        RunDeferred();
    }
}
