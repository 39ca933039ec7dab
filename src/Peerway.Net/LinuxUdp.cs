using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Peerway.Net;

/// <summary>
/// The few Linux socket calls .NET does not expose: recvmmsg(2) and sendmmsg(2) move a batch of datagrams per system
/// call, sendto(2) with a caller-built address avoids the managed SocketAddress round trip, poll(2) waits for
/// readiness. Struct layouts are those of 64-bit Linux (x64 and arm64 agree); <see cref="IsSupported"/> is false
/// elsewhere and callers fall back to <see cref="Socket"/>.
/// </summary>
internal static unsafe partial class LinuxUdp
{
    /// <summary>Room for a sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes).</summary>
    public const int AddressSize = 32;

    public const int MsgDontWait = 0x40;
    public const int MsgTrunc = 0x20;
    public const short PollIn = 0x001;
    public const short PollOut = 0x004;
    public const int EAgain = 11;
    public const int EIntr = 4;
    private const int ShutRdWr = 2;
    private const ushort AfInet = 2;
    private const ushort AfInet6 = 10;

    /// <summary>Whether the batched calls can be used here (64-bit Linux with a libc that has them).</summary>
    public static bool IsSupported { get; } = Probe();

    private static bool Probe()
    {
        if (!OperatingSystem.IsLinux() || IntPtr.Size != 8) return false;
        try
        {
            // A zero-length poll checks that libc resolves without touching any descriptor.
            return poll(null, 0, 0) == 0;
        }
        catch (DllNotFoundException)
        {
            return false;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public byte* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "recvmmsg", SetLastError = true)]
    public static partial int RecvMMsg(int fd, MMsgHdr* messages, uint count, int flags, void* timeout);

    [LibraryImport("libc", EntryPoint = "sendmmsg", SetLastError = true)]
    public static partial int SendMMsg(int fd, MMsgHdr* messages, uint count, int flags);

    [LibraryImport("libc", EntryPoint = "sendto", SetLastError = true)]
    public static partial nint SendTo(SafeSocketHandle fd, byte* buffer, nuint length, int flags, byte* address, uint addressLength);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int poll(PollFd* fds, nuint count, int timeout);

    [LibraryImport("libc", EntryPoint = "shutdown", SetLastError = true)]
    private static partial int Shutdown(SafeSocketHandle fd, int how);

    public const int EpollIn = 0x001;
    public const int EpollCtlAdd = 1;
    public const int EpollCtlDel = 2;
    private const int CloExec = 0x80000;
    private const int NonBlock = 0x800;

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static partial int EpollCtlNative(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int EpollWait(int epfd, byte* events, int maxEvents, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFdNative(uint initial, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadNative(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteNative(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    /// <summary>
    /// sizeof(struct epoll_event) and the offset of its 64-bit data: the struct is packed on x86-64 only (the kernel's
    /// EPOLL_PACKED), naturally aligned elsewhere.
    /// </summary>
    public static int EpollEventSize { get; } = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    public static int EpollDataOffset => EpollEventSize == 12 ? 4 : 8;

    /// <summary>A close-on-exec epoll instance, or -1.</summary>
    public static int EpollCreate() => EpollCreate1(CloExec);

    /// <summary>epoll_ctl with EPOLLIN (level-triggered) and <paramref name="token"/> as the event's data.</summary>
    public static int EpollCtl(int epfd, int op, int fd, ulong token)
    {
        var ev = stackalloc byte[16];
        new Span<byte>(ev, 16).Clear();
        *(uint*)ev = EpollIn;
        *(ulong*)(ev + EpollDataOffset) = token;
        return EpollCtlNative(epfd, op, fd, ev);
    }

    /// <summary>A non-blocking close-on-exec eventfd(2), or -1.</summary>
    public static int EventFd() => EventFdNative(0, CloExec | NonBlock);

    /// <summary>Adds one to an eventfd counter (wakes its pollers).</summary>
    public static void Signal(int eventFd)
    {
        ulong one = 1;
        WriteNative(eventFd, (byte*)&one, 8);
    }

    /// <summary>Resets an eventfd counter (non-blocking read).</summary>
    public static void Drain(int eventFd)
    {
        ulong value;
        ReadNative(eventFd, (byte*)&value, 8);
    }

    /// <summary>Waits until <paramref name="fd"/> is ready for <paramref name="events"/> or the timeout passes;
    /// 0 on timeout, 1 when ready, -1 on error.</summary>
    public static int Poll(int fd, short events, int timeoutMs)
    {
        var p = new PollFd { Fd = fd, Events = events };
        return poll(&p, 1, timeoutMs);
    }

    /// <summary>
    /// Wakes a thread blocked in poll on this socket: on Linux, shutdown of even an unconnected UDP socket marks it
    /// shut down and wakes its waiters (it still reports ENOTCONN, which is expected and ignored).
    /// </summary>
    public static void Wake(SafeSocketHandle fd) => Shutdown(fd, ShutRdWr);

    /// <summary>Writes the sockaddr of <paramref name="remote"/>; returns its length.</summary>
    public static uint WriteAddress(IPEndPoint remote, Span<byte> destination)
    {
        destination[..AddressSize].Clear();
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)remote.Port);
        if (remote.AddressFamily == AddressFamily.InterNetwork)
        {
            // struct sockaddr_in { sa_family_t (host order); in_port_t (network order); struct in_addr; zero[8] }
            MemoryMarshal.Write(destination, AfInet);
            remote.Address.TryWriteBytes(destination.Slice(4, 4), out _);
            return 16;
        }

        // struct sockaddr_in6 { family; port; uint32 flowinfo; struct in6_addr; uint32 scope_id }
        MemoryMarshal.Write(destination, AfInet6);
        remote.Address.TryWriteBytes(destination.Slice(8, 16), out _);
        MemoryMarshal.Write(destination[24..], (uint)remote.Address.ScopeId);
        return 28;
    }

    /// <summary>Reads a sockaddr written by the kernel; null for a family other than IPv4/IPv6.</summary>
    public static IPEndPoint? ReadAddress(ReadOnlySpan<byte> address)
    {
        var family = MemoryMarshal.Read<ushort>(address);
        var port = BinaryPrimitives.ReadUInt16BigEndian(address[2..]);
        return family switch
        {
            AfInet => new IPEndPoint(new IPAddress(address.Slice(4, 4)), port),
            AfInet6 => new IPEndPoint(new IPAddress(address.Slice(8, 16), MemoryMarshal.Read<uint>(address[24..])), port),
            _ => null,
        };
    }
}
