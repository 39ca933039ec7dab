using System.Net;
using Microsoft.Extensions.Time.Testing;
using Peerway.Nat.Ice;
using Peerway.Nat.Tests.Turn;
using Peerway.Nat.Turn;
using Peerway.Net;

namespace Peerway.Nat.Tests.Ice;

/// <summary>
/// <see cref="IceAgent.DisposeAsync"/> deletes the TURN allocation (RFC 8656 §7.3). The NAT lab found the CLI leaving
/// every allocation to expire, so that a user's quota (10 by default) ran out after five `peerway connect` pairs.
/// </summary>
public sealed class IceAgentReleaseTests : IDisposable
{
    private static readonly IPAddress ServerIp = IPAddress.Parse("198.51.100.1");
    private readonly FakeTimeProvider _time = new();
    private readonly ManualScheduler _scheduler;
    private readonly VirtualNetwork _net;
    private readonly TurnServer _server;
    private readonly IPEndPoint _serverEp = new(ServerIp, 3478);

    public IceAgentReleaseTests()
    {
        _scheduler = new ManualScheduler(_time);
        _net = new VirtualNetwork(_scheduler);
        _server = new TurnServer([_net.CreateSocket(_serverEp)], new VirtualRelayFactory(_net, ServerIp), _time, new TurnServerOptions
        {
            Realm = "test",
            Users = new Dictionary<string, string> { ["alice"] = "secret" },
            UserQuota = 1,
        });
        _server.Start();
    }

    public void Dispose() => _server.Dispose();

    private IceAgent NewAgent(int n)
    {
        var nat = _net.AddNat(IPAddress.Parse($"198.51.100.{10 + n}"), IPNetwork.Parse($"192.168.{n}.0/24"), new VirtualNatOptions());
        return new IceAgent(nat.CreateSocket(), _time, new IceAgentOptions { TurnServer = _serverEp, TurnCredentials = new TurnCredentials("alice", "secret") });
    }

    /// <summary>Delivers datagrams and moves fake time in 10 ms steps until <paramref name="done"/> (at most 30 s).</summary>
    private async Task RunUntilAsync(Func<bool> done)
    {
        var end = _time.GetUtcNow() + TimeSpan.FromSeconds(30);
        while (!done() && _time.GetUtcNow() < end)
        {
            var ran = _scheduler.RunDue();

            // Transaction continuations run on the thread pool: give them a bounded moment before time moves on.
            await Task.Yield();
            SpinWait.SpinUntil(done, 20);
            if (ran == 0) _time.Advance(TimeSpan.FromMilliseconds(10));
        }
    }

    private async Task<IceAgent> GatheredAgentAsync(int n)
    {
        var agent = NewAgent(n);
        var gathered = false;
        agent.GatheringComplete += (_, _) => gathered = true;
        agent.Start();
        await RunUntilAsync(() => gathered);
        Assert.True(gathered);
        return agent;
    }

    [Fact]
    public async Task DisposeAsync_deletes_the_allocation_so_the_quota_is_free_again()
    {
        var first = await GatheredAgentAsync(1);
        Assert.Contains(first.LocalCandidates, c => c.Type == IceCandidateType.Relay);
        Assert.Equal(1, _server.AllocationCount);

        var disposing = first.DisposeAsync().AsTask();
        await RunUntilAsync(() => disposing.IsCompleted);
        await disposing;
        Assert.Equal(0, _server.AllocationCount);
        Assert.Equal(IceState.Closed, first.State);

        // With a quota of one allocation, a second agent of the same user gets a relay only because the first let go.
        using var second = await GatheredAgentAsync(2);
        Assert.Contains(second.LocalCandidates, c => c.Type == IceCandidateType.Relay);
    }

    [Fact]
    public async Task Plain_dispose_leaves_the_allocation_to_expire()
    {
        var agent = await GatheredAgentAsync(1);
        agent.Dispose();
        Assert.Equal(1, _server.AllocationCount);
    }

    [Fact]
    public async Task DisposeAsync_gives_up_after_a_bounded_wait_when_the_server_is_gone()
    {
        var agent = await GatheredAgentAsync(1);
        _server.Dispose();
        var started = _time.GetUtcNow();
        var disposing = agent.DisposeAsync().AsTask();
        await RunUntilAsync(() => disposing.IsCompleted);
        await disposing;
        Assert.Equal(IceState.Closed, agent.State);
        Assert.InRange(_time.GetUtcNow() - started, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(3));
    }
}
