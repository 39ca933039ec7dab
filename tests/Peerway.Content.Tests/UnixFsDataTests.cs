using FsCheck.Xunit;
using Peerway.Content.UnixFs;

namespace Peerway.Content.Tests;

public sealed class UnixFsDataTests
{
    [Fact]
    public void Blocksizes_are_written_unpacked_in_field_order()
    {
        var bytes = new UnixFsData { Type = UnixFsType.File, FileSize = 300, BlockSizes = [200, 100] }.Encode();
        // Type=2 (08 02), filesize=300 (18 ac 02), blocksizes 200 (20 c8 01) and 100 (20 64): one tag per entry.
        Assert.Equal("0802" + "18ac02" + "20c801" + "2064", Convert.ToHexStringLower(bytes));
    }

    [Theory]
    [InlineData(2_147_483_648UL, "8080808008")] // 2^31: the smallest size ipfs-unixfs 13 writes wrongly
    [InlineData(4_294_967_295UL, "ffffffff0f")] // 2^32 - 1: the largest
    [InlineData(7_936_671_744UL, "8080c0c81d")] // 174² chunks of 262,144 bytes
    public void Sizes_past_2_GiB_are_plain_uint64_varints(ulong size, string varint)
    {
        // UnixFS spec: filesize and blocksizes are proto2 uint64, i.e. base-128 varints of the full value (as Go's
        // protobuf writes them in kubo). ipfs-unixfs 13.1.1 writes 2^31 ≤ size < 2^32 wrongly (see the interop test
        // UnixFsLargeDagInteropTests).
        var bytes = new UnixFsData { Type = UnixFsType.File, FileSize = size, BlockSizes = [size] }.Encode();
        Assert.Equal("0802" + "18" + varint + "20" + varint, Convert.ToHexStringLower(bytes));
        Assert.Equal(ContentError.None, UnixFsData.TryDecode(bytes, out var decoded));
        Assert.Equal(size, decoded!.FileSize);
    }

    [Fact]
    public void A_zero_field_number_is_rejected_as_protobuf_requires()
    {
        // What ipfs-unixfs 13.1.1 writes for filesize 2^31: 18 00 (filesize 0) then four zero bytes — tag 0, which
        // protobuf forbids (field numbers start at 1); Go's decoder refuses it too.
        Assert.Equal(ContentError.UnknownField, UnixFsData.TryDecode(Convert.FromHexString("0802" + "1800000000"), out _));
    }

    [Fact]
    public void Empty_file_leaf_matches_kubo()
    {
        // ipfs add of an empty file: Data = 08 02 18 00 (Type File, filesize 0, no Data field).
        var bytes = new UnixFsData { Type = UnixFsType.File, FileSize = 0 }.Encode();
        Assert.Equal("08021800", Convert.ToHexStringLower(bytes));
    }

    [Fact]
    public void Packed_blocksizes_are_accepted_when_decoding()
    {
        var bytes = Convert.FromHexString("0802" + "2203c80164");
        Assert.Equal(ContentError.None, UnixFsData.TryDecode(bytes, out var data));
        Assert.Equal(new ulong[] { 200, 100 }, data!.BlockSizes);
    }

    [Theory]
    [InlineData("", ContentError.MissingField)]
    [InlineData("0809", ContentError.UnknownUnixFsType)]
    [InlineData("0a00", ContentError.WrongWireType)]
    [InlineData("0802120a", ContentError.Truncated)]
    [InlineData("08024200", ContentError.MissingField)] // mtime without seconds
    public void Invalid_messages_are_typed_errors(string hex, ContentError expected)
    {
        Assert.Equal(expected, UnixFsData.TryDecode(Convert.FromHexString(hex), out var data));
        Assert.Null(data);
    }

    [Property(MaxTest = 500)]
    public bool Round_trips(byte type, byte[] data, ulong? fileSize, ulong[] blockSizes, ulong? fanout, uint? mode, long seconds, uint? nanos, bool hasMtime)
    {
        var original = new UnixFsData
        {
            Type = (UnixFsType)(type % 6),
            Data = data,
            FileSize = fileSize,
            BlockSizes = blockSizes ?? [],
            Fanout = fanout,
            Mode = mode,
            Mtime = hasMtime ? new UnixTime(seconds, nanos) : null,
        };
        var bytes = original.Encode();
        return UnixFsData.TryDecode(bytes, out var decoded) == ContentError.None
            && decoded!.Encode().AsSpan().SequenceEqual(bytes);
    }

    [Property(MaxTest = 3000)]
    public bool Fuzz_random_bytes_never_throw(byte[] data)
    {
        var error = UnixFsData.TryDecode(data ?? [], out var decoded);
        return error == ContentError.None ? decoded is not null && decoded.BlockSizes.Count <= UnixFsData.MaxBlockSizes : decoded is null;
    }

    [Property(MaxTest = 3000)]
    public bool Fuzz_mutated_valid_messages_never_throw(int position, byte value)
    {
        var bytes = new UnixFsData
        {
            Type = UnixFsType.HamtShard,
            Data = new byte[] { 1, 2 },
            HashType = 0x22,
            Fanout = 256,
            Mtime = new UnixTime(5, 6),
        }.Encode();
        bytes[(int)((uint)position % bytes.Length)] = value;
        var error = UnixFsData.TryDecode(bytes, out var decoded);
        return error == ContentError.None || decoded is null;
    }
}
