using Peerway.Interop.Tests.Infrastructure;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Peerway.Interop.Tests.Torrent;

/// <summary>Shared plumbing for the BitTorrent interop tests: real programs, loopback only, everything killed on dispose.</summary>
internal sealed class TorrentInterop : IAsyncDisposable
{
    private readonly List<RunningProcess> _processes = [];

    public TorrentInterop(string name)
    {
        Root = Directory.CreateTempSubdirectory($"pw-bt-{name}-").FullName;
        RepoRoot = FindRepoRoot();
    }

    public string Root { get; }

    public string RepoRoot { get; }

    public string Launcher => Path.Combine(RepoRoot, "peerway");

    private static string FindRepoRoot()
    {
        var env = Environment.GetEnvironmentVariable("PEERWAY_ROOT");
        if (!string.IsNullOrEmpty(env) && File.Exists(Path.Combine(env, "Peerway.sln"))) return env;
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Peerway.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Peerway.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The full path of <paramref name="program"/>, or null: under CI=true a missing peer fails the test.</summary>
    /// <summary>
    /// The full path of <paramref name="program"/>; a missing program fails the test with an installation hint. Tests
    /// that call this are <see cref="RequiresToolFactAttribute"/>s, so outside CI they are reported skipped, never passed.
    /// </summary>
    public static string Require(string program) => RequiredTool.Require(program, "./test.sh installs it");

    public static int FreePort()
    {
        // A port free for both TCP and UDP (trackers and DHT use both).
        for (var i = 0; i < 50; i++)
        {
            using var tcp = new TcpListener(IPAddress.Loopback, 0);
            tcp.Start();
            var port = ((IPEndPoint)tcp.LocalEndpoint).Port;
            try
            {
                using var udp = new UdpClient(new IPEndPoint(IPAddress.Any, port));
                return port;
            }
            catch (SocketException)
            {
                // Taken for UDP: try another.
            }
        }

        throw new InvalidOperationException("no free port");
    }

    public static async Task<byte[]> RandomFileAsync(string path, int size)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var data = RandomNumberGenerator.GetBytes(size);
        await File.WriteAllBytesAsync(path, data);
        return SHA256.HashData(data);
    }

    public static byte[]? Sha256OfFile(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return SHA256.HashData(s);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Polls an external program's observable result (the file on disk) until it matches or the deadline passes.</summary>
    public static async Task<bool> WaitForFileAsync(string path, byte[] sha256, TimeSpan deadline, RunningProcess? watch = null)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < deadline)
        {
            if (Sha256OfFile(path) is { } h && h.AsSpan().SequenceEqual(sha256)) return true;
            if (watch is { HasExited: true } && watch.ExitCode != 0) return false;
            await Task.Delay(250);
        }

        return false;
    }

    public RunningProcess Start(string file, IEnumerable<string> args, string? workingDirectory = null, IDictionary<string, string>? env = null)
    {
        var p = RunningProcess.Start(file, args, workingDirectory ?? Root, env);
        _processes.Add(p);
        return p;
    }

    public RunningProcess StartPeerway(params string[] args) => Start(Launcher, args, RepoRoot);

    public async Task<(int ExitCode, string Stdout, string Stderr)> RunPeerwayAsync(TimeSpan timeout, params string[] args)
    {
        var p = StartPeerway(args);
        var exited = await p.WaitForExitAsync(timeout);
        Assert.True(exited, $"peerway {string.Join(' ', args)} did not finish within {timeout}: {p.Stderr}");
        return (p.ExitCode, p.Stdout, p.Stderr);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _processes) await p.DisposeAsync();
        try
        {
            Directory.Delete(Root, true);
        }
        catch (IOException)
        {
            // A killed program may still be closing files; the temp directory is cleaned by the OS.
        }
    }
}

/// <summary>An external process with captured output, killed with its children on dispose.</summary>
internal sealed class RunningProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource<string> _firstLine = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private RunningProcess(Process process) => _process = process;

    public static RunningProcess Start(string file, IEnumerable<string> args, string workingDirectory, IDictionary<string, string>? env)
    {
        var psi = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var rp = new RunningProcess(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (rp._stdout) rp._stdout.AppendLine(e.Data);
            rp._firstLine.TrySetResult(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (rp._stderr) rp._stderr.AppendLine(e.Data);
        };
        process.Exited += (_, _) => rp._firstLine.TrySetException(new InvalidOperationException($"{file} exited before printing a line"));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return rp;
    }

    public int Id => _process.Id;

    public string Stdout
    {
        get
        {
            lock (_stdout) return _stdout.ToString();
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr) return _stderr.ToString();
        }
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public Task<string> FirstLineAsync(TimeSpan timeout) => _firstLine.Task.WaitAsync(timeout);

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>kill -9 (the process and its children).</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        await WaitForExitAsync(TimeSpan.FromSeconds(10));
        _process.Dispose();
    }
}
