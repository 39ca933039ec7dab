using System.Net;
using Microsoft.Extensions.Logging;
using Peerway.Dht;
using Peerway.Net;

namespace Peerway.Node;

/// <summary>What a <see cref="DhtHost"/> binds and where it keeps its state.</summary>
public sealed record DhtHostOptions
{
    /// <summary>UDP address and port to bind (BEP 5 suggests 6881; 0 picks an ephemeral port).</summary>
    public IPEndPoint Bind { get; init; } = new(IPAddress.Any, 6881);

    /// <summary>The state file (node id + routing table). Null: nothing is loaded or saved.</summary>
    public string? StatePath { get; init; }

    /// <summary>Engine options. Its <see cref="DhtOptions.NodeId"/> is replaced by the saved id when a state file exists.</summary>
    public DhtOptions Dht { get; init; } = new();

    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Bind);
        ArgumentNullException.ThrowIfNull(Dht);
        if (StatePath is { Length: 0 }) throw new ArgumentOutOfRangeException(nameof(StatePath), "StatePath must not be empty.");
        Dht.Validate();
    }
}

/// <summary>
/// The composition root of one DHT node on a real UDP socket: binds the socket, loads the state file, builds and starts
/// the <see cref="DhtNode"/>, joins the network, saves the state. All DHT logic lives in Peerway.Dht.
/// </summary>
public sealed class DhtHost : IAsyncDisposable
{
    private readonly DhtHostOptions _options;
    private readonly CountingDatagramSocket _socket;
    private readonly ILogger _log;
    private bool _disposed;

    private DhtHost(DhtHostOptions options, CountingDatagramSocket socket, DhtNode node, DhtState? restored, ILogger log)
    {
        _options = options;
        _socket = socket;
        Node = node;
        RestoredState = restored;
        _log = log;
    }

    public DhtNode Node { get; }

    /// <summary>The saved state this host started from, or null for a fresh node.</summary>
    public DhtState? RestoredState { get; }

    public IPEndPoint LocalEndPoint => _socket.LocalEndPoint;

    /// <summary>Datagrams sent and received by this node's socket.</summary>
    public CountingDatagramSocket Socket => _socket;

    /// <summary>
    /// Loads the state file (if any), binds the UDP socket and starts the node. Throws
    /// <see cref="InvalidDataException"/> for an unreadable state file (which is left untouched) and
    /// <see cref="System.Net.Sockets.SocketException"/> when the address cannot be bound. With <paramref name="socket"/>
    /// (a port shared with uTP), the node runs on it instead of binding <see cref="DhtHostOptions.Bind"/>.
    /// </summary>
    public static DhtHost Start(DhtHostOptions options, ILoggerFactory loggers, TimeProvider? time = null, IDatagramSocket? socket = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        options.Validate();
        var log = loggers.CreateLogger<DhtHost>();

        DhtState? restored = null;
        if (options.StatePath is { } path && StateFile.TryRead(path) is { } bytes)
        {
            if (!DhtNode.TryLoadState(bytes, out restored) || restored is null)
            {
                throw new InvalidDataException(
                    $"state file {path} is not a valid DHT state file; move it away or pass another --state");
            }

            log.LogInformation("Loaded state from {Path}: id {Id}, {Count} nodes", path, restored.Id, restored.Nodes.Count);
        }

        var dhtOptions = restored is null ? options.Dht : options.Dht with { NodeId = restored.Id };
        var counting = new CountingDatagramSocket(socket ?? new UdpDatagramSocket(options.Bind));
        try
        {
            var node = new DhtNode(counting, time ?? TimeProvider.System, dhtOptions, loggers.CreateLogger<DhtNode>());
            node.Start();
            return new DhtHost(options, counting, node, restored, log);
        }
        catch
        {
            counting.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Joins the network: a node restored from a state file pings its saved contacts (no bootstrap router needed,
    /// BEP 5 "routing table ... should be saved between invocations"); otherwise, or when none of them answers, it
    /// bootstraps from <paramref name="routers"/>. Returns the routing table size.
    /// </summary>
    public async Task<int> JoinAsync(IReadOnlyList<IPEndPoint> routers, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(routers);
        var size = 0;
        if (RestoredState is { Nodes.Count: > 0 } state)
        {
            size = await Node.RestoreAsync(state.Nodes, ct);
            _log.LogInformation("Rejoined from {Count} saved nodes: routing table {Size}", state.Nodes.Count, size);
        }

        if (size == 0 && routers.Count > 0)
        {
            size = await Node.BootstrapAsync(routers, ct);
            _log.LogInformation("Bootstrapped from {Count} routers: routing table {Size}", routers.Count, size);
        }

        return size;
    }

    /// <summary>Writes the node's state to the state file atomically (no-op without a state file).</summary>
    public void SaveState()
    {
        if (_options.StatePath is not { } path) return;
        StateFile.WriteAtomic(path, Node.SaveState());
        _log.LogInformation("Saved state to {Path}", path);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        await Node.DisposeAsync();
        _socket.Dispose();
    }
}
