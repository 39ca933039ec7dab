using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Peerway.Core;
using Peerway.Net;
using Peerway.Torrent.Encryption;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Wire;

namespace Peerway.Torrent.Swarm;

/// <summary>
/// One connection to a peer, over any <see cref="IStreamConnection"/>: System.IO.Pipelines for both directions, the
/// handshake, framing, and per-peer protocol state. Message handling happens in <see cref="TorrentSession"/> under its
/// lock; writes are serialised by a per-connection lock into an unbounded <see cref="Pipe"/> that a pump copies to the
/// stream (so writers never block on the network).
/// </summary>
internal sealed class PeerConnection : IChokeCandidate, IAsyncDisposable
{
    private readonly IStreamConnection _connection;
    private readonly Stream _stream;

    /// <summary>
    /// A TCP transport's socket behind the stream (it hands a <see cref="NetworkStream"/>), for gather writes: a batch
    /// of blocks costs one sendmsg instead of one write per buffer. Used only to send; the transport owns it.
    /// </summary>
    private readonly Socket? _gatherSocket;
    private readonly PipeReader _reader;
    /// <summary>Most buffers handed to one gather write (well under Linux's IOV_MAX of 1024).</summary>
    private const int MaxSegmentsPerSend = 256;

    /// <summary>Most bytes the pump encrypts and hands to one send; also how often <see cref="SendBlocks"/> wakes the pump.</summary>
    internal const int MaxBatchBytes = 256 * 1024;

    // 64 KiB segments hold several 16 KiB blocks each, so a batch of blocks goes out in a few iovecs.
    private readonly Pipe _outgoing;
    private readonly Lock _writeGate = new();

    /// <summary>Where the blocks of one run go in the pipe's buffer (<see cref="SendBlocks"/>, under <c>_writeGate</c>).</summary>
    private readonly List<Memory<byte>> _blockSlices = [];
    private readonly CancellationTokenSource _cts = new();
    private readonly TimeProvider _time;

    /// <summary>MSE RC4 mode: encrypts the outgoing pipe's bytes in place just before they go to the socket (pump only).</summary>
    private readonly Rc4? _encryptor;
    private Task? _pump;
    private int _closed;

    /// <summary>
    /// The outgoing pipe's segment on the in-memory network: the pool keeps only a few buffers of each size, and a tick
    /// writes to every connection before their pumps run, so 64 KiB segments (a few blocks per iovec, for sockets) would
    /// be fresh 64 KiB arrays there for a keep-alive or a request.
    /// </summary>
    private const int VirtualSegmentSize = 4 * 1024;

    /// <summary>Large reads for real sockets: a batch of blocks per system call.</summary>
    private static readonly StreamPipeReaderOptions SocketReaderOptions = new(bufferSize: 256 * 1024, minimumReadSize: 64 * 1024);

    /// <summary>
    /// The in-memory network (tests, simulator) delivers 16 KiB segments and costs no system call per read: a read waits
    /// with a zero-byte read first and reads into 32 KiB buffers, so an idle connection holds no buffer and a busy one
    /// a small, pooled one (not a 256 KiB large-object array). A 1,000-client simulated swarm has ~30,000 connections.
    /// </summary>
    private static readonly StreamPipeReaderOptions VirtualReaderOptions = new(bufferSize: 32 * 1024, minimumReadSize: 4 * 1024, useZeroByteReads: true);

    /// <param name="connection">The stream to the peer (owned: disposed with this).</param>
    /// <param name="outgoing">True when we dialled the peer.</param>
    /// <param name="time">The clock for timeouts and rates.</param>
    /// <param name="encryption">What the MSE negotiation left: bytes read past it, the ciphers in force; null for a plain connection.</param>
    /// <param name="pump">Where the send pump resumes when bytes are written (null: the thread pool).</param>
    public PeerConnection(IStreamConnection connection, bool outgoing, TimeProvider time, MseResult? encryption = null, PipeScheduler? pump = null)
    {
        _outgoing = new(new PipeOptions(readerScheduler: pump ?? PipeScheduler.ThreadPool, pauseWriterThreshold: 0, resumeWriterThreshold: 0,
            minimumSegmentSize: connection.Kind == StreamTransportKind.Virtual ? VirtualSegmentSize : 64 * 1024, useSynchronizationContext: false));
        _connection = connection;
        _stream = connection.Stream;
        _gatherSocket = (_stream as NetworkStream)?.Socket;
        _reader = PipeReader.Create(encryption?.WrapInput(_stream) ?? _stream, connection.Kind == StreamTransportKind.Virtual ? VirtualReaderOptions : SocketReaderOptions);
        _encryptor = encryption?.Encryptor;
        Encryption = encryption?.Method ?? CryptoMethods.None;
        _time = time;
        Remote = connection.RemoteEndPoint;
        Outgoing = outgoing;
        DownloadMeter = new RateMeter(time, TimeSpan.FromSeconds(10));
        UploadMeter = new RateMeter(time, TimeSpan.FromSeconds(10));
        LastBlockReceived = time.GetUtcNow();
        LastSent = time.GetUtcNow();
        LastReceived = time.GetUtcNow();
        Opened = LastReceived;
        LastInterest = LastReceived;
        LastTransfer = LastReceived;
    }

