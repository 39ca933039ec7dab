using System.Globalization;
using System.Text;
using Peerway.Nat.Ice;

namespace Peerway.WebRtc.Sdp;

/// <summary>RFC 8842 §5.1 / RFC 4145 §4: the DTLS role attribute.</summary>
public enum SdpSetup
{
    /// <summary>Either role: an offer's setup (RFC 8842 §5.3).</summary>
    ActPass,

    /// <summary>The DTLS client.</summary>
    Active,

    /// <summary>The DTLS server.</summary>
    Passive,
}

/// <summary>Why an SDP was refused.</summary>
public enum SdpError
{
    /// <summary>Not an error.</summary>
    None,
    /// <summary>The description is empty or blank.</summary>
    Empty,
    /// <summary>Longer than 64 KiB.</summary>
    TooLarge,
    /// <summary>More than 2,000 lines.</summary>
    TooManyLines,
    /// <summary>A line longer than 4,096 characters.</summary>
    LineTooLong,
    /// <summary>Not an SDP: the first line is not <c>v=0</c>.</summary>
    NotSdp,
    /// <summary>No <c>m=application</c> section for SCTP data channels.</summary>
    NoDataChannel,
    /// <summary><c>a=ice-ufrag</c> or <c>a=ice-pwd</c> missing.</summary>
    MissingIceCredentials,
    /// <summary><c>a=ice-ufrag</c> or <c>a=ice-pwd</c> of the wrong length or characters (RFC 8839 §5.4).</summary>
    BadIceCredentials,
    /// <summary>No <c>a=fingerprint</c>.</summary>
    MissingFingerprint,
    /// <summary>The fingerprint is not sha-256 with 32 hex pairs.</summary>
    BadFingerprint,
    /// <summary><c>a=setup</c> missing or not valid, or not allowed for an offer or an answer (RFC 8842).</summary>
    BadSetup,
    /// <summary><c>a=sctp-port</c> not a port in 1..65535.</summary>
    BadSctpPort,
    /// <summary><c>a=max-message-size</c> not a non-negative integer.</summary>
    BadMaxMessageSize,
    /// <summary>More than 64 candidates.</summary>
    TooManyCandidates,
    /// <summary><c>a=mid</c> empty, longer than 32 characters, or not letters, digits, <c>-</c>, <c>_</c> and <c>.</c>.</summary>
    BadMid,
}

/// <summary>
/// The part of an SDP offer or answer a data-channel-only session needs (RFC 8866 syntax; RFC 8841 for SCTP over
/// DTLS; RFC 8839 ICE attributes; RFC 8122 fingerprint; RFC 8842 setup; RFC 8843 BUNDLE and <c>a=mid</c>).
/// Attributes may sit at session or media level (media wins). Unknown lines and attributes are ignored and never
/// echoed. Candidates that are not UDP IP candidates — <c>.local</c> mDNS names (RFC 8839 §5.1 allows FQDNs), TCP —
/// are counted in <see cref="SkippedCandidates"/> and otherwise left to peer-reflexive discovery.
/// </summary>
internal sealed record SdpDescription
{
    /// <summary>Bounds on what we parse.</summary>
    public const int MaxLength = 64 * 1024;

    public const int MaxLines = 2000;

    public const int MaxLineLength = 4096;

    public const int MaxCandidates = 64;

    /// <summary>RFC 8841 §6.1: without <c>a=max-message-size</c> the peer takes 64 KiB.</summary>
    public const int DefaultMaxMessageSize = 65536;

    public required string IceUfrag { get; init; }

    public required string IcePwd { get; init; }

    public bool IceLite { get; init; }

    public IReadOnlyList<IceCandidate> Candidates { get; init; } = [];

    public int SkippedCandidates { get; init; }

    public bool EndOfCandidates { get; init; }

    /// <summary>RFC 8122 §5: hash function name (lower case) and digest.</summary>
    public required string FingerprintAlgorithm { get; init; }

    public required byte[] Fingerprint { get; init; }

    public SdpSetup Setup { get; init; } = SdpSetup.ActPass;

    public string Mid { get; init; } = "0";

    public int SctpPort { get; init; } = 5000;

    /// <summary>0 means "any size" (RFC 8841 §6.1).</summary>
    public int MaxMessageSize { get; init; } = DefaultMaxMessageSize;

