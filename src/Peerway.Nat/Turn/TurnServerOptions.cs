using System.Net;

namespace Peerway.Nat.Turn;

/// <summary>Options of <see cref="TurnServer"/> (RFC 8656).</summary>
public sealed record TurnServerOptions
{
    /// <summary>REALM (RFC 8489 §14.9). Keep it short: the 401 challenge must fit in the request it answers.</summary>
    public string Realm { get; init; } = "peerway";

    /// <summary>Long-term credentials: user name → password.</summary>
    public IReadOnlyDictionary<string, string> Users { get; init; } = new Dictionary<string, string>();

    /// <summary>TURN REST API shared secret: user name "expiry:name", password base64(HMAC-SHA1(secret, user name)).</summary>
    public string? SharedSecret { get; init; }

    /// <summary>RFC 8656 §7.2: default allocation lifetime 10 minutes; at most 1 hour.</summary>
    public TimeSpan DefaultLifetime { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>RFC 8656 §7.2: requested lifetimes are cut to this; 1 hour by default.</summary>
    public TimeSpan MaxLifetime { get; init; } = TimeSpan.FromHours(1);

    /// <summary>RFC 8656 §9: permissions last 300 s.</summary>
    public TimeSpan PermissionLifetime { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>RFC 8656 §12: channel bindings last 10 minutes.</summary>
    public TimeSpan ChannelLifetime { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>How long a nonce is valid before 438 Stale Nonce.</summary>
    public TimeSpan NonceLifetime { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Allocations per user (486 beyond it).</summary>
    public int UserQuota { get; init; } = 10;

    /// <summary>Allocations in total (508 beyond it).</summary>
    public int TotalQuota { get; init; } = 10_000;

    /// <summary>Relayed bytes per second per allocation, both directions together; 0 = no cap.</summary>
    public long MaxBytesPerSecond { get; init; }

    /// <summary>Peers allowed although in a denied range (loopback, private, reserved).</summary>
    public IReadOnlyList<IPNetwork> AllowedPeers { get; init; } = [];

    /// <summary>Peers always refused, on top of the built-in reserved ranges.</summary>
    public IReadOnlyList<IPNetwork> DeniedPeers { get; init; } = [];

    /// <summary>How often expired allocations, permissions and channels are swept.</summary>
    public TimeSpan SweepInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>SOFTWARE attribute in responses (RFC 8489 §14.14); null leaves it out.</summary>
    public string? Software { get; init; } = "Peerway";

    /// <summary>Binding answers and 401/438 challenges sent over UDP per second per source IP (token bucket); 0: no
    /// limit. Both are larger than their request, so without a limit a spoofed source turns the server into an
    /// amplifier; a client needs one or two of each per allocation. Authenticated requests are not counted.</summary>
    public double MaxUnauthenticatedPerIpPerSecond { get; init; } = 20;

    /// <summary>Unauthenticated answers a source may get at once before the per-second rate applies.</summary>
    public int UnauthenticatedBurst { get; init; } = 40;

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentException">A value is out of range, or there are neither users nor a shared secret.</exception>
    public void Validate()
    {
        if (string.IsNullOrEmpty(Realm) || System.Text.Encoding.UTF8.GetByteCount(Realm) > 127) throw new ArgumentException("Realm must be 1..127 bytes.");
        if (Users.Count == 0 && string.IsNullOrEmpty(SharedSecret)) throw new ArgumentException("Give users or a shared secret: a TURN server without credentials is an open relay.");
        if (DefaultLifetime <= TimeSpan.Zero || MaxLifetime < DefaultLifetime) throw new ArgumentException("Lifetimes must be positive, default ≤ max.");
        if (PermissionLifetime <= TimeSpan.Zero || ChannelLifetime <= TimeSpan.Zero || NonceLifetime <= TimeSpan.Zero) throw new ArgumentException("Lifetimes must be positive.");
        if (UserQuota < 1 || TotalQuota < 1) throw new ArgumentException("Quotas must be positive.");
        if (MaxBytesPerSecond < 0) throw new ArgumentException("MaxBytesPerSecond must be ≥ 0.");
        if (SweepInterval <= TimeSpan.Zero) throw new ArgumentException("SweepInterval must be positive.");
        if (!double.IsFinite(MaxUnauthenticatedPerIpPerSecond) || MaxUnauthenticatedPerIpPerSecond < 0) throw new ArgumentException("MaxUnauthenticatedPerIpPerSecond must be ≥ 0 (0: no limit).");
        if (UnauthenticatedBurst < 1) throw new ArgumentException("UnauthenticatedBurst must be at least 1.");
        foreach (var (user, _) in Users)
        {
            if (string.IsNullOrEmpty(user) || System.Text.Encoding.UTF8.GetByteCount(user) > Stun.StunLimits.MaxUsernameBytes) throw new ArgumentException("User names are 1..508 bytes.");
        }
    }
}
