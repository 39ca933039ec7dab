using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Net;

namespace Peerway.Nat.Stun;

/// <summary>Retransmission parameters (RFC 8489 §6.2.1).</summary>
public sealed record StunClientOptions
{
    /// <summary>Initial retransmission timeout; RFC 8489 recommends 500 ms.</summary>
    public TimeSpan Rto { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Number of requests sent in total (Rc, default 7).</summary>
    public int Rc { get; init; } = 7;

    /// <summary>After the last request, wait Rm × RTO before failing (Rm, default 16).</summary>
    public int Rm { get; init; } = 16;

    /// <summary>Bound on concurrent transactions (RFC 8489 §6.2 asks clients to limit outstanding transactions).</summary>
    public int MaxOutstanding { get; init; } = 1024;

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentException">Rto is not positive, Rc is outside 1..16, Rm outside 1..64, or MaxOutstanding below 1.</exception>
    public void Validate()
    {
        if (Rto <= TimeSpan.Zero) throw new ArgumentException("Rto must be positive.");
        if (Rc is < 1 or > 16) throw new ArgumentException("Rc must be in 1..16.");
        if (Rm is < 1 or > 64) throw new ArgumentException("Rm must be in 1..64.");
        if (MaxOutstanding < 1) throw new ArgumentException("MaxOutstanding must be positive.");
    }

    /// <summary>RFC 8489 §6.2.1: with the defaults the transaction fails after 39.5 s.</summary>
    public TimeSpan TransactionTimeout => Rto * ((1 << (Rc - 1)) - 1) + Rto * Rm;
}

/// <summary>
/// STUN client transactions over an <see cref="IDatagramSocket"/> (RFC 8489 §6.2.1): a request is retransmitted
/// at RTO, 2·RTO, 4·RTO… until Rc requests were sent, then fails after Rm·RTO more. Responses are matched by
/// transaction id (RFC 5780 responses may come from another address). Datagrams that are not responses to an
/// outstanding transaction go to the <c>unhandled</c> handler (TURN data, ICE checks, application data).
/// </summary>
/// <remarks>
/// Transactions complete inline, on the thread that delivered the response or fired the timer, after every lock is
/// released (no thread-pool hop): under a single-threaded scheduler and a FakeTimeProvider the code awaiting a
/// response has run by the time the delivery returns, so tests drive it with fake time alone. Continuations must
/// therefore not block; the sockets tolerate being disposed from their own receive thread.
/// </remarks>
public sealed partial class StunClient : IDisposable
{
    private readonly IDatagramSocket _socket;
    private readonly TimeProvider _time;
    private readonly StunClientOptions _options;
    private readonly ILogger _log;
    private readonly DatagramHandler? _unhandled;
    private readonly Dictionary<TransactionKey, Transaction> _pending = [];
    private readonly Lock _lock = new();
    private bool _disposed;

    /// <summary>Starts receiving on <paramref name="socket"/>, which the client then owns (disposes).</summary>
    /// <param name="socket">The socket requests are sent and responses received on.</param>
    /// <param name="time">Clock for the retransmission timers.</param>
    /// <param name="options">Retransmission parameters; validated here.</param>
    /// <param name="unhandled">Receives datagrams that are not a response to an outstanding transaction; null drops them.</param>
    /// <param name="log">Logger; null logs nothing.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid.</exception>
    public StunClient(IDatagramSocket socket, TimeProvider time, StunClientOptions options, DatagramHandler? unhandled = null, ILogger<StunClient>? log = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _socket = socket;
        _time = time;
        _options = options;
        _unhandled = unhandled;
        _log = log ?? NullLogger<StunClient>.Instance;
        _socket.Start(OnDatagram);
    }

    /// <summary>The socket the client sends and receives on (owned by the client).</summary>
    public IDatagramSocket Socket => _socket;

    /// <summary>The socket's local address.</summary>
    public IPEndPoint LocalEndPoint => _socket.LocalEndPoint;

    /// <summary>A new random 12-byte transaction id (RFC 8489 §6: from a cryptographically random source).</summary>
    public static byte[] NewTransactionId() => RandomNumberGenerator.GetBytes(StunLimits.TransactionIdSize);