    /// <summary>Parses an offer or answer. Never throws on input.</summary>
    public static bool TryParse(string? text, out SdpDescription? description, out SdpError error, out string detail)
    {
        description = null;
        detail = "";
        if (string.IsNullOrWhiteSpace(text))
        {
            error = SdpError.Empty;
            return false;
        }

        if (text.Length > MaxLength)
        {
            error = SdpError.TooLarge;
            return false;
        }

        var lines = text.Split('\n');
        if (lines.Length > MaxLines)
        {
            error = SdpError.TooManyLines;
            return false;
        }

        if (!lines[0].TrimEnd('\r').Equals("v=0", StringComparison.Ordinal))
        {
            error = SdpError.NotSdp;
            detail = "the first line is not v=0";
            return false;
        }

        // Session-level values, then the data channel's m-section's (which win).
        var session = new Attributes();
        var media = new Attributes();
        var inData = false;
        var seenData = false;
        foreach (var raw in lines)
        {
            var line = raw.TrimEnd('\r');
            if (line.Length > MaxLineLength)
            {
                error = SdpError.LineTooLong;
                return false;
            }

            if (line.Length < 2 || line[1] != '=') continue;
            if (line[0] == 'm')
            {
                // RFC 8841 §4: m=application <port> UDP/DTLS/SCTP webrtc-datachannel; the first such section is ours.
                var f = line[2..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                inData = !seenData && f.Length >= 4 && f[0] == "application" && f[2].EndsWith("DTLS/SCTP", StringComparison.Ordinal) && f[3] == "webrtc-datachannel";
                seenData |= inData;
                continue;
            }

            if (line[0] != 'a') continue;
            var attributes = inData ? media : seenData ? null : session;
            attributes?.Add(line[2..]);
        }

        if (!seenData)
        {
            error = SdpError.NoDataChannel;
            detail = "no m=application UDP/DTLS/SCTP webrtc-datachannel section";
            return false;
        }

        if (media.Candidates.Count + session.Candidates.Count > MaxCandidates)
        {
            error = SdpError.TooManyCandidates;
            return false;
        }

        var ufrag = media.Ufrag ?? session.Ufrag;
        var pwd = media.Pwd ?? session.Pwd;
        if (ufrag is null || pwd is null)
        {
            error = SdpError.MissingIceCredentials;
            detail = "a=ice-ufrag and a=ice-pwd are required";
            return false;
        }

        // RFC 8839 §5.4: ufrag 4..256 ice-chars, pwd 22..256.
        if (ufrag.Length is < 4 or > 256 || pwd.Length is < 22 or > 256 || !ufrag.All(IsIceChar) || !pwd.All(IsIceChar))
        {
            error = SdpError.BadIceCredentials;
            detail = "a=ice-ufrag or a=ice-pwd is malformed";
            return false;
        }

        var fingerprint = media.Fingerprint ?? session.Fingerprint;
        if (fingerprint is null)
        {
            error = SdpError.MissingFingerprint;
            detail = "a=fingerprint is required";
            return false;
        }

        if (!TryParseFingerprint(fingerprint, out var algorithm, out var digest))
        {
            error = SdpError.BadFingerprint;
            detail = "a=fingerprint must be sha-256 with 32 hex pairs";
            return false;
        }

        // RFC 8843 §5: the mid is a token; we echo it, so it is held to 1..32 safe characters.
        var mid = media.Mid ?? "0";
        if (mid.Length is 0 or > 32 || !mid.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            error = SdpError.BadMid;
            detail = "a=mid is malformed";
            return false;
        }

        var setupText = media.Setup ?? session.Setup ?? "actpass";
        SdpSetup? setup = setupText switch
        {
            "actpass" => SdpSetup.ActPass,
            "active" => SdpSetup.Active,
            "passive" => SdpSetup.Passive,
            _ => null,
        };
        if (setup is null)
        {
            error = SdpError.BadSetup;
            detail = "a=setup must be actpass, active or passive";
            return false;
        }

        var port = 5000;
        if (media.SctpPort is { } sp && (!int.TryParse(sp, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        {
            error = SdpError.BadSctpPort;
            return false;
        }

        var maxMessage = DefaultMaxMessageSize;
        if (media.MaxMessageSize is { } mm && (!int.TryParse(mm, NumberStyles.None, CultureInfo.InvariantCulture, out maxMessage) || maxMessage < 0))
        {
            error = SdpError.BadMaxMessageSize;
            return false;
        }

        var candidates = new List<IceCandidate>();
        var skipped = 0;
        foreach (var c in session.Candidates.Concat(media.Candidates))
        {
            if (IceCandidate.TryParse(c, out var candidate)) candidates.Add(candidate!);
            else skipped++;
        }

        description = new SdpDescription
        {
            IceUfrag = ufrag,
            IcePwd = pwd,
            IceLite = session.IceLite || media.IceLite,
            Candidates = candidates,
            SkippedCandidates = skipped,
            EndOfCandidates = session.EndOfCandidates || media.EndOfCandidates,
            FingerprintAlgorithm = algorithm!,
            Fingerprint = digest!,
            Setup = setup.Value,
            Mid = mid,
            SctpPort = port,
            MaxMessageSize = maxMessage,
        };
        error = SdpError.None;
        return true;
    }

    // RFC 8839 §5.1: ice-char = ALPHA / DIGIT / "+" / "/".
    private static bool IsIceChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '+' or '/';

    /// <summary>RFC 8122 §5 <c>hash-func SP fingerprint</c>; only sha-256 is taken (as browsers send).</summary>
    internal static bool TryParseFingerprint(string value, out string? algorithm, out byte[]? digest)
    {
        algorithm = null;
        digest = null;
        var space = value.IndexOf(' ', StringComparison.Ordinal);
        if (space <= 0) return false;
        algorithm = value[..space].ToLowerInvariant();
        var hex = value[(space + 1)..].Trim();
        if (algorithm != "sha-256") return false;
        var parts = hex.Split(':');
        if (parts.Length != 32) return false;
        var bytes = new byte[32];
        for (var i = 0; i < 32; i++)
        {
            if (parts[i].Length != 2 || !byte.TryParse(parts[i], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out bytes[i])) return false;
        }

        digest = bytes;
        return true;
    }

    /// <summary>
    /// Writes a complete (non-trickle unless <paramref name="endOfCandidates"/> is false) SDP for a data-channel-only
    /// session: one BUNDLEd m=application section.
    /// </summary>
    public string ToSdp(bool endOfCandidates = true)
    {
        var sb = new StringBuilder();
        var sessionId = BitConverter.ToUInt64(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8)) >> 2;
        void Line(string s) => sb.Append(s).Append("\r\n");
        Line("v=0");
        Line(string.Create(CultureInfo.InvariantCulture, $"o=- {sessionId} 2 IN IP4 127.0.0.1"));
        Line("s=-");
        Line("t=0 0");
        Line("a=group:BUNDLE " + Mid);
        if (IceLite) Line("a=ice-lite");
        var defaultCandidate = Candidates.Count > 0 ? Candidates[0] : null;
        Line(string.Create(CultureInfo.InvariantCulture, $"m=application {defaultCandidate?.Address.Port ?? 9} UDP/DTLS/SCTP webrtc-datachannel"));
        var ipVersion = defaultCandidate?.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "IP6" : "IP4";
        Line($"c=IN {ipVersion} {defaultCandidate?.Address.Address.ToString() ?? "0.0.0.0"}");
        foreach (var c in Candidates) Line("a=" + c.ToSdp());
        if (endOfCandidates) Line("a=end-of-candidates");
        Line("a=ice-ufrag:" + IceUfrag);
        Line("a=ice-pwd:" + IcePwd);
        Line("a=ice-options:trickle");
        Line("a=fingerprint:" + FingerprintAlgorithm + " " + Dtls.DtlsCertificate.FormatFingerprint(Fingerprint));
        Line("a=setup:" + Setup.ToString().ToLowerInvariant());
        Line("a=mid:" + Mid);
        Line(string.Create(CultureInfo.InvariantCulture, $"a=sctp-port:{SctpPort}"));
        Line(string.Create(CultureInfo.InvariantCulture, $"a=max-message-size:{MaxMessageSize}"));
        return sb.ToString();
    }

    private sealed class Attributes
    {
        public string? Ufrag { get; private set; }

        public string? Pwd { get; private set; }

        public string? Fingerprint { get; private set; }

        public string? Setup { get; private set; }

        public string? Mid { get; private set; }

        public string? SctpPort { get; private set; }

        public string? MaxMessageSize { get; private set; }

        public bool IceLite { get; private set; }

        public bool EndOfCandidates { get; private set; }

        public List<string> Candidates { get; } = [];

        public void Add(string attribute)
        {
            var colon = attribute.IndexOf(':', StringComparison.Ordinal);
            var name = colon < 0 ? attribute : attribute[..colon];
            var value = colon < 0 ? "" : attribute[(colon + 1)..].Trim();
            switch (name)
            {
                case "ice-ufrag": Ufrag ??= value; break;
                case "ice-pwd": Pwd ??= value; break;
                case "fingerprint": Fingerprint ??= value; break;
                case "setup": Setup ??= value; break;
                case "mid": Mid ??= value; break;
                case "sctp-port": SctpPort ??= value; break;
                case "max-message-size": MaxMessageSize ??= value; break;
                case "ice-lite": IceLite = true; break;
                case "end-of-candidates": EndOfCandidates = true; break;
                case "candidate" when Candidates.Count <= MaxCandidates: Candidates.Add(attribute); break;
            }
        }
    }
}
