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
