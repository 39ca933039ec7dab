using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peerway.Net;

namespace Peerway.Torrent.Utp;

/// <summary>Limits of the <see cref="UtpResetResponder"/>.</summary>
public sealed record UtpResetOptions
{
    /// <summary>Most resets sent per second (a flood of SYNs costs at most this many 20-byte answers).</summary>
    public int MaxResetsPerSecond { get; init; } = 200;

    public void Validate() => ArgumentOutOfRangeException.ThrowIfLessThan(MaxResetsPerSecond, 1);
}

/// <summary>
/// What a host without uTP answers on its BitTorrent port: every uTP SYN gets an ST_RESET, so a client that tries
/// uTP first (libtorrent does, by default) fails over to TCP at once instead of waiting out its SYN timeouts. BEP 29:
/// the initiator sends ST_SYN with connection_id = its conn_id_recv and expects replies with that id; the reset acks the
/// SYN's seq_nr (libtorrent ignores a reset whose ack_nr is past its seq_nr). Only SYNs are answered (never a reset, so
/// two such hosts cannot loop), with no more bytes than the SYN (no amplification), under a per-second cap.
/// A real uTP listener on the same socket replaces this component.
/// </summary>
public sealed class UtpResetResponder : IDisposable
{
    private readonly IDatagramSocket _socket;
    private readonly TimeProvider _time;
    private readonly UtpResetOptions _options;
    private readonly ILogger _log;
    private readonly Random _random = new();
    private long _windowStart;
    private int _sentInWindow;
    private long _resets;

    public UtpResetResponder(IDatagramSocket socket, TimeProvider time, UtpResetOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _socket = socket;
        _time = time;
        _options = options;
        _log = logger ?? NullLogger.Instance;
    }

    public IPEndPoint LocalEndPoint => _socket.LocalEndPoint;

    /// <summary>Resets sent so far.</summary>
    public long Resets => Interlocked.Read(ref _resets);

    public void Start() => _socket.Start(OnDatagram);

    /// <summary>Invoked serially by the socket (<see cref="DatagramHandler"/>), so the counters need no lock.</summary>
    private void OnDatagram(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        if (!UtpHeader.TryRead(datagram, out var syn) || syn.Type != UtpPacketType.Syn) return;
        var now = _time.GetTimestamp();
        if (_time.GetElapsedTime(_windowStart, now) >= TimeSpan.FromSeconds(1))
        {
            _windowStart = now;
            _sentInWindow = 0;
        }

        if (_sentInWindow >= _options.MaxResetsPerSecond) return;
        _sentInWindow++;
        var micros = (uint)(_time.GetElapsedTime(0, now).Ticks / 10);
        var reset = new UtpHeader(UtpPacketType.Reset, 0, syn.ConnectionId, micros, unchecked(micros - syn.TimestampMicroseconds), 0,
            (ushort)_random.Next(ushort.MaxValue + 1), syn.SequenceNumber);
        Span<byte> bytes = stackalloc byte[UtpHeader.Length];
        reset.Write(bytes);
        _socket.Send(bytes, remote);
        Interlocked.Increment(ref _resets);
        _log.LogDebug("uTP SYN from {Peer} (connection {Id}) answered with ST_RESET", remote, syn.ConnectionId);
    }

    public void Dispose() => _socket.Dispose();
}
