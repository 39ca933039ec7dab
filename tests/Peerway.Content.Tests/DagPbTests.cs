using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Peerway.Content.DagPb;
using Peerway.Content.UnixFs;
using Peerway.Core.Multiformats;

namespace Peerway.Content.Tests;

public sealed class DagPbTests
{
    private static readonly Cid Child = Cid.V0(Multihash.Sha256("child"u8));

    [Fact]
    public void Empty_node_is_empty_bytes_and_links_come_before_data()
    {
        Assert.Empty(DagPbCodec.Encode(new PbNode([], null)));
        var bytes = DagPbCodec.Encode(new PbNode([new PbLink(Child, string.Empty, 5)], new byte[] { 8, 1 }));
        // Links (field 2, 0x12) first, then Data (field 1, 0x0a) last.
        Assert.Equal(0x12, bytes[0]);
        Assert.Equal(new byte[] { 0x0a, 0x02, 0x08, 0x01 }, bytes[^4..]);
        // PBLink: Hash (0x0a, 34 bytes), Name written although empty (0x12 0x00), Tsize (0x18 0x05).
        var link = bytes[2..^4];
        Assert.Equal(0x0a, link[0]);
        Assert.Equal(34, link[1]);
        Assert.Equal(new byte[] { 0x12, 0x00, 0x18, 0x05 }, link[36..]);
    }

    [Fact]
    public void Empty_directory_has_the_well_known_cid()
    {
        // `ipfs object new unixfs-dir`: QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn.
        var block = DagPbCodec.Encode(new PbNode([], new UnixFsData { Type = UnixFsType.Directory }.Encode()));
        Assert.Equal("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn", Cid.V0(Multihash.Sha256(block)).ToString());
    }

    [Theory]
    [InlineData("0a00" + "1200", ContentError.FieldOrder)] // Data then Links
    [InlineData("0a00" + "0a00", ContentError.DuplicateField)]
    [InlineData("1a00", ContentError.UnknownField)] // field 3
    [InlineData("0800", ContentError.WrongWireType)] // Data as varint
    [InlineData("1200", ContentError.MissingField)] // a link without Hash
    [InlineData("0a05aa", ContentError.Truncated)]
    [InlineData("120412001200", ContentError.DuplicateField)] // link Name twice
    [InlineData("12040a001200", ContentError.InvalidCid)] // link Hash empty
    public void Strict_decoding_rejects_non_canonical_forms(string hex, ContentError expected)
    {
        Assert.Equal(expected, DagPbCodec.TryDecode(Convert.FromHexString(hex), out var node));
        Assert.Null(node);
    }

    [Fact]
    public void Link_fields_out_of_order_are_rejected()
    {
        var hash = Child.ToArray();
        // Name (field 2) before Hash (field 1).
        byte[] link = [0x12, 0x01, (byte)'a', 0x0a, (byte)hash.Length, .. hash];
        byte[] node = [0x12, (byte)link.Length, .. link];
        Assert.Equal(ContentError.FieldOrder, DagPbCodec.TryDecode(node, out _));
    }

    [Fact]
    public void Invalid_utf8_names_are_rejected()
    {
        var hash = Child.ToArray();
        byte[] link = [0x0a, (byte)hash.Length, .. hash, 0x12, 0x01, 0xff];
        byte[] node = [0x12, (byte)link.Length, .. link];
        Assert.Equal(ContentError.InvalidName, DagPbCodec.TryDecode(node, out _));
    }

    private static Arbitrary<PbNode> Nodes()
    {
        var link = from seed in ArbMap.Default.GeneratorFor<int>()
                   from name in Gen.OneOf(Gen.Constant<string?>(null), ArbMap.Default.GeneratorFor<string>().Select(s => (string?)(s?.Replace('\uD800', 'x').Replace('\uDC00', 'y') ?? string.Empty)))
                   from tsize in Gen.OneOf(Gen.Constant<ulong?>(null), ArbMap.Default.GeneratorFor<ulong>().Select(v => (ulong?)v))
                   select new PbLink(Cid.V1(Cid.RawCodec, Multihash.Sha256(BitConverter.GetBytes(seed))), name, tsize);
        var node = from links in link.ListOf()
                   from hasData in ArbMap.Default.GeneratorFor<bool>()
                   from data in ArbMap.Default.GeneratorFor<byte[]>()
                   select new PbNode([.. links], hasData ? data : null);
        return node.ToArbitrary();
    }

    [Property(MaxTest = 300)]
    public Property Encode_then_decode_round_trips()
    {
        return Prop.ForAll(Nodes(), node =>
        {
            if (node.Links.Any(l => l.Name is not null && !IsValidUtf16(l.Name)))
            {
                return true;
            }

            var bytes = DagPbCodec.Encode(node);
            return DagPbCodec.TryDecode(bytes, out var decoded) == ContentError.None
                && DagPbCodec.Encode(decoded!).AsSpan().SequenceEqual(bytes)
                && decoded!.Links.Count == node.Links.Count;
        });
    }

    private static bool IsValidUtf16(string s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]))
            {
                if (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1]))
                {
                    return false;
                }

                i++;
            }
            else if (char.IsLowSurrogate(s[i]))
            {
                return false;
            }
        }

        return true;
    }

    [Property(MaxTest = 3000)]
    public bool Fuzz_random_bytes_never_throw(byte[] data)
    {
        var error = DagPbCodec.TryDecode(data ?? [], out var node);
        if (error != ContentError.None)
        {
            return node is null;
        }

        // Accepted input re-encodes canonically, and the canonical form is a fixed point.
        var canonical = DagPbCodec.Encode(node!);
        return DagPbCodec.TryDecode(canonical, out var again) == ContentError.None
            && DagPbCodec.Encode(again!).AsSpan().SequenceEqual(canonical);
    }

    [Property(MaxTest = 3000)]
    public bool Fuzz_mutated_valid_nodes_never_throw(int position, byte value)
    {
        var bytes = DagPbCodec.Encode(new PbNode(
            [new PbLink(Child, "name", 7), new PbLink(Child, string.Empty, null)],
            new UnixFsData { Type = UnixFsType.File, FileSize = 9, BlockSizes = [4, 5] }.Encode()));
        bytes[(int)((uint)position % bytes.Length)] = value;
        var error = DagPbCodec.TryDecode(bytes, out var node);
        return error == ContentError.None || node is null;
    }

    [Fact]
    public void Oversized_blocks_are_refused_before_parsing()
    {
        Assert.Equal(ContentError.TooLarge, DagPbCodec.TryDecode(new byte[DagPbCodec.MaxBlockSize + 1], out _));
    }
}
