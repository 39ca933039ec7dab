using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Core;
using Peerway.Net;

namespace Peerway.Dht;

/// <summary>A Mainline DHT node (BEP 5, BEP 42) over an injected datagram socket and clock.</summary>
public sealed class DhtNode : IAsyncDisposable
{
    public DhtNode(IDatagramSocket socket, TimeProvider time, DhtOptions options, ILogger<DhtNode>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        LocalEndPoint = socket.LocalEndPoint;
        Id = options.NodeId ?? NodeId.Random();
        _ = logger;
    }

    public NodeId Id { get; }

    public IPEndPoint LocalEndPoint { get; }

    public DhtStats Stats => throw new NotImplementedException();

    public void Start() => throw new NotImplementedException();

    public Task<int> BootstrapAsync(IReadOnlyList<IPEndPoint> routers, CancellationToken ct) => throw new NotImplementedException();

    public Task<NodeId?> PingAsync(IPEndPoint endPoint, CancellationToken ct) => throw new NotImplementedException();

    public Task<LookupResult> FindNodeAsync(NodeId target, CancellationToken ct) => throw new NotImplementedException();

    public Task<GetPeersResult> GetPeersAsync(NodeId infoHash, CancellationToken ct) => throw new NotImplementedException();

    public Task<AnnounceResult> AnnounceAsync(NodeId infoHash, int port, bool impliedPort, CancellationToken ct) =>
        throw new NotImplementedException();

    public IReadOnlyList<NodeContact> RoutingTableNodes() => throw new NotImplementedException();

    /// <summary>The state file: a bencoded dictionary {"id": 20 bytes, "nodes": compact IPv4 node info, "nodes6": compact IPv6}.</summary>
    public byte[] SaveState() => throw new NotImplementedException();

    public static bool TryLoadState(ReadOnlySpan<byte> data, out DhtState? state) => throw new NotImplementedException();

    /// <summary>Pings saved contacts so a restarted node rejoins without a bootstrap router; returns the routing table size.</summary>
    public Task<int> RestoreAsync(IReadOnlyList<NodeContact> nodes, CancellationToken ct) => throw new NotImplementedException();

    public ValueTask DisposeAsync() => throw new NotImplementedException();
}
