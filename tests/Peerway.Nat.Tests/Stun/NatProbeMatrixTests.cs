using System.Net;
using Microsoft.Extensions.Time.Testing;
using Peerway.Nat.Stun;
using Peerway.Net;
using Peerway.TestSupport;

namespace Peerway.Nat.Tests.Stun;

/// <summary>
/// RFC 5780 discovery through each of the 9 RFC 4787 mapping × filtering NATs of the virtual network: the probe must
/// report exactly the NAT's behaviour.
/// </summary>
public sealed class NatProbeMatrixTests
{
    public static TheoryData<NatMappingBehavior, NatFilteringBehavior> All()
    {
        var data = new TheoryData<NatMappingBehavior, NatFilteringBehavior>();
        foreach (var m in Enum.GetValues<NatMappingBehavior>())
        {
            foreach (var f in Enum.GetValues<NatFilteringBehavior>()) data.Add(m, f);
        }

        return data;
    }

    private static NatBehavior Expected(NatMappingBehavior m) => m switch
    {
        NatMappingBehavior.EndpointIndependent => NatBehavior.EndpointIndependent,
        NatMappingBehavior.AddressDependent => NatBehavior.AddressDependent,
        _ => NatBehavior.AddressAndPortDependent,
    };

    private static NatBehavior Expected(NatFilteringBehavior f) => f switch
    {
        NatFilteringBehavior.EndpointIndependent => NatBehavior.EndpointIndependent,
        NatFilteringBehavior.AddressDependent => NatBehavior.AddressDependent,
        _ => NatBehavior.AddressAndPortDependent,
    };

    [Theory]
    [MemberData(nameof(All))]
    public async Task Probe_reports_the_nat_behaviour(NatMappingBehavior mapping, NatFilteringBehavior filtering)
    {
        var time = new FakeTimeProvider();
        var scheduler = new DeterministicScheduler(time);
        var net = new VirtualNetwork(scheduler);
        var sockets = new IDatagramSocket[]
        {
            net.CreateSocket(new IPEndPoint(IPAddress.Parse("203.0.113.1"), 3478)),
            net.CreateSocket(new IPEndPoint(IPAddress.Parse("203.0.113.1"), 3479)),
            net.CreateSocket(new IPEndPoint(IPAddress.Parse("203.0.113.2"), 3478)),
            net.CreateSocket(new IPEndPoint(IPAddress.Parse("203.0.113.2"), 3479)),
        };
        using var server = new StunServer(sockets, new StunServerOptions());
        server.Start();
        var nat = net.AddNat(IPAddress.Parse("198.51.100.7"), IPNetwork.Parse("192.168.7.0/24"), new VirtualNatOptions { Mapping = mapping, Filtering = filtering });

        // Driven by fake time alone: a filtered answer is given up after the RFC 8489 schedule (39.5 s of fake time).
        var report = await scheduler.RunAsync(() => NatBehaviorProbe.RunAsync(() => nat.CreateSocket(), sockets[0].LocalEndPoint, time, new StunClientOptions()), TimeSpan.FromMinutes(5));

        Assert.Equal(nat.PublicAddress, report.MappedEndPoint.Address);
        Assert.Equal(Expected(mapping), report.Mapping);
        Assert.Equal(Expected(filtering), report.Filtering);
    }
}
