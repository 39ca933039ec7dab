using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using Peerway.Dht;
using Peerway.Nat.Turn;
using Peerway.Torrent;

namespace Peerway.Node.Daemon;

/// <summary>
/// Issue 18 item 6: the node's own <c>Peerway.Node</c> meter (gateway and RPC requests) and the export of every
/// engine's meter (<see cref="TorrentClientMetrics"/>, <see cref="DhtNodeMetrics"/>) at <c>/metrics</c> in the
/// Prometheus text exposition format, by OpenTelemetry's Prometheus exporter — the format is not written here. One
/// <see cref="MeterProvider"/> per node, so two nodes in one process each export their own.
/// </summary>
internal sealed class NodeMetrics : IDisposable
{
    public const string MeterName = "Peerway.Node";

    private readonly Meter _meter;
    private readonly Counter<long> _gatewayRequests;
    private readonly Counter<long> _rpcRequests;
    private readonly List<IDisposable> _engines = [];
    private MeterProvider? _provider;

    public NodeMetrics()
    {
        _meter = new Meter(MeterName);
        _gatewayRequests = _meter.CreateCounter<long>("peerway.gateway.requests", "{request}", "IPFS gateway requests answered (status: HTTP status).");
        _rpcRequests = _meter.CreateCounter<long>("peerway.rpc.requests", "{request}", "Transmission RPC calls (method) and kubo API calls (path).");
    }

    /// <summary>Starts exporting the engines' meters (each instrument read on a scrape).</summary>
    public void Start(TorrentClient torrents, DhtNode dht, TurnServer? turn = null)
    {
        if (turn is not null)
        {
            // Issue 18 item 6: the hosted TURN server's allocations, read at each scrape.
            _meter.CreateObservableGauge("peerway.turn.allocations", () => turn.AllocationCount, "{allocation}", "TURN allocations open now.");
            _meter.CreateObservableCounter("peerway.turn.relayed", () => new[]
            {
                new Measurement<long>(turn.Stats.RelayedToPeer, new KeyValuePair<string, object?>("direction", "to_peer")),
                new Measurement<long>(turn.Stats.RelayedToClient, new KeyValuePair<string, object?>("direction", "to_client")),
            }, "{packet}", "Packets the TURN server relayed.");
            _meter.CreateObservableCounter("peerway.turn.requests", () => turn.Stats.Requests, "{request}", "STUN/TURN requests received.");
        }

        // Instruments are picked up when their meter is created while the provider listens, or by the provider at
        // Build for meters already alive: the engines' meters are created after, under the provider.
        _provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(MeterName, TorrentClientMetrics.MeterName, DhtNodeMetrics.MeterName)
            // No scrape cache: a scrape reads the instruments now (the exporter caches 300 ms by default).
            .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0)
            .Build();
        _engines.Add(new TorrentClientMetrics(torrents));
        _engines.Add(new DhtNodeMetrics(dht));
    }

    public void GatewayRequest(int status) => _gatewayRequests.Add(1, new KeyValuePair<string, object?>("status", status));

    public void RpcRequest(string api, string method) =>
        _rpcRequests.Add(1, new KeyValuePair<string, object?>("api", api), new KeyValuePair<string, object?>("method", method));

    /// <summary>Serves <c>/metrics</c> under the rpc listener's access rule (<paramref name="admit"/>).</summary>
    public void Map(WebApplication app, Func<HttpContext, Task<bool>> admit)
    {
        app.UseOpenTelemetryPrometheusScrapingEndpoint(_provider, context => context.Request.Path == "/metrics", null, branch =>
        {
            branch.Use(async (context, next) =>
            {
                if (await admit(context).ConfigureAwait(false)) await next(context).ConfigureAwait(false);
            });
        }, null);
    }

    public void Dispose()
    {
        foreach (var e in _engines) e.Dispose();
        _provider?.Dispose();
        _meter.Dispose();
    }
}
