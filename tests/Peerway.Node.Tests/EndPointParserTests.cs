using System.Net;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Peerway.Node.Tests;

public sealed class EndPointParserTests
{
    [Theory]
    [InlineData("127.0.0.1:6881", "127.0.0.1", 6881)]
    [InlineData("router.example:1", "router.example", 1)]
    [InlineData("localhost:65535", "localhost", 65535)]
    [InlineData("[::1]:6881", "::1", 6881)]
    [InlineData("[2001:db8::7]:80", "2001:db8::7", 80)]
    [InlineData("a-b.c0:42", "a-b.c0", 42)]
    public void Valid_endpoints_parse(string text, string host, int port)
    {
        Assert.True(EndPointParser.TryParse(text, out var ep, out var error), error);
        Assert.Equal(new HostPort(host, port), ep);
    }

    [Theory]
    [InlineData("")]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:")]
    [InlineData(":80")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:65536")]
    [InlineData("127.0.0.1:+80")]
    [InlineData("127.0.0.1: 80")]
    [InlineData("::1:80")]
    [InlineData("[::1]")]
    [InlineData("[::1]80")]
    [InlineData("[127.0.0.1]:80")]
    [InlineData("[zz::1]:80")]
    [InlineData("-bad.host:80")]
    [InlineData("bad_host:80")]
    [InlineData("1.2.3:80")]
    [InlineData("999.1.1.1:80")]
    public void Malformed_endpoints_are_rejected_with_a_reason(string text)
    {
        Assert.False(EndPointParser.TryParse(text, out var ep, out var error));
        Assert.Null(ep);
        Assert.False(string.IsNullOrWhiteSpace(error));
        Assert.DoesNotContain('\n', error);
    }

    [Property(MaxTest = 500)]
    public void Arbitrary_text_never_throws(string? text)
    {
        var ok = EndPointParser.TryParse(text, out var ep, out var error);
        Assert.Equal(ok, ep is not null);
        Assert.Equal(ok, error.Length == 0);
    }

    [Property(MaxTest = 300)]
    public Property Ipv4_and_ipv6_endpoints_round_trip_through_format() =>
        Prop.ForAll(
            Gen.Choose(1, 65535).ToArbitrary(),
            ArbMap.Default.ArbFor<byte[]>(),
            (port, bytes) =>
            {
                var address = bytes.Length >= 16 ? new IPAddress(bytes[..16]) : new IPAddress(bytes.Concat(new byte[4]).Take(4).ToArray());
                var formatted = EndPointParser.Format(new IPEndPoint(address, port));
                Assert.True(EndPointParser.TryParse(formatted, out var ep, out var error), $"{formatted}: {error}");
                Assert.Equal(port, ep!.Port);
                Assert.Equal(address, IPAddress.Parse(ep.Host));
            });

    [Theory]
    [InlineData("0.0.0.0", true)]
    [InlineData("127.0.0.1", true)]
    [InlineData("::", true)]
    [InlineData("[::1]", true)]
    [InlineData("10.1", false)]
    [InlineData("localhost", false)]
    [InlineData("", false)]
    public void Bind_addresses_must_be_literals(string text, bool valid) =>
        Assert.Equal(valid, EndPointParser.TryParseAddress(text, out _));

    [Theory]
    [InlineData("0", true, true)]
    [InlineData("0", false, false)]
    [InlineData("6881", false, true)]
    [InlineData("65536", true, false)]
    [InlineData("00080", false, true)]
    [InlineData("-1", true, false)]
    [InlineData("1e3", true, false)]
    public void Ports(string text, bool allowZero, bool valid) =>
        Assert.Equal(valid, EndPointParser.TryParsePort(text, allowZero, out _));

    [Fact]
    public async Task Literals_resolve_without_dns_and_localhost_resolves_locally()
    {
        var literal = await EndPointParser.ResolveAsync(new HostPort("127.0.0.9", 5), null, CancellationToken.None);
        var local = await EndPointParser.ResolveAsync(new HostPort("localhost", 6), System.Net.Sockets.AddressFamily.InterNetwork, CancellationToken.None);

        Assert.Equal(new IPEndPoint(IPAddress.Parse("127.0.0.9"), 5), literal);
        Assert.True(IPAddress.IsLoopback(local.Address));
        Assert.Equal(6, local.Port);
    }
}
