using System.Net;
using System.Net.Sockets;
using Peerway.Core;
using Peerway.Dht;

namespace Peerway.Simulation;

/// <summary>What a malicious node does with the queries it receives.</summary>
public enum AdversaryBehavior
{
    /// <summary>Answers find_node/get_peers with only attackers: the accomplices closest to the target (real ids, so the
    /// lie survives id checks) plus two fake "closer" contacts (ids next to the target at attacker endpoints), and
    /// get_peers with wrong peers; the lookup is steered into the attacker's nodes. Without BEP 42 enforcement half
    /// the liars also choose ids next to announced info-hashes (an eclipse of those keys).</summary>
    Lie,

    /// <summary>Answers pings (so it stays in routing tables) and silently drops every other query.</summary>
    Drop,
}

/// <summary>
/// A malicious DHT node written against the public KRPC codec, outside <see cref="DhtNode"/>: it joins by querying
/// honest nodes (so they add it to their routing tables, BEP 5) and then answers according to its
/// <see cref="AdversaryBehavior"/>. Its own id is honest (BEP 42-compliant when <c>compliantId</c>), so enforcement
/// lets it in; the lies are in what it answers.
/// </summary>
internal sealed class AdversaryNode
{
    private const int K = 8;
    private readonly SimulationSocket _socket;
    private readonly Func<NodeId, int, IEnumerable<NodeContact>> _accomplices;
    private readonly Random _random;
    private readonly KrpcMessage _in = new();
    private readonly KrpcMessage _out = new();
    private readonly byte[] _buffer = new byte[KrpcCodec.MaxDatagramLength];
    private ushort _nextTransaction;

    /// <param name="socket">The attacker's socket on the simulated network.</param>
    /// <param name="id">The node id it claims.</param>
    /// <param name="behavior">How it lies or stays silent.</param>
    /// <param name="accomplices">The attackers closest to a target (at most the count asked for).</param>
    /// <param name="random">The run's seeded random source.</param>
    public AdversaryNode(SimulationSocket socket, NodeId id, AdversaryBehavior behavior, Func<NodeId, int, IEnumerable<NodeContact>> accomplices, Random random)
    {
        _socket = socket;
        Id = id;
        Behavior = behavior;
        _accomplices = accomplices;
        _random = random;
    }

    public NodeId Id { get; }

    public AdversaryBehavior Behavior { get; }

    public IPEndPoint EndPoint => _socket.LocalEndPoint;

    public long QueriesAnswered { get; private set; }

    public long QueriesDropped { get; private set; }

    public void Start() => _socket.Start(OnDatagram);

    /// <summary>Sends find_node queries for random targets to <paramref name="honest"/> nodes so they insert this node
    /// into their routing tables (BEP 5: a node that queries us is a candidate contact).</summary>
    public void Announce(IEnumerable<IPEndPoint> honest)
    {
        ArgumentNullException.ThrowIfNull(honest);
        foreach (var to in honest)
        {
            _out.Reset();
            _out.Type = KrpcMessageType.Query;
            _out.Method = KrpcMethod.FindNode;
            _out.SetMethodName(KrpcMessage.NameOf(KrpcMethod.FindNode));
            Span<byte> t = [(byte)'a', (byte)(_nextTransaction >> 8), (byte)_nextTransaction];
            _nextTransaction++;
            _out.SetTransactionId(t);
            _out.Id = Id;
            _out.Target = NodeId.Random(_random);
            Send(to);
        }
    }

    private void OnDatagram(ReadOnlySpan<byte> datagram, IPEndPoint from)
    {
        // Replies to its own announce queries are of no interest; malformed input is ignored as by any node.
        if (KrpcCodec.Decode(datagram, _in) != KrpcError.None || _in.Type != KrpcMessageType.Query) return;
        if (_in.Method != KrpcMethod.Ping && Behavior == AdversaryBehavior.Drop)
        {
            QueriesDropped++;
            return;
        }

        _out.Reset();
        _out.Type = KrpcMessageType.Response;
        _out.SetTransactionId(_in.TransactionId);
        _out.Id = Id;
        _out.ExternalAddress = from;
        switch (_in.Method)
        {
            case KrpcMethod.FindNode when _in.Target is { } target:
                _out.Nodes = FakeCloser(target);
                break;
            case KrpcMethod.GetPeers when _in.InfoHash is { } infoHash:
                _out.Nodes = FakeCloser(infoHash);
                _out.SetToken("bad!"u8);
                _out.Values = WrongPeers();
                break;
            case KrpcMethod.Ping:
            case KrpcMethod.AnnouncePeer:
                break; // acknowledge (and forget the announce)
            default:
                return;
        }

        QueriesAnswered++;
        Send(from);
    }

    /// <summary>k contacts, all attackers: two fake ids that share all but the last 16 bits with the target (closer
    /// than any honest node could be) at this node's endpoint, then the real accomplices closest to the target.</summary>
    private byte[] FakeCloser(NodeId target)
    {
        var contacts = new List<NodeContact>(K);
        Span<byte> id = stackalloc byte[NodeId.Length];
        for (var i = 0; i < 2; i++)
        {
            target.WriteTo(id);
            id[18] ^= (byte)_random.Next(256);
            id[19] ^= (byte)(_random.Next(255) + 1);
            contacts.Add(new NodeContact(new NodeId(id), EndPoint));
        }

        contacts.AddRange(_accomplices(target, K - contacts.Count));
        return KrpcCodec.WriteCompactNodes(contacts, AddressFamily.InterNetwork);
    }

    /// <summary>Peers that do not exist (documentation addresses, RFC 5737).</summary>
    private List<IPEndPoint> WrongPeers()
    {
        var peers = new List<IPEndPoint>(4);
        for (var i = 0; i < 4; i++)
        {
            peers.Add(new IPEndPoint(new IPAddress([203, 0, 113, (byte)_random.Next(1, 255)]), _random.Next(1024, 65535)));
        }

        return peers;
    }

    private void Send(IPEndPoint to)
    {
        var n = KrpcCodec.Encode(_out, _buffer);
        if (n > 0) _socket.Send(_buffer.AsSpan(0, n), to);
    }
}
