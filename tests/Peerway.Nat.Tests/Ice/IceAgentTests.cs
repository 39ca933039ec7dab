using System.Net;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Peerway.Nat.Ice;
using Peerway.Nat.Tests.Turn;
using Peerway.Nat.Turn;
using Peerway.Net;
using Peerway.TestSupport;

namespace Peerway.Nat.Tests.Ice;

/// <summary>An in-memory signaling pair whose messages travel through the manual scheduler.</summary>
internal sealed class LoopSignaling(IDeliveryScheduler scheduler) : ISignalingChannel
{
    private Action<string>? _handler;

    public LoopSignaling? Peer { get; set; }

    public bool Muted { get; set; }

    public Task SendAsync(string message, CancellationToken cancellationToken = default)
    {
        var peer = Peer!;
        if (!Muted) scheduler.Schedule(TimeSpan.Zero, () => peer._handler?.Invoke(message));
        return Task.CompletedTask;
    }

    public void Start(Action<string> onMessage) => _handler = onMessage;
}

public sealed class IceAgentTests : IDisposable
{
    private static readonly IPAddress ServerIp = IPAddress.Parse("198.51.100.1");
    private readonly FakeTimeProvider _time = new();
    private readonly DateTimeOffset _start;
    private readonly DeterministicScheduler _scheduler;
    private readonly VirtualNetwork _net;
    private readonly List<IDisposable> _owned = [];
    private readonly IPEndPoint _serverEp = new(ServerIp, 3478);

