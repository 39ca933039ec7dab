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
    IPAddress? ExternalAddress,
    int StoredItems = 0,
    long LookupsStarted = 0);

/// <summary>A saved node: its id and the contacts of its routing table.</summary>
public sealed record DhtState(NodeId Id, IReadOnlyList<NodeContact> Nodes);

/// <summary>A BEP 44 get: the verified item found (null: none, or none that verified), and the lookup.</summary>
public sealed record DhtItemResult(DhtItem? Item, LookupResult Lookup);

/// <summary>A BEP 44 put: the item sent, how many of the closest nodes stored it, the error codes of those that refused
/// (e.g. 302 when they hold a newer sequence number), and the lookup that found them.</summary>
public sealed record DhtPutResult(DhtItem Item, int StoredOn, IReadOnlyList<int> Errors, LookupResult Lookup);

/// <summary>A BEP 51 sample_infohashes answer: the responder's id, a random sample of the info-hashes it stores, how many
/// it stores in all, how long to wait before asking it again, and the nodes it knows closest to the target.</summary>
public sealed record DhtSampleResult(NodeId Responder, IReadOnlyList<NodeId> Samples, int Num, TimeSpan Interval, IReadOnlyList<NodeContact> Nodes);
