using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;
using Peerway.Core.Threading;
using Peerway.Net;

namespace Peerway.Torrent.Lsd;

/// <summary>How often Local Service Discovery announces, and how much it reads.</summary>
public sealed record LocalDiscoveryOptions
{
    /// <summary>Every torrent is announced again this often (libtorrent local_service_announce_interval: 5 minutes).</summary>
    public TimeSpan AnnounceInterval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// A torrent just added is announced at once and again after these delays (multicast is lossy; libtorrent resends
    /// twice, 2 s and 4 s apart).
    /// </summary>
    public IReadOnlyList<TimeSpan> ResendDelays { get; init; } = [TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(6)];

    /// <summary>Most datagrams decoded per second, all senders together; the rest of a flood is dropped unread (counted, logged once a minute).</summary>
    public int MaxDatagramsPerSecond { get; init; } = 50;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> or <see cref="ArgumentNullException"/> when a setting is out of range or missing.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(AnnounceInterval, TimeSpan.Zero);
        ArgumentNullException.ThrowIfNull(ResendDelays);
        if (ResendDelays.Any(d => d <= TimeSpan.Zero)) throw new ArgumentOutOfRangeException(nameof(ResendDelays), "delays must be positive");
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxDatagramsPerSecond, 1);
    }
}

/// <summary>One multicast socket LSD sends and receives on, and the group it sends to.</summary>
/// <param name="Socket">A UDP socket bound to the group's port and joined to the group (made where sockets are made: Node).</param>
/// <param name="Group">239.192.152.143:6771 or [ff15::efc0:988f]:6771 (see <see cref="LsdCodec"/>).</param>
public sealed record LsdChannel(IDatagramSocket Socket, IPEndPoint Group);

/// <summary>What LSD has seen, for tests and logs.</summary>
public readonly record struct LocalDiscoveryStats(long Sent, long Received, long OwnIgnored, long Malformed, long UnknownTorrents, long Flooded, long PeersAdded);

/// <summary>
/// BEP 14 Local Service Discovery as a peer source of a <see cref="TorrentClient"/>: each public torrent is multicast
/// (up to <see cref="LsdCodec.MaxInfoHashes"/> per message) when it starts and every
/// <see cref="LocalDiscoveryOptions.AnnounceInterval"/>; an announce for one of our torrents adds its sender (the
/// datagram's source address, the message's port) as a peer. Our own announces, looped back by the kernel, are
/// recognised by the cookie. Unknown torrents cost one dictionary look-up each; a flood beyond
/// <see cref="LocalDiscoveryOptions.MaxDatagramsPerSecond"/> is dropped before decoding.
/// </summary>
/// <remarks>
/// State: the counters are atomics; the flood window is under <c>_gate</c> (the sockets' handlers may run at once).
/// Announces are sent from the announce loop and the resend tasks, all tracked and awaited on disposal.
/// </remarks>
public sealed class LocalDiscovery : IAsyncDisposable
{
    private readonly TorrentClient _client;
    private readonly IReadOnlyList<LsdChannel> _channels;
    private readonly TimeProvider _time;
    private readonly LocalDiscoveryOptions _options;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly BackgroundTasks _tasks = new();
    private readonly CancellationTokenSource _cts = new();
    private long _windowStart;
    private int _windowCount;
    private long _lastFloodLog = long.MinValue;
    private long _sent, _received, _own, _malformed, _unknown, _flooded, _added;
    private bool _stopping;
    private int _started;

    /// <summary>BEP 14 discovery for the torrents of <paramref name="client"/> over <paramref name="channels"/> (at least one), timed by <paramref name="time"/>; <paramref name="options"/> null takes the defaults. Throws <see cref="ArgumentException"/> for no channel or a null one.</summary>
    public LocalDiscovery(TorrentClient client, IReadOnlyList<LsdChannel> channels, TimeProvider time, LocalDiscoveryOptions? options = null, ILogger<LocalDiscovery>? log = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(channels);
        ArgumentNullException.ThrowIfNull(time);
        options ??= new();
        options.Validate();
        if (channels.Count == 0 || channels.Any(c => c is null)) throw new ArgumentException("at least one channel, none null", nameof(channels));
        _client = client;
        _channels = channels;
        _time = time;
        _options = options;
        _log = log ?? (ILogger)NullLogger.Instance;
        Cookie = RandomNumberGenerator.GetInt32(1, int.MaxValue).ToString("x8", CultureInfo.InvariantCulture);
    }

    /// <summary>Our cookie: announces carrying it are our own, looped back.</summary>
    public string Cookie { get; }

    /// <summary>Counters since the start. Thread-safe.</summary>
    public LocalDiscoveryStats Stats => new(Interlocked.Read(ref _sent), Interlocked.Read(ref _received), Interlocked.Read(ref _own),
        Interlocked.Read(ref _malformed), Interlocked.Read(ref _unknown), Interlocked.Read(ref _flooded), Interlocked.Read(ref _added));

