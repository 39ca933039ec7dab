using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Core;
using Peerway.Net;
using Peerway.Torrent.Swarm;
using Peerway.Torrent.Trackers;
using Peerway.WebRtc;
using Peerway.WebRtc.DataChannels;
using Peerway.WebRtc.Dtls;

namespace Peerway.WebTorrent;

/// <summary>Settings of a <see cref="WebRtcPeerSource"/>.</summary>
public sealed record WebRtcPeerSourceOptions
{
    /// <summary>ICE servers (STUN/TURN), DTLS certificate, SCTP settings of every peer connection. Without a certificate
    /// the source makes one and uses it for all its connections (as a browser keeps one per origin).</summary>
    public RtcConfiguration Rtc { get; init; } = new();

    /// <summary>Where each peer connection's UDP socket binds (port 0: a free one per connection).</summary>
    public IPAddress BindAddress { get; init; } = IPAddress.Any;

    /// <summary>Offers sent with each announce (bittorrent-tracker's client sends min(numwant, 5)).</summary>
    public int OffersPerAnnounce { get; init; } = 5;

    /// <summary>Most WebRTC peer connections at once, offers waiting for an answer included.</summary>
    public int MaxConnections { get; init; } = 50;

    /// <summary>Throws <see cref="ArgumentNullException"/> or <see cref="ArgumentOutOfRangeException"/> when a setting is missing or out of range.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Rtc);
        ArgumentNullException.ThrowIfNull(BindAddress);
        Rtc.Validate();
        ArgumentOutOfRangeException.ThrowIfNegative(OffersPerAnnounce);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(OffersPerAnnounce, WebSocketTrackerCodec.MaxOffers);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConnections, 1);
    }
}

/// <summary>
/// WebTorrent's transport: RTCPeerConnections whose single data channel carries the BitTorrent wire. Offers are made
/// ahead of each announce with every ICE candidate in the SDP (WebTorrent signals through trackers without trickle);
/// the offerer opens one reliable, ordered channel with a random hex label (simple-peer's default) and sends the
/// handshake first; the answerer takes the channel the offerer opens. An open channel joins the session as a
/// <see cref="StreamTransportKind.WebRtc"/> connection.
/// </summary>
public sealed class WebRtcPeerSource : IWebRtcPeerSource, IAsyncDisposable
{
    private readonly WebRtcPeerSourceOptions _options;
    private readonly RtcConfiguration _rtc;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _logs;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly List<Task> _connecting = [];
    private readonly CancellationTokenSource _cts = new();
    private readonly IPAddress _hostAddress;
    private int _live;
    private int _disposed;

    /// <summary>A source whose connections use <paramref name="options"/>, timed by <paramref name="time"/>; makes a DTLS certificate when the options carry none. Throws for invalid options.</summary>
    public WebRtcPeerSource(WebRtcPeerSourceOptions options, TimeProvider time, ILoggerFactory? logs = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        options.Validate();
        _options = options;
        _time = time;
        _logs = logs ?? NullLoggerFactory.Instance;
        _log = _logs.CreateLogger<WebRtcPeerSource>();
        _hostAddress = HostAddress(options.BindAddress);

        // One DTLS certificate for every connection, made here rather than per offer and per answer: RFC 8827 §6.5 asks
        // for no more (the fingerprint in each SDP authenticates it), and a fresh P-256 key and self-signed certificate
        // cost each answer a key generation and a signature on the way to the peer.
        _rtc = options.Rtc.Certificate is null ? options.Rtc with { Certificate = DtlsCertificate.Generate(time) } : options.Rtc;
    }

    /// <inheritdoc/>
    public int OffersPerAnnounce => _options.OffersPerAnnounce;

    /// <summary>Peer connections alive now (offers waiting for answers, connecting, connected).</summary>
    public int LiveConnections => Volatile.Read(ref _live);

    /// <summary>Data channels handed to sessions so far.</summary>
    public int Opened => Volatile.Read(ref _opened);

    private int _opened;

    private RtcPeerConnection? NewPeerConnection()
    {
        if (_disposed != 0) return null;
        if (Interlocked.Increment(ref _live) > _options.MaxConnections)
        {
            Interlocked.Decrement(ref _live);
            return null;
        }

        return new RtcPeerConnection(new UdpDatagramSocket(new IPEndPoint(_hostAddress, 0)), _time, _rtc, _logs);
    }

