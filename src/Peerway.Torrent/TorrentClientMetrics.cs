using System.Diagnostics.Metrics;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent;

/// <summary>
/// The <c>Peerway.Torrent</c> meter (System.Diagnostics.Metrics) over one <see cref="TorrentClient"/>: observable
/// instruments read when a listener (an exporter) collects, so the engine's hot paths count nothing extra. Byte and
/// piece counters are sums over the torrents the client holds now (a removed torrent's share leaves the sum, which a
/// Prometheus <c>rate()</c> treats as a counter reset).
/// </summary>
public sealed class TorrentClientMetrics : IDisposable
{
    /// <summary>The meter's name, for a listener's AddMeter.</summary>
    public const string MeterName = "Peerway.Torrent";

    private readonly Meter _meter;
    private readonly TorrentClient _client;

    /// <summary>Creates the meter (from <paramref name="meters"/> when given) and its instruments.</summary>
    public TorrentClientMetrics(TorrentClient client, IMeterFactory? meters = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        _meter = meters?.Create(MeterName) ?? new Meter(MeterName);
        _meter.CreateObservableUpDownCounter("peerway.torrent.peers", () => _client.ConnectionCount, "{peer}", "Peer connections open, all torrents.");
        _meter.CreateObservableUpDownCounter("peerway.torrent.torrents", () => _client.Torrents.Count, "{torrent}", "Torrents the client holds.");
        _meter.CreateObservableCounter("peerway.torrent.transferred", Transferred, "By", "Payload bytes exchanged with peers (direction: down, up).");
        _meter.CreateObservableCounter("peerway.torrent.pieces.verified", () => Sum(s => s.VerifiedPieces), "{piece}", "Pieces whose SHA-1 matched (BEP 3).");
        _meter.CreateObservableCounter("peerway.torrent.pieces.failed", () => Sum(s => s.HashFailures), "{piece}", "Pieces that failed the hash check.");
    }

    private IEnumerable<Measurement<long>> Transferred()
    {
        long down = 0, up = 0;
        foreach (var t in _client.Torrents)
        {
            var s = t.GetStats();
            down += s.Downloaded;
            up += s.Uploaded;
        }

        return [new(down, new KeyValuePair<string, object?>("direction", "down")), new(up, new KeyValuePair<string, object?>("direction", "up"))];
    }

    private long Sum(Func<TorrentSessionStats, long> pick)
    {
        long total = 0;
        foreach (var t in _client.Torrents) total += pick(t.GetStats());
        return total;
    }

    /// <summary>Disposes the meter: its instruments are no longer reported.</summary>
    public void Dispose() => _meter.Dispose();
}
