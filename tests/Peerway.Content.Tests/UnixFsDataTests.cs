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
            Type = UnixFsType.HamtShard, Data = new byte[] { 1, 2 }, HashType = 0x22, Fanout = 256, Mtime = new UnixTime(5, 6),
        }.Encode();
        bytes[(int)((uint)position % bytes.Length)] = value;
        var error = UnixFsData.TryDecode(bytes, out var decoded);
        return error == ContentError.None || decoded is null;
    }
}
