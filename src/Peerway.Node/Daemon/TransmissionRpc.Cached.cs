using System.Buffers;
using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Peerway.Node.Daemon;

/// <summary>
/// The pollers' fast path (issue 18 §8: 1,000 clients polling torrent-get must not slow a download). A poller sends
/// the same body every time, so a torrent-get answer is kept per snapshot under the request's exact bytes: a repeat
/// within the snapshot's life is answered by one dictionary lookup on the body as read — no JSON parse, no request
/// shape, no serialization, no wait for the RPC's concurrency limit — with the bytes written behind a Content-Length.
/// The answer is the one the full path gave for the same bytes against the same snapshot (the tag is in the body, so it
/// is in the answer's tail), so the contract cannot drift between the two paths.
/// </summary>
public sealed partial class TransmissionRpc
{
    /// <summary>Bodies longer than this are not cached (a poller's torrent-get is a few hundred bytes).</summary>
    internal const int MaxCachedBodyBytes = 4096;

    /// <summary>Distinct request bodies answered from the cache per snapshot (more are answered, not cached).</summary>
    private const int MaxCachedBodies = 256;

    private const string JsonContentType = "application/json; charset=UTF-8";

    /// <summary>What every answer starts with (<see cref="Write"/> writes "arguments" first).</summary>
    private static readonly byte[] AnswerHead = Encoding.UTF8.GetBytes("{\"arguments\":");

    private long _answeredFromCache;

    /// <summary>Requests answered by <see cref="TryCachedAnswer"/> (tests and benchmarks read it).</summary>
    internal long AnsweredFromCache => Interlocked.Read(ref _answeredFromCache);

    /// <summary>A cached answer: <see cref="AnswerHead"/>, the shape's serialized arguments (shared with every body of the same shape), then the tail (result and tag).</summary>
    private sealed record CachedAnswer(byte[] Arguments, byte[] Tail)
    {
        public int Length => AnswerHead.Length + Arguments.Length + Tail.Length;
    }

    /// <summary>The cached answer for <paramref name="body"/> in the current snapshot, if one was kept.</summary>
    private bool TryCachedAnswer(ReadOnlySpan<byte> body, out CachedAnswer answer)
    {
        var bodies = CurrentSnapshot().Bodies.GetAlternateLookup<ReadOnlySpan<byte>>();
        if (!bodies.TryGetValue(body, out answer!)) return false;
        Interlocked.Increment(ref _answeredFromCache);
        return true;
    }

    /// <summary>Keeps a successful torrent-get answer (<paramref name="written"/>, as <see cref="Write"/> wrote it) for repeats of <paramref name="body"/>.</summary>
    private static void Remember(Snapshot snapshot, ReadOnlySpan<byte> body, byte[] arguments, ReadOnlySpan<byte> written)
    {
        if (body.Length > MaxCachedBodyBytes || snapshot.Bodies.Count >= MaxCachedBodies) return;
        var tailAt = AnswerHead.Length + arguments.Length;
        if (written.Length < tailAt || !written[..AnswerHead.Length].SequenceEqual(AnswerHead) || !written[AnswerHead.Length..tailAt].SequenceEqual(arguments))
            throw new InvalidOperationException("a torrent-get answer does not start with its arguments");
        snapshot.Bodies.TryAdd(body.ToArray(), new CachedAnswer(arguments, written[tailAt..].ToArray()));
    }

    private static async Task WriteCachedAsync(HttpResponse response, CachedAnswer answer, CancellationToken ct)
    {
        response.ContentType = JsonContentType;
        response.ContentLength = answer.Length;
        var output = response.BodyWriter;
        output.Write(AnswerHead);
        output.Write(answer.Arguments);
        output.Write(answer.Tail);
        await output.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Byte-wise equality of request bodies, with lookups by span (no copy of the body to look it up).</summary>
    private sealed class BodyComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly BodyComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x is null ? y is null : y is not null && x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => GetHashCode(obj.AsSpan());

        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var hash = new HashCode();
            hash.AddBytes(alternate);
            return hash.ToHashCode();
        }

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }

    /// <summary>The cache of one snapshot, by body.</summary>
    private static ConcurrentDictionary<byte[], CachedAnswer> NewBodyCache() => new(BodyComparer.Instance);

    /// <summary>Reads a body of <paramref name="destination"/>'s length (its Content-Length) into it; returns the bytes read.</summary>
    private static async Task<int> ReadBodyAsync(HttpRequest request, Memory<byte> destination, CancellationToken ct)
    {
        var reader = request.BodyReader;
        var read = await reader.ReadAtLeastAsync(destination.Length, ct).ConfigureAwait(false);
        var buffer = read.Buffer;
        var n = (int)Math.Min(buffer.Length, destination.Length);
        buffer.Slice(0, n).CopyTo(destination.Span);
        reader.AdvanceTo(buffer.GetPosition(n));
        return n;
    }

    private static bool IsSmall(long? contentLength) => contentLength is > 0 and <= MaxCachedBodyBytes;
}
