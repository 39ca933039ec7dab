using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Peerway.Net;

namespace Peerway.Benchmarks;

/// <summary>
/// Closed-loop STUN Binding load: each client thread keeps a window of 20-byte Binding requests outstanding on its own
/// connected UDP socket and sends one new request per response (or refills the window after 100 ms of silence). On
/// 64-bit Linux it moves datagrams with recvmmsg/sendmmsg, so the generator costs little more than the kernel's own
/// work and is not what limits the server; `stun-echo` measures that ceiling. Prints responses per second after a
/// warm-up (JIT tiering, caches) that is not counted.
/// </summary>
internal static unsafe class StunLoad
{
    private const int Batch = 64;
    private const int RequestSize = 20;
    private const int ResponseRoom = 1_500;

    public static int Run(string[] args)
    {
        var server = IPEndPoint.Parse(args[0]);
        var seconds = Option(args, "--seconds", 10);
        var warmup = Option(args, "--warmup", 1);
        var clients = Option(args, "--clients", 2);
        var window = Option(args, "--window", 64);
        long counted = 0;
        var start = Stopwatch.StartNew();
        var from = TimeSpan.FromSeconds(warmup);
        var until = from + TimeSpan.FromSeconds(seconds);
        var threads = Enumerable.Range(0, clients).Select(c => new Thread(() =>
        {
            var n = LinuxUdp.IsSupported ? RunBatched(server, window, start, from, until, c) : RunPortable(server, window, start, from, until, c);
            Interlocked.Add(ref counted, n);
        })).ToList();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        var rate = counted / (until - from).TotalSeconds;
        Console.WriteLine(rate.ToString("F0", CultureInfo.InvariantCulture));
        return counted > 0 ? 0 : 1;
    }

    /// <summary>
    /// A no-op echo on the same sockets the STUN server uses (dedicated threads, batched, SO_REUSEPORT): turns each
    /// request's type into a Binding success and returns it unchanged otherwise. Runs until killed.
    /// </summary>
    public static int Echo(string[] args)
    {
        var bind = IPEndPoint.Parse(args[0]);
        var threads = Option(args, "--threads", 1);
        var sockets = Enumerable.Range(0, threads).Select(_ => new UdpDatagramSocket(bind, reusePort: threads > 1, dedicatedThread: true)).ToList();
        foreach (var socket in sockets)
        {
            var s = socket;
            s.Start((datagram, remote) =>
            {
                Span<byte> reply = stackalloc byte[datagram.Length];
                datagram.CopyTo(reply);
                if (reply.Length >= 2) reply[0] = 0x01;
                s.Send(reply, remote);
            });
        }

        Console.WriteLine($"stun-echo: udp {bind}");
        Thread.Sleep(Timeout.Infinite);
        return 0;
    }