    /// <summary>
    /// The ICE host candidate is the bound address, so a wildcard is made concrete: the first IPv4 address of an
    /// interface that is up and not loopback (browsers gather no loopback candidates, and Linux drops packets from
    /// such an address to 127.0.0.1), else loopback.
    /// </summary>
    private static IPAddress HostAddress(IPAddress bind)
    {
        if (!bind.Equals(IPAddress.Any) && !bind.Equals(IPAddress.IPv6Any)) return bind;
        return System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == System.Net.NetworkInformation.OperationalStatus.Up && n.NetworkInterfaceType != System.Net.NetworkInformation.NetworkInterfaceType.Loopback)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !IPAddress.IsLoopback(a)) ?? IPAddress.Loopback;
    }

    private async ValueTask ReleaseAsync(RtcPeerConnection pc)
    {
        await pc.DisposeAsync().ConfigureAwait(false);
        Interlocked.Decrement(ref _live);
    }

    /// <inheritdoc/>
    public async ValueTask<IWebRtcOffer> CreateOfferAsync(TorrentSession session, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        var pc = NewPeerConnection() ?? throw new InvalidOperationException("too many WebRTC connections");
        try
        {
            var sdp = await pc.CreateOfferAsync(cancellationToken).ConfigureAwait(false);
            return new Offer(this, session, pc, new RtcSessionDescription("offer", sdp));
        }
        catch
        {
            await ReleaseAsync(pc).ConfigureAwait(false);
            throw;
        }
    }

    /// <inheritdoc/>
    public async ValueTask<RtcSessionDescription?> AnswerAsync(TorrentSession session, NodeId remotePeerId, RtcSessionDescription offer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(offer);
        var pc = NewPeerConnection();
        if (pc is null)
        {
            _log.LogDebug("offer from {Peer} not answered: {Max} WebRTC connections", remotePeerId, _options.MaxConnections);
            return null;
        }

        string answer;
        try
        {
            answer = await pc.AcceptOfferAsync(offer.Sdp, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SdpException or InvalidOperationException or OperationCanceledException)
        {
            _log.LogInformation("offer from {Peer} not answered: {Message}", remotePeerId, ex.Message);
            await ReleaseAsync(pc).ConfigureAwait(false);
            return null;
        }

        Track(RunAsync(session, pc, remotePeerId, outgoing: false));
        return new RtcSessionDescription("answer", answer);
    }

    private void Track(Task task)
    {
        lock (_gate)
        {
            _connecting.RemoveAll(t => t.IsCompleted);
            _connecting.Add(task);
        }
    }

    /// <summary>Waits for the connection and its channel, then hands the channel to the session.</summary>
    private async Task RunAsync(TorrentSession session, RtcPeerConnection pc, NodeId remotePeerId, bool outgoing)
    {
        var handedOver = false;
        try
        {
            var ct = _cts.Token;
            await pc.Connected.WaitAsync(ct).ConfigureAwait(false);
            RtcDataChannel? channel;
            if (outgoing)
            {
                // simple-peer (WebTorrent): the initiator opens one channel labelled with 20 random bytes in hex.
                channel = await pc.CreateDataChannelAsync(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20)), null, ct).ConfigureAwait(false);
                await channel.Opened.WaitAsync(ct).ConfigureAwait(false);
            }
            else
            {
                channel = await pc.AcceptDataChannelAsync(ct).ConfigureAwait(false);
            }

            if (channel is null) return;
            var remote = pc.Ice?.SelectedPair?.Remote.Address ?? new IPEndPoint(IPAddress.None, 0);
            var local = pc.Ice?.SelectedPair?.Local.Address ?? new IPEndPoint(IPAddress.None, 0);
            var connection = new DataChannelConnection(pc, channel, remote, local);
            handedOver = true;
            Interlocked.Increment(ref _opened);
            var timings = pc.Timings;
            var channelMs = (_time.GetUtcNow() - timings.Created).TotalMilliseconds;
            _log.LogInformation("WebRTC peer {Peer} at {Remote} connected ({Direction}); set-up: {Timings}, channel +{Channel:0.0} ms", remotePeerId, remote, outgoing ? "our offer" : "their offer", timings, channelMs);
            // The session owns the connection from here and disposes it (and the peer connection) when it ends.
            if (!await session.AddConnectionAsync(connection, outgoing).ConfigureAwait(false)) return;
            await pc.Closed.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or TimeoutException or IOException or InvalidOperationException or System.Security.Authentication.AuthenticationException)
        {
            _log.LogInformation("WebRTC peer {Peer} did not connect: {Message}", remotePeerId, ex.Message);
        }
        finally
        {
            if (handedOver) Interlocked.Decrement(ref _live);
            else await ReleaseAsync(pc).ConfigureAwait(false);
        }
    }

    /// <summary>Cancels the connections being set up and waits for them; channels already handed to sessions are theirs to close.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _cts.CancelAsync().ConfigureAwait(false);
        Task[] pending;
        lock (_gate) pending = [.. _connecting];
        await Task.WhenAll(pending).ConfigureAwait(false);
        _cts.Dispose();
    }

    private sealed class Offer(WebRtcPeerSource source, TorrentSession session, RtcPeerConnection pc, RtcSessionDescription description) : IWebRtcOffer
    {
        private int _state;

        public RtcSessionDescription Description { get; } = description;

        public void Answered(NodeId remotePeerId, RtcSessionDescription answer)
        {
            if (Interlocked.CompareExchange(ref _state, 1, 0) != 0) return;
            try
            {
                pc.SetAnswer(answer.Sdp);
            }
            catch (Exception ex) when (ex is SdpException or InvalidOperationException)
            {
                source._log.LogInformation("answer from {Peer} unusable: {Message}", remotePeerId, ex.Message);
                _state = 2;
                return;
            }

            source.Track(source.RunAsync(session, pc, remotePeerId, outgoing: true));
        }

        public async ValueTask DisposeAsync()
        {
            // Answered: the connection belongs to RunAsync now. Otherwise (expired, unusable answer) it ends here.
            if (Interlocked.Exchange(ref _state, 3) is 1 or 3) return;
            await source.ReleaseAsync(pc).ConfigureAwait(false);
        }
    }
}
