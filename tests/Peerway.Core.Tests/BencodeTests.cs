using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Peerway.Core.Bencoding;

namespace Peerway.Core.Tests;

public sealed class BencodeTests
{
    private static BValue Decode(string s) => Bencode.Decode(Encoding.Latin1.GetBytes(s));

    private static BencodeError ErrorOf(string s, BencodeLimits? limits = null)
    {
        Bencode.TryDecode(Encoding.Latin1.GetBytes(s), out _, out var e, limits);
        return e;
    }

    [Theory]
    [InlineData("i42e", 42L)]
    [InlineData("i0e", 0L)]
    [InlineData("i-3e", -3L)]
    [InlineData("i9223372036854775807e", long.MaxValue)]
    [InlineData("i-9223372036854775808e", long.MinValue)]
    public void Integers(string text, long value) => Assert.Equal(new BInteger(value), Decode(text));

    [Fact]
    public void Strings_lists_and_dictionaries()
    {
        Assert.Equal(new BString("spam"), Decode("4:spam"));
        Assert.Equal(new BString(""), Decode("0:"));
        Assert.Equal(new BList([new BString("spam"), new BInteger(42)]), Decode("l4:spami42ee"));
        var d = (BDictionary)Decode("d3:bar4:spam3:fooi42ee");
        Assert.Equal(new BString("spam"), d["bar"]);
        Assert.Equal(new BInteger(42), d["foo"]);
    }

    [Theory]
    [InlineData("i03e", BencodeError.LeadingZero)]
    [InlineData("i-0e", BencodeError.NegativeZero)]
    [InlineData("ie", BencodeError.UnexpectedByte)]
    [InlineData("i12", BencodeError.Truncated)]
    [InlineData("i9223372036854775808e", BencodeError.IntegerOverflow)]
    [InlineData("i-9223372036854775809e", BencodeError.IntegerOverflow)]
    [InlineData("i99999999999999999999999e", BencodeError.IntegerOverflow)]
    [InlineData("03:abc", BencodeError.LeadingZero)]
    [InlineData("5:abc", BencodeError.Truncated)]
    [InlineData("3abc", BencodeError.UnexpectedByte)]
    [InlineData("l4:spam", BencodeError.Truncated)]
    [InlineData("d3:fooi1e3:bari2ee", BencodeError.UnsortedKeys)]
    [InlineData("d3:fooi1e3:fooi2ee", BencodeError.DuplicateKey)]
    [InlineData("di1ei2ee", BencodeError.WrongType)]
    [InlineData("i1ei2e", BencodeError.TrailingData)]
    [InlineData("x", BencodeError.UnexpectedByte)]
    [InlineData("", BencodeError.Truncated)]
    [InlineData("d3:foo", BencodeError.Truncated)]
    public void Strictness(string text, BencodeError expected) => Assert.Equal(expected, ErrorOf(text));

    [Fact]
    public void Limits_are_enforced()
    {
        var limits = new BencodeLimits { MaxDepth = 3, MaxItems = 5, MaxStringLength = 4, MaxInputLength = 30 };
        Assert.Equal(BencodeError.TooDeep, ErrorOf("llllee" + "ee", limits));
        Assert.Equal(BencodeError.TooManyItems, ErrorOf("li1ei2ei3ei4ei5ee", limits));
        Assert.Equal(BencodeError.StringTooLong, ErrorOf("5:abcde", limits));
        Assert.Equal(BencodeError.InputTooLarge, ErrorOf(new string('x', 31), limits));
        Assert.Equal(BencodeError.TooDeep, ErrorOf(new string('l', 100) + new string('e', 100)));
        Assert.Equal(BencodeError.StringTooLong, ErrorOf("99999999999999999999:x"));
    }

    [Fact]
    public void Encoding_is_canonical_with_sorted_keys()
    {
        var d = new BDictionary();
        d.Add("zeta", new BInteger(1));
        d.Add("alpha", new BList([new BInteger(-5), new BString("x")]));
        d.Add(new byte[] { 0xff }, new BString(""));
        Assert.Equal("d5:alphali-5e1:xe4:zetai1e1:\u00ff0:e", Encoding.Latin1.GetString(Bencode.Encode(d)));
    }

    [Fact]
    public void Raw_value_of_a_nested_dictionary_is_exact()
    {
        var data = "d4:infod6:lengthi5e4:name1:xe1:zi1ee"u8;
        var reader = new BencodeReader(data);
        Assert.True(reader.TryEnterDictionary());
        Assert.True(reader.TryReadKey(out var key));
        Assert.Equal("info"u8.ToArray(), key.ToArray());
        Assert.True(reader.TryReadRawValue(out var raw));
        Assert.Equal("d6:lengthi5e4:name1:xe"u8.ToArray(), raw.ToArray());
    }

    private static Gen<BValue> ValueGen(int depth)
    {
        var bytes = ArbMap.Default.GeneratorFor<byte[]>();
        var leaf = Gen.OneOf(
            ArbMap.Default.GeneratorFor<long>().Select(v => (BValue)new BInteger(v)),
            bytes.Select(b => (BValue)new BString(b)));
        if (depth == 0) return leaf;
        var child = ValueGen(depth - 1);
        var list = Gen.ListOf(child).Select(items => (BValue)new BList(items.Take(6).ToList()));
        var dict = Gen.ListOf(bytes.Zip(child)).Select(pairs =>
        {
            var d = new BDictionary();
            foreach (var (k, v) in pairs.Take(6))
            {
                if (!d.TryGet(k, out _)) d.Add(k, v);
            }

            return (BValue)d;
        });
        return Gen.Frequency((3, leaf), (1, list), (1, dict));
    }

    [Property(MaxTest = 300)]
    public Property Encode_then_decode_round_trips() => Prop.ForAll(ValueGen(3).ToArbitrary(), value =>
    {
        var encoded = Bencode.Encode(value);
        return Bencode.TryDecode(encoded, out var decoded, out var error) && error == BencodeError.None && Equals(value, decoded) &&
               Bencode.Encode(decoded!).AsSpan().SequenceEqual(encoded);
    });

    [Property(MaxTest = 3000)]
    public bool Random_bytes_never_throw_and_give_a_typed_error(byte[] data)
    {
        var ok = Bencode.TryDecode(data, out var value, out var error, BencodeLimits.Datagram);
        return ok ? value is not null && error == BencodeError.None : value is null && error != BencodeError.None && Enum.IsDefined(error);
    }

    [Property(MaxTest = 3000)]
    public Property Mutated_valid_documents_never_throw() => Prop.ForAll(
        ValueGen(2).Select(Bencode.Encode).Where(b => b.Length > 0)
            .SelectMany(b => Gen.Choose(0, b.Length - 1).Zip(Gen.Choose(0, 255)).Select(t => { var c = (byte[])b.Clone(); c[t.Item1] = (byte)t.Item2; return c; }))
            .ToArbitrary(),
        mutated =>
        {
            var ok = Bencode.TryDecode(mutated, out var value, out var error);
            // Anything accepted is canonical: it re-encodes to the same bytes.
            return ok ? Bencode.Encode(value!).AsSpan().SequenceEqual(mutated) : Enum.IsDefined(error) && error != BencodeError.None;
        });
}
