using Peerway.Net;

namespace Peerway.Torrent;

/// <summary>Transport selection: which transports listen and how peers are dialled (BEP 29 uTP first, TCP fallback).</summary>
public sealed partial class TorrentClient
{
    private readonly TransportDialer _dialer;

    /// <summary>The transports of the kinds <see cref="TorrentClientOptions.Transports"/> allows, in the order given.</summary>
    private static IStreamTransport[] SelectTransports(IReadOnlyList<IStreamTransport> transports, TorrentClientOptions options)
    {
        if (transports.Any(t => t is null)) throw new ArgumentException("a transport is null", nameof(transports));
        IStreamTransport[] selected = [.. transports.Where(t => options.Transports.Allows(t.Kind))];
        if (selected.Length == 0)
        {
            throw new ArgumentException(transports.Count == 0
                ? "at least one transport is needed"
                : $"none of the transports ({string.Join(", ", transports.Select(t => t.Kind))}) is allowed by Transports = {options.Transports}", nameof(transports));
        }

        return selected;
    }

    /// <summary>The transport a dial to <paramref name="peer"/> last succeeded on (uTP or TCP), if remembered.</summary>
    internal StreamTransportKind? RememberedTransport(System.Net.IPEndPoint peer) => _dialer.Remembered(peer);

    /// <summary>Registered connections by what carries them (uTP, TCP, ...), across all torrents.</summary>
    public IReadOnlyDictionary<StreamTransportKind, int> ConnectionsByTransport()
    {
        var counts = new Dictionary<StreamTransportKind, int>();
        foreach (var handle in Torrents)
        {
            if (handle.Session is not { } session) continue;
            foreach (var kind in session.ConnectionTransports()) counts[kind] = counts.GetValueOrDefault(kind) + 1;
        }

        return counts;
    }
}
