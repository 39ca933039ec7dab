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

    public IPEndPoint? StunServer { get; init; }

    public IPEndPoint? TurnServer { get; init; }

    public TurnCredentials? TurnCredentials { get; init; }

    /// <summary>ICE + DTLS + SCTP must be up within this long.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public SctpOptions Sctp { get; init; } = new();

    /// <summary>Bound on open channels per connection (a peer opening thousands is refused beyond it).</summary>
    public int MaxChannels { get; init; } = 1024;

    /// <summary>Bound on received messages queued per channel and not yet read (further ones are dropped).</summary>
    public int MaxQueuedMessages { get; init; } = 4096;

    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Sctp);
        Sctp.Validate();
        if ((TurnServer is null) != (TurnCredentials is null)) throw new ArgumentException("TurnServer and TurnCredentials go together.");
        if (ConnectTimeout <= TimeSpan.Zero) throw new ArgumentException("ConnectTimeout must be positive.");
        if (MaxChannels is < 1 or > 32767) throw new ArgumentException("MaxChannels must be in 1..32767.");
        if (MaxQueuedMessages < 1) throw new ArgumentException("MaxQueuedMessages must be positive.");
    }
}
