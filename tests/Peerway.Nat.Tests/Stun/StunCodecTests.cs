using System.Net;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Peerway.Nat.Stun;

namespace Peerway.Nat.Tests.Stun;

public sealed class StunCodecTests
{
    internal static byte[] Hex(string s) => Convert.FromHexString(string.Concat(s.Where(Uri.IsHexDigit)));

    // RFC 5769 §2.1 Sample Request (short-term password "VOkJxbRl1RmTxUk/WvJxBt").
    internal static readonly byte[] SampleRequest = Hex(@"
        00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
        00 24 00 04 6e 00 01 ff
        80 29 00 08 93 2f f9 b1 51 26 3b 36
        00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
        00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
        80 28 00 04 e5 7a 3b cf");

    // RFC 5769 §2.2 Sample IPv4 Response: 192.0.2.1:32853.
    internal static readonly byte[] SampleIpv4Response = Hex(@"
        01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
        00 20 00 08 00 01 a1 47 e1 12 a6 43
        00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
        80 28 00 04 c0 7d 4c 96");

    // RFC 5769 §2.3 Sample IPv6 Response: [2001:db8:1234:5678:11:2233:4455:6677]:32853.
    internal static readonly byte[] SampleIpv6Response = Hex(@"
        01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
        00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
        00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
        80 28 00 04 c8 fb 0b 4c");

    // RFC 5769 §2.4 Sample Request with Long-Term Authentication (user "マトリックス", realm "example.org",
    // password "TheMatrIX" after SASLprep).
    internal static readonly byte[] SampleLongTermRequest = Hex(@"
        00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
        00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
        00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
        00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
        00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66");

    private static readonly byte[] ShortTermKey = Encoding.UTF8.GetBytes("VOkJxbRl1RmTxUk/WvJxBt");
    private static readonly byte[] VectorTid = Hex("b7 e7 a7 01 bc 34 d6 86 fa 87 df ae");

    private static StunMessage Decode(byte[] bytes)
    {
        Assert.True(StunMessage.TryDecode(bytes, out var m, out var error), error.ToString());
        return m!;
    }

    [Fact]
    public void Rfc5769_sample_request_decodes_and_verifies()
    {
        var m = Decode(SampleRequest);
        Assert.Equal(StunMethod.Binding, m.Method);
        Assert.Equal(StunClass.Request, m.Class);
        Assert.Equal(VectorTid, m.TransactionId.ToArray());
        Assert.True(m.TryGetText(StunAttributeType.Software, 763, out var software));
        Assert.Equal("STUN test client", software);
        Assert.True(m.TryGetText(StunAttributeType.Username, 508, out var user));
        Assert.Equal("evtj:h6vY", user);
        Assert.True(m.TryGetUInt32(StunAttributeType.Priority, out var priority));
        Assert.Equal(0x6e0001ffu, priority);
        Assert.True(m.TryGetUInt64(StunAttributeType.IceControlled, out var tie));
        Assert.Equal(0x932ff9b151263b36ul, tie);
        Assert.True(StunAttributes.VerifyIntegrity(m, ShortTermKey));
        Assert.False(StunAttributes.VerifyIntegrity(m, "wrong"u8));
        Assert.True(StunAttributes.VerifyFingerprint(m));
    }

    [Fact]
    public void Rfc5769_ipv4_response_gives_the_mapped_address_and_reencodes_byte_for_byte()
    {
        var m = Decode(SampleIpv4Response);
        Assert.Equal(StunClass.SuccessResponse, m.Class);
        Assert.True(m.TryGetXorAddress(StunAttributeType.XorMappedAddress, out var mapped));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 32853), mapped);
        Assert.True(StunAttributes.VerifyIntegrity(m, ShortTermKey));
        Assert.True(StunAttributes.VerifyFingerprint(m));

        // Our writer produces the same XOR-MAPPED-ADDRESS attribute bytes (offset 36: after the padded SOFTWARE).
        var buffer = new byte[64];
        var w = new StunWriter(buffer, StunMethod.Binding, StunClass.SuccessResponse, VectorTid);
        w.AddXorAddress(StunAttributeType.XorMappedAddress, mapped!);
        Assert.Equal(SampleIpv4Response.AsSpan(36, 12).ToArray(), w.Written[20..].ToArray());
    }

    [Fact]
    public void Rfc5769_ipv6_response_gives_the_mapped_address()
    {
        var m = Decode(SampleIpv6Response);
        Assert.True(m.TryGetXorAddress(StunAttributeType.XorMappedAddress, out var mapped));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8:1234:5678:11:2233:4455:6677"), 32853), mapped);
        Assert.True(StunAttributes.VerifyIntegrity(m, ShortTermKey));
        Assert.True(StunAttributes.VerifyFingerprint(m));

        var buffer = new byte[64];
        var w = new StunWriter(buffer, StunMethod.Binding, StunClass.SuccessResponse, VectorTid);
        w.AddXorAddress(StunAttributeType.XorMappedAddress, mapped!);
        Assert.Equal(SampleIpv6Response.AsSpan(36, 24).ToArray(), w.Written[20..].ToArray());
    }

    [Fact]
    public void Rfc5769_long_term_request_verifies_and_reencodes_exactly()
    {
        var m = Decode(SampleLongTermRequest);
        Assert.True(m.TryGetText(StunAttributeType.Username, 508, out var user));
        Assert.Equal("マトリックス", user);
        Assert.True(m.TryGetText(StunAttributeType.Nonce, 763, out var nonce));
        Assert.Equal("f//499k954d6OL34oL9FSTvy64sA", nonce);
        Assert.True(m.TryGetText(StunAttributeType.Realm, 763, out var realm));
        Assert.Equal("example.org", realm);
        Assert.False(StunAttributes.VerifyFingerprint(m));
        var key = StunAttributes.LongTermKey(user, realm, "TheMatrIX");
        Assert.True(StunAttributes.VerifyIntegrity(m, key));
        Assert.False(StunAttributes.VerifyIntegrity(m, StunAttributes.LongTermKey(user, realm, "thematrix")));

        var buffer = new byte[256];
        var w = new StunWriter(buffer, StunMethod.Binding, StunClass.Request, m.TransactionId);
        w.AddUtf8(StunAttributeType.Username, user);
        w.AddUtf8(StunAttributeType.Nonce, nonce);
        w.AddUtf8(StunAttributeType.Realm, realm);
        w.AddMessageIntegrity(key);
        Assert.Equal(SampleLongTermRequest, w.Written.ToArray());
    }

    [Fact]
    public void Flipping_any_covered_bit_breaks_integrity_and_fingerprint()
    {
        for (var i = 0; i < SampleRequest.Length - 8; i++)
        {
            if (i is 2 or 3) continue; // the length field changes framing itself
            var copy = (byte[])SampleRequest.Clone();
            copy[i] ^= 0x01;
            if (!StunMessage.TryDecode(copy, out var m, out _)) continue;
            Assert.False(StunAttributes.VerifyFingerprint(m!) && StunAttributes.VerifyIntegrity(m!, ShortTermKey), $"byte {i}");
        }
    }

    [Theory]
    [InlineData(StunMethod.Binding, StunClass.Request, 0x0001)]
    [InlineData(StunMethod.Binding, StunClass.SuccessResponse, 0x0101)]
    [InlineData(StunMethod.Binding, StunClass.ErrorResponse, 0x0111)]
    [InlineData(StunMethod.Allocate, StunClass.Request, 0x0003)]
    [InlineData(StunMethod.Send, StunClass.Indication, 0x0016)]
    [InlineData(StunMethod.Data, StunClass.Indication, 0x0017)]
    [InlineData(StunMethod.ChannelBind, StunClass.ErrorResponse, 0x0119)]
    public void Message_type_bits_follow_rfc_8489_section_5(StunMethod method, StunClass cls, int type)
    {
        Assert.Equal(type, StunMessage.EncodeType(method, cls));
        Assert.Equal((method, cls), StunMessage.DecodeType((ushort)type));
    }

    [Fact]
    public void Error_code_unknown_attributes_password_algorithms_userhash_and_sha256_round_trip()
    {
        var tid = new byte[12];
        Random.Shared.NextBytes(tid);
        var key = StunAttributes.LongTermKey("alice", "example.org", "pw", StunPasswordAlgorithm.Sha256);
        var buffer = new byte[512];
        var w = new StunWriter(buffer, StunMethod.Allocate, StunClass.ErrorResponse, tid);
        w.AddErrorCode(StunErrorCode.StaleNonce);
        w.AddUnknownAttributes([0x7777, 0x0042]);
        w.AddPasswordAlgorithms([StunPasswordAlgorithm.Sha256, StunPasswordAlgorithm.Md5]);
        w.Add(StunAttributeType.UserHash, StunAttributes.UserHash("alice", "example.org"));
        w.AddUtf8(StunAttributeType.Realm, "example.org");
        w.AddMessageIntegrity(key);
        w.AddMessageIntegritySha256(key);
        w.AddFingerprint();
        var m = Decode(w.Written.ToArray());
        Assert.Equal(StunMethod.Allocate, m.Method);
        Assert.True(m.TryGetErrorCode(out var code, out var reason));
        Assert.Equal(438, code);
        Assert.Equal("Stale Nonce", reason);
        Assert.True(m.TryGet(StunAttributeType.UnknownAttributes, out var ua));
        Assert.True(StunAttributes.TryReadUnknownAttributes(m.GetValue(ua), out var types));
        Assert.Equal(new ushort[] { 0x7777, 0x0042 }, types);
        Assert.True(m.TryGet(StunAttributeType.PasswordAlgorithms, out var pa));
        Assert.True(StunAttributes.TryReadPasswordAlgorithms(m.GetValue(pa), out var algorithms));
        Assert.Equal([StunPasswordAlgorithm.Sha256, StunPasswordAlgorithm.Md5], algorithms);
        Assert.True(m.TryGet(StunAttributeType.UserHash, out var uh));
        Assert.Equal(32, uh.Length);
        Assert.True(StunAttributes.VerifyIntegrity(m, key));
        Assert.True(StunAttributes.VerifyIntegritySha256(m, key));
        Assert.False(StunAttributes.VerifyIntegritySha256(m, StunAttributes.LongTermKey("alice", "example.org", "px", StunPasswordAlgorithm.Sha256)));
        Assert.True(StunAttributes.VerifyFingerprint(m));
    }

    [Fact]
    public void Attributes_after_message_integrity_are_ignored()
    {
        var tid = new byte[12];
        var buffer = new byte[256];
        var w = new StunWriter(buffer, StunMethod.Binding, StunClass.Request, tid);
        w.AddMessageIntegrity("k"u8);
        w.AddUtf8(StunAttributeType.Username, "mallory"); // appended after the MAC: must not be seen
        var m = Decode(w.Written.ToArray());
        Assert.False(m.Has(StunAttributeType.Username));
        Assert.True(StunAttributes.VerifyIntegrity(m, "k"u8));
    }

    [Fact]
    public void Unknown_comprehension_required_attributes_are_reported()
    {
        var buffer = new byte[128];
        var w = new StunWriter(buffer, StunMethod.Binding, StunClass.Request, new byte[12]);
        w.AddUInt32(0x7F01, 1);
        w.AddUInt32(0xC001, 1); // comprehension-optional: ignored
        w.AddUtf8(StunAttributeType.Software, "x");
        var m = Decode(w.Written.ToArray());
        var unknown = StunAttributes.UnknownComprehensionRequired(m, new HashSet<ushort> { StunAttributeType.Username });
        Assert.Equal(new ushort[] { 0x7F01 }, unknown);
    }

    [Theory]
    [InlineData(0, StunDecodeError.TooShort)]
    [InlineData(1, StunDecodeError.NotStun)]
    [InlineData(2, StunDecodeError.BadMagicCookie)]
    [InlineData(3, StunDecodeError.LengthNotAligned)]
    [InlineData(4, StunDecodeError.LengthMismatch)]
    [InlineData(5, StunDecodeError.AttributeOverrun)]
    public void Malformed_framing_returns_a_typed_error(int mutation, StunDecodeError expected)
    {
        var b = (byte[])SampleRequest.Clone();
        switch (mutation)
        {
            case 0: b = b[..19]; break;
            case 1: b[0] |= 0x80; break;
            case 2: b[5] ^= 1; break;
            case 3: b[3] += 1; break;
            case 4: b = b[..^4]; break;
            case 5: b[22] = 0x7F; break;
        }

        Assert.False(StunMessage.TryDecode(b, out var m, out var error));
        Assert.Null(m);
        Assert.Equal(expected, error);
    }

    private static void ExerciseAll(byte[] bytes)
    {
        if (!StunMessage.TryDecode(bytes, out var m, out var error))
        {
            Assert.NotEqual(StunDecodeError.None, error);
            return;
        }

        StunAttributes.VerifyFingerprint(m!);
        StunAttributes.VerifyIntegrity(m!, "k"u8);
        StunAttributes.VerifyIntegritySha256(m!, "k"u8);
        foreach (var a in m!.Attributes)
        {
            var v = m.GetValue(a);
            StunAttributes.TryReadAddress(v, out _);
            StunAttributes.TryReadXorAddress(v, m.TransactionId, out _);
            StunAttributes.TryReadErrorCode(v, out _, out _);
            StunAttributes.TryReadUnknownAttributes(v, out _);
            StunAttributes.TryReadPasswordAlgorithms(v, out _);
        }
    }

    [Property(MaxTest = 2000)]
    public void Random_bytes_never_throw(byte[] bytes) => ExerciseAll(bytes);

    [Property(MaxTest = 2000)]
    public void Random_attribute_soup_behind_a_valid_header_never_throws(byte[] body)
    {
        var length = body.Length & ~3;
        var bytes = new byte[20 + length];
        SampleRequest.AsSpan(0, 20).CopyTo(bytes);
        bytes[2] = (byte)(length >> 8);
        bytes[3] = (byte)length;
        body.AsSpan(0, length).CopyTo(bytes.AsSpan(20));
        ExerciseAll(bytes);
    }

    public static Arbitrary<(int Seed, int Index, byte Xor, int Cut)> Mutations() =>
        Gen.Choose(0, 3).SelectMany(seed => Gen.Choose(0, 200).SelectMany(i => ArbMap.Default.GeneratorFor<byte>()
            .SelectMany(x => Gen.Choose(0, 200).Select(cut => (seed, i, x, cut))))).ToArbitrary();

    [Property(MaxTest = 4000, Arbitrary = [typeof(StunCodecTests)])]
    public void Mutated_vectors_never_throw((int Seed, int Index, byte Xor, int Cut) m)
    {
        byte[][] seeds = [SampleRequest, SampleIpv4Response, SampleIpv6Response, SampleLongTermRequest];
        var b = (byte[])seeds[m.Seed].Clone();
        b[m.Index % b.Length] ^= m.Xor;
        ExerciseAll(b.AsSpan(0, Math.Min(b.Length, b.Length - m.Cut % 8)).ToArray());
    }
}
