using System.Collections.Concurrent;
using System.Net;
using Peerway.Net;

namespace Peerway.Torrent.Trackers;

/// <summary>The outcome of one announce.</summary>
public sealed record TrackerResult(AnnounceResponse? Response, TrackerError Error, string? Message = null)
{
    /// <summary>True when the tracker answered with a response.</summary>
    public bool Ok => Response is not null;
}

/// <summary>HTTP(S) tracker client (BEP 3 announce, BEP 23 compact peers).</summary>
public sealed class HttpTrackerClient(HttpClient http)
{
    /// <summary>Sends a BEP 3 GET announce and parses the answer. Failures of the exchange are in the result.</summary>
    public async Task<TrackerResult> AnnounceAsync(Uri announce, AnnounceRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(http);
        try
        {
            using var response = await http.GetAsync(HttpTrackerCodec.AnnounceUri(announce, request), HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            if (response.Content.Headers.ContentLength > HttpTrackerCodec.MaxResponseLength) return new TrackerResult(null, TrackerError.Malformed, "response too large");
            var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode) return new TrackerResult(null, TrackerError.Failure, $"HTTP {(int)response.StatusCode}");
            return HttpTrackerCodec.TryParseResponse(body, out var parsed, out var error, out var failure)
                ? new TrackerResult(parsed, TrackerError.None)
                : new TrackerResult(null, error, failure);
        }
        catch (HttpRequestException ex)
        {
            return new TrackerResult(null, TrackerError.Unreachable, ex.Message);
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            return new TrackerResult(null, TrackerError.Timeout);
        }
    }
}

/// <summary>Retransmission settings for the UDP tracker protocol.</summary>
public sealed record UdpTrackerOptions
{
    /// <summary>BEP 15: wait 15 · 2^n seconds for the n-th retry.</summary>
    public TimeSpan InitialTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>BEP 15 allows up to 8 retries; a client that wants an answer sooner gives up earlier.</summary>
    public int MaxRetries { get; init; } = 2;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> when a setting is out of range.</summary>
    public void Validate()
    {
        if (InitialTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(InitialTimeout), "must be positive");
        ArgumentOutOfRangeException.ThrowIfNegative(MaxRetries);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxRetries, 8);
    }
}

/// <summary>
/// BEP 15 UDP tracker client over an <see cref="IDatagramSocket"/>: connect (connection id valid one minute), then
/// announce; each step retransmitted with exponential back-off. Any number of announces may run concurrently.
/// </summary>
public sealed class UdpTrackerClient : IDisposable
{
    /// <summary>BEP 15: "a client can use a connection ID until one minute after it has received it".</summary>
    private static readonly TimeSpan ConnectionIdLifetime = TimeSpan.FromMinutes(1);

    private readonly IDatagramSocket _socket;
    private readonly TimeProvider _time;
    private readonly UdpTrackerOptions _options;
    private readonly ConcurrentDictionary<int, TaskCompletionSource<byte[]>> _pending = new();
    private readonly ConcurrentDictionary<IPEndPoint, (long Id, DateTimeOffset Expires)> _connections = new();
    private readonly int _key = Random.Shared.Next();

    /// <summary>A client receiving on <paramref name="socket"/> (started here), timed by <paramref name="time"/>.</summary>
    public UdpTrackerClient(IDatagramSocket socket, TimeProvider time, UdpTrackerOptions options)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _socket = socket;
        _time = time;
        _options = options;
        _socket.Start(OnDatagram);
    }

    private void OnDatagram(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        if (!UdpTrackerCodec.TryReadHeader(datagram, out _, out var tid)) return;
        if (_pending.TryRemove(tid, out var tcs)) tcs.TrySetResult(datagram.ToArray());
    }

    private async Task<byte[]?> ExchangeAsync(IPEndPoint tracker, Func<int, byte[]> build, CancellationToken ct)
    {
        for (var attempt = 0; attempt <= _options.MaxRetries; attempt++)
        {
            var tid = Random.Shared.Next();
            var tcs = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            _pending[tid] = tcs;
            try
            {
                _socket.Send(build(tid), tracker);
                var timeout = _options.InitialTimeout * Math.Pow(2, attempt);
                return await tcs.Task.WaitAsync(timeout, _time, ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // BEP 15: retransmit after 15 · 2^n seconds.
            }
            finally
            {
                _pending.TryRemove(tid, out _);
            }
        }

        return null;
    }

    /// <summary>Connects (or reuses a connection id younger than a minute) and announces, retrying per <see cref="UdpTrackerOptions"/>. Failures of the exchange are in the result.</summary>
    public async Task<TrackerResult> AnnounceAsync(IPEndPoint tracker, AnnounceRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!_connections.TryGetValue(tracker, out var conn) || conn.Expires <= _time.GetUtcNow())
        {
            var reply = await ExchangeAsync(tracker, tid =>
            {
                var b = new byte[UdpTrackerCodec.ConnectRequestLength];
                UdpTrackerCodec.WriteConnect(b, tid);
                return b;
            }, ct).ConfigureAwait(false);
            if (reply is null) return new TrackerResult(null, TrackerError.Timeout);
            if (!UdpTrackerCodec.TryReadConnectResponse(reply, out var id)) return Failure(reply);
            conn = (id, _time.GetUtcNow() + ConnectionIdLifetime);
            _connections[tracker] = conn;
        }

        var answer = await ExchangeAsync(tracker, tid =>
        {
            var b = new byte[UdpTrackerCodec.AnnounceRequestLength];
            UdpTrackerCodec.WriteAnnounce(b, conn.Id, tid, request, _key);
            return b;
        }, ct).ConfigureAwait(false);
        if (answer is null) return new TrackerResult(null, TrackerError.Timeout);
        return UdpTrackerCodec.TryReadAnnounceResponse(answer, out var response) ? new TrackerResult(response, TrackerError.None) : Failure(answer);
    }

    private static TrackerResult Failure(byte[] reply) =>
        UdpTrackerCodec.TryReadHeader(reply, out var action, out _) && action == UdpTrackerCodec.ActionError
            ? new TrackerResult(null, TrackerError.Failure, System.Text.Encoding.UTF8.GetString(reply.AsSpan(8)))
            : new TrackerResult(null, TrackerError.Malformed);

    /// <summary>Cancels the announces in flight; the socket is not disposed.</summary>
    public void Dispose()
    {
        foreach (var p in _pending.Values) p.TrySetCanceled();
        _pending.Clear();
    }
}
