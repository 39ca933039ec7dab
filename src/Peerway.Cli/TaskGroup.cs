using Microsoft.Extensions.Logging;

namespace Peerway.Cli;

/// <summary>
/// The tasks a command starts in the background (one per HTTP request, channel echo, connection watch): each is kept
/// until it ends, a failure nobody expected is logged rather than lost, and <see cref="WhenAllAsync"/> awaits the
/// ones still running at shutdown — no fire-and-forget.
/// </summary>
internal sealed class TaskGroup(ILogger log)
{
    private readonly Lock _gate = new();
    private readonly HashSet<Task> _running = [];

    /// <summary>Keeps <paramref name="task"/> until it ends; ended ones are collected (and their faults logged) here.</summary>
    public void Add(Task task)
    {
        ArgumentNullException.ThrowIfNull(task);
        List<Task> ended;
        lock (_gate)
        {
            ended = [.. _running.Where(t => t.IsCompleted)];
            foreach (var t in ended) _running.Remove(t);
            if (!task.IsCompleted) _running.Add(task);
            else ended.Add(task);
        }

        foreach (var t in ended) Observe(t);
    }

    /// <summary>Awaits every task still running (and any added meanwhile).</summary>
    public async Task WhenAllAsync()
    {
        while (true)
        {
            Task[] all;
            lock (_gate)
            {
                all = [.. _running];
                _running.Clear();
            }

            if (all.Length == 0) return;
            await Task.WhenAll(all.Select(ObserveAsync)).ConfigureAwait(false);
        }
    }

    private async Task ObserveAsync(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Shutting down.
        }
        catch (Exception ex)
        {
            log.LogError(ex, "background task failed");
        }
    }

    private void Observe(Task task)
    {
        if (task.IsFaulted) log.LogError(task.Exception, "background task failed");
    }
}
