using System.Numerics;
using System.Text;
using FsCheck.Xunit;
using Peerway.Core.Multiformats;

namespace Peerway.Core.Tests.Multiformats;

public sealed class CidTests
{
    // CID spec README: the same content as CIDv0 and CIDv1 (dag-pb).
    private const string SpecV0 = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n";
    private const string SpecV1 = "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

    [Fact]
    public void Spec_example_v0_converts_to_the_spec_v1()
    {
        Assert.Equal(MultiformatError.None, Cid.TryParse(SpecV0, out var v0));
        Assert.Equal(0, v0!.Version);
        Assert.Equal(Cid.DagPbCodec, v0.Codec);
        Assert.Equal(SpecV0, v0.ToString());
        Assert.Equal(SpecV1, v0.ToV1().ToString());
        Assert.Equal(MultiformatError.None, Cid.TryParse(SpecV1, out var v1));
        Assert.Equal(v0.Multihash, v1!.Multihash);
    }

    [Fact]
    public void Raw_cid_of_empty_bytes_is_the_well_known_one()
    {
        // sha2-256("") = e3b0c442...; as raw CIDv1 base32: bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku.
        var cid = Cid.V1(Cid.RawCodec, Multihash.Sha256([]));
        Assert.Equal("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", cid.ToString());
        Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Convert.ToHexStringLower(cid.Multihash.Digest));
    }

    [Fact]
    public void Base58btc_and_base36_and_upper_base32_multibase_forms_parse_to_the_same_cid()
    {
        var cid = Cid.Parse(SpecV1);
        var z = Multibase.EncodeBase58Btc(cid.Bytes);
        var k = "k" + ToBase36(cid.Bytes.ToArray());
        Assert.Equal(cid, Cid.Parse(z));
        Assert.Equal(cid, Cid.Parse(k));
        Assert.Equal(cid, Cid.Parse(SpecV1.ToUpperInvariant()));
    }

    [Fact]
    public void Identity_multihash_cids_round_trip()
    {
        var cid = Cid.V1(Cid.RawCodec, Multihash.Identity("hi"u8));
        Assert.Equal(cid, Cid.Parse(cid.ToString()));
        Assert.True(cid.Multihash.Matches("hi"u8));
        Assert.False(cid.Multihash.Matches("ho"u8));
    }

    [Theory]
    [InlineData("", MultiformatError.Empty)]
    [InlineData("xabc", MultiformatError.UnsupportedMultibase)]
    [InlineData("b!!!!", MultiformatError.InvalidCharacter)]
    [InlineData("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR10", MultiformatError.InvalidCharacter)]
    [InlineData("bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk", MultiformatError.Truncated)]
    [InlineData("z1", MultiformatError.InvalidCidV0)]
    public void Invalid_text_is_a_typed_error(string text, MultiformatError expected)
    {
        Assert.Equal(expected, Cid.TryParse(text, out var cid));
        Assert.Null(cid);
    }

    [Fact]
    public void Binary_errors_are_typed()
    {
        var v1 = Cid.Parse(SpecV1).ToArray();
        Assert.Equal(MultiformatError.TrailingData, Cid.TryDecode([.. v1, 0], out _));
        Assert.Equal(MultiformatError.Truncated, Cid.TryDecode(v1.AsSpan(..^1), out _));
        var v2 = (byte[])v1.Clone();
        v2[0] = 2;
        Assert.Equal(MultiformatError.UnsupportedCidVersion, Cid.TryDecode(v2, out _));
        var v0Declared = (byte[])v1.Clone();
        v0Declared[0] = 0;
        Assert.Equal(MultiformatError.InvalidCidV0, Cid.TryDecode(v0Declared, out _));
        var md5 = (byte[])v1.Clone();
        md5[2] = 0xd5;
        Assert.Equal(MultiformatError.UnsupportedHashFunction, Cid.TryDecode(md5, out _));
        var shortDigest = (byte[])v1.Clone();
        shortDigest[3] = 31;
        Assert.Equal(MultiformatError.DigestLengthMismatch, Cid.TryDecode(shortDigest, out _));
        // A CIDv0 inside a multibase string is invalid (CID spec: v0 has no multibase prefix).
        Assert.Equal(MultiformatError.InvalidCidV0, Cid.TryParse(Multibase.EncodeBase32(Cid.Parse(SpecV0).Bytes), out _));
    }

    [Fact]
    public void Overlong_text_is_rejected_before_decoding()
    {
        Assert.Equal(MultiformatError.TooLong, Cid.TryParse("b" + new string('a', Multibase.MaxEncodedLength), out _));
    }

    [Property(MaxTest = 2000)]
    public bool Fuzz_random_bytes_decode_to_a_typed_error_or_a_cid_that_re_encodes_identically(byte[] data)
    {
        data ??= [];
        var error = Cid.TryDecode(data, out var cid);
        return error == MultiformatError.None ? cid!.Bytes.SequenceEqual(data) : cid is null;
    }

    [Property(MaxTest = 2000)]
    public bool Fuzz_mutated_valid_cids_never_throw(int position, byte value, bool v0)
    {
        var bytes = (v0 ? Cid.Parse(SpecV0) : Cid.Parse(SpecV1)).ToArray();
        bytes[(int)((uint)position % bytes.Length)] = value;
        var error = Cid.TryDecode(bytes, out var cid);
        return error == MultiformatError.None ? cid!.Bytes.SequenceEqual(bytes) : cid is null;
    }

    [Property(MaxTest = 2000)]
    public bool Fuzz_random_strings_never_throw(string text, char prefix)
    {
        var candidate = prefix + (text ?? string.Empty);
        var error = Cid.TryParse(candidate, out var cid);
        return error == MultiformatError.None ? Cid.TryParse(cid!.ToString(), out var again) == MultiformatError.None && again!.Equals(cid) : cid is null;
    }

    [Property(MaxTest = 3000)]
    public bool Fuzz_multibase_decoding_of_random_strings_never_throws(string text, byte prefix)
    {
        var candidate = "bBzkx"[prefix % 5] + (text ?? string.Empty);
        var error = Multibase.TryDecode(candidate, out var bytes);
        return error == MultiformatError.None ? bytes.Length <= candidate.Length : bytes.Length == 0;
    }

    [Property(MaxTest = 1000)]
    public bool Multibase_round_trips(byte[] data)
    {
        data ??= [];
        return Multibase.TryDecode(Multibase.EncodeBase32(data), out var b32) == MultiformatError.None && b32.SequenceEqual(data)
            && Multibase.TryDecode(Multibase.EncodeBase58Btc(data), out var b58) == MultiformatError.None && b58.SequenceEqual(data)
            && Multibase.TryDecode("k" + ToBase36(data), out var b36) == MultiformatError.None && b36.SequenceEqual(data);
    }

    [Theory]
    [InlineData("", "")]
    [InlineData("f", "my")]
    [InlineData("fo", "mzxq")]
    [InlineData("foo", "mzxw6")]
    [InlineData("foob", "mzxw6yq")]
    [InlineData("fooba", "mzxw6ytb")]
    [InlineData("foobar", "mzxw6ytboi")]
    public void Base32_matches_rfc4648_vectors_lowercased_without_padding(string input, string encoded)
    {
        Assert.Equal(encoded, Multibase.EncodeBase32Raw(Encoding.ASCII.GetBytes(input)));
        Assert.Equal(MultiformatError.None, Multibase.TryDecode("b" + encoded, out var decoded));
        Assert.Equal(input, Encoding.ASCII.GetString(decoded));
    }

    [Fact]
    public void Base58btc_matches_the_multibase_spec_vector()
    {
        // multibase spec test vectors: "yes mani !" in base58btc.
        Assert.Equal("z7paNL19xttacUY", Multibase.EncodeBase58Btc("yes mani !"u8));
        Assert.Equal(MultiformatError.None, Multibase.TryDecode("z7paNL19xttacUY", out var decoded));
        Assert.Equal("yes mani !"u8.ToArray(), decoded);
    }

    private static string ToBase36(byte[] data)
    {
        const string alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
        var zeros = data.TakeWhile(b => b == 0).Count();
        var n = new BigInteger(data, isUnsigned: true, isBigEndian: true);
        var sb = new StringBuilder();
        while (n > 0)
        {
            sb.Insert(0, alphabet[(int)(n % 36)]);
            n /= 36;
        }

        return new string('0', zeros) + sb;
    }
}
