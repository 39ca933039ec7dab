using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Time.Testing;
using Peerway.Net;

namespace Peerway.Net.Tests;

public sealed class VirtualNatTests : IDisposable
{
    private static readonly IPNetwork Lan = IPNetwork.Parse("192.168.1.0/24");
    private readonly PumpDeliveryScheduler _scheduler = new(TimeProvider.System);
    private readonly VirtualNetwork _net;

    public VirtualNatTests() => _net = new VirtualNetwork(_scheduler);

    /// <summary>A socket that reports each datagram's source.</summary>
    private sealed class Probe
    {
        private readonly BlockingCollection<(string Text, IPEndPoint From)> _got = [];

        public Probe(IDatagramSocket socket)
        {
            Socket = socket;
            socket.Start((d, from) => _got.Add((System.Text.Encoding.UTF8.GetString(d), from)));
        }

        public IDatagramSocket Socket { get; }

        public IPEndPoint EndPoint => Socket.LocalEndPoint;

        public (string Text, IPEndPoint From) Next()
        {
            Assert.True(_got.TryTake(out var item, TimeSpan.FromSeconds(10)), "nothing arrived");
            return item;
        }

        public int Count => _got.Count;
    }

    private Probe Public(string ip, int port = 3478) => new(_net.CreateSocket(new IPEndPoint(IPAddress.Parse(ip), port)));

    [Theory]
    [InlineData(NatMappingBehavior.EndpointIndependent, true, true)]
    [InlineData(NatMappingBehavior.AddressDependent, true, false)]
    [InlineData(NatMappingBehavior.AddressAndPortDependent, false, false)]
    public void Mapping_is_reused_as_rfc_4787_says(NatMappingBehavior mapping, bool samePortReusesIp, bool otherIpReuses)
    {
        var nat = _net.AddNat(IPAddress.Parse("198.51.100.10"), Lan, new VirtualNatOptions { Mapping = mapping });
        var inside = nat.CreateSocket();
        var s1 = Public("203.0.113.1", 1000);
        var s1b = Public("203.0.113.1", 2000);
        var s2 = Public("203.0.113.2", 1000);
        inside.Send("a"u8, s1.EndPoint);
        var e1 = s1.Next().From;
        inside.Send("b"u8, s1b.EndPoint);
        var e1b = s1b.Next().From;
        inside.Send("c"u8, s2.EndPoint);
        var e2 = s2.Next().From;
        Assert.Equal(nat.PublicAddress, e1.Address);
        Assert.NotEqual(inside.LocalEndPoint, e1);
        Assert.Equal(samePortReusesIp, e1.Equals(e1b));
        Assert.Equal(otherIpReuses, e1.Equals(e2));
    }

    [Theory]
    [InlineData(NatFilteringBehavior.EndpointIndependent, true, true)]
    [InlineData(NatFilteringBehavior.AddressDependent, true, false)]
    [InlineData(NatFilteringBehavior.AddressAndPortDependent, false, false)]
    public void Filtering_admits_inbound_as_rfc_4787_says(NatFilteringBehavior filtering, bool samIpOtherPort, bool otherIp)
    {
        var nat = _net.AddNat(IPAddress.Parse("198.51.100.10"), Lan, new VirtualNatOptions { Filtering = filtering });
        var inside = new Probe(nat.CreateSocket());
        var server = Public("203.0.113.1", 1000);
        var samIp = Public("203.0.113.1", 2000);
        var other = Public("203.0.113.2", 1000);
        inside.Socket.Send("out"u8, server.EndPoint);
        var external = server.Next().From;

        server.Socket.Send("reply"u8, external);
        Assert.Equal(("reply", server.EndPoint), inside.Next());
        samIp.Socket.Send("same ip"u8, external);
        other.Socket.Send("other ip"u8, external);
        server.Socket.Send("marker"u8, external); // delivered after the two above: one pump, in order
        var seen = new List<string>();
        while (true)
        {
            var (text, _) = inside.Next();
            if (text == "marker") break;
            seen.Add(text);
        }

        Assert.Equal(samIpOtherPort, seen.Contains("same ip"));
        Assert.Equal(otherIp, seen.Contains("other ip"));
        Assert.Equal((samIpOtherPort ? 0 : 1) + (otherIp ? 0 : 1), nat.Filtered);
    }

    [Fact]
    public void Unsolicited_inbound_without_a_mapping_is_dropped_and_private_addresses_are_not_routable()
    {
        var natA = _net.AddNat(IPAddress.Parse("198.51.100.10"), Lan);
        var natB = _net.AddNat(IPAddress.Parse("198.51.100.20"), IPNetwork.Parse("192.168.2.0/24"));
        var a = new Probe(natA.CreateSocket());
        var a2 = new Probe(natA.CreateSocket());
        var b = new Probe(natB.CreateSocket());
        var outside = Public("203.0.113.1");
        outside.Socket.Send("x"u8, new IPEndPoint(natA.PublicAddress, 20_000));
        outside.Socket.Send("y"u8, a.EndPoint);
        b.Socket.Send("z"u8, a.EndPoint);
        // Same LAN: direct, untranslated.
        a2.Socket.Send("lan"u8, a.EndPoint);
        Assert.Equal(("lan", a2.EndPoint), a.Next());
        Assert.Equal(0, a.Count);
        Assert.Equal(0, natA.MappingCount);
        Assert.Throws<ArgumentException>(() => _net.AddNat(IPAddress.Parse("198.51.100.30"), IPNetwork.Parse("192.168.1.0/24")));
    }

    [Fact]
    public async Task Latency_delays_delivery_until_time_moves()
    {
        var time = new FakeTimeProvider();
        using var scheduler = new PumpDeliveryScheduler(time);
        var net = new VirtualNetwork(scheduler, new VirtualLinkOptions { Latency = (_, _) => TimeSpan.FromMilliseconds(80) });
        var nat = net.AddNat(IPAddress.Parse("198.51.100.10"), Lan);
        var got = new TaskCompletionSource<IPEndPoint>(TaskCreationOptions.RunContinuationsAsynchronously);
        var server = net.CreateSocket(new IPEndPoint(IPAddress.Parse("203.0.113.1"), 1));
        server.Start((_, from) => got.TrySetResult(from));
        nat.CreateSocket().Send("x"u8, server.LocalEndPoint);
        time.Advance(TimeSpan.FromMilliseconds(79));
        Assert.False(got.Task.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(nat.PublicAddress, (await got.Task.WaitAsync(TimeSpan.FromSeconds(10))).Address);
    }

    [Fact]
    public void Loss_drops_a_share_of_datagrams_deterministically_by_seed()
    {
        using var scheduler = new PumpDeliveryScheduler(TimeProvider.System);
        var net = new VirtualNetwork(scheduler, new VirtualLinkOptions { LossRate = 0.3, Seed = 7 });
        var nat = net.AddNat(IPAddress.Parse("198.51.100.10"), Lan);
        var sink = net.CreateSocket(new IPEndPoint(IPAddress.Parse("203.0.113.1"), 1));
        sink.Start((_, _) => { });
        var inside = nat.CreateSocket();
        for (var i = 0; i < 1000; i++) inside.Send("x"u8, sink.LocalEndPoint);
        Assert.InRange(net.Dropped, 230, 370);
    }

    public void Dispose() => _scheduler.Dispose();
}
