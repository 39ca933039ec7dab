using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Peerway.Net;

public sealed partial class UdpDatagramSocket
{
    /// <summary>Largest reply queued for sendmmsg; a larger one is sent at once.</summary>
    internal const int MaxBatchedSendSize = 2_048;

    /// <summary>Linux udp(7): at most 64 segments (UDP_MAX_SEGMENTS) per GSO message.</summary>
    private const int MaxGsoSegments = 64;

    /// <summary>
    /// Datagrams an I/O thread's send queue holds before it flushes: more than <see cref="BatchSize"/>, so that one ACK
    /// opening a uTP window of 60 KB or more leaves as one full GSO message (41 segments of 1,452 bytes), not two.
    /// </summary>
    internal const int SendQueueSize = 128;

    /// <summary>Bytes per GSO message: below the 65,507-byte UDP payload limit of IPv4.</summary>
    private const int MaxGsoBytes = 60_000;

    private void ReceiveBatches(DatagramHandler handler, BatchedIo batch)
    {
        // Holding a reference keeps the descriptor number ours until the loop ends (Socket.Dispose waits for it and
        // wakes the poll by shutting the socket down).
        var handle = _socket.SafeHandle;
        var added = false;
        handle.DangerousAddRef(ref added);
        t_sendBatch = batch;
        try
        {
            var fd = (int)handle.DangerousGetHandle();
            while (!_stop.IsCancellationRequested)
            {
                var received = batch.Receive(fd);
                if (received <= 0)
                {
                    if (received < 0 && Marshal.GetLastPInvokeError() is LinuxUdp.EIntr) continue;

                    // Nothing waiting (EAGAIN), or an error to let pass: sleep until the socket is readable. The
                    // timeout only bounds how long a missed wake-up could delay Dispose.
                    LinuxUdp.Poll(fd, LinuxUdp.PollIn, 1_000);
                    continue;
                }

                for (var i = 0; i < received; i++) DeliverReceived(handler, batch, batch.EndPoints, i);

                EndBatch();

                // What the handlers sent, on this socket or any other, leaves now: one sendmmsg per socket.
                batch.Flush();
            }
        }
        finally
        {
            batch.Flush();
            t_sendBatch = null;
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>
    /// Until the scope is disposed (on this thread, with no await in between), what this thread sends on any
    /// <see cref="UdpDatagramSocket"/> is queued and then leaves as on an I/O thread: one sendmmsg per socket, runs of
    /// equal-size datagrams to one destination as one UDP GSO message. For an engine that sends a burst from an
    /// application's thread (uTP writing a 16 KiB block: a dozen packets, one system call). Does nothing on an I/O
    /// thread (which batches already), inside another scope, or where the batched calls are not supported.
    /// </summary>
    public UdpSendScope BatchSends()
    {
        if (t_sendBatch is not null || !LinuxUdp.IsSupported || Volatile.Read(ref _disposed) != 0) return default;
        var queue = Interlocked.Exchange(ref _spareSendQueue, null) ?? new BatchedIo(receive: false);
        t_sendBatch = queue;
        return new UdpSendScope(this, queue);
    }

    /// <inheritdoc/>
    public void FlushSends()
    {
        if (t_sendBatch is { Queued: > 0 } queue) queue.Flush();
    }

    /// <summary>Ends a <see cref="BatchSends"/> scope: its datagrams leave, and its queue is kept for the next one.</summary>
    internal void EndSendScope(BatchedIo queue)
    {
        t_sendBatch = null;
        queue.Flush();
        if (Interlocked.CompareExchange(ref _spareSendQueue, queue, null) is not null) queue.Dispose();
        else if (Volatile.Read(ref _disposed) != 0) Interlocked.Exchange(ref _spareSendQueue, null)?.Dispose();
    }

    /// <summary>Makes <paramref name="batch"/> the send queue of the calling I/O thread (null: none).</summary>
    internal static void SetSendBatch(BatchedIo? batch) => t_sendBatch = batch;

    /// <summary>On the group thread: one recvmmsg batch from this socket, each datagram to its handler inline.</summary>
    internal void DrainFromGroup(BatchedIo batch)
    {
        if (Volatile.Read(ref _disposed) != 0 || _groupHandler is not { } handler || _groupEndPoints is not { } endPoints) return;
        var received = batch.Receive(_groupFd);
        for (var i = 0; i < received; i++)
        {
            // A handler may have disposed this socket: deliver nothing more.
            if (Volatile.Read(ref _disposed) != 0) return;
            DeliverReceived(handler, batch, endPoints, i);
        }

        if (received > 0 && Volatile.Read(ref _disposed) == 0) EndBatch();
    }

    /// <summary>
    /// Hands the <paramref name="index"/>-th message of a recvmmsg batch to the handler: one datagram, or, when the
    /// kernel coalesced several (UDP_GRO), each of them in order, cut at the segment size it reported.
    /// </summary>
    private void DeliverReceived(DatagramHandler handler, BatchedIo batch, RawEndPointCache endPoints, int index)
    {
        if (!batch.TryGetReceived(index, out var datagram, out var address, out var segmentSize)) return;
        var remote = endPoints.Get(address);
        if (remote is null) return;
        if (segmentSize == 0 || datagram.Length <= segmentSize)
        {
            Deliver(handler, datagram, remote);
            return;
        }

        var count = UdpSegments.Count(datagram.Length, segmentSize);
        Interlocked.Add(ref _coalescedDatagrams, count);
        for (var k = 0; k < count; k++)
        {
            if (k > 0 && Volatile.Read(ref _disposed) != 0) return;
            Deliver(handler, UdpSegments.Segment(datagram, segmentSize, k), remote);
        }
    }

    /// <summary>
    /// Linux UDP_GRO (udp(7), since 5.0): lets the kernel hand this socket several datagrams of one flow as one buffer
    /// with their segment size (a GSO sender's message that crossed loopback or a veth whole, or datagrams that the
    /// receive path coalesced), which <see cref="DeliverReceived"/> cuts up again. Only for the batched receive paths,
    /// which read the control message; false when the kernel refuses it (older than 5.0, or not Linux), and
    /// datagrams then come one per receive as before.
    /// </summary>
    internal bool TryEnableGro() => GroEnabled = TrySetGro(_socket);

    /// <summary>setsockopt(SOL_UDP, UDP_GRO, 1); false (nothing thrown) where the kernel refuses it.</summary>
    internal static bool TrySetGro(Socket socket)
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            socket.SetRawSocketOption(UdpSegments.SolUdp, UdpSegments.UdpGro, [1, 0, 0, 0]);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>On the group thread (or once the group has stopped): leaves the epoll set and closes the socket.</summary>
    internal void CloseFromGroup(int epoll)
    {
        if (Interlocked.Exchange(ref _groupClosed, 1) != 0) return;
        if (epoll >= 0) LinuxUdp.EpollCtl(epoll, LinuxUdp.EpollCtlDel, _groupFd, 0);
        if (_groupRef) _socket.SafeHandle.DangerousRelease();
        _socket.Dispose();
    }

    /// <summary>
    /// Native buffers for one I/O thread (a dedicated receive thread or a group thread): <see cref="BatchSize"/>
    /// receive slots of <see cref="MaxDatagramSize"/> bytes (address space; the kernel only touches the pages it
    /// writes) and a send queue of as many slots. Only that thread touches the slots; <see cref="SendNow"/> is safe
    /// from any thread.
    /// </summary>
    /// <remarks>
    /// The send queue takes datagrams for any socket (the thread's own, or others': a TURN server's relay thread
    /// answers clients through the listener). Each queued datagram holds a reference on its socket's handle, so the
    /// descriptor stays open, and its number ours, until the flush, even when the socket is disposed meanwhile:
    /// what was sent before Dispose still leaves, as it would have with an immediate sendto. The flush sends each
    /// socket's datagrams in the order they were queued, one sendmmsg(2) per socket.
    /// </remarks>
    internal sealed unsafe class BatchedIo : IDisposable
    {
        private readonly LinuxUdp.MMsgHdr* _recv;
        private readonly LinuxUdp.IoVec* _recvIov;
        private readonly byte* _recvNames;
        private readonly byte* _recvData;
        private readonly LinuxUdp.MMsgHdr* _send;
        private readonly LinuxUdp.MMsgHdr* _sendRun;
        private readonly LinuxUdp.IoVec* _sendIov;
        private readonly byte* _sendNames;
        private readonly byte* _sendData;
        private readonly byte* _recvControl;
        private readonly UdpDatagramSocket?[] _sendOwners = new UdpDatagramSocket?[SendQueueSize];
        private readonly LinuxUdp.MMsgHdr* _gso;
        private readonly LinuxUdp.IoVec* _gsoIov;
        private readonly byte* _gsoControl;
        private readonly int[] _gsoFirst = new int[SendQueueSize];
        private readonly int[] _gsoCounts = new int[SendQueueSize];
        private int _lastReceived = BatchSize;
        private int _queued;
        private bool _mixedOwners;
        private bool _freed;

        /// <param name="receive">False for a send queue alone (see <see cref="BatchSends"/>): no receive slots.</param>
        public BatchedIo(bool receive = true)
        {
            var slots = receive ? BatchSize : 0;
            _recv = (LinuxUdp.MMsgHdr*)NativeMemory.AllocZeroed((nuint)(slots * sizeof(LinuxUdp.MMsgHdr)));
            _recvIov = (LinuxUdp.IoVec*)NativeMemory.AllocZeroed((nuint)(slots * sizeof(LinuxUdp.IoVec)));
            _recvNames = (byte*)NativeMemory.AllocZeroed((nuint)(slots * LinuxUdp.AddressSize));
            _recvData = (byte*)NativeMemory.Alloc((nuint)slots * MaxDatagramSize);
            _recvControl = (byte*)NativeMemory.AllocZeroed((nuint)(slots * UdpSegments.ReceiveControlSize));
            _send = (LinuxUdp.MMsgHdr*)NativeMemory.AllocZeroed((nuint)(SendQueueSize * sizeof(LinuxUdp.MMsgHdr)));
            _sendRun = (LinuxUdp.MMsgHdr*)NativeMemory.AllocZeroed((nuint)(SendQueueSize * sizeof(LinuxUdp.MMsgHdr)));
            _sendIov = (LinuxUdp.IoVec*)NativeMemory.AllocZeroed((nuint)(SendQueueSize * sizeof(LinuxUdp.IoVec)));
            _sendNames = (byte*)NativeMemory.AllocZeroed((nuint)(SendQueueSize * LinuxUdp.AddressSize));
            _sendData = (byte*)NativeMemory.Alloc((nuint)SendQueueSize * MaxBatchedSendSize);
            _gso = (LinuxUdp.MMsgHdr*)NativeMemory.AllocZeroed((nuint)(SendQueueSize * sizeof(LinuxUdp.MMsgHdr)));
            _gsoIov = (LinuxUdp.IoVec*)NativeMemory.AllocZeroed((nuint)(SendQueueSize * sizeof(LinuxUdp.IoVec)));
            _gsoControl = (byte*)NativeMemory.AllocZeroed((nuint)(SendQueueSize * UdpSegments.GsoControlSize));
            for (var i = 0; i < slots; i++)
            {
                _recvIov[i] = new LinuxUdp.IoVec { Base = _recvData + ((nint)i * MaxDatagramSize), Length = MaxDatagramSize };
                _recv[i].Header.Name = _recvNames + (i * LinuxUdp.AddressSize);
                _recv[i].Header.Iov = &_recvIov[i];
                _recv[i].Header.IovLength = 1;
                _recv[i].Header.Control = _recvControl + (i * UdpSegments.ReceiveControlSize);
            }

            for (var i = 0; i < SendQueueSize; i++)
            {
                _sendIov[i].Base = _sendData + (i * MaxBatchedSendSize);
                _send[i].Header.Name = _sendNames + (i * LinuxUdp.AddressSize);
                _send[i].Header.Iov = &_sendIov[i];
                _send[i].Header.IovLength = 1;
            }
        }

        /// <summary>Remote endpoints by raw address, for the receive thread only (no lock).</summary>
        public RawEndPointCache EndPoints { get; } = new();

        /// <summary>Datagrams waiting for <see cref="Flush"/>.</summary>
        public int Queued => _queued;

        /// <summary>recvmmsg without blocking: the number of datagrams received, or -1 (errno says why).</summary>
        public int Receive(int fd)
        {
            for (var i = 0; i < _lastReceived; i++)
            {
                _recv[i].Header.NameLength = LinuxUdp.AddressSize;
                _recv[i].Header.ControlLength = UdpSegments.ReceiveControlSize;
                _recv[i].Header.Flags = 0;
            }

            var n = LinuxUdp.RecvMMsg(fd, _recv, BatchSize, LinuxUdp.MsgDontWait, null);
            _lastReceived = n > 0 ? n : 0;
            return n;
        }

        /// <summary>The <paramref name="index"/>-th message received; <paramref name="segmentSize"/> is the UDP_GRO
        /// segment size when the kernel coalesced several datagrams into it, else 0.</summary>
        public bool TryGetReceived(int index, out ReadOnlySpan<byte> datagram, out ReadOnlySpan<byte> address, out int segmentSize)
        {
            ref var m = ref _recv[index];
            address = new ReadOnlySpan<byte>(m.Header.Name, (int)Math.Min(m.Header.NameLength, LinuxUdp.AddressSize));
            datagram = new ReadOnlySpan<byte>(m.Header.Iov->Base, (int)m.Length);
            segmentSize = 0;
            if (m.Header.ControlLength > 0 &&
                UdpSegments.TryReadGroSize(new ReadOnlySpan<byte>(m.Header.Control, (int)Math.Min(m.Header.ControlLength, UdpSegments.ReceiveControlSize)), out var size) == UdpControlError.None)
            {
                segmentSize = size;
            }

            // Larger than MaxDatagramSize cannot happen for UDP; a truncated datagram is dropped, as on the other paths.
            return (m.Header.Flags & LinuxUdp.MsgTrunc) == 0;
        }

        /// <summary>
        /// Queues a datagram for <paramref name="owner"/> (flushing first when the queue is full); false when it must
        /// be sent at once instead: too large for a slot, or the socket's handle is already closed.
        /// </summary>
        public bool TryQueue(UdpDatagramSocket owner, ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
            if (datagram.Length > MaxBatchedSendSize) return false;
            if (_queued == SendQueueSize) Flush();
            var added = false;
            try
            {
                owner.Handle.DangerousAddRef(ref added);
            }
            catch (ObjectDisposedException)
            {
                return false;
            }

            if (!added) return false;
            ref var m = ref _send[_queued];
            m.Header.NameLength = LinuxUdp.WriteAddress(remote, new Span<byte>(m.Header.Name, LinuxUdp.AddressSize));
            datagram.CopyTo(new Span<byte>(m.Header.Iov->Base, MaxBatchedSendSize));
            m.Header.Iov->Length = (nuint)datagram.Length;
            if (_queued > 0 && !ReferenceEquals(_sendOwners[_queued - 1], owner)) _mixedOwners = true;
            _sendOwners[_queued] = owner;
            _queued++;
            return true;
        }

        /// <summary>Sends the queued datagrams: one sendmmsg per socket, each socket's in queue order. Failures are
        /// counted on their socket.</summary>
        public void Flush()
        {
            if (_queued == 0) return;
            if (!_mixedOwners)
            {
                // The common case: all for one socket (a server's replies), sent straight from the queue.
                SendRun(_sendOwners[0]!, _send, _queued);
                Array.Clear(_sendOwners, 0, _queued);
            }
            else
            {
                for (var first = 0; first < _queued; first++)
                {
                    if (_sendOwners[first] is not { } owner) continue;
                    var count = 0;
                    for (var j = first; j < _queued; j++)
                    {
                        if (!ReferenceEquals(_sendOwners[j], owner)) continue;
                        _sendRun[count++] = _send[j];
                        _sendOwners[j] = null;
                    }

                    SendRun(owner, _sendRun, count);
                }
            }

            _queued = 0;
            _mixedOwners = false;
        }

        /// <summary>
        /// Sends <paramref name="count"/> messages for one socket, then drops their handle references. Consecutive
        /// datagrams to one destination go out as one UDP GSO message where the kernel allows (see
        /// <see cref="MergeForGso"/>); should that fail, they are sent one by one and the socket stops trying.
        /// </summary>
        private void SendRun(UdpDatagramSocket owner, LinuxUdp.MMsgHdr* messages, int count)
        {
            var handle = owner.Handle;
            var fd = (int)handle.DangerousGetHandle();
            var failed = 0;
            var merged = owner.GsoEnabled && count > 1 ? MergeForGso(messages, count) : count;
            if (merged == count)
            {
                failed = SendEach(fd, messages, count);
            }
            else
            {
                var retries = 0;
                for (var sent = 0; sent < merged;)
                {
                    var n = SendSome(fd, _gso + sent, merged - sent, ref retries);
                    if (n > 0)
                    {
                        sent += n;
                        continue;
                    }

                    // This message failed: one by one instead. If that works, GSO was the trouble (an old kernel, a
                    // path MTU below the segment size, no checksums): the socket sends without it from now on.
                    var segments = _gsoCounts[sent];
                    var lost = SendEach(fd, messages + _gsoFirst[sent], segments);
                    if (segments > 1 && lost < segments) owner.GsoEnabled = false;
                    failed += lost;
                    sent++;
                }
            }

            // One reference per queued datagram; the last release closes a socket disposed meanwhile.
            for (var i = 0; i < count; i++) handle.DangerousRelease();
            if (failed > 0) owner.CountSendErrors(failed);
            owner.CountBatchedSends(count - failed);
        }

        /// <summary>
        /// Builds the GSO message list for one socket's run: each stretch of consecutive datagrams to the same address
        /// whose sizes are all equal (the last may be smaller) becomes one message of several iovecs with a
        /// UDP_SEGMENT control message (Linux udp(7), since 4.18): the kernel passes it down the stack once and cuts
        /// it into the same datagrams on the wire (or at the receiving socket, on loopback). Returns the number of
        /// messages; equal to <paramref name="count"/> when nothing could be merged.
        /// </summary>
        private int MergeForGso(LinuxUdp.MMsgHdr* messages, int count)
        {
            var g = 0;
            var iov = 0;
            for (var i = 0; i < count;)
            {
                ref var first = ref messages[i];
                var size = first.Header.Iov->Length;
                var total = size;
                var j = i + 1;
                while (size > 0 && j < count && j - i < MaxGsoSegments &&
                       messages[j - 1].Header.Iov->Length == size && messages[j].Header.Iov->Length <= size &&
                       total + messages[j].Header.Iov->Length <= MaxGsoBytes && SameAddress(ref first, ref messages[j]))
                {
                    total += messages[j].Header.Iov->Length;
                    j++;
                }

                ref var m = ref _gso[g];
                m.Header.Name = first.Header.Name;
                m.Header.NameLength = first.Header.NameLength;
                m.Header.Flags = 0;
                if (j - i > 1)
                {
                    for (var k = i; k < j; k++) _gsoIov[iov + k - i] = *messages[k].Header.Iov;
                    m.Header.Iov = _gsoIov + iov;
                    m.Header.IovLength = (nuint)(j - i);
                    iov += j - i;
                    var control = _gsoControl + (g * UdpSegments.GsoControlSize);
                    m.Header.Control = control;
                    m.Header.ControlLength = (nuint)UdpSegments.WriteGsoSize(new Span<byte>(control, UdpSegments.GsoControlSize), (ushort)size);
                }
                else
                {
                    m.Header.Iov = first.Header.Iov;
                    m.Header.IovLength = 1;
                    m.Header.Control = null;
                    m.Header.ControlLength = 0;
                }

                _gsoFirst[g] = i;
                _gsoCounts[g] = j - i;
                g++;
                i = j;
            }

            return g;
        }

        private static bool SameAddress(ref LinuxUdp.MMsgHdr a, ref LinuxUdp.MMsgHdr b) =>
            a.Header.NameLength == b.Header.NameLength &&
            new ReadOnlySpan<byte>(a.Header.Name, (int)a.Header.NameLength).SequenceEqual(new ReadOnlySpan<byte>(b.Header.Name, (int)b.Header.NameLength));

        /// <summary>sendmmsg of each message as it is; returns how many could not be sent.</summary>
        private static int SendEach(int fd, LinuxUdp.MMsgHdr* messages, int count)
        {
            var failed = 0;
            var retries = 0;
            for (var sent = 0; sent < count;)
            {
                var n = SendSome(fd, messages + sent, count - sent, ref retries);
                if (n > 0)
                {
                    sent += n;
                    continue;
                }

                // sendmmsg fails only on its first datagram (e.g. no route to it): drop that one, go on.
                failed++;
                sent++;
            }

            return failed;
        }

        /// <summary>
        /// One sendmmsg of up to <paramref name="count"/> messages, retried on EINTR and, at most 3 times per run
        /// (<paramref name="retries"/>), on a full send buffer; returns how many went out, 0 when the first one failed.
        /// </summary>
        private static int SendSome(int fd, LinuxUdp.MMsgHdr* messages, int count, ref int retries)
        {
            while (true)
            {
                var n = LinuxUdp.SendMMsg(fd, messages, (uint)count, LinuxUdp.MsgDontWait);
                if (n > 0) return n;
                var errno = Marshal.GetLastPInvokeError();
                if (errno == LinuxUdp.EIntr) continue;
                if (errno == LinuxUdp.EAgain && retries++ < 3)
                {
                    // The send buffer is full: wait briefly for room, as a blocking send would.
                    LinuxUdp.Poll(fd, LinuxUdp.PollOut, 10);
                    continue;
                }

                return 0;
            }
        }

        /// <summary>sendto with an address built on the stack; false when the OS refused it.</summary>
        public static bool SendNow(SafeSocketHandle handle, ReadOnlySpan<byte> datagram, IPEndPoint remote)
        {
            Span<byte> address = stackalloc byte[LinuxUdp.AddressSize];
            var length = LinuxUdp.WriteAddress(remote, address);
            try
            {
                fixed (byte* data = datagram)
                fixed (byte* name = address)
                {
                    return LinuxUdp.SendTo(handle, data, (nuint)datagram.Length, 0, name, length) >= 0;
                }
            }
            catch (ObjectDisposedException)
            {
                return false;
            }
        }

        public void Dispose()
        {
            if (_freed) return;
            _freed = true;
            for (var i = 0; i < _queued; i++) _sendOwners[i]?.Handle.DangerousRelease();
            _queued = 0;
            NativeMemory.Free(_recv);
            NativeMemory.Free(_recvIov);
            NativeMemory.Free(_recvNames);
            NativeMemory.Free(_recvData);
            NativeMemory.Free(_recvControl);
            NativeMemory.Free(_send);
            NativeMemory.Free(_sendRun);
            NativeMemory.Free(_sendIov);
            NativeMemory.Free(_sendNames);
            NativeMemory.Free(_sendData);
            NativeMemory.Free(_gso);
            NativeMemory.Free(_gsoIov);
            NativeMemory.Free(_gsoControl);
        }
    }

    /// <summary>
    /// Remote endpoints keyed by the raw sockaddr bytes (no allocation for a known remote), bounded like
    /// <see cref="EndPointCache"/>. Used by one thread only.
    /// </summary>
    internal sealed class RawEndPointCache
    {
        private readonly Dictionary<RawAddress, IPEndPoint> _byAddress = [];

        public IPEndPoint? Get(ReadOnlySpan<byte> address)
        {
            Span<byte> padded = stackalloc byte[LinuxUdp.AddressSize];
            padded.Clear();
            address.CopyTo(padded);
            var key = MemoryMarshal.Read<RawAddress>(padded);
            if (_byAddress.TryGetValue(key, out var known)) return known;
            var endPoint = LinuxUdp.ReadAddress(padded);
            if (endPoint is null) return null;
            if (_byAddress.Count >= MaxCachedEndPoints) _byAddress.Clear();
            _byAddress[key] = endPoint;
            return endPoint;
        }

        private readonly record struct RawAddress(ulong A, ulong B, ulong C, ulong D);
    }
}
