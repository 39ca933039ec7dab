using System.Net;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Peerway.Nat.Ice;
using Peerway.Nat.Stun;
using Peerway.Net;
using Peerway.TestSupport;

namespace Peerway.Nat.Tests.Ice;

/// <summary>
/// ICE-lite (RFC 8445 §2.5): a lite agent on a public address gathers host candidates only, sends no checks and is
/// always controlled; the full agent checks, nominates and keeps consent (RFC 7675). Over the virtual network, the full
/// agent behind a NAT or on a public address.
/// </summary>
public sealed class IceLiteTests : IDisposable
{
    private readonly FakeTimeProvider _time = new();
    private readonly DeterministicScheduler _scheduler;
    private readonly VirtualNetwork _net;
    private readonly List<IDisposable> _owned = [];

    public IceLiteTests()
    {
        _scheduler = new DeterministicScheduler(_time);
        _net = new VirtualNetwork(_scheduler);
    }

    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
    }

    /// <summary>Counts the STUN requests (checks) sent through a socket.</summary>
    private sealed class CheckCounter(IDatagramSocket inner) : IDatagramSocket
    {
        public int Requests { get; private set; }

        public IPEndPoint LocalEndPoint => inner.LocalEndPoint;

        public void Start(DatagramHandler handler) => inner.Start(handler);

        public void Send(ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
            if (StunMessage.TryDecode(datagram, out var m, out _) && m!.Class == StunClass.Request) Requests++;
            inner.Send(datagram, remote);
        }

        public void Dispose() => inner.Dispose();
    }

    private IceAgent Agent(IDatagramSocket socket, IceAgentOptions options)
    {
        var agent = new IceAgent(socket, _time, options);
        _owned.Add(agent);
        return agent;
    }

    private static void Exchange(IceAgent a, IceAgent b)
    {
        // Non-trickle, as in one SDP offer/answer: credentials and every candidate at once.
        a.SetRemoteCredentials(b.LocalUfrag, b.LocalPassword);
        b.SetRemoteCredentials(a.LocalUfrag, a.LocalPassword);
        foreach (var c in b.LocalCandidates) a.AddRemoteCandidate(c);
        foreach (var c in a.LocalCandidates) b.AddRemoteCandidate(c);
        a.AddRemoteEndOfCandidates();
        b.AddRemoteEndOfCandidates();
    }

    [Theory]
    [InlineData(false, IceRole.Controlling)]
    [InlineData(true, IceRole.Controlling)]
    [InlineData(true, IceRole.Controlled)] // a full agent that believes it is controlled is told otherwise (487)
    public async Task A_full_agent_connects_to_a_lite_agent_that_sends_no_checks(bool fullBehindNat, IceRole fullRole)
    {
        var liteSocket = new CheckCounter(_net.CreateSocket(new IPEndPoint(IPAddress.Parse("198.51.100.1"), 3478)));
        var lite = Agent(liteSocket, new IceAgentOptions { Role = IceRole.Controlled, Lite = true });
        var fullSocket = fullBehindNat
            ? _net.AddNat(IPAddress.Parse("198.51.100.20"), IPNetwork.Parse("192.168.2.0/24"), new VirtualNatOptions { Mapping = NatMappingBehavior.AddressAndPortDependent, Filtering = NatFilteringBehavior.AddressAndPortDependent }).CreateSocket()
            : _net.CreateSocket(new IPEndPoint(IPAddress.Parse("198.51.100.2"), 40000));
        var full = Agent(fullSocket, new IceAgentOptions { Role = fullRole });
        lite.Start();
        full.Start();
        Exchange(full, lite);

        Assert.True(_scheduler.RunUntil(() => lite.State == IceState.Connected && full.State == IceState.Connected, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(30)),
            $"full {full.State} {full.FailureReason}\n{full.DescribeChecklist()}\nlite {lite.State} {lite.FailureReason}\n{lite.DescribeChecklist()}");
        Assert.Equal(IceRole.Controlling, full.Role);
        Assert.Equal(IceRole.Controlled, lite.Role);
        Assert.Equal(0, liteSocket.Requests);

        // Behind a symmetric NAT the lite agent sees the full agent's mapped address: a peer-reflexive candidate.
        Assert.Equal(fullBehindNat ? IceCandidateType.PeerReflexive : IceCandidateType.Host, lite.SelectedPair!.Remote.Type);
        Assert.Equal(IceCandidateType.Host, full.SelectedPair!.Remote.Type);

        // Data both ways; then a minute on: the full agent's consent checks keep the lite agent connected.
        var pf = await full.Connected;
        var pl = await lite.Connected;
        string? atLite = null, atFull = null;
        pl.Start((d, _) => atLite = Encoding.UTF8.GetString(d));
        pf.Start((d, _) => atFull = Encoding.UTF8.GetString(d));
        pf.Send("to lite"u8, pl.LocalEndPoint);
        Assert.True(_scheduler.RunUntil(() => atLite is not null, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(1)));
        pl.Send("to full"u8, pf.LocalEndPoint);
        Assert.True(_scheduler.RunUntil(() => atFull is not null, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(1)));
        Assert.Equal("to lite", atLite);
        Assert.Equal("to full", atFull);
        _scheduler.RunUntil(() => false, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(1));
        Assert.Equal(IceState.Connected, lite.State);
        Assert.Equal(IceState.Connected, full.State);
        Assert.Equal(0, liteSocket.Requests);
    }

    [Fact]
    public void A_lite_agent_whose_full_peer_went_silent_fails_when_consent_expires()
    {
        var lite = Agent(_net.CreateSocket(new IPEndPoint(IPAddress.Parse("198.51.100.1"), 3478)), new IceAgentOptions { Role = IceRole.Controlled, Lite = true });
        var full = Agent(_net.CreateSocket(new IPEndPoint(IPAddress.Parse("198.51.100.2"), 40000)), new IceAgentOptions());
        lite.Start();
        full.Start();
        Exchange(full, lite);
        Assert.True(_scheduler.RunUntil(() => lite.State == IceState.Connected, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(30)));
        full.Dispose();
        Assert.True(_scheduler.RunUntil(() => lite.State == IceState.Failed, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(1)));
    }

    [Fact]
    public void Lite_options_are_validated()
    {
        Assert.Throws<ArgumentException>(() => new IceAgentOptions { Lite = true, Role = IceRole.Controlling }.Validate());
        Assert.Throws<ArgumentException>(() => new IceAgentOptions { Lite = true, Role = IceRole.Controlled, StunServer = new IPEndPoint(IPAddress.Loopback, 3478) }.Validate());
        new IceAgentOptions { Lite = true, Role = IceRole.Controlled }.Validate();
    }
}
