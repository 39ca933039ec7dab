using FsCheck.Xunit;
using Peerway.Core.Multiformats;

namespace Peerway.Core.Tests.Multiformats;

public sealed class VarintTests
{
    // unsigned-varint spec examples.
    [Theory]
    [InlineData(1UL, "01")]
    [InlineData(127UL, "7f")]
    [InlineData(128UL, "8001")]
    [InlineData(255UL, "ff01")]
    [InlineData(300UL, "ac02")]
    [InlineData(16384UL, "808001")]
    public void Spec_examples_encode_and_decode(ulong value, string hex)
    {
        var buffer = new byte[Varint.MaxLength];
        var n = Varint.Write(value, buffer);
        Assert.Equal(hex, Convert.ToHexStringLower(buffer, 0, n));
        Assert.Equal(MultiformatError.None, Varint.TryRead(Convert.FromHexString(hex), out var decoded, out var length));
        Assert.Equal(value, decoded);
        Assert.Equal(n, length);
        Assert.Equal(n, Varint.SizeOf(value));
    }

    [Theory]
    [InlineData("8000", MultiformatError.VarintNotMinimal)]
    [InlineData("ff00", MultiformatError.VarintNotMinimal)]
    [InlineData("80", MultiformatError.Truncated)]
    [InlineData("", MultiformatError.Truncated)]
    [InlineData("ffffffffffffffffff01", MultiformatError.VarintOverflow)]
    public void Invalid_varints_are_typed_errors(string hex, MultiformatError expected)
    {
        Assert.Equal(expected, Varint.TryRead(Convert.FromHexString(hex), out _, out _));
    }

    [Fact]
    public void The_largest_value_uses_nine_bytes()
    {
        var buffer = new byte[Varint.MaxLength];
        Assert.Equal(9, Varint.Write(Varint.MaxValue, buffer));
        Assert.Equal(MultiformatError.None, Varint.TryRead(buffer, out var v, out _));
        Assert.Equal(Varint.MaxValue, v);
        Assert.Throws<ArgumentOutOfRangeException>(() => Varint.Write(Varint.MaxValue + 1, buffer));
    }

    [Property(MaxTest = 1000)]
    public bool Round_trips(ulong raw)
    {
        var value = raw & Varint.MaxValue;
        var buffer = new byte[Varint.MaxLength];
        var n = Varint.Write(value, buffer);
        return Varint.TryRead(buffer.AsSpan(0, n), out var decoded, out var length) == MultiformatError.None
            && decoded == value && length == n;
    }

    [Property(MaxTest = 2000)]
    public bool Fuzz_random_bytes_never_throw_and_stay_bounded(byte[] data)
    {
        var error = Varint.TryRead(data ?? [], out _, out var length);
        return error != MultiformatError.None || (length >= 1 && length <= Varint.MaxLength);
    }
}
