using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Trackers;

/// <summary>
/// A peer source: announces a session to its trackers (HTTP, UDP and WebSocket) on start, at the tracker's interval, on
/// completion and on stop (BEP 3 events), and feeds the returned peers to the session.
/// </summary>
public sealed class TrackerAnnouncer : IAsyncDisposable
{
    private readonly TorrentSession _session;
    private readonly IReadOnlyList<Uri> _trackers;
    private readonly HttpTrackerClient _http;
    private readonly UdpTrackerClient? _udp;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _cts = new();
    private readonly List<Task> _loops = [];
    private readonly Dictionary<Uri, WebSocketAnnouncer> _webSockets = [];

    /// <param name="session">The torrent announced; its peers are added from the answers.</param>
    /// <param name="trackers">Announce URLs: http(s), udp and ws(s).</param>
    /// <param name="http">Sends the HTTP announces.</param>
    /// <param name="udp">Sends the BEP 15 UDP announces; null: UDP trackers are skipped.</param>
    /// <param name="time">The clock for announce intervals.</param>
    /// <param name="logger">Null: no logging.</param>
    /// <param name="webrtc">Makes the WebRTC offers and answers WebSocket trackers relay; null: WebSocket trackers are
    /// announced to without offers (counted, but no browser peers).</param>
    /// <param name="connector">Opens WebSockets (null: <see cref="WebSocketTrackerClient.DefaultConnector"/>).</param>
    public TrackerAnnouncer(TorrentSession session, IEnumerable<string> trackers, HttpClient http, UdpTrackerClient? udp, TimeProvider time, ILogger? logger = null,
        IWebRtcPeerSource? webrtc = null, WebSocketConnector? connector = null)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(trackers);
        _session = session;
        _trackers = trackers.Select(t => new Uri(t)).ToList();
        _http = new HttpTrackerClient(http);
        _udp = udp;
        _time = time;
        _log = logger ?? NullLogger.Instance;
        foreach (var t in _trackers.Where(t => t.Scheme is "ws" or "wss").Distinct())
        {
            _webSockets[t] = new WebSocketAnnouncer(t, session, webrtc, connector, time, _log);
        }
    }

    /// <summary>Successful announces so far (all trackers).</summary>
    public int Successes => Volatile.Read(ref _successes);

    private int _successes;

    /// <summary>Starts one announce loop per tracker. Call once.</summary>
    public void Start()
    {
        foreach (var t in _trackers) _loops.Add(LoopAsync(t, _cts.Token));
    }

    private AnnounceRequest Request(AnnounceEvent ev)
    {
        var s = _session.GetStats();
        var left = s.HasMetadata ? s.TotalLength - ((long)s.VerifiedPieces * (_session.Info?.PieceLength ?? 0)) : 1;
        return new AnnounceRequest(_session.InfoHash, _session.PeerId, _session.ListenPort, s.Uploaded, s.Downloaded, Math.Max(0, left), ev);
    }

    private async Task<TrackerResult> AnnounceOnceAsync(Uri tracker, AnnounceEvent ev, CancellationToken ct)
    {
        if (_webSockets.TryGetValue(tracker, out var ws)) return await ws.AnnounceAsync(Request(ev), ct).ConfigureAwait(false);
        if (tracker.Scheme == "udp")
        {
            if (_udp is null) return new TrackerResult(null, TrackerError.Unreachable, "no UDP socket");
            IPAddress[] addresses;
            try
            {
                addresses = IPAddress.TryParse(tracker.Host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(tracker.Host, ct).ConfigureAwait(false);
            }
            catch (System.Net.Sockets.SocketException ex)
            {
                return new TrackerResult(null, TrackerError.Unreachable, ex.Message);
            }

            var address = addresses.FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork) ?? addresses.FirstOrDefault();
            if (address is null) return new TrackerResult(null, TrackerError.Unreachable, "no address");
            return await _udp.AnnounceAsync(new IPEndPoint(address, tracker.Port), Request(ev), ct).ConfigureAwait(false);
        }

        return await _http.AnnounceAsync(tracker, Request(ev), ct).ConfigureAwait(false);
    }

    private async Task LoopAsync(Uri tracker, CancellationToken ct)
    {
        var ev = AnnounceEvent.Started;
        var completedSent = _session.Completed.IsCompletedSuccessfully;
        var retry = TimeSpan.FromSeconds(5);
        while (!ct.IsCancellationRequested)
        {
            TimeSpan wait;
            try
            {
                var result = await AnnounceOnceAsync(tracker, ev, ct).ConfigureAwait(false);
                if (result.Ok)
                {
                    Interlocked.Increment(ref _successes);
                    _session.AddPeers(result.Response!.Peers);
                    ev = AnnounceEvent.None;
                    wait = result.Response.Interval;
                    retry = TimeSpan.FromSeconds(5);
                }
                else
                {
                    _log.LogInformation("tracker {Tracker}: {Error} {Message}", tracker, result.Error, result.Message);
                    wait = retry;
                    retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, TimeSpan.FromMinutes(5).Ticks));
                }

                var delay = Task.Delay(wait, _time, ct);
                if (!completedSent)
                {
                    if (await Task.WhenAny(delay, _session.Completed).ConfigureAwait(false) != delay && _session.Completed.IsCompletedSuccessfully)
                    {
                        completedSent = true;
                        ev = AnnounceEvent.Completed;
                        continue;
                    }
                }

                await delay.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>Stops the announce loops and awaits them.</summary>
    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_loops).ConfigureAwait(false);
        // BEP 3: tell the trackers we are leaving (best effort, briefly).
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await Task.WhenAll(_trackers.Select(t => AnnounceOnceAsync(t, AnnounceEvent.Stopped, stop.Token))).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The tracker did not answer in time: leaving anyway.
        }

        foreach (var ws in _webSockets.Values) await ws.DisposeAsync().ConfigureAwait(false);

        _cts.Dispose();
    }
}