    /// <summary>Starts receiving on every channel, announcing every torrent now and periodically, and each torrent added later at once.</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("already started");
        foreach (var channel in _channels) channel.Socket.Start(OnDatagram);
        _client.SessionStarted += OnSessionStarted;
        lock (_gate) _tasks.Track(LoopAsync(_cts.Token));
    }

    private void OnSessionStarted(TorrentHandle handle)
    {
        lock (_gate)
        {
            if (_stopping) return;
            _tasks.Track(AnnounceNewAsync(handle, _cts.Token));
        }
    }

    /// <summary>A torrent just added: at once, then after each resend delay (while it is still running).</summary>
    private async Task AnnounceNewAsync(TorrentHandle handle, CancellationToken ct)
    {
        try
        {
            var waited = TimeSpan.Zero;
            foreach (var delay in (IEnumerable<TimeSpan>)[TimeSpan.Zero, .. _options.ResendDelays])
            {
                if (delay > waited) await Task.Delay(delay - waited, _time, ct).ConfigureAwait(false);
                waited = delay;
                if (handle.Session is not { IsPrivate: false }) return; // paused, removed, or private (BEP 27)
                Send([handle.InfoHash]);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private async Task LoopAsync(CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await Task.Delay(_options.AnnounceInterval, _time, ct).ConfigureAwait(false);
                // BEP 27: a private torrent is never announced outside its tracker.
                var hashes = _client.Torrents.Where(t => t.Session is { IsPrivate: false }).Select(t => t.InfoHash).ToList();
                for (var i = 0; i < hashes.Count; i += LsdCodec.MaxInfoHashes) Send(hashes.GetRange(i, Math.Min(LsdCodec.MaxInfoHashes, hashes.Count - i)));
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    /// <summary>One message per channel; nothing when the client has no listen port yet.</summary>
    private void Send(List<NodeId> hashes)
    {
        var port = _client.Port;
        if (port == 0 || hashes.Count == 0) return;
        Span<byte> buffer = stackalloc byte[LsdCodec.MaxMessageSize];
        foreach (var channel in _channels)
        {
            var length = LsdCodec.Encode(LsdCodec.HostFor(channel.Group), port, hashes, Cookie, buffer);
            channel.Socket.Send(buffer[..length], channel.Group);
            Interlocked.Increment(ref _sent);
        }

        _log.LogDebug("LSD: announced {Count} torrents on port {Port}", hashes.Count, port);
    }

    private void OnDatagram(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        if (!Admit()) return;
        Interlocked.Increment(ref _received);
        var error = LsdCodec.TryDecode(datagram, out var announce);
        if (error != LsdDecodeError.None)
        {
            Interlocked.Increment(ref _malformed);
            _log.LogDebug("LSD: ignoring a datagram from {Remote}: {Error}", remote, error);
            return;
        }

        if (announce!.Cookie == Cookie)
        {
            Interlocked.Increment(ref _own);
            return;
        }

        var address = remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address;
        var peer = new IPEndPoint(address, announce.Port);
        foreach (var hash in announce.InfoHashes)
        {
            // BEP 27: private torrents take peers from their tracker only.
            if (_client.Find(hash) is not { Session: { IsPrivate: false } session })
            {
                Interlocked.Increment(ref _unknown);
                continue;
            }

            session.AddPeers([peer]);
            Interlocked.Increment(ref _added);
            _log.LogInformation("LSD: peer {Peer} for {InfoHash}", peer, hash);
        }
    }

    /// <summary>A fixed one-second window: at most <see cref="LocalDiscoveryOptions.MaxDatagramsPerSecond"/> datagrams are read.</summary>
    private bool Admit()
    {
        var now = _time.GetTimestamp();
        lock (_gate)
        {
            if (_time.GetElapsedTime(_windowStart, now) >= TimeSpan.FromSeconds(1))
            {
                _windowStart = now;
                _windowCount = 0;
            }

            if (++_windowCount <= _options.MaxDatagramsPerSecond) return true;
            Interlocked.Increment(ref _flooded);
            if (_lastFloodLog != long.MinValue && _time.GetElapsedTime(_lastFloodLog, now) < TimeSpan.FromMinutes(1)) return false;
            _lastFloodLog = now;
        }

        _log.LogWarning("LSD: more than {Max} datagrams a second on port 6771; the rest are dropped unread ({Dropped} so far)", _options.MaxDatagramsPerSecond, Interlocked.Read(ref _flooded));
        return false;
    }

    /// <summary>Stops announcing and awaits every task started; the sockets stay the caller's to dispose.</summary>
    public async ValueTask DisposeAsync()
    {
        _client.SessionStarted -= OnSessionStarted;
        lock (_gate)
        {
            if (_stopping) return;
            _stopping = true;
        }

        await _cts.CancelAsync().ConfigureAwait(false);
        await _tasks.WhenAllAsync().ConfigureAwait(false);
        _cts.Dispose();
    }
}
