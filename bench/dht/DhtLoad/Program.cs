using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

// Closed-loop KRPC load generator: S sockets keep W queries each in flight against one DHT node (a mix of ping,
// find_node and get_peers, BEP 5) and count the responses that match an outstanding transaction id. A query not
// answered within 500 ms is written off and replaced, so losses cannot stall the loop.
// Usage: DhtLoad HOST:PORT [--seconds 10] [--warmup 2] [--sockets 4] [--window 64]
// Prints one line: "answered <n> queries in <s> s: <qps> queries/s (<errors> errors, <lost> lost)".
// Calibration: "DhtLoad --echo" answers every query with a minimal KRPC response from one receive loop (the same
// Socket.ReceiveFromAsync pattern as Peerway.Net.UdpDatagramSocket): the ceiling of this machine and generator.
if (args.Length >= 1 && args[0] == "--echo")
{
    await Echo.RunAsync();
    return 0;
}

if (args.Length < 1 || !IPEndPoint.TryParse(args[0], out var target))
{
    Console.Error.WriteLine("usage: DhtLoad HOST:PORT [--seconds 10] [--warmup 2] [--sockets 4] [--window 64]");
    return 2;
}

int Arg(string name, int dflt)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : dflt;
}

var seconds = Arg("--seconds", 10);
var warmup = Arg("--warmup", 2);
var socketCount = Arg("--sockets", 4);
var window = Arg("--window", 64);
var cpuPid = Arg("--cpu-pid", 0);

var counters = new Counters();
using var stop = new CancellationTokenSource();
var workers = Enumerable.Range(0, socketCount).Select(i => Task.Run(() => Worker.RunAsync(target, window, counters, i, stop.Token))).ToList();
await Task.Delay(TimeSpan.FromSeconds(warmup));
var start = counters.Snapshot();
var cpuStart = ServerCpu.Seconds(cpuPid);
var clock = Stopwatch.StartNew();
await Task.Delay(TimeSpan.FromSeconds(seconds));
var end = counters.Snapshot();
var cpuEnd = ServerCpu.Seconds(cpuPid);
clock.Stop();
await stop.CancelAsync();
await Task.WhenAll(workers);

var answered = end.Answered - start.Answered;
var qps = answered / clock.Elapsed.TotalSeconds;
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"answered {answered} queries in {clock.Elapsed.TotalSeconds:0.00} s: {qps:0} queries/s ({end.Errors - start.Errors} errors, {end.Lost - start.Lost} lost)"));
if (cpuPid > 0)
{
    var cpu = cpuEnd - cpuStart;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"server used {cpu:0.00} CPU-seconds: {(cpu > 0 ? answered / cpu : 0):0} queries per CPU-second"));
}

return answered > 0 ? 0 : 1;

internal sealed class Counters
{
    public long Answered;
    public long Errors;
    public long Lost;

    public (long Answered, long Errors, long Lost) Snapshot() =>
        (Interlocked.Read(ref Answered), Interlocked.Read(ref Errors), Interlocked.Read(ref Lost));
}

internal static class Worker
{
    private static readonly TimeSpan LostAfter = TimeSpan.FromMilliseconds(500);