    private static void WriteRequest(Span<byte> request, int client, uint sequence)
    {
        // RFC 8489 §5: Binding request, no attributes, magic cookie, a transaction id that is unique per request.
        BinaryPrimitives.WriteUInt16BigEndian(request, 0x0001);
        BinaryPrimitives.WriteUInt16BigEndian(request[2..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(request[4..], 0x2112A442);
        BinaryPrimitives.WriteUInt32BigEndian(request[8..], (uint)client);
        BinaryPrimitives.WriteUInt32BigEndian(request[12..], 0x5045_4552);
        BinaryPrimitives.WriteUInt32BigEndian(request[16..], sequence);
    }

    private static bool IsSuccess(ReadOnlySpan<byte> response) => response.Length >= 20 && response[0] == 0x01 && response[1] == 0x01;

    private static long RunBatched(IPEndPoint server, int window, Stopwatch clock, TimeSpan from, TimeSpan until, int client)
    {
        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.ReceiveBufferSize = 4 * 1024 * 1024;
        socket.SendBufferSize = 4 * 1024 * 1024;
        socket.Connect(server);
        var fd = (int)socket.Handle;
        var send = (LinuxUdp.MMsgHdr*)NativeMemory.AllocZeroed((nuint)(Batch * sizeof(LinuxUdp.MMsgHdr)));
        var sendIov = (LinuxUdp.IoVec*)NativeMemory.AllocZeroed((nuint)(Batch * sizeof(LinuxUdp.IoVec)));
        var sendData = (byte*)NativeMemory.AllocZeroed(Batch * RequestSize);
        var recv = (LinuxUdp.MMsgHdr*)NativeMemory.AllocZeroed((nuint)(Batch * sizeof(LinuxUdp.MMsgHdr)));
        var recvIov = (LinuxUdp.IoVec*)NativeMemory.AllocZeroed((nuint)(Batch * sizeof(LinuxUdp.IoVec)));
        var recvData = (byte*)NativeMemory.AllocZeroed(Batch * ResponseRoom);
        for (var i = 0; i < Batch; i++)
        {
            sendIov[i] = new LinuxUdp.IoVec { Base = sendData + (i * RequestSize), Length = RequestSize };
            send[i].Header.Iov = &sendIov[i];
            send[i].Header.IovLength = 1;
            recvIov[i] = new LinuxUdp.IoVec { Base = recvData + (i * ResponseRoom), Length = ResponseRoom };
            recv[i].Header.Iov = &recvIov[i];
            recv[i].Header.IovLength = 1;
        }

        uint sequence = 0;
        void SendRequests(int count)
        {
            while (count > 0)
            {
                var k = Math.Min(count, Batch);
                for (var i = 0; i < k; i++) WriteRequest(new Span<byte>(sendIov[i].Base, RequestSize), client, sequence++);
                for (var sent = 0; sent < k;)
                {
                    var r = LinuxUdp.SendMMsg(fd, send + sent, (uint)(k - sent), 0);
                    if (r > 0) sent += r;
                    else if (Marshal.GetLastPInvokeError() != LinuxUdp.EIntr) sent++; // e.g. ECONNREFUSED: a lost request
                }

                count -= k;
            }
        }

        long count = 0;
        try
        {
            SendRequests(window);
            while (true)
            {
                var now = clock.Elapsed;
                if (now >= until) break;
                for (var i = 0; i < Batch; i++) recv[i].Header.Flags = 0;
                var n = LinuxUdp.RecvMMsg(fd, recv, Batch, LinuxUdp.MsgDontWait, null);
                if (n <= 0)
                {
                    // Nothing yet: wait; 100 ms of silence means requests were lost, so refill the window.
                    if (LinuxUdp.Poll(fd, LinuxUdp.PollIn, 100) == 0) SendRequests(window);
                    continue;
                }

                var ok = 0;
                for (var i = 0; i < n; i++)
                {
                    if (IsSuccess(new ReadOnlySpan<byte>(recvIov[i].Base, (int)recv[i].Length))) ok++;
                }

                if (now >= from) count += ok;
                SendRequests(n);
            }
        }
        finally
        {
            NativeMemory.Free(send);
            NativeMemory.Free(sendIov);
            NativeMemory.Free(sendData);
            NativeMemory.Free(recv);
            NativeMemory.Free(recvIov);
            NativeMemory.Free(recvData);
        }

        return count;
    }

    private static long RunPortable(IPEndPoint server, int window, Stopwatch clock, TimeSpan from, TimeSpan until, int client)
    {
        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Connect(server);
        socket.ReceiveTimeout = 100;
        var request = new byte[RequestSize];
        var buffer = new byte[ResponseRoom];
        uint sequence = 0;
        long count = 0;
        void SendOne()
        {
            WriteRequest(request, client, sequence++);
            socket.Send(request);
        }

        for (var i = 0; i < window; i++) SendOne();
        while (clock.Elapsed < until)
        {
            try
            {
                var n = socket.Receive(buffer);
                if (IsSuccess(buffer.AsSpan(0, n)) && clock.Elapsed >= from) count++;
                SendOne();
            }
            catch (SocketException)
            {
                for (var i = 0; i < window; i++) SendOne();
            }
        }

        return count;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
