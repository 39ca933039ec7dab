using Peerway.Core.Threading;

namespace Peerway.Core.Tests.Threading;

public sealed class BackgroundTasksTests
{
    [Fact]
    public async Task A_finished_task_leaves_the_set_and_WhenAll_waits_for_the_rest()
    {
        var tasks = new BackgroundTasks();
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var second = new TaskCompletionSource();
        tasks.Track(first.Task);
        tasks.Track(second.Task);
        Assert.Equal(2, tasks.Count);

        second.SetResult();
        Assert.Equal(1, tasks.Count);
        var all = tasks.WhenAllAsync();
        Assert.False(all.IsCompleted);
        first.SetResult();
        await all;
        Assert.Equal(0, tasks.Count);
    }

    [Fact]
    public async Task WhenAll_also_waits_for_tasks_tracked_while_it_waits()
    {
        var tasks = new BackgroundTasks();
        var first = new TaskCompletionSource();
        var late = new TaskCompletionSource();
        tasks.Track(first.Task);
        var all = tasks.WhenAllAsync();
        tasks.Track(late.Task);
        first.SetResult();
        Assert.False(all.IsCompleted);
        late.SetResult();
        await all;
    }

    [Fact]
    public async Task A_failure_in_the_background_is_rethrown_and_a_cancellation_is_not()
    {
        var tasks = new BackgroundTasks();
        tasks.Track(Task.FromCanceled(new CancellationToken(canceled: true)));
        tasks.Track(FailAsync());
        var error = await Assert.ThrowsAsync<InvalidOperationException>(tasks.WhenAllAsync);
        Assert.Equal("lost", error.Message);

        static async Task FailAsync()
        {
            await Task.Yield();
            throw new InvalidOperationException("lost");
        }
    }
}
