using System.Net;
using Peerway.Net;
using Peerway.Torrent.Utp;

namespace Peerway.Torrent.Tests.Utp;

/// <summary>
/// BEP 55's simultaneous uTP connect at the transport: two hosts, each behind a port-restricted cone NAT (RFC 4787:
/// endpoint-independent mapping, address-and-port-dependent filtering), dial each other's mapping at once. Each SYN
/// opens its own NAT for the other's, so whichever arrives second gets in, its resend or the other's follows; as in
/// libtorrent, the crossing SYNs are not merged: each side's outgoing connection is the other's accepted one. Run on
/// <see cref="UtpWorld"/> (virtual time, one thread).
/// </summary>
public sealed class UtpSimultaneousConnectTests : IDisposable
{
    private static readonly IPEndPoint AMapped = new(IPAddress.Parse("203.0.113.10"), 20_000);
    private static readonly IPEndPoint BMapped = new(IPAddress.Parse("203.0.113.20"), 20_000);
    private readonly UtpWorld _world = new();
    private readonly List<UtpTransport> _transports = [];

    /// <summary>A transport on a host behind its own NAT; the NAT's first mapping is its FirstPort (20,000).</summary>
    private UtpTransport BehindNat(string publicIp, string lan, int seed)
    {
        var nat = _world.Network.AddNat(IPAddress.Parse(publicIp), IPNetwork.Parse(lan), new VirtualNatOptions
        {
            Mapping = NatMappingBehavior.EndpointIndependent,
            Filtering = NatFilteringBehavior.AddressAndPortDependent,
        });
        var t = new UtpTransport(nat.CreateSocket(), _world.Time, new UtpOptions { CompleteInline = true, RandomSeed = seed });
        _transports.Add(t);
        return t;
    }

    private IStreamListener Listen(UtpTransport t) =>
        _world.Await(UtpWorld.RunInline(() => t.ListenAsync(t.LocalEndPoint, CancellationToken.None).AsTask()));

    private static async Task<byte[]> ExchangeAsync(IStreamConnection writer, IStreamConnection reader, byte[] data)
    {
        await writer.Stream.WriteAsync(data);
        var got = new byte[data.Length];
        await reader.Stream.ReadExactlyAsync(got);
        return got;
    }

    [Fact]
    public void Crossing_syns_through_two_port_restricted_cone_nats_open_a_connection_each_way()
    {
        var a = BehindNat("203.0.113.10", "10.1.0.0/24", 1);
        var b = BehindNat("203.0.113.20", "10.2.0.0/24", 2);
        var listenA = Listen(a);
        var listenB = Listen(b);

        var aDials = UtpWorld.RunInline(() => a.ConnectAsync(BMapped, CancellationToken.None).AsTask());
        var bDials = UtpWorld.RunInline(() => b.ConnectAsync(AMapped, CancellationToken.None).AsTask());
        var aOut = _world.Await(aDials);
        var bOut = _world.Await(bDials);
        var aIn = _world.Await(UtpWorld.RunInline(() => listenA.AcceptAsync(CancellationToken.None).AsTask()))!;
        var bIn = _world.Await(UtpWorld.RunInline(() => listenB.AcceptAsync(CancellationToken.None).AsTask()))!;

        Assert.Equal(BMapped, aOut.RemoteEndPoint);
        Assert.Equal(BMapped, aIn.RemoteEndPoint);
        Assert.Equal(AMapped, bOut.RemoteEndPoint);
        Assert.Equal(AMapped, bIn.RemoteEndPoint);
        byte[] one = [1, 2, 3, 4, 5], two = [9, 8, 7];
        Assert.Equal(one, _world.Await(UtpWorld.RunInline(() => ExchangeAsync(aOut, bIn, one))));
        Assert.Equal(two, _world.Await(UtpWorld.RunInline(() => ExchangeAsync(bOut, aIn, two))));
    }

    [Fact]
    public void A_dial_from_one_side_alone_dies_in_the_other_nat()
    {
        var a = BehindNat("203.0.113.10", "10.1.0.0/24", 1);
        var b = BehindNat("203.0.113.20", "10.2.0.0/24", 2);
        var listenB = Listen(b);
        // B's NAT has a mapping (B dials somewhere else), but its filter lets in only whom B has sent to.
        var bElsewhere = UtpWorld.RunInline(() => b.ConnectAsync(new IPEndPoint(IPAddress.Parse("198.51.100.1"), 6881), CancellationToken.None).AsTask());
        var accepted = UtpWorld.RunInline(() => listenB.AcceptAsync(CancellationToken.None).AsTask());

        var aDials = UtpWorld.RunInline(() => a.ConnectAsync(BMapped, CancellationToken.None).AsTask());
        Assert.True(_world.RunUntil(() => aDials.IsCompleted && bElsewhere.IsCompleted, TimeSpan.FromSeconds(30)));

        Assert.IsType<IOException>(aDials.Exception?.InnerException);
        Assert.IsType<IOException>(bElsewhere.Exception?.InnerException);
        Assert.False(accepted.IsCompleted, "a SYN of A's got through B's NAT");
    }

    public void Dispose()
    {
        foreach (var t in _transports) t.Dispose();
        _world.Dispose();
    }
}
