using System.Net;
using Peerway.Nat.Turn;
using Peerway.WebRtc.Dtls;
using Peerway.WebRtc.Sctp;

namespace Peerway.WebRtc;

/// <summary>Options of <see cref="RtcPeerConnection"/>.</summary>
public sealed record RtcConfiguration
{
    /// <summary>The node's DTLS certificate; a fresh one per connection when null.</summary>
    public DtlsCertificate? Certificate { get; init; }

    /// <summary>STUN server for server-reflexive candidates; none when null.</summary>
    public IPEndPoint? StunServer { get; init; }

    /// <summary>TURN server for relayed candidates (with <see cref="TurnCredentials"/>); none when null.</summary>
    public IPEndPoint? TurnServer { get; init; }

    /// <summary>Long-term credentials for <see cref="TurnServer"/>.</summary>
    public TurnCredentials? TurnCredentials { get; init; }

    /// <summary>ICE + DTLS + SCTP must be up within this long.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>SCTP association settings (RFC 9260).</summary>
    public SctpOptions Sctp { get; init; } = new();

    /// <summary>
    /// RFC 8445 §2.5: be an ICE-lite agent (a server on a public address, as <c>peerway rtc listen --ice-lite</c>):
    /// <c>a=ice-lite</c> in our descriptions, host candidates only, no checks of our own; the full peer (a browser)
    /// checks and nominates. Needs no STUN or TURN server.
    /// </summary>
    public bool IceLite { get; init; }

    /// <summary>Bound on open channels per connection (a peer opening thousands is refused beyond it).</summary>
    public int MaxChannels { get; init; } = 1024;

    /// <summary>
    /// Bound on received messages queued and not yet read on a partially reliable channel (<c>maxRetransmits</c> or
    /// <c>maxPacketLifeTime</c>): further ones are dropped, as that channel may lose messages. A reliable channel never
    /// drops: what it holds unread closes the SCTP receive window (<see cref="SctpOptions.ReceiveWindow"/>, which bounds
    /// memory per connection) and so throttles the sender (RFC 9260 §6.2).
    /// </summary>
    public int MaxQueuedMessages { get; init; } = 4096;

    /// <summary>Throws <see cref="ArgumentException"/> (or <see cref="ArgumentNullException"/>) when a setting is out of range.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Sctp);
        Sctp.Validate();
        if ((TurnServer is null) != (TurnCredentials is null)) throw new ArgumentException("TurnServer and TurnCredentials go together.");
        if (IceLite && (StunServer is not null || TurnServer is not null)) throw new ArgumentException("An ICE-lite agent gathers host candidates only (no STUN or TURN server).");
        if (ConnectTimeout <= TimeSpan.Zero) throw new ArgumentException("ConnectTimeout must be positive.");
        if (MaxChannels is < 1 or > 32767) throw new ArgumentException("MaxChannels must be in 1..32767.");
        if (MaxQueuedMessages < 1) throw new ArgumentException("MaxQueuedMessages must be positive.");
    }
}
