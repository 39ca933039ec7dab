using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using Peerway.TestSupport;

namespace Peerway.Core.Tests.TestSupport;

/// <summary>The shared test support does what the other test projects rely on.</summary>
public sealed class TestSupportTests
{
    [Fact]
    public void The_leak_check_sees_a_socket_opened_after_the_snapshot_and_not_once_it_is_closed()
    {
        var before = OpenSockets.Snapshot();
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            Assert.Single(OpenSockets.OpenedSince(before, TimeSpan.Zero));
        }
        finally
        {
            socket.Dispose();
        }

        Assert.Empty(OpenSockets.OpenedSince(before, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void The_scheduler_runs_deliveries_in_order_of_due_time_then_of_scheduling_and_only_when_due()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var scheduler = new DeterministicScheduler(time);
        var ran = new List<string>();
        scheduler.Schedule(TimeSpan.FromMilliseconds(20), () => ran.Add("late"));
        scheduler.Schedule(TimeSpan.FromMilliseconds(10), () => ran.Add("early"));
        scheduler.Schedule(TimeSpan.Zero, () =>
        {
            ran.Add("now");
            scheduler.Schedule(TimeSpan.Zero, () => ran.Add("caused"));
        });
        scheduler.Schedule(TimeSpan.Zero, () => ran.Add("now2"));

        Assert.Equal(3, scheduler.RunDue());
        Assert.Equal(new[] { "now", "now2", "caused" }, ran);
        Assert.True(scheduler.RunUntil(() => ran.Count == 5, TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(1)));
        Assert.Equal(new[] { "now", "now2", "caused", "early", "late" }, ran);
        Assert.Equal(5, scheduler.Executed);
        Assert.Equal(time.Start + TimeSpan.FromMilliseconds(20), time.GetUtcNow());
    }

    [Fact]
    public void A_scheduler_that_never_goes_idle_fails_instead_of_hanging()
    {
        var scheduler = new DeterministicScheduler(new FakeTimeProvider());
        void Again() => scheduler.Schedule(TimeSpan.Zero, Again);
        Again();
        Assert.Throws<InvalidOperationException>(() => scheduler.RunUntilIdle(maxSteps: 1000));
    }

    [Fact]
    public void A_temp_directory_is_deleted_with_its_content()
    {
        string path;
        using (var dir = new TempDirectory())
        {
            path = dir.Path;
            File.WriteAllText(dir.Combine("a.txt"), "x");
            Assert.True(File.Exists(Path.Combine(path, "a.txt")));
        }

        Assert.False(Directory.Exists(path));
    }
}