    public IPEndPoint Remote { get; }

    /// <summary>What carries the connection (a WebRTC peer has no address another client could dial).</summary>
    public StreamTransportKind Kind => _connection.Kind;

    /// <summary>The peer's listening endpoint (outgoing: what we dialled; incoming: remote IP + BEP 10 "p").</summary>
    public IPEndPoint? ListenEndPoint { get; set; }

    public bool Outgoing { get; }

    /// <summary>What carries the connection (uTP, TCP, ...).</summary>
    public StreamTransportKind Transport => _connection.Kind;

    /// <summary>None for a plain BitTorrent connection; otherwise the MSE method in force.</summary>
    public CryptoMethods Encryption { get; }

    public CancellationToken Closing => _cts.Token;

    public NodeId PeerId { get; set; }

    public PeerHandshake Handshake { get; set; }

    public bool Fast => Handshake.SupportsFast && (TorrentSession.OurReserved & PeerHandshake.FastBit) != 0;

    public ExtendedHandshake? Extended { get; set; }

    // Protocol state (guarded by the session lock).
    public bool AmChoking { get; set; } = true;
    public bool AmInterested { get; set; }
    public bool PeerChoking { get; set; } = true;
    public bool PeerInterested { get; set; }
    public Bitfield? PeerHas { get; set; }
    public byte[]? EarlyBitfield { get; set; }
    public bool EarlyHaveAll { get; set; }
    public List<int> EarlyHaves { get; } = [];
    public HashSet<BlockRequest> Outstanding { get; } = [];
    public HashSet<int> AllowedFastFromPeer { get; } = [];
    public HashSet<int> AllowedFastToPeer { get; } = [];
    public IncomingRequestQueue IncomingRequests { get; } = new();
    public int QueueDepth { get; set; } = 16;
    public int HashFailures { get; set; }
    public RateMeter DownloadMeter { get; }
    public RateMeter UploadMeter { get; }
    public long BytesReceived { get; set; }
    public long BytesSent { get; set; }

    /// <summary>Of <see cref="BytesReceived"/>, what the download cap has accounted for.</summary>
    public long BytesThrottled { get; set; }
    public DateTimeOffset LastBlockReceived { get; set; }
    public DateTimeOffset LastSent { get; set; }
    public DateTimeOffset LastReceived { get; set; }
    public HashSet<IPEndPoint> PexSent { get; } = [];

    /// <summary>When the TCP connection was established (the session's clock).</summary>
    public DateTimeOffset Opened { get; }

    /// <summary>Last tick at which either side was interested (or when the connection opened): see TorrentSession.Admission.</summary>
    public DateTimeOffset LastInterest { get; set; }

    /// <summary>Last tick at which payload moved either way (or when the connection opened).</summary>
    public DateTimeOffset LastTransfer { get; set; }

    /// <summary>Dropped to make room or for inactivity: not dialled back when it leaves.</summary>
    public bool Evicted { get; set; }
    public bool MetadataRequested { get; set; }

    /// <summary>Pieces this peer rejected while unchoking us (it wants them fetched elsewhere); cleared every second.</summary>
    public HashSet<int> RejectedPieces { get; } = [];

    /// <summary>Blocks arrived in the current read batch: refill the request queue once the batch is handled.</summary>
    public bool RefillPending { get; set; }

    public double DownloadRate => DownloadMeter.Rate;
    public double UploadRate => UploadMeter.Rate;
    public bool AmWaiting => AmInterested && Outstanding.Count > 0;

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    public void StartPump() => _pump = PumpAsync();

