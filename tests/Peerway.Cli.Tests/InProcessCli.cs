using System.CommandLine;
using System.Text;

namespace Peerway.Cli.Tests;

/// <summary>Runs the CLI in-process with captured stdout/stderr (the same RootCommand Program.cs builds).</summary>
internal static class InProcessCli
{
    public static RootCommand CreateRoot()
    {
        var root = new RootCommand("peerway (tests)");
        foreach (var c in CommandCatalog.All()) root.Subcommands.Add(c);
        return root;
    }

    public static Task<CliRun> RunAsync(params string[] args) => RunAsync(CancellationToken.None, args);

    public static async Task<CliRun> RunAsync(CancellationToken ct, params string[] args)
    {
        var output = new LineWriter();
        var error = new LineWriter();
        var code = await CliRunner.RunAsync(CreateRoot(), args, output, error, ct);
        return new CliRun(code, output.Text, error.Text);
    }
}

internal sealed record CliRun(int ExitCode, string Stdout, string Stderr)
{
    public IReadOnlyList<string> StdoutLines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public IReadOnlyList<string> StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>A thread-safe TextWriter that records text and lets a test await the first line matching a predicate.</summary>
internal sealed class LineWriter : TextWriter
{
    private readonly Lock _gate = new();
    private readonly StringBuilder _all = new();
    private readonly StringBuilder _line = new();
    private readonly List<string> _lines = [];
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Done)> _waiters = [];

    public override Encoding Encoding => Encoding.UTF8;

    public string Text
    {
        get
        {
            lock (_gate) return _all.ToString();
        }
    }

    public override void Write(char value)
    {
        List<TaskCompletionSource<string>>? hits = null;
        string? completed = null;
        lock (_gate)
        {
            _all.Append(value);
            if (value == '\n')
            {
                completed = _line.ToString().TrimEnd('\r');
                _line.Clear();
                _lines.Add(completed);
                for (var i = _waiters.Count - 1; i >= 0; i--)
                {
                    if (!_waiters[i].Match(completed)) continue;
                    (hits ??= []).Add(_waiters[i].Done);
                    _waiters.RemoveAt(i);
                }
            }
            else
            {
                _line.Append(value);
            }
        }

        if (hits is null) return;
        foreach (var h in hits) h.TrySetResult(completed!);
    }

    public override void Write(string? value)
    {
        if (value is null) return;
        foreach (var c in value) Write(c);
    }

    public override void WriteLine(string? value)
    {
        Write(value);
        Write('\n');
    }

    public override Task WriteLineAsync(string? value)
    {
        WriteLine(value);
        return Task.CompletedTask;
    }

    public override Task WriteAsync(string? value)
    {
        Write(value);
        return Task.CompletedTask;
    }

    public Task<string> WaitForLineAsync(Func<string, bool> match)
    {
        lock (_gate)
        {
            var seen = _lines.FirstOrDefault(match);
            if (seen is not null) return Task.FromResult(seen);
            var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((match, tcs));
            return tcs.Task;
        }
    }
}
