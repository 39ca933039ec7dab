using System.Net;
using Peerway.Core;

namespace Peerway.Dht;

/// <summary>A DHT node: its id and UDP endpoint.</summary>
public sealed record NodeContact(NodeId Id, IPEndPoint EndPoint);

/// <summary>
/// The outcome of an iterative lookup. <see cref="Rounds"/> is the largest hop depth of a response that improved the
/// set of k closest nodes (nodes from the routing table or bootstrap list are depth 1, nodes learned from a depth-d
/// response are depth d + 1); it is 0 when nobody answered.
/// </summary>
public sealed record LookupResult(IReadOnlyList<NodeContact> Closest, int Rounds, int QueriesSent, int Responses, TimeSpan Elapsed);

/// <summary>The peers found by a get_peers lookup (deduplicated) and the lookup itself.</summary>
public sealed record GetPeersResult(IReadOnlyList<IPEndPoint> Peers, LookupResult Lookup);

/// <summary>How many of the k closest responders accepted announce_peer.</summary>
public sealed record AnnounceResult(int AnnouncedTo, GetPeersResult Lookup);

/// <summary>Counters and sizes of a <see cref="DhtNode"/>, read atomically under its lock.</summary>
public sealed record DhtStats(
    long QueriesReceived,
    long ResponsesReceived,
    long ErrorsReceived,
    long MalformedDropped,
    long RateLimitedDropped,
    long QueriesSent,
    long Timeouts,
    long BytesSent,
    long BytesReceived,
    int RoutingTableSize,
    int StoredPeers,
    int StoredInfoHashes,
    IPAddress? ExternalAddress);

/// <summary>A saved node: its id and the contacts of its routing table.</summary>
public sealed record DhtState(NodeId Id, IReadOnlyList<NodeContact> Nodes);
