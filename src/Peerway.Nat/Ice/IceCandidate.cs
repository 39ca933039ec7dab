using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Peerway.Nat.Ice;

/// <summary>RFC 8445 §5.1.1: candidate types.</summary>
public enum IceCandidateType
{
    /// <summary>RFC 8445 §5.1.1.1: an address of a local interface.</summary>
    Host,

    /// <summary>RFC 8445 §5.1.1.2: the address a NAT maps the host candidate to, learnt from a STUN server.</summary>
    ServerReflexive,

    /// <summary>RFC 8445 §7.2.5.3.1: an address learnt from a connectivity check, not signalled.</summary>
    PeerReflexive,

    /// <summary>RFC 8445 §5.1.1.2: a relayed transport address on a TURN server.</summary>
    Relay,
}

/// <summary>One ICE candidate (component 1, UDP). <c>Base</c> is known only for local candidates.</summary>
public sealed record IceCandidate(string Foundation, uint Priority, IPEndPoint Address, IceCandidateType Type, IPEndPoint? RelatedAddress = null)
{
    /// <summary>The single component this agent handles (RFC 8445 §5.1.2.1: component ids start at 1).</summary>
    public const int Component = 1;

    /// <summary>RFC 8839 §5.1: foundation is 1 to 32 ice-chars.</summary>
    public const int MaxFoundationLength = 32;

    /// <summary>Bound on a candidate line we accept from signaling.</summary>
    public const int MaxSdpLength = 512;

    /// <summary>RFC 8445 §5.1.2.2: recommended type preferences.</summary>
    public static int TypePreference(IceCandidateType type) => type switch
    {
        IceCandidateType.Host => 126,
        IceCandidateType.PeerReflexive => 110,
        IceCandidateType.ServerReflexive => 100,
        _ => 0,
    };

    /// <summary>
    /// RFC 8445 §5.1.2.1: priority = 2^24·type preference + 2^8·local preference + (256 − component id).
    /// </summary>
    public static uint ComputePriority(IceCandidateType type, int localPreference = 65535, int component = Component)
    {
        if (localPreference is < 0 or > 65535) throw new ArgumentOutOfRangeException(nameof(localPreference));
        return (uint)((TypePreference(type) << 24) + (localPreference << 8) + (256 - component));
    }

    /// <summary>
    /// RFC 8445 §5.1.1.3: candidates of the same type, base IP and STUN/TURN server share a foundation.
    /// </summary>
    public static string ComputeFoundation(IceCandidateType type, IPAddress baseAddress, IPEndPoint? server)
    {
        var input = Encoding.UTF8.GetBytes($"{type}|{baseAddress}|{server}");
        var hash = SHA256.HashData(input);
        return Convert.ToHexString(hash, 0, 4).ToLowerInvariant();
    }

    /// <summary>RFC 8839 §5.1 candidate-attribute value, e.g. <c>candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host</c>.</summary>
    public string ToSdp()
    {
        var type = Type switch
        {
            IceCandidateType.Host => "host",
            IceCandidateType.ServerReflexive => "srflx",
            IceCandidateType.PeerReflexive => "prflx",
            _ => "relay",
        };
        var s = string.Create(CultureInfo.InvariantCulture, $"candidate:{Foundation} {Component} udp {Priority} {Address.Address} {Address.Port} typ {type}");
        return RelatedAddress is null ? s : string.Create(CultureInfo.InvariantCulture, $"{s} raddr {RelatedAddress.Address} rport {RelatedAddress.Port}");
    }

    /// <summary>Parses a candidate-attribute value (with or without the <c>a=</c> prefix). Never throws.</summary>
    public static bool TryParse(string? text, out IceCandidate? candidate)
    {
        candidate = null;
        if (text is null || text.Length > MaxSdpLength) return false;
        if (text.StartsWith("a=", StringComparison.Ordinal)) text = text[2..];
        if (!text.StartsWith("candidate:", StringComparison.Ordinal)) return false;
        var f = text["candidate:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (f.Length < 8 || f[6] != "typ") return false;
        var foundation = f[0];
        if (foundation.Length is 0 or > MaxFoundationLength || !foundation.All(IsIceChar)) return false;
        if (f[1] != "1" || !f[2].Equals("udp", StringComparison.OrdinalIgnoreCase)) return false;
        if (!uint.TryParse(f[3], NumberStyles.None, CultureInfo.InvariantCulture, out var priority) || priority == 0) return false;
        if (!IPAddress.TryParse(f[4], out var ip) || !ushort.TryParse(f[5], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port == 0) return false;
        IceCandidateType? type = f[7] switch
        {
            "host" => IceCandidateType.Host,
            "srflx" => IceCandidateType.ServerReflexive,
            "prflx" => IceCandidateType.PeerReflexive,
            "relay" => IceCandidateType.Relay,
            _ => null,
        };
        if (type is null) return false;
        IPEndPoint? related = null;
        for (var i = 8; i + 1 < f.Length; i += 2)
        {
            if (f[i] == "raddr" && i + 3 < f.Length && f[i + 2] == "rport" &&
                IPAddress.TryParse(f[i + 1], out var rip) &&
                ushort.TryParse(f[i + 3], NumberStyles.None, CultureInfo.InvariantCulture, out var rport))
            {
                related = new IPEndPoint(rip, rport);
                i += 2;
            }
        }

        candidate = new IceCandidate(foundation, priority, new IPEndPoint(ip, port), type.Value, related);
        return true;
    }

    // RFC 8839 §5.1: ice-char = ALPHA / DIGIT / "+" / "/".
    private static bool IsIceChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '+' or '/';

    /// <summary>
    /// RFC 8445 §6.1.2.3: pair priority = 2^32·MIN(G,D) + 2·MAX(G,D) + (G&gt;D ? 1 : 0), G the controlling
    /// agent's candidate priority and D the controlled agent's.
    /// </summary>
    public static ulong PairPriority(uint controlling, uint controlled) =>
        ((ulong)Math.Min(controlling, controlled) << 32) + 2UL * Math.Max(controlling, controlled) + (controlling > controlled ? 1UL : 0UL);
}