    public static async Task RunAsync(IPEndPoint target, int window, Counters counters, int index, CancellationToken ct)
    {
        using var socket = new Socket(target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(target.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Loopback : IPAddress.IPv6Loopback, 0));
        socket.ReceiveBufferSize = 4 << 20;
        var id = RandomNumberGenerator.GetBytes(20);
        var outstanding = new Dictionary<uint, long>();
        uint next = (uint)index << 24;
        var buffer = new byte[2048];
        var query = new byte[256];

        void SendOne()
        {
            var tid = ++next;
            var length = Encode(query, id, tid);
            outstanding[tid] = Stopwatch.GetTimestamp();
            socket.SendTo(query.AsSpan(0, length), SocketFlags.None, target);
        }

        for (var i = 0; i < window; i++) SendOne();
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!ct.IsCancellationRequested)
        {
            using var receiveTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            receiveTimeout.CancelAfter(LostAfter);
            try
            {
                var r = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, receiveTimeout.Token);
                var span = buffer.AsSpan(0, r.ReceivedBytes);
                if (span.IndexOf("1:y1:q"u8) >= 0)
                {
                    // The server pings a new querier before handing it out (BEP 5 good nodes): answer, as a real node
                    // would, so its replies carry nodes as they do in a live network.
                    AnswerQuery(socket, span, id, r.RemoteEndPoint);
                    continue;
                }

                var t = span.IndexOf("1:t4:"u8);
                if (t >= 0 && t + 9 <= span.Length && outstanding.Remove(BinaryPrimitives.ReadUInt32BigEndian(span[(t + 5)..])))
                {
                    if (span.IndexOf("1:y1:r"u8) >= 0) Interlocked.Increment(ref counters.Answered);
                    else Interlocked.Increment(ref counters.Errors);
                    SendOne();
                }
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                // Nothing for 500 ms: fall through to the sweep below.
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (SocketException)
            {
                // ICMP port unreachable from an earlier send: the server is gone or not yet up.
            }

            var now = Stopwatch.GetTimestamp();
            if (outstanding.Count < window || outstanding.Values.Any(v => Stopwatch.GetElapsedTime(v, now) > LostAfter))
            {
                foreach (var stale in outstanding.Where(kv => Stopwatch.GetElapsedTime(kv.Value, now) > LostAfter).Select(kv => kv.Key).ToList())
                {
                    outstanding.Remove(stale);
                    Interlocked.Increment(ref counters.Lost);
                }

                while (outstanding.Count < window) SendOne();
            }
        }
    }

    private static void AnswerQuery(Socket socket, ReadOnlySpan<byte> query, byte[] id, EndPoint from)
    {
        var t = query.IndexOf("1:t"u8);
        if (t < 0) return;
        var rest = query[(t + 3)..];
        var colon = rest.IndexOf((byte)':');
        if (colon is < 1 or > 2 || !int.TryParse(rest[..colon], NumberStyles.None, CultureInfo.InvariantCulture, out var n) || colon + 1 + n > rest.Length) return;
        Span<byte> reply = stackalloc byte[128];
        var w = 0;
        void Put(ReadOnlySpan<byte> b, Span<byte> into, ref int at)
        {
            b.CopyTo(into[at..]);
            at += b.Length;
        }

        Put("d1:rd2:id20:"u8, reply, ref w);
        Put(id, reply, ref w);
        Put("e1:t"u8, reply, ref w);
        Put(rest[..(colon + 1 + n)], reply, ref w);
        Put("1:y1:re"u8, reply, ref w);
        socket.SendTo(reply[..w], SocketFlags.None, from);
    }

    // BEP 5 queries, bencoded with sorted keys: a ping, a find_node for a random target, a get_peers for a random hash.
    private static int Encode(byte[] into, byte[] id, uint tid)
    {
        var w = new Writer(into);
        w.Raw("d1:ad2:id20:"u8);
        w.Raw(id);
        var kind = tid % 3;
        Span<byte> random = stackalloc byte[20];
        RandomNumberGenerator.Fill(random);
        if (kind == 1)
        {
            w.Raw("9:info_hash20:"u8);
            w.Raw(random);
        }
        else if (kind == 2)
        {
            w.Raw("6:target20:"u8);
            w.Raw(random);
        }

        w.Raw("e1:q"u8);
        w.Raw(kind switch { 0 => "4:ping"u8, 1 => "9:get_peers"u8, _ => "9:find_node"u8 });
        w.Raw("1:t4:"u8);
        Span<byte> t = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(t, tid);
        w.Raw(t);
        w.Raw("1:y1:qe"u8);
        return w.Length;
    }

    private ref struct Writer(byte[] buffer)
    {
        private readonly byte[] _buffer = buffer;

        public int Length { get; private set; }

        public void Raw(scoped ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(_buffer.AsSpan(Length));
            Length += bytes.Length;
        }
    }
}

internal static class Echo
{
    public static async Task RunAsync()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.ReceiveBufferSize = 4 << 20;
        Console.WriteLine($"node {Convert.ToHexStringLower(new byte[20])} listening {socket.LocalEndPoint}");
        var buffer = new byte[2048];
        var reply = new byte[64];
        "d1:rd2:id20:"u8.CopyTo(reply);
        "e1:t4:"u8.CopyTo(reply.AsSpan(32));
        "1:y1:re"u8.CopyTo(reply.AsSpan(42));
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (true)
        {
            var r = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any);
            var span = buffer.AsSpan(0, r.ReceivedBytes);
            var t = span.IndexOf("1:t4:"u8);
            if (t < 0 || t + 9 > span.Length) continue;
            span.Slice(t + 5, 4).CopyTo(reply.AsSpan(38));
            socket.SendTo(reply.AsSpan(0, 49), SocketFlags.None, r.RemoteEndPoint);
        }
    }
}

internal static class ServerCpu
{
    /// <summary>User + system CPU seconds of process <paramref name="pid"/> from /proc/PID/stat (fields 14 and 15).</summary>
    public static double Seconds(int pid)
    {
        if (pid <= 0) return 0;
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // Fields after "(comm)" start at field 3; utime is field 14, stime field 15. Linux USER_HZ is 100.
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return ticks / 100.0;
    }
}
