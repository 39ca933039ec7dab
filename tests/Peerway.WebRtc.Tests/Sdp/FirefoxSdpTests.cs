using System.Net;
using Microsoft.Extensions.Time.Testing;
using Peerway.Nat.Ice;
using Peerway.Net;
using Peerway.WebRtc.Sdp;
using Peerway.WebRtc.Tests.Sctp;

namespace Peerway.WebRtc.Tests.Sdp;

/// <summary>
/// Firefox's data-channel offers (no Firefox on this machine): captured offers kept as public test vectors by aiortc,
/// tests/test_sdp.py (aiortc/aiortc, `test_datachannel_firefox_63` and `test_datachannel_firefox`), copied to
/// Vectors/firefox-offer.sdp and Vectors/firefox-legacy-offer.sdp. What Firefox does differently from Chromium: a
/// session-level <c>a=fingerprint</c> (RFC 8122 §5 lets it stand for every m-section), <c>a=mid:sdparta_0</c>,
/// IPv6 and TCP candidates, <c>a=max-message-size:1073741823</c>, <c>a=sendrecv</c> and
/// <c>a=msid-semantic</c> lines we ignore; before Firefox 63 it used the draft's <c>DTLS/SCTP 5000</c> + <c>a=sctpmap</c>.
/// <para>
/// Firefox's answer (Vectors/firefox-answer.sdp): the Firefox 90.0.2 answer to a data-channel offer kept as entry
/// <c>mac_ff_90_client</c> in a public list of captured browser offers/answers (a JavaScript bundle, <c>so_viewer</c>,
/// found through the code search of public repositories; its list holds Chrome, Edge, Safari, Opera and Firefox pairs).
/// As Firefox answers: <c>a=setup:active</c> (it is the DTLS client), <c>a=mid:0</c> echoing the offer, an mDNS host
/// candidate and a TCP one next to a server-reflexive UDP one, and a connection line with a real address and port.
/// </para>
/// </summary>
public sealed class FirefoxSdpTests
{
    private static string Vector(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Vectors", name));

    [Fact]
    public void Firefox_offer_parses_with_session_level_fingerprint_and_its_own_mid()
    {
        Assert.True(SdpDescription.TryParse(Vector("firefox-offer.sdp"), out var d, out var error, out var detail), $"{error}: {detail}");
        Assert.Equal("9889e0c4", d!.IceUfrag);
        Assert.Equal("d30a5aec4dd81f07d4ff3344209400ab", d.IcePwd);
        Assert.Equal(SdpSetup.ActPass, d.Setup);
        Assert.Equal("sdparta_0", d.Mid);
        Assert.Equal(5000, d.SctpPort);
        Assert.Equal(1073741823, d.MaxMessageSize);
        Assert.Equal("sha-256", d.FingerprintAlgorithm);
        Assert.Equal(0x39, d.Fingerprint[0]);
        Assert.Equal(0x74, d.Fingerprint[31]);
        Assert.True(d.EndOfCandidates);

        // The UDP candidates (IPv4 and IPv6) are kept; the TCP ones (RFC 6544, which we do not speak) are skipped.
        Assert.Equal(2, d.Candidates.Count);
        Assert.All(d.Candidates, c => Assert.Equal(IceCandidateType.Host, c.Type));
        Assert.Contains(d.Candidates, c => c.Address.Equals(new IPEndPoint(IPAddress.Parse("192.168.99.58"), 45791)));
        Assert.Equal(2, d.SkippedCandidates);
    }

    [Fact]
    public void Pre_63_Firefox_offer_with_sctpmap_is_refused_with_a_typed_error()
    {
        // RFC 8841 replaced the draft's "DTLS/SCTP 5000" + a=sctpmap; Firefox 63+ and every current browser send the RFC.
        Assert.False(SdpDescription.TryParse(Vector("firefox-legacy-offer.sdp"), out _, out var error, out var detail));
        Assert.Equal(SdpError.NoDataChannel, error);
        Assert.Contains("webrtc-datachannel", detail, StringComparison.Ordinal);
    }

    /// <summary>
    /// We answer Firefox's offer as JSEP says (RFC 8829 §5.3): the same mid, <c>a=setup:active</c>, our own fingerprint
    /// and credentials, and our max-message-size (Firefox's 1 GiB caps nothing below ours). The connection runs on the
    /// in-memory network, so its checks to Firefox's LAN addresses go nowhere.
    /// </summary>
    [Fact]
    public async Task Firefox_offer_is_answered_with_its_mid_and_setup_active()
    {
        var world = new SteppedNetwork();
        var socket = world.Network.CreateSocket(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 40000));
        await using var pc = new RtcPeerConnection(socket, world.Time, new RtcConfiguration());
        var answer = await pc.AcceptOfferAsync(Vector("firefox-offer.sdp")).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(SdpDescription.TryParse(answer, out var a, out var error, out _), error.ToString());
        Assert.Equal("sdparta_0", a!.Mid);
        Assert.Contains("a=group:BUNDLE sdparta_0", answer, StringComparison.Ordinal);
        Assert.Equal(SdpSetup.Active, a.Setup);
        Assert.Equal(pc.LocalFingerprint, "sha-256 " + string.Join(':', a.Fingerprint.Select(b => b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture))));
        Assert.NotEqual("9889e0c4", a.IceUfrag);
        Assert.Equal(new RtcConfiguration().Sctp.MaxMessageSize, pc.MaxMessageSize);
        Assert.Contains(a.Candidates, c => c.Address.Equals(socket.LocalEndPoint));
    }

    [Fact]
    public void Firefox_answer_parses_with_setup_active_and_only_its_srflx_candidate_kept()
    {
        Assert.True(SdpDescription.TryParse(Vector("firefox-answer.sdp"), out var d, out var error, out var detail), $"{error}: {detail}");
        Assert.Equal(SdpSetup.Active, d!.Setup);
        Assert.Equal("0", d.Mid);
        Assert.Equal("8042d877", d.IceUfrag);
        Assert.Equal("1d16f1682e70a195cc64c3ba2081b252", d.IcePwd);
        Assert.Equal(5000, d.SctpPort);
        Assert.Equal(1073741823, d.MaxMessageSize);
        Assert.Equal(0xB0, d.Fingerprint[0]);
        Assert.Equal(0xEC, d.Fingerprint[31]);
        Assert.True(d.EndOfCandidates);
        Assert.False(d.IceLite);

        // The .local (mDNS) UDP candidate and the TCP one are skipped (peer-reflexive discovery finds the former).
        var c = Assert.Single(d.Candidates);
        Assert.Equal(IceCandidateType.ServerReflexive, c.Type);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("84.60.72.107"), 59170), c.Address);
        Assert.Equal(2, d.SkippedCandidates);
    }

    /// <summary>
    /// Firefox's answer completes our offer (same mid "0"): it is <c>a=setup:active</c>, so we are the DTLS server
    /// (RFC 8842 §5.3) and ICE controlling; its 1 GiB max-message-size caps nothing below ours; an answer that says
    /// <c>actpass</c> instead is refused.
    /// </summary>
    [Fact]
    public async Task Firefox_answer_completes_our_offer()
    {
        var world = new SteppedNetwork();
        var socket = world.Network.CreateSocket(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 40000));
        await using var pc = new RtcPeerConnection(socket, world.Time, new RtcConfiguration { Sctp = new() { MaxMessageSize = 64 * 1024 } });
        var offer = await pc.CreateOfferAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Contains("a=mid:0", offer, StringComparison.Ordinal);

        var answer = Vector("firefox-answer.sdp");
        pc.SetAnswer(answer);
        Assert.Equal(64 * 1024, pc.MaxMessageSize);
        Assert.Equal(RtcConnectionState.Connecting, pc.State);
        Assert.Equal(IceRole.Controlling, pc.Ice!.Role);

        var actpass = answer.Replace("a=setup:active", "a=setup:actpass", StringComparison.Ordinal);
        await using var other = new RtcPeerConnection(world.Socket(2), world.Time, new RtcConfiguration());
        await other.CreateOfferAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var refused = Assert.Throws<SdpException>(() => other.SetAnswer(actpass));
        Assert.Equal(SdpError.BadSetup, refused.Error);
    }
}
