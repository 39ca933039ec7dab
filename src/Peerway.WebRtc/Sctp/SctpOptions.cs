namespace Peerway.WebRtc.Sctp;

/// <summary>Options of <see cref="SctpAssociation"/>; the defaults are RFC 9260 §16's unless stated.</summary>
public sealed record SctpOptions
{
    /// <summary>RFC 8841 §5: <c>a=sctp-port</c>; browsers use 5000.</summary>
    public ushort Port { get; init; } = 5000;

    /// <summary>Largest SCTP packet (one DTLS record): WebRTC keeps it near 1200 bytes (RFC 8831 §5).</summary>
    public int Mtu { get; init; } = 1200;

    /// <summary>Advertised receive window (a_rwnd): bytes held for reassembly and in-order delivery.</summary>
    public int ReceiveWindow { get; init; } = 1024 * 1024;

    /// <summary>Largest message accepted or sent (RFC 8841 §6 <c>a=max-message-size</c>).</summary>
    public int MaxMessageSize { get; init; } = 256 * 1024;

    /// <summary>Outbound and maximum inbound streams (RFC 8831 §6.2: 65535 recommended).</summary>
    public ushort Streams { get; init; } = 65535;

    /// <summary>RFC 9260 §16: RTO.Initial 1 s.</summary>
    public TimeSpan InitialRto { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>RTO.Min: RFC 9260 says 1 s; data channels (as usrsctp and dcsctp) go lower for interactive traffic.</summary>
    public TimeSpan MinRto { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>RFC 9260 §16: RTO.Max 60 s.</summary>
    public TimeSpan MaxRto { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>RFC 9260 §16: Max.Init.Retransmits 8.</summary>
    public int MaxInitRetransmits { get; init; } = 8;

    /// <summary>RFC 9260 §16: Association.Max.Retrans 10 (consecutive timeouts before the association fails).</summary>
    public int MaxRetransmits { get; init; } = 10;

    /// <summary>RFC 9260 §16: HB.interval 30 s.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>RFC 9260 §6.2: a SACK is sent at most this long after the first unacknowledged DATA (200 ms max).</summary>
    public TimeSpan DelayedAck { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>RFC 9260 §16: Valid.Cookie.Life 60 s.</summary>
    public TimeSpan CookieLifetime { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Throws <see cref="ArgumentException"/> when a setting is out of range.</summary>
    public void Validate()
    {
        if (Mtu is < 256 or > 16384) throw new ArgumentException("Mtu must be in 256..16384.");
        if (ReceiveWindow < 1500 || MaxMessageSize < 1 || MaxMessageSize > ReceiveWindow) throw new ArgumentException("ReceiveWindow must be ≥ 1500 and ≥ MaxMessageSize ≥ 1.");
        if (Streams == 0) throw new ArgumentException("Streams must be positive.");
        if (InitialRto <= TimeSpan.Zero || MinRto <= TimeSpan.Zero || MaxRto < MinRto) throw new ArgumentException("RTO bounds must be positive, MinRto ≤ MaxRto.");
        if (MaxInitRetransmits < 1 || MaxRetransmits < 1) throw new ArgumentException("Retransmission limits must be positive.");
        if (HeartbeatInterval <= TimeSpan.Zero || DelayedAck < TimeSpan.Zero || CookieLifetime <= TimeSpan.Zero) throw new ArgumentException("Timers must be positive.");
    }
}
