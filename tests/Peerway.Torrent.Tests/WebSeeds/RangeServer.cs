using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Peerway.Torrent.Tests.WebSeeds;

/// <summary>How <see cref="RangeServer"/> misbehaves.</summary>
public enum ServerMode
{
    /// <summary>206 with exactly the range asked (RFC 9110 §14), keep-alive.</summary>
    Good,

    /// <summary>200 with the whole file: a server without Range support.</summary>
    IgnoresRange,

    /// <summary>206 whose body is one byte short of the range (Content-Length matching the short body).</summary>
    ShortBody,

    /// <summary>302 to itself, forever.</summary>
    RedirectLoop,

    /// <summary>206 headers, then the body one byte at a time, far too slowly.</summary>
    SlowDrip,

    /// <summary>206 with the right length, every byte flipped.</summary>
    BadData,
}

/// <summary>
/// A tiny HTTP/1.1 file server on 127.0.0.1 for web seed tests: serves files from memory by path, honours a single
/// "Range: bytes=a-b", keeps connections alive, and can misbehave (<see cref="ServerMode"/>). Counts requests.
/// </summary>
internal sealed class RangeServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Dictionary<string, byte[]> _files;
    private readonly ServerMode _mode;
    private readonly CancellationTokenSource _cts = new();
    private readonly List<Task> _tasks = [];
    private readonly Task _accept;
    private int _requests;

    public RangeServer(Dictionary<string, byte[]> files, ServerMode mode = ServerMode.Good)
    {
        _files = files;
        _mode = mode;
        _listener.Start();
        _accept = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public string Url(string path) => $"http://127.0.0.1:{Port}{path}";

    public int Requests => Volatile.Read(ref _requests);

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_cts.Token);
                lock (_tasks) _tasks.Add(ServeAsync(client));
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        var stream = client.GetStream();
        var buffer = new byte[8192];
        var pending = new StringBuilder();
        try
        {
            while (true)
            {
                var text = pending.ToString();
                var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (end < 0)
                {
                    var n = await stream.ReadAsync(buffer, _cts.Token);
                    if (n == 0) return;
                    pending.Append(Encoding.ASCII.GetString(buffer, 0, n));
                    continue;
                }

                pending.Remove(0, end + 4);
                Interlocked.Increment(ref _requests);
                var lines = text[..end].Split("\r\n");
                var path = Uri.UnescapeDataString(lines[0].Split(' ')[1]);
                var range = lines.Skip(1).FirstOrDefault(l => l.StartsWith("Range:", StringComparison.OrdinalIgnoreCase));
                await AnswerAsync(stream, path, range);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // The client went away, or the server stops.
        }
    }

    private async Task AnswerAsync(NetworkStream stream, string path, string? range)
    {
        async Task HeadAsync(string status, params string[] headers) =>
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\n{string.Concat(headers.Select(h => h + "\r\n"))}\r\n"), _cts.Token);
        if (!_files.TryGetValue(path, out var file))
        {
            await HeadAsync("404 Not Found", "Content-Length: 0");
            return;
        }

        if (_mode == ServerMode.RedirectLoop)
        {
            await HeadAsync("302 Found", $"Location: {path}", "Content-Length: 0");
            return;
        }

        if (_mode == ServerMode.IgnoresRange || range is null)
        {
            await HeadAsync("200 OK", Len(file.Length));
            await stream.WriteAsync(file, _cts.Token);
            return;
        }

        var spec = range.Split('=', 2)[1].Trim().Split('-');
        var from = long.Parse(spec[0], CultureInfo.InvariantCulture);
        var to = Math.Min(long.Parse(spec[1], CultureInfo.InvariantCulture), file.Length - 1);
        var body = file.AsSpan((int)from, (int)(to - from + 1)).ToArray();
        if (_mode == ServerMode.ShortBody) body = body[..^1];
        if (_mode == ServerMode.BadData)
        {
            for (var i = 0; i < body.Length; i++) body[i] ^= 0xFF;
        }

        await HeadAsync("206 Partial Content", Len(body.Length), string.Create(CultureInfo.InvariantCulture, $"Content-Range: bytes {from}-{from + body.Length - 1}/{file.Length}"));
        if (_mode == ServerMode.SlowDrip)
        {
            // One byte, then nothing: the client's request timeout has to end it.
            await stream.WriteAsync(body.AsMemory(0, 1), _cts.Token);
            await Task.Delay(Timeout.Infinite, _cts.Token);
        }

        await stream.WriteAsync(body, _cts.Token);
    }

    private static string Len(long n) => string.Create(CultureInfo.InvariantCulture, $"Content-Length: {n}");

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        _listener.Stop();
        await _accept;
        Task[] tasks;
        lock (_tasks) tasks = [.. _tasks];
        await Task.WhenAll(tasks);
        _cts.Dispose();
    }
}
