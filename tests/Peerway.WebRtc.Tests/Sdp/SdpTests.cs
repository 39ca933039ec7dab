using FsCheck.Xunit;
using Peerway.Nat.Ice;
using Peerway.WebRtc.Sdp;

namespace Peerway.WebRtc.Tests.Sdp;

public sealed class SdpTests
{
    private static string Vector(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Vectors", name));

    [Fact]
    public void Chromium_offer_with_mdns_candidates_parses()
    {
        Assert.True(SdpDescription.TryParse(Vector("chromium-offer.sdp"), out var d, out var error, out _), error.ToString());
        Assert.Equal("naax", d!.IceUfrag);
        Assert.Equal("iaEyZ3E6alZvOGZnuBlq7tmW", d.IcePwd);
        Assert.Equal(SdpSetup.ActPass, d.Setup);
        Assert.Equal("0", d.Mid);
        Assert.Equal(5000, d.SctpPort);
        Assert.Equal(262144, d.MaxMessageSize);
        Assert.Equal("sha-256", d.FingerprintAlgorithm);
        Assert.Equal(0xA2, d.Fingerprint[0]);
        Assert.Equal(0xA5, d.Fingerprint[31]);

        // Both host candidates are .local mDNS names: skipped, left to peer-reflexive discovery, never an error.
        Assert.Empty(d.Candidates);
        Assert.Equal(2, d.SkippedCandidates);
        Assert.False(d.EndOfCandidates);
    }

    [Fact]
    public void Chromium_answer_parses_as_active()
    {
        Assert.True(SdpDescription.TryParse(Vector("chromium-answer.sdp"), out var d, out _, out _));
        Assert.Equal(SdpSetup.Active, d!.Setup);
        Assert.Equal(2, d.SkippedCandidates);
    }

    [Theory]
    [InlineData("peerway-offer.sdp", SdpSetup.ActPass)]
    [InlineData("peerway-answer.sdp", SdpSetup.Active)]
    public void Our_own_descriptions_parse_back_with_their_candidates(string name, SdpSetup setup)
    {
        Assert.True(SdpDescription.TryParse(Vector(name), out var d, out _, out _));
        Assert.Equal(setup, d!.Setup);
        var c = Assert.Single(d.Candidates);
        Assert.Equal(IceCandidateType.Host, c.Type);
        Assert.True(d.EndOfCandidates);
    }

    [Fact]
    public void A_description_round_trips_through_its_text()
    {
        Assert.True(SdpDescription.TryParse(Vector("peerway-answer.sdp"), out var d, out _, out _));
        Assert.True(SdpDescription.TryParse(d!.ToSdp(), out var back, out _, out _));
        Assert.Equal(d.IceUfrag, back!.IceUfrag);
        Assert.Equal(d.Fingerprint, back.Fingerprint);
        Assert.Equal(d.Candidates, back.Candidates);
        Assert.Equal(d.MaxMessageSize, back.MaxMessageSize);
    }

    [Fact]
    public void Session_level_attributes_apply_and_max_message_size_defaults_to_64_KiB()
    {
        // As Firefox writes it: fingerprint at session level; no a=max-message-size means 64 KiB (RFC 8841 §6.1).
        var sdp = Vector("chromium-offer.sdp").Replace("a=group:BUNDLE 0", "a=fingerprint:sha-256 " + string.Join(':', Enumerable.Repeat("0F", 32)) + "\r\na=group:BUNDLE 0", StringComparison.Ordinal);
        sdp = string.Join("\r\n", sdp.Split("\r\n").Where(l => !l.StartsWith("a=fingerprint:sha-256 A2", StringComparison.Ordinal) && !l.StartsWith("a=max-message-size", StringComparison.Ordinal)));
        Assert.True(SdpDescription.TryParse(sdp, out var d, out var error, out _), error.ToString());
        Assert.Equal(0x0F, d!.Fingerprint[0]);
        Assert.Equal(SdpDescription.DefaultMaxMessageSize, d.MaxMessageSize);
    }

    [Theory]
    [InlineData("", SdpError.Empty)]
    [InlineData("hello", SdpError.NotSdp)]
    [InlineData("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", SdpError.NoDataChannel)]
    public void Malformed_descriptions_get_a_typed_error(string sdp, SdpError expected)
    {
        Assert.False(SdpDescription.TryParse(sdp, out _, out var error, out _));
        Assert.Equal(expected, error);
    }

    [Theory]
    [InlineData("a=ice-pwd:iaEyZ3E6alZvOGZnuBlq7tmW", "", SdpError.MissingIceCredentials)]
    [InlineData("a=ice-pwd:iaEyZ3E6alZvOGZnuBlq7tmW", "a=ice-pwd:short", SdpError.BadIceCredentials)]
    [InlineData("a=setup:actpass", "a=setup:sideways", SdpError.BadSetup)]
    [InlineData("a=sctp-port:5000", "a=sctp-port:99999", SdpError.BadSctpPort)]
    [InlineData("a=max-message-size:262144", "a=max-message-size:-1", SdpError.BadMaxMessageSize)]
    [InlineData("a=mid:0", "a=mid:a b", SdpError.BadMid)]
    [InlineData("a=fingerprint:sha-256 A2:87", "a=fingerprint:sha-1 A2:87", SdpError.BadFingerprint)]
    public void A_bad_attribute_in_a_browser_offer_gets_its_error(string find, string replace, SdpError expected)
    {
        var lines = Vector("chromium-offer.sdp").Split("\r\n").Select(l => l.StartsWith(find, StringComparison.Ordinal) ? replace : l);
        Assert.False(SdpDescription.TryParse(string.Join("\r\n", lines), out _, out var error, out _));
        Assert.Equal(expected, error);
    }

    [Fact]
    public void Oversized_input_is_refused_before_parsing()
    {
        Assert.False(SdpDescription.TryParse("v=0\r\n" + new string('a', SdpDescription.MaxLength), out _, out var e1, out _));
        Assert.Equal(SdpError.TooLarge, e1);
        Assert.False(SdpDescription.TryParse("v=0" + string.Concat(Enumerable.Repeat("\na=x", SdpDescription.MaxLines)), out _, out var e2, out _));
        Assert.Equal(SdpError.TooManyLines, e2);
    }

    [Property(MaxTest = 3000)]
    public void Random_text_never_throws(string text) => _ = SdpDescription.TryParse(text, out _, out _, out _);

    /// <summary>
    /// 10^6 mutations of the browsers' offers and answers (Chromium's, Firefox's): characters replaced from SDP's own
    /// alphabet, lines duplicated, dropped or cut, the text truncated. Parsing never throws; whatever parses is within
    /// the bounds (candidates) and writes back out.
    /// </summary>
    [Fact]
    public void A_million_mutated_browser_descriptions_never_throw()
    {
        var seeds = new[] { "chromium-offer.sdp", "chromium-answer.sdp", "firefox-offer.sdp" }.Select(Vector).ToArray();
        var random = new Random(3);
        const string alphabet = "v=amc:\r\n 0123456789ABCDEF.-/+";
        var parsed = 0;
        for (var i = 0; i < 1_000_000; i++)
        {
            var seed = seeds[i % seeds.Length];
            string text;
            if (random.Next(4) == 0)
            {
                // Line-level: duplicate, drop or cut one line.
                var lines = seed.Split('\n').ToList();
                var at = random.Next(lines.Count);
                switch (random.Next(3))
                {
                    case 0: lines.Insert(at, lines[at]); break;
                    case 1: lines.RemoveAt(at); break;
                    default: lines[at] = lines[at][..random.Next(lines[at].Length + 1)]; break;
                }

                text = string.Join('\n', lines);
            }
            else
            {
                var chars = seed.ToCharArray();
                for (var f = 0; f < 1 + random.Next(6); f++) chars[random.Next(chars.Length)] = alphabet[random.Next(alphabet.Length)];
                text = new string(chars, 0, chars.Length - random.Next(40));
            }

            if (SdpDescription.TryParse(text, out var d, out var error, out _))
            {
                parsed++;
                Assert.InRange(d!.Candidates.Count, 0, SdpDescription.MaxCandidates);
                Assert.NotEmpty(d.ToSdp());
            }
            else
            {
                Assert.True(Enum.IsDefined(error));
            }
        }

        Assert.InRange(parsed, 1, 999_999);
    }
}
