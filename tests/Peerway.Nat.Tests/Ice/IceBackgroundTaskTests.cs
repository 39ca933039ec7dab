using System.Net;
using Microsoft.Extensions.Time.Testing;
using Peerway.Nat.Ice;
using Peerway.Net;
using Peerway.TestSupport;

namespace Peerway.Nat.Tests.Ice;

/// <summary>STYLE.md §9: the agent and its signaling link keep the tasks they start and await them on dispose.</summary>
public sealed class IceBackgroundTaskTests
{
    [Fact]
    public async Task DisposeAsync_awaits_a_gathering_transaction_still_under_way()
    {
        var time = new FakeTimeProvider();
        var scheduler = new DeterministicScheduler(time);
        var net = new VirtualNetwork(scheduler);

        // The STUN server's address answers nothing: the server-reflexive gathering waits on its retransmissions.
        await using var agent = new IceAgent(net.CreateSocket(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 5000)), time, new IceAgentOptions
        {
            StunServer = new IPEndPoint(IPAddress.Parse("192.0.2.9"), 3478),
        });
        agent.Start();
        scheduler.RunDue();
        Assert.Equal(1, agent.BackgroundTaskCount);

        await agent.DisposeAsync();
        Assert.Equal(0, agent.BackgroundTaskCount);
    }

    [Fact]
    public async Task The_signaling_link_awaits_its_sends_and_rethrows_a_failed_one()
    {
        var time = new FakeTimeProvider();
        var net = new VirtualNetwork(new DeterministicScheduler(time));
        using var agent = new IceAgent(net.CreateSocket(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 5000)), time, new IceAgentOptions());
        var channel = new PendingChannel();
        var link = IceSignaling.Attach(agent, channel);
        Assert.Equal(2, link.PendingSends); // ufrag and password

        var disposed = link.DisposeAsync().AsTask();
        Assert.False(disposed.IsCompleted);
        channel.Sends[0].SetResult();
        channel.Sends[1].SetException(new IOException("signaling down"));
        var error = await Assert.ThrowsAsync<IOException>(() => disposed);
        Assert.Equal("signaling down", error.Message);

        // Unhooked: the agent's end of gathering is no longer sent.
        agent.Start();
        Assert.Equal(2, channel.Sends.Count);
    }

    private sealed class PendingChannel : ISignalingChannel
    {
        public List<TaskCompletionSource> Sends { get; } = [];

        public Task SendAsync(string message, CancellationToken cancellationToken = default)
        {
            var send = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Sends.Add(send);
            return send.Task;
        }

        public void Start(Action<string> onMessage)
        {
        }
    }
}