    public IceAgentTests()
    {
        _start = _time.GetUtcNow();
        _scheduler = new DeterministicScheduler(_time);
        _net = new VirtualNetwork(_scheduler);
        var listener = _net.CreateSocket(_serverEp);
        var server = new TurnServer([listener], new VirtualRelayFactory(_net, ServerIp), _time, new TurnServerOptions
        {
            Realm = "test",
            Users = new Dictionary<string, string> { ["alice"] = "secret" },
            AllowedPeers = [IPNetwork.Parse("198.51.100.0/24")],
        });
        server.Start();
        _owned.Add(server);
    }

    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
    }

    public static TheoryData<NatMappingBehavior, NatFilteringBehavior, NatMappingBehavior, NatFilteringBehavior> Matrix()
    {
        var data = new TheoryData<NatMappingBehavior, NatFilteringBehavior, NatMappingBehavior, NatFilteringBehavior>();
        foreach (var m in Enum.GetValues<NatMappingBehavior>())
        {
            foreach (var f in Enum.GetValues<NatFilteringBehavior>())
            {
                // Every one of the 9 × 9 combinations of the two peers' NATs.
                foreach (var m2 in Enum.GetValues<NatMappingBehavior>())
                {
                    foreach (var f2 in Enum.GetValues<NatFilteringBehavior>()) data.Add(m, f, m2, f2);
                }
            }
        }

        return data;
    }

    /// <summary>
    /// Theory (RFC 4787 behaviours, RFC 8445 checks with the §7.2.5.2.1 symmetry rule). Both EIM: hole punching
    /// always works. One EIM side E: the other side's fresh mapping reaches E unless E filters by address and port.
    /// Both address-and-port dependent: every answer comes from a new mapping, so no pair is ever symmetric. Otherwise
    /// (ADM/APDM mixes) a mapping towards the peer's IP is stable on the ADM side and the first check must get in
    /// through an endpoint-independent filter on one side while the other side's filter is not port-restricted.
    /// </summary>
    private static bool DirectPossible(NatMappingBehavior ma, NatFilteringBehavior fa, NatMappingBehavior mb, NatFilteringBehavior fb)
    {
        const NatMappingBehavior eim = NatMappingBehavior.EndpointIndependent, apdm = NatMappingBehavior.AddressAndPortDependent;
        const NatFilteringBehavior eif = NatFilteringBehavior.EndpointIndependent, apdf = NatFilteringBehavior.AddressAndPortDependent;
        if (ma == eim && mb == eim) return true;
        if (ma == eim) return fa != apdf;
        if (mb == eim) return fb != apdf;
        if (ma == apdm && mb == apdm) return false;
        return (fb == eif && fa != apdf) || (fa == eif && fb != apdf);
    }

    private (IceAgent Agent, VirtualNat Nat) Peer(int n, NatMappingBehavior mapping, NatFilteringBehavior filtering, IceRole role, bool turn = true,
        TimeSpan? directNominationDelay = null)
    {
        var nat = _net.AddNat(IPAddress.Parse($"198.51.100.{10 + n}"), IPNetwork.Parse($"192.168.{n}.0/24"), new VirtualNatOptions { Mapping = mapping, Filtering = filtering });
        var socket = nat.CreateSocket();
        var agent = new IceAgent(socket, _time, new IceAgentOptions
        {
            Role = role,

            // A patient controller: nominate the relay only when no direct pair can still succeed, so the outcome is
            // the theory's and not a race between the checks and the delay.
            NominationDelay = TimeSpan.FromSeconds(10),
            DirectNominationDelay = directNominationDelay ?? new IceAgentOptions().DirectNominationDelay,
            StunServer = _serverEp,
            TurnServer = turn ? _serverEp : null,
            TurnCredentials = turn ? new TurnCredentials("alice", "secret") : null,
        });
        _owned.Add(agent);
        return (agent, nat);
    }

    private static void Connect(IceAgent a, IceAgent b, IDeliveryScheduler scheduler, out LoopSignaling sa, out LoopSignaling sb)
    {
        sa = new LoopSignaling(scheduler);
        sb = new LoopSignaling(scheduler) { Peer = sa };
        sa.Peer = sb;
        IceSignaling.Attach(a, sa);
        IceSignaling.Attach(b, sb);
    }

    private void RunUntil(Func<bool> done, TimeSpan max) => _scheduler.RunUntil(done, TimeSpan.FromMilliseconds(10), max);

    private static bool Settled(IceAgent a) => a.State is IceState.Connected or IceState.Failed;

    private (IceAgent A, IceAgent B) RunPair(NatMappingBehavior ma, NatFilteringBehavior fa, NatMappingBehavior mb, NatFilteringBehavior fb, IceRole roleB = IceRole.Controlled)
    {
        var (a, _) = Peer(1, ma, fa, IceRole.Controlling);
        var (b, _) = Peer(2, mb, fb, roleB);
        Connect(a, b, _scheduler, out _, out _);
        a.Start();
        b.Start();
        RunUntil(() => Settled(a) && Settled(b), TimeSpan.FromSeconds(60));
        return (a, b);
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task Nat_matrix_selects_direct_or_relay_as_theory_predicts(NatMappingBehavior ma, NatFilteringBehavior fa, NatMappingBehavior mb, NatFilteringBehavior fb)
    {
        var (a, b) = RunPair(ma, fa, mb, fb);
        Assert.True(a.State == IceState.Connected, $"{a.FailureReason} (started {_start:O})\n{a.DescribeChecklist()}\nB: {b.State} {b.FailureReason}\n{b.DescribeChecklist()}");
        Assert.Equal(IceState.Connected, b.State);
        var expected = DirectPossible(ma, fa, mb, fb) ? "srflx" : "relay";
        Assert.Equal(expected, a.SelectedPair!.Kind);
        Assert.Equal(expected, b.SelectedPair!.Kind);
        await AssertDataFlowsAsync(a, b);
    }

    private async Task AssertDataFlowsAsync(IceAgent a, IceAgent b)
    {
        var pa = await a.Connected;
        var pb = await b.Connected;
        string? got = null;
        pb.Start((d, _) => got = Encoding.UTF8.GetString(d));
        pa.Start((_, _) => { });
        pa.Send("hello over ice"u8, pb.LocalEndPoint);
        RunUntil(() => got is not null, TimeSpan.FromSeconds(1));
        Assert.Equal("hello over ice", got);
    }

    [Fact]
    public async Task Cone_nats_connect_directly_without_turn()
    {
        var (a, _) = Peer(1, NatMappingBehavior.EndpointIndependent, NatFilteringBehavior.EndpointIndependent, IceRole.Controlling, turn: false);
        var (b, _) = Peer(2, NatMappingBehavior.EndpointIndependent, NatFilteringBehavior.EndpointIndependent, IceRole.Controlled, turn: false);
        Connect(a, b, _scheduler, out _, out _);
        a.Start();
        b.Start();
        RunUntil(() => Settled(a) && Settled(b), TimeSpan.FromSeconds(60));
        Assert.True(a.State == IceState.Connected, $"{a.FailureReason} after {_time.GetUtcNow() - _start}\n{a.DescribeChecklist()}\nB: {b.State} {b.FailureReason}\n{b.DescribeChecklist()}");
        Assert.Equal(IceCandidateType.ServerReflexive, a.SelectedPair!.Local.Type);
        Assert.Equal(IceCandidateType.ServerReflexive, a.SelectedPair.Remote.Type);
        await AssertDataFlowsAsync(a, b);
    }

    /// <summary>
    /// Behind cone NATs the host pairs to the peer's private address never answer, so they stay pending for ~15 s of
    /// retransmissions while the server-reflexive pair is valid within a few hundred ms: the controller nominates the
    /// direct pair after <see cref="IceAgentOptions.DirectNominationDelay"/>, not after the (10 s) relay delay.
    /// </summary>
    [Theory]
    [InlineData(500)]
    [InlineData(4_000)]
    public async Task A_direct_pair_is_nominated_after_the_direct_delay_while_unreachable_host_pairs_are_pending(int delayMs)
    {
        var delay = TimeSpan.FromMilliseconds(delayMs);
        var (a, _) = Peer(1, NatMappingBehavior.EndpointIndependent, NatFilteringBehavior.EndpointIndependent, IceRole.Controlling, turn: false, directNominationDelay: delay);
        var (b, _) = Peer(2, NatMappingBehavior.EndpointIndependent, NatFilteringBehavior.EndpointIndependent, IceRole.Controlled, turn: false);
        Connect(a, b, _scheduler, out _, out _);
        a.Start();
        b.Start();
        RunUntil(() => Settled(a) && Settled(b), TimeSpan.FromSeconds(60));
        var elapsed = _time.GetUtcNow() - _start;
        Assert.True(a.State == IceState.Connected, $"{a.FailureReason}\n{a.DescribeChecklist()}");
        Assert.Equal("srflx", a.SelectedPair!.Kind);
        // Virtual time: the first valid pair comes within ~1 s, the nomination `delay` after it (never the 10 s).
        Assert.InRange(elapsed, delay, delay + TimeSpan.FromSeconds(2));
        await AssertDataFlowsAsync(a, b);
    }

    [Fact]
    public async Task Symmetric_nats_without_turn_fail()
    {
        var (a, _) = Peer(1, NatMappingBehavior.AddressAndPortDependent, NatFilteringBehavior.AddressAndPortDependent, IceRole.Controlling, turn: false);
        var (b, _) = Peer(2, NatMappingBehavior.AddressAndPortDependent, NatFilteringBehavior.AddressAndPortDependent, IceRole.Controlled, turn: false);
        Connect(a, b, _scheduler, out _, out _);
        a.Start();
        b.Start();
        RunUntil(() => Settled(a) && Settled(b), TimeSpan.FromSeconds(90));
        Assert.Equal(IceState.Failed, a.State);
        await Assert.ThrowsAsync<IceFailedException>(() => a.Connected);
    }

    [Fact]
    public async Task Role_conflict_is_resolved_by_tie_breaker()
    {
        var (a, b) = RunPair(NatMappingBehavior.EndpointIndependent, NatFilteringBehavior.EndpointIndependent,
            NatMappingBehavior.EndpointIndependent, NatFilteringBehavior.EndpointIndependent, roleB: IceRole.Controlling);
        Assert.Equal(IceState.Connected, a.State);
        Assert.Equal(IceState.Connected, b.State);
        Assert.NotEqual(a.Role, b.Role);
        await AssertDataFlowsAsync(a, b);
    }

    [Fact]
    public void Consent_loss_goes_disconnected_then_failed()
    {
        var (a, b) = RunPair(NatMappingBehavior.EndpointIndependent, NatFilteringBehavior.EndpointIndependent,
            NatMappingBehavior.EndpointIndependent, NatFilteringBehavior.EndpointIndependent);
        Assert.Equal(IceState.Connected, a.State);
        var states = new List<IceState>();
        a.StateChanged += (_, s) => states.Add(s);

        // Consent keeps the pair alive while the peer answers.
        RunUntil(() => false, TimeSpan.FromSeconds(40));
        Assert.Equal(IceState.Connected, a.State);
        Assert.Empty(states);

        b.Dispose();
        RunUntil(() => a.State == IceState.Failed, TimeSpan.FromSeconds(40));
        Assert.Equal([IceState.Disconnected, IceState.Failed], states);
    }

    [Fact]
    public void Candidates_trickle_with_rfc_priorities()
    {
        var (a, _) = Peer(1, NatMappingBehavior.EndpointIndependent, NatFilteringBehavior.EndpointIndependent, IceRole.Controlling);
        var gathered = new List<IceCandidate>();
        var complete = false;
        a.LocalCandidateGathered += (_, c) => gathered.Add(c);
        a.GatheringComplete += (_, _) => complete = true;
        a.Start();
        RunUntil(() => complete, TimeSpan.FromSeconds(10));
        Assert.True(complete);
        Assert.Equal([IceCandidateType.Host, IceCandidateType.ServerReflexive, IceCandidateType.Relay], gathered.Select(c => c.Type).Order());
        Assert.Equal((126u << 24) + (65535u << 8) + 255, gathered.Single(c => c.Type == IceCandidateType.Host).Priority);
        Assert.Equal((100u << 24) + (65535u << 8) + 255, gathered.Single(c => c.Type == IceCandidateType.ServerReflexive).Priority);
        Assert.Equal(ServerIp, gathered.Single(c => c.Type == IceCandidateType.Relay).Address.Address);
    }
}