    /// <summary>Sends a prepared request (its bytes 8-19 are the transaction id) and awaits the response.</summary>
    /// <exception cref="TimeoutException">No response after the RFC 8489 retransmission schedule.</exception>
    public Task<StunMessage> SendRequestAsync(byte[] request, IPEndPoint server, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(server);
        if (request.Length < StunLimits.HeaderSize) throw new ArgumentException("Not a STUN message.", nameof(request));
        var key = TransactionKey.From(request.AsSpan(8, StunLimits.TransactionIdSize));
        var tx = new Transaction(this, key, request, server);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_pending.Count >= _options.MaxOutstanding) throw new InvalidOperationException("Too many outstanding STUN transactions.");
            if (!_pending.TryAdd(key, tx)) throw new InvalidOperationException("Duplicate transaction id.");
        }

        if (cancellationToken.CanBeCanceled)
        {
            tx.Registration = cancellationToken.Register(() => Complete(key, null, new OperationCanceledException(cancellationToken)));
        }

        tx.Timer = _time.CreateTimer(static s => ((Transaction)s!).OnTimer(), tx, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        tx.SendAndArm();
        return tx.Completion.Task;
    }

    /// <summary>Sends a Binding request (RFC 8489 §8), with RFC 5780 CHANGE-REQUEST flags when given.</summary>
    public Task<StunMessage> BindingAsync(IPEndPoint server, uint? changeRequest = null, CancellationToken cancellationToken = default)
    {
        var buffer = new byte[64];
        var w = new StunWriter(buffer, StunMethod.Binding, StunClass.Request, NewTransactionId());
        if (changeRequest is { } flags) w.AddUInt32(StunAttributeType.ChangeRequest, flags);
        w.AddFingerprint();
        return SendRequestAsync(buffer[..w.Length], server, cancellationToken);
    }

    private void OnDatagram(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        // RFC 8489 §6.3.3: a response is matched to its transaction by the transaction id.
        // Success (class 0b10) and error (0b11) responses both have C1 (bit 0x0100 of the type) set.
        if (StunMessage.LooksLikeStun(datagram) && (datagram[0] & 0x01) == 0x01)
        {
            var key = TransactionKey.From(datagram.Slice(8, StunLimits.TransactionIdSize));
            bool mine;
            lock (_lock) mine = _pending.ContainsKey(key);
            if (mine)
            {
                if (StunMessage.TryDecode(datagram, out var message, out _)) Complete(key, message, null);
                return;
            }
        }

        _unhandled?.Invoke(datagram, remote);
    }

    private void Complete(TransactionKey key, StunMessage? message, Exception? error)
    {
        Transaction? tx;
        lock (_lock)
        {
            if (!_pending.Remove(key, out tx)) return;
        }

        tx.Timer?.Dispose();
        tx.Registration.Dispose();
        if (message is not null) tx.Completion.TrySetResult(message);
        else tx.Completion.TrySetException(error!);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "STUN transaction to {Server} timed out after {Attempts} requests")]
    private partial void LogTimeout(IPEndPoint server, int attempts);

    /// <summary>Fails the outstanding transactions with <see cref="ObjectDisposedException"/> and disposes the socket.</summary>
    public void Dispose()
    {
        List<TransactionKey> keys;
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            keys = [.. _pending.Keys];
        }

        foreach (var k in keys) Complete(k, null, new ObjectDisposedException(nameof(StunClient)));
        _socket.Dispose();
    }

    private readonly record struct TransactionKey(ulong High, uint Low)
    {
        public static TransactionKey From(ReadOnlySpan<byte> id) =>
            new(BinaryPrimitives.ReadUInt64BigEndian(id), BinaryPrimitives.ReadUInt32BigEndian(id[8..]));
    }

    private sealed class Transaction(StunClient owner, TransactionKey key, byte[] request, IPEndPoint server)
    {
        private int _sent;

        // Inline continuations on purpose (see the class remarks).
        public TaskCompletionSource<StunMessage> Completion { get; } = new();

        public ITimer? Timer { get; set; }

        public CancellationTokenRegistration Registration { get; set; }

        public void SendAndArm()
        {
            var options = owner._options;
            _sent++;
            owner._socket.Send(request, server);
            // RFC 8489 §6.2.1: intervals RTO, 2·RTO, 4·RTO…; after the Rc-th request wait Rm·RTO.
            var wait = _sent < options.Rc ? options.Rto * (1 << (_sent - 1)) : options.Rto * options.Rm;
            Timer?.Change(wait, Timeout.InfiniteTimeSpan);
        }

        public void OnTimer()
        {
            if (Completion.Task.IsCompleted) return;
            if (_sent < owner._options.Rc)
            {
                SendAndArm();
                return;
            }

            owner.LogTimeout(server, _sent);
            owner.Complete(key, null, new TimeoutException($"No STUN response from {server} after {_sent} requests."));
        }
    }
}
