using System.Buffers.Text;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

// N concurrent Transmission RPC clients polling torrent-get (issue 18 item 8), as bench/node/rpc_pollers.py, for a
// fraction of its CPU: one keep-alive connection per client, the request bytes built once (again only when the
// X-Transmission-Session-Id changes, rpc-spec.md §2.3.1), answers read by their Content-Length, and each answer checked
// to be a 200 whose body says "result":"success". A client starts at a random offset within the interval.
// Usage: RpcPollers URL CLIENTS INTERVAL_S
// Prints "pollers started", then on SIGTERM/SIGINT one line, and on SIGUSR1 the same line for the requests so far:
//   requests N errors E p50_ms X p99_ms Y cpu_us_per_request C
// C is this process's own CPU time per request (user + system), counted from the moment every client has had an
// answer (start-up and JIT left out) — the harness's cost, to set beside the server's.
// Only loopback URLs are accepted.
if (args.Length != 3 || !Uri.TryCreate(args[0], UriKind.Absolute, out var url) || url.Scheme != "http"
    || !int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out var clients) || clients < 1
    || !double.TryParse(args[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var intervalSeconds) || intervalSeconds <= 0)
{
    Console.Error.WriteLine("usage: RpcPollers http://127.0.0.1:PORT/transmission/rpc CLIENTS INTERVAL_S");
    return 2;
}

var address = url.IsLoopback && url.HostNameType == UriHostNameType.Dns ? IPAddress.Loopback : IPAddress.TryParse(url.IdnHost, out var a) ? a : IPAddress.None;
if (!IPAddress.IsLoopback(address))
{
    Console.Error.WriteLine("RpcPollers: loopback URLs only");
    return 2;
}

var server = new IPEndPoint(address, url.Port);
var interval = TimeSpan.FromSeconds(intervalSeconds);
var stats = new Stats(clients);
using var stop = new CancellationTokenSource();
void Stop(PosixSignalContext context)
{
    context.Cancel = true;
    stop.Cancel();
}

using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
const int SigUsr1 = 10; // Linux
using var onUsr1 = PosixSignalRegistration.Create((PosixSignal)SigUsr1, context =>
{
    context.Cancel = true;
    Console.WriteLine(stats.Summary());
});

var request = new Request(url.Authority, url.AbsolutePath);
Console.WriteLine("pollers started");
var tasks = new Task[clients];
for (var i = 0; i < clients; i++) tasks[i] = Poller.RunAsync(server, request, interval, stats, stop.Token);
await Task.WhenAll(tasks);
Console.WriteLine(stats.Summary());
return 0;

/// <summary>The torrent-get request bytes for one session id (the fields bench/node/rpc_pollers.py asks).</summary>
internal sealed class Request(string authority, string path)
{
    private const string Body = """{"method": "torrent-get", "arguments": {"fields": ["id", "name", "status", "percentDone", "rateDownload", "rateUpload", "eta", "peersConnected", "totalSize", "uploadedEver", "downloadedEver", "error", "errorString", "addedDate", "doneDate", "leftUntilDone"]}}""";

    public byte[] For(string sessionId) => Encoding.ASCII.GetBytes(
        $"POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nX-Transmission-Session-Id: {sessionId}\r\nContent-Length: {Body.Length}\r\n\r\n{Body}");
}

internal static class Poller
{
    private const int MaxAnswerBytes = 16 << 20;

    public static async Task RunAsync(IPEndPoint server, Request request, TimeSpan interval, Stats stats, CancellationToken ct)
    {
        await Task.Yield(); // the caller starts every client before any of them runs
        var bytes = request.For("");
        var buffer = new byte[16 << 10];
        Socket? socket = null;
        try
        {
            await Task.Delay(interval * Random.Shared.NextDouble(), ct);
            while (true)
            {
                var retryIn = interval;
                try
                {
                    if (socket is null)
                    {
                        socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                        await socket.ConnectAsync(server, ct);
                    }

                    var started = Stopwatch.GetTimestamp();
                    await socket.SendAsync(bytes, SocketFlags.None, ct);
                    var (answer, grown) = await ReadAnswerAsync(socket, buffer, ct);
                    buffer = grown;
                    if (answer.Status == 409 && answer.SessionId is { } id)
                    {
                        // The handshake: ask again at once with the id (on a new connection if the 409's body was chunked).
                        bytes = request.For(id);
                        if (!answer.KeepAlive) Close(ref socket);
                        continue;
                    }

                    if (answer.Status == 200 && answer.Success) stats.Answered(Stopwatch.GetElapsedTime(started));
                    else stats.Failed();
                    if (!answer.KeepAlive) Close(ref socket);
                }
                catch (Exception ex) when (ex is SocketException or IOException or InvalidDataException)
                {
                    stats.Failed();
                    Close(ref socket);
                    retryIn = TimeSpan.FromSeconds(1);
                }

                await Task.Delay(retryIn, ct);
            }
        }
        catch (OperationCanceledException)
        {
            // SIGTERM/SIGINT.
        }
        finally
        {
            socket?.Dispose();
        }
    }

