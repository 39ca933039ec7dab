using System.Net;
using Microsoft.Extensions.Time.Testing;
using Peerway.Nat.Ice;
using Peerway.Nat.Tests.Turn;
using Peerway.Nat.Turn;
using Peerway.Net;
using Peerway.TestSupport;

namespace Peerway.Nat.Tests.Ice;

/// <summary>
/// What the NAT lab (tests/nat-lab) found, reproduced on the virtual network and fake time:
/// <list type="bullet">
/// <item><see cref="IceAgent.DisposeAsync"/> deletes the TURN allocation (RFC 8656 §7.3); the CLI used to leave every
/// allocation to expire, so that a user's quota (10 by default) ran out after five `peerway connect` pairs.</item>
/// <item>A check from the peer re-triggers an In-Progress check (RFC 8445 §7.3.1.4) instead of waiting for its
/// retransmission: the lab's packet trace showed hole punching losing one RTO (500 ms) to it.</item>
/// <item>A host candidate per interface (RFC 8445 §5.1.1.1): peers that share a second network besides their NATed
/// uplinks connect host to host over it.</item>
/// </list>
/// </summary>
public sealed class IceAgentLabRegressionTests : IDisposable
{
    private static readonly IPAddress ServerIp = IPAddress.Parse("198.51.100.1");
    private readonly FakeTimeProvider _time = new();
    private readonly DeterministicScheduler _scheduler;
    private readonly VirtualNetwork _net;
    private readonly TurnServer _server;
    private readonly IPEndPoint _serverEp = new(ServerIp, 3478);

    public IceAgentLabRegressionTests()
    {
        _scheduler = new DeterministicScheduler(_time);
        _net = new VirtualNetwork(_scheduler);
        _server = new TurnServer([_net.CreateSocket(_serverEp)], new VirtualRelayFactory(_net, ServerIp), _time, new TurnServerOptions
        {
            Realm = "test",
            Users = new Dictionary<string, string> { ["alice"] = "secret" },
            UserQuota = 1,
        });
        _server.Start();
    }

    public void Dispose()
    {
        foreach (var a in _agents) a.Dispose();
        _server.Dispose();
    }

    private IceAgent NewAgent(int n, IceAgentOptions? options = null, VirtualNatOptions? nat = null, IReadOnlyList<IDatagramSocket>? extra = null)
    {
        var router = _net.AddNat(IPAddress.Parse($"198.51.100.{10 + n}"), IPNetwork.Parse($"192.168.{n}.0/24"), nat ?? new VirtualNatOptions());
        var agent = new IceAgent(router.CreateSocket(), _time, options ?? new IceAgentOptions { TurnServer = _serverEp, TurnCredentials = new TurnCredentials("alice", "secret") }, null, extra);
        _agents.Add(agent);
        return agent;
    }

    private readonly List<IceAgent> _agents = [];

    private void Signal(IceAgent a, IceAgent b)
    {
        var sa = new LoopSignaling(_scheduler);
        var sb = new LoopSignaling(_scheduler) { Peer = sa };
        sa.Peer = sb;
        IceSignaling.Attach(a, sa);
        IceSignaling.Attach(b, sb);
    }

    /// <summary>Delivers datagrams and moves fake time on when nothing is due, until <paramref name="done"/> (at most 30 s of fake time).</summary>
    private void RunUntil(Func<bool> done) => _scheduler.RunUntil(done, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(30));

    private IceAgent GatheredAgent(int n)
    {
        var agent = NewAgent(n);
        var gathered = false;
        agent.GatheringComplete += (_, _) => gathered = true;
        agent.Start();
        RunUntil(() => gathered);
        Assert.True(gathered);
        return agent;
    }

    [Fact]
    public async Task DisposeAsync_deletes_the_allocation_so_the_quota_is_free_again()
    {
        var first = GatheredAgent(1);
        Assert.Contains(first.LocalCandidates, c => c.Type == IceCandidateType.Relay);
        Assert.Equal(1, _server.AllocationCount);

        var disposing = first.DisposeAsync().AsTask();
        RunUntil(() => disposing.IsCompleted);
        await disposing;
        Assert.Equal(0, _server.AllocationCount);
        Assert.Equal(IceState.Closed, first.State);

        // With a quota of one allocation, a second agent of the same user gets a relay only because the first let go.
        using var second = GatheredAgent(2);
        Assert.Contains(second.LocalCandidates, c => c.Type == IceCandidateType.Relay);
    }

    [Fact]
    public void Plain_dispose_leaves_the_allocation_to_expire()
    {
        var agent = GatheredAgent(1);
        agent.Dispose();
        Assert.Equal(1, _server.AllocationCount);
    }

