using System.Diagnostics;
using System.Text;

namespace Peerway.Interop.Tests.Infrastructure;

/// <summary>
/// A third-party (or our own CLI) process with captured stdout/stderr lines, line waiters, a deadline and a kill of the
/// whole process tree on dispose. Lines are observed through events (TaskCompletionSource), never by sleeping.
/// </summary>
internal sealed class ExternalProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Lock _gate = new();
    private readonly List<string> _stdout = [];
    private readonly List<string> _stderr = [];
    private readonly List<(bool Stderr, Func<string, bool> Match, TaskCompletionSource<string> Done)> _waiters = [];
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _lifetime;
    private readonly CancellationTokenRegistration _killOnTimeout;
    private bool _disposed;

    private ExternalProcess(Process process, TimeSpan lifetime, string description)
    {
        _process = process;
        Description = description;
        _lifetime = new CancellationTokenSource(lifetime);
        _killOnTimeout = _lifetime.Token.Register(KillTree);
    }

    public string Description { get; }

    public int Id => _process.Id;

    /// <summary>
    /// Starts <paramref name="fileName"/> with <paramref name="arguments"/>; the process is killed (with its children)
    /// after <paramref name="lifetime"/> or on dispose, whichever comes first.
    /// </summary>
    public static ExternalProcess Start(
        string fileName,
        IEnumerable<string> arguments,
        TimeSpan lifetime,
        string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null,
        bool redirectStdin = false)
    {
        // A test run started in the background of a non-interactive shell (nohup, `cmd &`) inherits SIGINT ignored, and
        // the child would inherit that too: the CLI's "exit 0 on SIGINT" contract could not be tested. coreutils' env
        // resets SIGINT to its default before exec, so every child starts as it would from a terminal.
        var resetSigint = OperatingSystem.IsLinux() && File.Exists("/usr/bin/env");
        var psi = new ProcessStartInfo(resetSigint ? "/usr/bin/env" : fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectStdin,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        if (resetSigint)
        {
            psi.ArgumentList.Add("--default-signal=INT");
            psi.ArgumentList.Add(fileName);
        }

        foreach (var a in arguments) psi.ArgumentList.Add(a);
        if (workingDirectory is not null) psi.WorkingDirectory = workingDirectory;
        if (environment is not null)
        {
            foreach (var (k, v) in environment) psi.Environment[k] = v;
        }

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var description = $"{Path.GetFileName(fileName)} {string.Join(' ', psi.ArgumentList.Skip(resetSigint ? 2 : 0))}";
        var ep = new ExternalProcess(process, lifetime, description);
        process.OutputDataReceived += (_, e) => ep.OnLine(false, e.Data);
        process.ErrorDataReceived += (_, e) => ep.OnLine(true, e.Data);
        if (!process.Start()) throw new InvalidOperationException($"could not start {description}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return ep;
    }

    public IReadOnlyList<string> StdoutLines
    {
        get
        {
            lock (_gate) return [.. _stdout];
        }
    }

    public IReadOnlyList<string> StderrLines
    {
        get
        {
            lock (_gate) return [.. _stderr];
        }
    }

    public string Stdout => string.Join('\n', StdoutLines);

    public string Stderr => string.Join('\n', StderrLines);

    public bool HasExited => _process.HasExited;

    /// <summary>True once <see cref="DisposeAsync"/> has seen the process exit (or it had exited before).</summary>
    public bool HasExitedAfterDispose { get; private set; }

    /// <summary>Writes one line to the process's stdin.</summary>
    public async Task WriteLineAsync(string line)
    {
        await _process.StandardInput.WriteLineAsync(line);
        await _process.StandardInput.FlushAsync();
    }

    /// <summary>Closes the process's stdin (end of input).</summary>
    public void CloseStdin() => _process.StandardInput.Close();

    /// <summary>The first stdout line (seen or future) matching <paramref name="match"/>.</summary>
    public Task<string> WaitForStdoutAsync(Func<string, bool> match, TimeSpan timeout) => WaitForLineAsync(false, match, timeout);

    /// <summary>The first stderr line (seen or future) matching <paramref name="match"/>.</summary>
    public Task<string> WaitForStderrAsync(Func<string, bool> match, TimeSpan timeout) => WaitForLineAsync(true, match, timeout);

    private async Task<string> WaitForLineAsync(bool stderr, Func<string, bool> match, TimeSpan timeout)
    {
        var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            var seen = (stderr ? _stderr : _stdout).FirstOrDefault(match);
            if (seen is not null) return seen;
            _waiters.Add((stderr, match, tcs));
        }

        var closed = stderr ? _stderrClosed.Task : _stdoutClosed.Task;
        var finished = await Task.WhenAny(tcs.Task, closed, Task.Delay(timeout, TimeProvider.System));
        if (finished == tcs.Task) return await tcs.Task;
        lock (_gate) _waiters.RemoveAll(w => w.Done == tcs);
        if (tcs.Task.IsCompleted) return await tcs.Task;
        var why = finished == closed ? $"the stream closed ({await ExitDescriptionAsync()})" : $"no matching line within {timeout.TotalSeconds:0.#} s";
        throw new TimeoutException($"{Description}: {why}.\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}");
    }

    /// <summary>How the process ended, once its output stream closed: its exit code, or the signal that killed it.</summary>
    private async Task<string> ExitDescriptionAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            return "the process is still running";
        }

        var code = _process.ExitCode;
        // A child killed by a signal is reported as 128 + the signal's number.
        return code > 128 ? $"process exited {code}: killed by signal {code - 128}" : $"process exited {code}";
    }

    private void OnLine(bool stderr, string? line)
    {
        List<TaskCompletionSource<string>>? hits = null;
        lock (_gate)
        {
            if (line is null)
            {
                (stderr ? _stderrClosed : _stdoutClosed).TrySetResult();
                return;
            }

            (stderr ? _stderr : _stdout).Add(line);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                var w = _waiters[i];
                if (w.Stderr != stderr || !w.Match(line)) continue;
                (hits ??= []).Add(w.Done);
                _waiters.RemoveAt(i);
            }
        }

        if (hits is null) return;
        foreach (var h in hits) h.TrySetResult(line);
    }

    /// <summary>Waits for the process to exit (and its output to drain) and returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            await Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task).WaitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            KillTree();
            throw new TimeoutException(
                $"{Description}: did not exit within {timeout.TotalSeconds:0.#} s.\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}");
        }

        return _process.ExitCode;
    }

    /// <summary>Sends a POSIX signal (e.g. "TERM", "INT") to the process.</summary>
    public async Task SignalAsync(string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { $"-{signal}", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }, UseShellExecute = false })
            ?? throw new InvalidOperationException("could not run kill");
        await kill.WaitForExitAsync();
    }

    private void KillTree()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // Exiting concurrently.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        KillTree();
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(cts.Token);
            HasExitedAfterDispose = true;
        }
        catch (OperationCanceledException)
        {
            // The kill was sent; nothing more we can do.
        }

        await _killOnTimeout.DisposeAsync();
        _lifetime.Dispose();
        _process.Dispose();
    }
}