    private static void Close(ref Socket? socket)
    {
        socket?.Dispose();
        socket = null;
    }

    private readonly record struct Answer(int Status, bool Success, string? SessionId, bool KeepAlive);

    /// <summary>Reads one answer: the head, then a Content-Length body (a chunked body is skipped by closing the connection).</summary>
    private static async Task<(Answer Answer, byte[] Buffer)> ReadAnswerAsync(Socket socket, byte[] buffer, CancellationToken ct)
    {
        var filled = 0;
        int headEnd;
        while ((headEnd = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (filled == buffer.Length) throw new InvalidDataException("answer head too long");
            filled += await ReceiveSomeAsync(socket, buffer.AsMemory(filled), ct);
        }

        var head = buffer.AsSpan(0, headEnd + 2);
        if (head.Length < 12 || !head.StartsWith("HTTP/1.1 "u8) || !Utf8Parser.TryParse(head.Slice(9, 3), out int status, out _))
            throw new InvalidDataException("not an HTTP/1.1 answer");
        var sessionId = Header(head, "x-transmission-session-id"u8) is { Length: > 0 } sid ? Encoding.ASCII.GetString(sid) : null;
        var close = Header(head, "connection"u8).SequenceEqual("close"u8);
        if (!Utf8Parser.TryParse(Header(head, "content-length"u8), out int length, out _))
        {
            // No length (a chunked 409 page): usable for its headers only.
            return (new Answer(status, false, sessionId, KeepAlive: false), buffer);
        }

        var total = headEnd + 4 + length;
        if (total > MaxAnswerBytes) throw new InvalidDataException("answer too long");
        if (total > buffer.Length) Array.Resize(ref buffer, total);
        while (filled < total) filled += await ReceiveSomeAsync(socket, buffer.AsMemory(filled, total - filled), ct);
        if (filled != total) throw new InvalidDataException("bytes after the answer");
        var success = status == 200 && buffer.AsSpan(headEnd + 4, length).IndexOf("\"result\":\"success\""u8) >= 0;
        return (new Answer(status, success, sessionId, !close), buffer);
    }

    private static async Task<int> ReceiveSomeAsync(Socket socket, Memory<byte> into, CancellationToken ct)
    {
        var n = await socket.ReceiveAsync(into, SocketFlags.None, ct);
        return n > 0 ? n : throw new IOException("connection closed");
    }

    /// <summary>The value of header <paramref name="lowerName"/> in <paramref name="head"/> (lines ending in CRLF), or empty.</summary>
    private static ReadOnlySpan<byte> Header(ReadOnlySpan<byte> head, ReadOnlySpan<byte> lowerName)
    {
        var rest = head[(head.IndexOf("\r\n"u8) + 2)..];
        while (rest.Length > 0)
        {
            var end = rest.IndexOf("\r\n"u8);
            var line = rest[..end];
            rest = rest[(end + 2)..];
            var colon = line.IndexOf((byte)':');
            if (colon == lowerName.Length && Ascii.EqualsIgnoreCase(line[..colon], lowerName)) return line[(colon + 1)..].Trim((byte)' ');
        }

        return [];
    }
}

/// <summary>Counts answers and errors, keeps latencies, and measures this process's CPU per request once every client has been answered.</summary>
internal sealed class Stats(int clients)
{
    private readonly Lock _gate = new();
    private readonly List<double> _latencyMs = new(1 << 16);
    private long _errors;
    private TimeSpan _cpuAtWarm;
    private int _countAtWarm = -1;

    public void Answered(TimeSpan latency)
    {
        lock (_gate)
        {
            _latencyMs.Add(latency.TotalMilliseconds);
            if (_countAtWarm < 0 && _latencyMs.Count >= clients)
            {
                _countAtWarm = _latencyMs.Count;
                _cpuAtWarm = Environment.CpuUsage.TotalTime;
            }
        }
    }

    public void Failed() => Interlocked.Increment(ref _errors);

    public string Summary()
    {
        double[] sorted;
        int count, countAtWarm;
        TimeSpan cpuAtWarm;
        lock (_gate)
        {
            sorted = [.. _latencyMs];
            (count, countAtWarm, cpuAtWarm) = (_latencyMs.Count, _countAtWarm, _cpuAtWarm);
        }

        Array.Sort(sorted);
        double Pct(double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
        var cpuPerRequest = countAtWarm >= 0 && count > countAtWarm
            ? (Environment.CpuUsage.TotalTime - cpuAtWarm).TotalMicroseconds / (count - countAtWarm)
            : double.NaN;
        return string.Create(CultureInfo.InvariantCulture,
            $"requests {count} errors {Interlocked.Read(ref _errors)} p50_ms {Pct(0.5):0.0} p99_ms {Pct(0.99):0.0} cpu_us_per_request {cpuPerRequest:0}");
    }
}