    [Fact]
    public async Task DisposeAsync_gives_up_after_a_bounded_wait_when_the_server_is_gone()
    {
        var agent = GatheredAgent(1);
        _server.Dispose();
        var started = _time.GetUtcNow();
        var disposing = agent.DisposeAsync().AsTask();
        RunUntil(() => disposing.IsCompleted);
        await disposing;
        Assert.Equal(IceState.Closed, agent.State);
        Assert.InRange(_time.GetUtcNow() - started, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task A_check_from_the_peer_retriggers_an_in_progress_check_instead_of_waiting_for_its_retransmission()
    {
        // Port-restricted cones (RFC 4787: endpoint-independent mapping, address-and-port-dependent filtering), as the
        // lab's MASQUERADE routers with the home-router drop. A checks B's server-reflexive address first and B's NAT
        // drops it (B has not sent anything to A yet); B's check (slower pacing, so later) passes A's NAT, which A's
        // own check opened. From then on A's check would pass too: A must re-check at once, not after its RTO (2 s).
        var cone = new VirtualNatOptions { Mapping = NatMappingBehavior.EndpointIndependent, Filtering = NatFilteringBehavior.AddressAndPortDependent };
        var a = NewAgent(1, new IceAgentOptions { Role = IceRole.Controlling, StunServer = _serverEp, NominationDelay = TimeSpan.Zero, CheckRto = TimeSpan.FromSeconds(2) }, cone);
        var b = NewAgent(2, new IceAgentOptions { Role = IceRole.Controlled, StunServer = _serverEp, Ta = TimeSpan.FromMilliseconds(200), CheckRto = TimeSpan.FromSeconds(2) }, cone);
        Signal(a, b);
        a.Start();
        RunUntil(() => a.LocalCandidates.Count == 2);
        var bStarted = _time.GetUtcNow();
        b.Start();
        RunUntil(() => a.Connected.IsCompleted);
        Assert.True(a.State == IceState.Connected, $"A: {a.FailureReason}\n{a.DescribeChecklist()}\nB: {b.State} {b.FailureReason}\n{b.DescribeChecklist()}\nA locals: {string.Join(", ", a.LocalCandidates)}\nB started {bStarted:O}");
        var pair = (await a.Connected, a.SelectedPair!).Item2;
        Assert.Equal("srflx", pair.Kind);

        // B's srflx check goes out 2 × 200 ms after its start; A's triggered answer follows within a Ta or two. Waiting
        // for the retransmission instead would take until A's first check + 2 s.
        Assert.InRange(_time.GetUtcNow() - bStarted, TimeSpan.Zero, TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task Peers_sharing_a_second_network_connect_host_to_host_over_it()
    {
        // Symmetric NATs on the primary sockets and no TURN: without the second network ICE would fail.
        var symmetric = new VirtualNatOptions { Mapping = NatMappingBehavior.AddressAndPortDependent, Filtering = NatFilteringBehavior.AddressAndPortDependent };
        // The shared network: a private /24 (behind a third NAT that neither peer's primary socket can reach into).
        var office = _net.AddNat(IPAddress.Parse("198.51.100.30"), IPNetwork.Parse("172.16.0.0/24"), symmetric);
        var officeA = office.CreateSocket(new IPEndPoint(IPAddress.Parse("172.16.0.1"), 5000));
        var officeB = office.CreateSocket(new IPEndPoint(IPAddress.Parse("172.16.0.2"), 5000));
        var a = NewAgent(1, new IceAgentOptions { Role = IceRole.Controlling, StunServer = _serverEp }, symmetric, [officeA]);
        var b = NewAgent(2, new IceAgentOptions { Role = IceRole.Controlled, StunServer = _serverEp }, symmetric, [officeB]);
        Signal(a, b);
        a.Start();
        b.Start();
        RunUntil(() => a.Connected.IsCompleted && b.Connected.IsCompleted);
        Assert.True(a.State == IceState.Connected, a.FailureReason + "\n" + a.DescribeChecklist());
        Assert.Equal(2, a.LocalCandidates.Count(c => c.Type == IceCandidateType.Host));
        Assert.True(a.SelectedPair!.Kind == "host", $"{a.SelectedPair}\n{a.DescribeChecklist()}");
        Assert.Equal(officeA.LocalEndPoint, a.SelectedPair.Local.Address);
        Assert.Equal(officeB.LocalEndPoint, b.SelectedPair!.Local.Address);

        // Data goes through the office sockets both ways.
        var pa = await a.Connected;
        var pb = await b.Connected;
        string? atB = null, atA = null;
        pb.Start((d, _) => atB = System.Text.Encoding.UTF8.GetString(d));
        pa.Start((d, _) => atA = System.Text.Encoding.UTF8.GetString(d));
        pa.Send("to b"u8, pb.LocalEndPoint);
        pb.Send("to a"u8, pa.LocalEndPoint);
        RunUntil(() => atA is not null && atB is not null);
        Assert.Equal(("to a", "to b"), (atA, atB));
    }

    [Fact]
    public void Candidates_signalled_before_start_are_paired_with_the_host_candidate()
    {
        var a = NewAgent(1, new IceAgentOptions { StunServer = _serverEp });
        var b = NewAgent(2, new IceAgentOptions { Role = IceRole.Controlled, StunServer = _serverEp });
        Signal(a, b);
        a.Start();

        // Every candidate of A reaches B before B starts.
        var until = _time.GetUtcNow() + TimeSpan.FromSeconds(1);
        RunUntil(() => _time.GetUtcNow() >= until);
        var aSrflx = a.LocalCandidates.Single(c => c.Type == IceCandidateType.ServerReflexive);
        b.Start();
        Assert.Contains($"Host {b.LocalCandidates.Single(c => c.Type == IceCandidateType.Host).Address} -> ServerReflexive {aSrflx.Address} ", b.DescribeChecklist() + " ", StringComparison.Ordinal);
    }
}