    /// <summary>
    /// Copies the outgoing pipe to the stream in batches of at most <see cref="MaxBatchBytes"/>: on a TCP socket a batch
    /// goes out in one gather write (sendmsg with many iovecs), so a batch of blocks costs one system call instead of one
    /// per 16 KiB block; on other transports each buffer is written in turn. In RC4 mode each batch is encrypted in place
    /// just before its send (<see cref="OutgoingBatch"/>), so encryption here overlaps the peer's decryption of the
    /// previous batch instead of running over everything queued before the first byte leaves.
    /// </summary>
    private async Task PumpAsync()
    {
        var reader = _outgoing.Reader;
        // Full size for a gather socket; elsewhere (one write per buffer) the lists grow only as far as batches need.
        var batch = new List<ReadOnlyMemory<byte>>(_gatherSocket is null ? 4 : MaxSegmentsPerSend);
        var segments = new List<ArraySegment<byte>>(_gatherSocket is null ? 0 : MaxSegmentsPerSend);
        // RC4 mode: how many bytes at the head of the pipe are already encrypted (the unsent rest of the last batch).
        var encrypted = 0;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(_cts.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                var length = OutgoingBatch.Collect(buffer, MaxBatchBytes, MaxSegmentsPerSend, batch);
                if (length == 0)
                {
                    reader.AdvanceTo(buffer.End);
                    if (result.IsCompleted) return;
                    continue;
                }

                if (_encryptor is not null && length > encrypted)
                {
                    OutgoingBatch.Encrypt(batch, encrypted, _encryptor);
                    encrypted = length;
                }

                var sent = await SendAsync(batch, segments).ConfigureAwait(false);
                if (sent <= 0) throw new IOException("the peer closed the connection");
                encrypted = Math.Max(0, encrypted - sent);
                // What was not sent stays in the pipe; the next read returns it (with anything written since) at once.
                reader.AdvanceTo(buffer.GetPosition(sent));
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            Close();
        }
        finally
        {
            // The pipe gives its buffers back to the pool once both ends are complete (Close completes the writer);
            // without this each closed connection left its 64 KiB segment to the GC.
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    private async ValueTask<int> SendAsync(List<ReadOnlyMemory<byte>> batch, List<ArraySegment<byte>> segments)
    {
        if (_gatherSocket is { } socket)
        {
            if (batch.Count == 1) return await socket.SendAsync(batch[0], SocketFlags.None, _cts.Token).ConfigureAwait(false);
            OutgoingBatch.ToSegments(batch, segments);
            return await socket.SendAsync(segments, SocketFlags.None).WaitAsync(_cts.Token).ConfigureAwait(false);
        }

        var sent = 0;
        foreach (var memory in batch)
        {
            await _stream.WriteAsync(memory, _cts.Token).ConfigureAwait(false);
            sent += memory.Length;
        }

        return sent;
    }

    /// <summary>Writes a message (or several) and schedules the flush. Safe from any thread.</summary>
    public void Send(Action<IBufferWriter<byte>> write)
    {
        if (IsClosed) return;
        lock (_writeGate)
        {
            if (IsClosed) return;
            write(_outgoing.Writer);
            WakePump();
        }

        LastSent = _time.GetUtcNow();
    }

    /// <summary>
    /// Writes PIECE messages for <paramref name="requests"/>, each block read from storage straight into the pipe's
    /// buffer (no intermediate copy), a run of consecutive blocks with one scattered read. The write lock is taken, and the pump woken, once per <see cref="MaxBatchBytes"/>
    /// rather than once per block. Returns how many blocks were written (fewer when the connection closed meanwhile).
    /// </summary>
    public int SendBlocks(ITorrentStorage storage, IReadOnlyList<BlockRequest> requests)
    {
        var written = 0;
        while (written < requests.Count && !IsClosed)
        {
            lock (_writeGate)
            {
                if (IsClosed) break;
                var bytes = 0;
                while (written < requests.Count && bytes < MaxBatchBytes)
                {
                    // A run of requests for consecutive bytes of one piece: its PIECE messages are laid out in one buffer
                    // and the blocks read behind their headers with one scattered read (one preadv, not one pread each).
                    var run = ConsecutiveRun(requests, written, MaxBatchBytes - bytes);
                    var memory = _outgoing.Writer.GetMemory(run.Bytes);
                    _blockSlices.Clear();
                    var at = 0;
                    for (var k = written; k < written + run.Count; k++)
                    {
                        var request = requests[k];
                        PeerWire.WritePieceHeader(memory.Span[at..], request.Piece, request.Begin, request.Length);
                        _blockSlices.Add(memory.Slice(at + PeerWire.PieceHeaderLength, request.Length));
                        at += PeerWire.PieceHeaderLength + request.Length;
                    }

                    storage.Read(requests[written].Piece, requests[written].Begin, _blockSlices);
                    _outgoing.Writer.Advance(run.Bytes);
                    bytes += run.Bytes;
                    written += run.Count;
                }

                WakePump();
            }
        }

        if (written > 0) LastSent = _time.GetUtcNow();
        return written;
    }

    /// <summary>
    /// How many requests from <paramref name="start"/> ask for consecutive bytes of one piece (at least one), and the
    /// bytes of their PIECE messages: at most <see cref="MaxSegmentsPerSend"/> blocks, and past the first block no more
    /// than <paramref name="budget"/> bytes.
    /// </summary>
    internal static (int Count, int Bytes) ConsecutiveRun(IReadOnlyList<BlockRequest> requests, int start, int budget)
    {
        var first = requests[start];
        var count = 1;
        var bytes = PeerWire.PieceHeaderLength + first.Length;
        var next = first.Begin + first.Length;
        while (start + count < requests.Count && count < MaxSegmentsPerSend)
        {
            var r = requests[start + count];
            if (r.Piece != first.Piece || r.Begin != next || bytes + PeerWire.PieceHeaderLength + r.Length > budget) break;
            bytes += PeerWire.PieceHeaderLength + r.Length;
            next += r.Length;
            count++;
        }

        return (count, bytes);
    }

    /// <summary>Publishes what was written to the pipe to the pump (under <c>_writeGate</c>).</summary>
    private void WakePump()
    {
        // Never waits: the pipe has no pause threshold, so the flush completes at once (it only wakes the reader). A
        // flush that did not complete would mean a pause threshold had been set: fail loudly rather than drop it.
        if (!CompletedAtOnce(_outgoing.Writer.FlushAsync(CancellationToken.None))) throw new InvalidOperationException("the outgoing pipe paused its writer");

        static bool CompletedAtOnce(ValueTask<FlushResult> flush) => flush.IsCompletedSuccessfully;
    }

    /// <summary>Reads exactly the 68-byte handshake (BEP 3 sends it before any framed message).</summary>
    public async Task<PeerHandshake?> ReadHandshakeAsync(CancellationToken ct)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(ct).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (buffer.Length >= PeerWire.HandshakeLength)
            {
                var bytes = new byte[PeerWire.HandshakeLength];
                buffer.Slice(0, PeerWire.HandshakeLength).CopyTo(bytes);
                _reader.AdvanceTo(buffer.GetPosition(PeerWire.HandshakeLength));
                return PeerWire.TryReadHandshake(bytes, out var hs, out _) ? hs : null;
            }

            // BEP 3: the first byte is 19; anything else cannot become a valid handshake.
            if (buffer.Length > 0 && buffer.FirstSpan[0] != 19) return null;
            _reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted) return null;
        }
    }

    /// <summary>Reads frames and hands each to <paramref name="handle"/>; returns the error that ended the connection.</summary>
    public async Task<PeerWireError> ReadLoopAsync(Func<PeerConnection, ReadOnlySpan<byte>, PeerWireError> handle, Func<PeerConnection, ValueTask> afterBatch, CancellationToken ct)
    {
        byte[]? scratch = null;
        try
        {
            while (!IsClosed)
            {
                var result = await _reader.ReadAsync(ct).ConfigureAwait(false);
                var buffer = result.Buffer;
                while (true)
                {
                    var n = PeerWire.FrameLength(buffer, out var error);
                    if (n < 0) return error;
                    if (n == 0) break;
                    var frame = buffer.Slice(0, n);
                    ReadOnlySpan<byte> span;
                    if (frame.IsSingleSegment)
                    {
                        span = frame.FirstSpan;
                    }
                    else
                    {
                        if (scratch is null || scratch.Length < n)
                        {
                            if (scratch is not null) ArrayPool<byte>.Shared.Return(scratch);
                            scratch = ArrayPool<byte>.Shared.Rent((int)n);
                        }

                        frame.CopyTo(scratch);
                        span = scratch.AsSpan(0, (int)n);
                    }

                    LastReceived = _time.GetUtcNow();
                    error = handle(this, span);
                    if (error != PeerWireError.None) return error;
                    buffer = buffer.Slice(n);
                }

                _reader.AdvanceTo(buffer.Start, buffer.End);
                await afterBatch(this).ConfigureAwait(false);
                if (result.IsCompleted) return PeerWireError.None;
            }

            return PeerWireError.None;
        }
        finally
        {
            if (scratch is not null) ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        _cts.Cancel();
        lock (_writeGate) _outgoing.Writer.Complete();
        // Closing the stream ends the connection in an orderly way (the transport's close); pending reads and writes end.
        _stream.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        Close();
        if (_pump is not null) await _pump.ConfigureAwait(false);
        await _reader.CompleteAsync().ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
        _cts.Dispose();
    }

    public override string ToString() => $"{Remote} {(Outgoing ? "out" : "in")}";
}
