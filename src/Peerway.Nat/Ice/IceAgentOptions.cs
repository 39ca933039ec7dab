using System.Net;
using Peerway.Nat.Stun;
using Peerway.Nat.Turn;

namespace Peerway.Nat.Ice;

/// <summary>RFC 8445 §6.1.1: the agent's role.</summary>
public enum IceRole
{
    /// <summary>The agent that nominates the pair (RFC 8445 §8.1); by convention the offerer.</summary>
    Controlling,

    /// <summary>The agent that follows the peer's nomination.</summary>
    Controlled,
}

/// <summary>The agent's connection state (RFC 8445 §6.1.3 checklist states, RFC 7675 consent).</summary>
public enum IceState
{
    /// <summary>Created; not started.</summary>
    New,

    /// <summary>Gathering and checking; no pair is selected yet.</summary>
    Checking,

    /// <summary>A pair is selected and the peer consents to traffic.</summary>
    Connected,

    /// <summary>RFC 7675 §5.1: no consent response for a while; still sending, may recover.</summary>
    Disconnected,

    /// <summary>No pair worked within the timeout, or consent expired (RFC 7675 §5.1); final.</summary>
    Failed,

    /// <summary>The agent was disposed; final.</summary>
    Closed,
}

/// <summary>Options of <see cref="IceAgent"/>.</summary>
public sealed record IceAgentOptions
{
    /// <summary>The initial role (RFC 8445 §6.1.1); a role conflict may switch it. Controlling by default.</summary>
    public IceRole Role { get; init; } = IceRole.Controlling;

    /// <summary>STUN server for a server-reflexive candidate.</summary>
    public IPEndPoint? StunServer { get; init; }

    /// <summary>TURN server for a relayed candidate (needs <see cref="TurnCredentials"/>).</summary>
    public IPEndPoint? TurnServer { get; init; }

    /// <summary>Long-term credentials for <see cref="TurnServer"/>; set both or neither.</summary>
    public TurnCredentials? TurnCredentials { get; init; }

    /// <summary>RFC 8445 §14.2: Ta, the pacing of new checks; 50 ms by default.</summary>
    public TimeSpan Ta { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>RFC 8445 §14.3: initial RTO of a check (doubled per retransmission up to <see cref="MaxCheckRto"/>).</summary>
    public TimeSpan CheckRto { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Upper bound of a check's RTO as it doubles; 3 s by default.</summary>
    public TimeSpan MaxCheckRto { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Requests per check before the pair fails (RFC 8489 Rc = 7).</summary>
    public int MaxCheckAttempts { get; init; } = 7;

    /// <summary>
    /// Regular nomination: the controlling agent nominates the best valid pair once no better pair is pending, or
    /// this long after the first pair became valid when the best valid pair goes through a TURN relay.
    /// </summary>
    public TimeSpan NominationDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// As <see cref="NominationDelay"/> (and never longer), when the best valid pair is direct (host, server- or
    /// peer-reflexive on both sides). A direct pair that works is rarely worth waiting on: the better pairs still
    /// pending are mostly host pairs to private addresses behind another NAT, which never answer (Pion's ICE agent
    /// likewise waits 0.5–1 s for reflexive pairs and 2 s for relayed ones).
    /// </summary>
    public TimeSpan DirectNominationDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Give up when nothing is nominated after this long.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(40);

    /// <summary>RFC 7675 §5.1: consent checks every 5 s, randomised by ±20 %.</summary>
    public TimeSpan ConsentInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>State becomes <see cref="IceState.Disconnected"/> after this long without a consent response.</summary>
    public TimeSpan DisconnectedAfter { get; init; } = TimeSpan.FromSeconds(12);

    /// <summary>RFC 7675 §5.1: consent expires 30 s after the last response; the agent then stops sending.</summary>
    public TimeSpan ConsentTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Retransmission schedule for gathering (Binding, Allocate).</summary>
    public StunClientOptions Gathering { get; init; } = new();

    /// <summary>Bounds on the checklist (RFC 8445 §6.1.2.5 asks agents to limit it; 100 recommended).</summary>
    public int MaxPairs { get; init; } = 100;

    /// <summary>Remote candidates kept (signalled and peer-reflexive); more are ignored. 64 by default.</summary>
    public int MaxRemoteCandidates { get; init; } = 64;

    /// <summary>
    /// RFC 8445 §2.5: a lite agent (a server on a public address; <c>a=ice-lite</c> in SDP). It gathers its host
    /// candidates only, sends no checks — it answers the full peer's, which is always controlling — and selects the
    /// pair a check with USE-CANDIDATE arrives on (§7.3.1.5 / §8.2); the peer's checks, consent checks included,
    /// keep the pair alive (RFC 7675 is the full agent's job). <see cref="Role"/> must be controlled; no STUN or TURN.
    /// </summary>
    public bool Lite { get; init; }

    /// <summary>Checks the options, <see cref="Gathering"/> included.</summary>
    /// <exception cref="ArgumentException">A timing is not positive or out of order, TurnServer and TurnCredentials are not both set or both null, a bound is below 1, or a lite agent is not controlled or has a STUN or TURN server.</exception>
    /// <exception cref="ArgumentNullException"><see cref="Gathering"/> is null.</exception>
    public void Validate()
    {
        if (Ta <= TimeSpan.Zero) throw new ArgumentException("Ta must be positive.");
        if (CheckRto <= TimeSpan.Zero || MaxCheckRto < CheckRto) throw new ArgumentException("CheckRto must be positive and ≤ MaxCheckRto.");
        if (MaxCheckAttempts is < 1 or > 16) throw new ArgumentException("MaxCheckAttempts must be in 1..16.");
        if (NominationDelay < TimeSpan.Zero || DirectNominationDelay < TimeSpan.Zero || ConnectTimeout <= TimeSpan.Zero) throw new ArgumentException("Timeouts must be positive.");
        if (ConsentInterval <= TimeSpan.Zero || DisconnectedAfter <= TimeSpan.Zero || ConsentTimeout < DisconnectedAfter) throw new ArgumentException("Consent timings must be positive, DisconnectedAfter ≤ ConsentTimeout.");
        if ((TurnServer is null) != (TurnCredentials is null)) throw new ArgumentException("TurnServer and TurnCredentials go together.");
        if (MaxPairs < 1 || MaxRemoteCandidates < 1) throw new ArgumentException("Bounds must be positive.");
        if (Lite && (Role != IceRole.Controlled || StunServer is not null || TurnServer is not null)) throw new ArgumentException("A lite agent is controlled and gathers host candidates only (no STUN or TURN server).");
        ArgumentNullException.ThrowIfNull(Gathering);
        Gathering.Validate();
    }
}
