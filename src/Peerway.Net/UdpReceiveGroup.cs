using System.Runtime.InteropServices;

namespace Peerway.Net;

/// <summary>
/// One receive thread for many <see cref="UdpDatagramSocket"/>s (a TURN server's relay sockets, one per allocation):
/// on 64-bit Linux an epoll(7) instance reports the readable sockets and the thread drains each with recvmmsg(2),
/// running the socket's handler inline, so a datagram is not handed from thread to thread (as with one asynchronous
/// loop per socket on the thread pool). Elsewhere <see cref="IsSupported"/> is false and the sockets fall back to
/// their own asynchronous loops.
/// </summary>
/// <remarks>
/// Handlers may send on any socket and dispose any socket, their own included. A socket disposed from another thread
/// stops being delivered to at once (a handler already running finishes); the group thread closes it.
/// </remarks>
public sealed unsafe class UdpReceiveGroup : IDisposable
{
    /// <summary>Ready sockets taken per epoll_wait.</summary>
    private const int MaxEvents = 64;

    /// <summary>The epoll token of the wake-up eventfd; sockets get tokens from 1 on.</summary>
    private const ulong WakeToken = 0;

    private readonly Lock _gate = new();
    private readonly Dictionary<ulong, UdpDatagramSocket> _members = [];
    private readonly List<UdpDatagramSocket> _closing = [];
    private readonly int _epoll = -1;
    private readonly int _wake = -1;
    private readonly Thread? _thread;
    private ulong _nextToken;
    private bool _stopped;
    private int _disposed;

    /// <summary>Starts the group's receive thread, named <paramref name="name"/> (for debuggers and thread dumps).</summary>
    public UdpReceiveGroup(string name = "udp group")
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!LinuxUdp.IsSupported) return;
        _epoll = LinuxUdp.EpollCreate();
        _wake = LinuxUdp.EventFd();
        if (_epoll < 0 || _wake < 0 || LinuxUdp.EpollCtl(_epoll, LinuxUdp.EpollCtlAdd, _wake, WakeToken) != 0)
        {
            CloseDescriptors();
            return;
        }

        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Whether sockets of this group share its thread (false: each runs its own asynchronous loop).</summary>
    public bool IsSupported => _thread is not null;

    /// <summary>Sockets currently served by the thread.</summary>
    public int Count
    {
        get
        {
            lock (_gate) return _members.Count;
        }
    }

    internal bool IsGroupThread => _thread == Thread.CurrentThread;

    /// <summary>Registers a started socket; false when it must receive on its own (unsupported, stopped, failed).</summary>
    internal bool TryAdd(UdpDatagramSocket socket, int fd)
    {
        if (_thread is null) return false;
        lock (_gate)
        {
            // Under the lock: the epoll descriptor stays open until the thread has stopped.
            if (_stopped) return false;
            var token = ++_nextToken;
            socket.GroupToken = token;
            _members[token] = socket;
            if (LinuxUdp.EpollCtl(_epoll, LinuxUdp.EpollCtlAdd, fd, token) == 0) return true;
            _members.Remove(token);
            return false;
        }
    }

    /// <summary>
    /// Stops delivering to a disposed socket and has the group thread close it (at once when called on that thread
    /// outside a handler of the socket, else after the current handler returns). Never waits for the thread: a
    /// disposing thread may hold a lock a handler on the group thread is waiting for.
    /// </summary>
    internal void Remove(UdpDatagramSocket socket)
    {
        lock (_gate)
        {
            if (!_stopped && _members.Remove(socket.GroupToken))
            {
                _closing.Add(socket);
                if (!IsGroupThread) LinuxUdp.Signal(_wake);
                return;
            }
        }

        // The group has stopped (and closed its members and descriptors) or never had it: close it here.
        socket.CloseFromGroup(-1);
    }

    private void Run()
    {
        var size = LinuxUdp.EpollEventSize;
        var offset = LinuxUdp.EpollDataOffset;
        var events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * size));
        using var batch = new UdpDatagramSocket.BatchedIo();
        UdpDatagramSocket.SetSendBatch(batch);
        try
        {
            while (Volatile.Read(ref _disposed) == 0)
            {
                var n = LinuxUdp.EpollWait(_epoll, events, MaxEvents, 1_000);
                for (var i = 0; i < n; i++)
                {
                    var token = *(ulong*)(events + (i * size) + offset);
                    if (token == WakeToken)
                    {
                        LinuxUdp.Drain(_wake);
                        continue;
                    }

                    UdpDatagramSocket? socket;
                    lock (_gate)
                    {
                        _members.TryGetValue(token, out socket);
                    }

                    // Level-triggered: one batch per socket and round, what is left is reported again (fair to all).
                    socket?.DrainFromGroup(batch);
                }

                // What the handlers sent leaves now (and each time the queue fills): one sendmmsg per socket.
                batch.Flush();
                CloseRemoved();
            }
        }
        finally
        {
            batch.Flush();
            UdpDatagramSocket.SetSendBatch(null);
            List<UdpDatagramSocket> rest;
            lock (_gate)
            {
                _stopped = true;
                rest = [.. _members.Values, .. _closing];
                _members.Clear();
                _closing.Clear();
            }

            foreach (var socket in rest) socket.CloseFromGroup(_epoll);
            NativeMemory.Free(events);
            CloseDescriptors();
        }
    }

    private void CloseRemoved()
    {
        UdpDatagramSocket[] closing;
        lock (_gate)
        {
            if (_closing.Count == 0) return;
            closing = [.. _closing];
            _closing.Clear();
        }

        foreach (var socket in closing) socket.CloseFromGroup(_epoll);
    }

    private void CloseDescriptors()
    {
        if (_wake >= 0) LinuxUdp.Close(_wake);
        if (_epoll >= 0) LinuxUdp.Close(_epoll);
    }

    /// <summary>Stops the thread and closes the sockets still registered (their owners should dispose them first).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0 || _thread is null) return;
        if (IsGroupThread) return; // the loop ends when the current handler returns
        lock (_gate)
        {
            // Once stopped, the thread has closed (or is closing) the eventfd.
            if (!_stopped) LinuxUdp.Signal(_wake);
        }

        _thread.Join(TimeSpan.FromSeconds(5));
    }
}
