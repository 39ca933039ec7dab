using System.Diagnostics.Metrics;

namespace Peerway.Dht;

/// <summary>
/// The <c>Peerway.Dht</c> meter (System.Diagnostics.Metrics) over one <see cref="DhtNode"/>: observable instruments read
/// from <see cref="DhtNode.Stats"/> when a listener collects.
/// </summary>
public sealed class DhtNodeMetrics : IDisposable
{
    /// <summary>The meter's name, for a listener's AddMeter.</summary>
    public const string MeterName = "Peerway.Dht";

    private readonly Meter _meter;

    /// <summary>Creates the meter (from <paramref name="meters"/> when given) and its instruments.</summary>
    public DhtNodeMetrics(DhtNode node, IMeterFactory? meters = null)
    {
        ArgumentNullException.ThrowIfNull(node);
        _meter = meters?.Create(MeterName) ?? new Meter(MeterName);
        _meter.CreateObservableCounter("peerway.dht.queries", () =>
        {
            var s = node.Stats;
            return new[] { new Measurement<long>(s.QueriesReceived, Direction("in")), new Measurement<long>(s.QueriesSent, Direction("out")) };
        }, "{query}", "KRPC queries (BEP 5) received (in) and sent (out).");
        _meter.CreateObservableCounter("peerway.dht.lookups", () => node.Stats.LookupsStarted, "{lookup}", "Iterative lookups started (Kademlia §2.3).");
        _meter.CreateObservableCounter("peerway.dht.timeouts", () => node.Stats.Timeouts, "{query}", "Queries sent that got no answer.");
        _meter.CreateObservableUpDownCounter("peerway.dht.routing_table.nodes", () => node.Stats.RoutingTableSize, "{node}", "Nodes in the routing table.");
    }

    private static KeyValuePair<string, object?> Direction(string value) => new("direction", value);

    /// <summary>Disposes the meter: its instruments are no longer reported.</summary>
    public void Dispose() => _meter.Dispose();
}
