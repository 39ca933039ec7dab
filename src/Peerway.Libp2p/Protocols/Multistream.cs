using System.Buffers;
using System.Text;
using Peerway.Core.Multiformats;

namespace Peerway.Libp2p.Protocols;

/// <summary>
/// multistream-select 1.0 (libp2p specs, connections/README.md "Protocol Negotiation"): each message is a varint
/// length, UTF-8 text and a trailing newline. Both sides open with <c>/multistream/1.0.0</c>; the dialer proposes a
/// protocol and the listener echoes it or answers <c>na</c>. Reads never take a byte past the message, so the stream
/// continues with the negotiated protocol.
/// </summary>
internal static class Multistream
{
    public const string ProtocolId = "/multistream/1.0.0";

    /// <summary>js-libp2p's bound on one message (MAX_PROTOCOL_LENGTH), newline included.</summary>
    public const int MaxMessageLength = 1024;

    /// <summary>Bound on the protocols a dialer may propose on one stream before the listener gives up.</summary>
    public const int MaxProposals = 32;

    /// <summary>
    /// As dialer: proposes <paramref name="protocols"/> in order; returns the one the listener accepted, or null when it
    /// answered <c>na</c> to all. The header and the first proposal go out together (as js-libp2p and go-libp2p do).
    /// </summary>
    public static async Task<string?> SelectAsync(Stream stream, IReadOnlyList<string> protocols, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(protocols);
        await WriteAsync(stream, [ProtocolId, protocols[0]], ct).ConfigureAwait(false);
        var header = await ReadAsync(stream, ct).ConfigureAwait(false);
        if (header != ProtocolId) throw new Libp2pProtocolException(Libp2pError.BadLine, $"not multistream-select 1.0: '{header}'");
        for (var i = 0; ; i++)
        {
            var answer = await ReadAsync(stream, ct).ConfigureAwait(false);
            if (answer == protocols[i]) return answer;
            if (answer != "na") throw new Libp2pProtocolException(Libp2pError.BadLine, $"unexpected multistream answer '{answer}'");
            if (i + 1 == protocols.Count) return null;
            await WriteAsync(stream, [protocols[i + 1]], ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// As listener: answers the header, then each proposal with <c>na</c> until one is in <paramref name="supported"/>;
    /// returns it. <c>ls</c> is answered with <c>na</c> (optional in the spec). Throws on a malformed exchange.
    /// </summary>
    public static async Task<string> HandleAsync(Stream stream, Func<string, bool> supported, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(supported);
        var header = await ReadAsync(stream, ct).ConfigureAwait(false);
        if (header != ProtocolId) throw new Libp2pProtocolException(Libp2pError.BadLine, $"not multistream-select 1.0: '{header}'");
        await WriteAsync(stream, [ProtocolId], ct).ConfigureAwait(false);
        for (var i = 0; i < MaxProposals; i++)
        {
            var proposal = await ReadAsync(stream, ct).ConfigureAwait(false);
            if (proposal != "ls" && supported(proposal))
            {
                await WriteAsync(stream, [proposal], ct).ConfigureAwait(false);
                return proposal;
            }

            await WriteAsync(stream, ["na"], ct).ConfigureAwait(false);
        }

        throw new Libp2pProtocolException(Libp2pError.TooLong, $"more than {MaxProposals} protocol proposals");
    }

    /// <summary>Encodes messages (each gets its newline and varint length) into one buffer.</summary>
    public static byte[] Encode(IEnumerable<string> messages)
    {
        var w = new System.Buffers.ArrayBufferWriter<byte>();
        foreach (var m in messages)
        {
            var bytes = Encoding.UTF8.GetBytes(m + "\n");
            if (bytes.Length > MaxMessageLength) throw new ArgumentException($"a multistream message is at most {MaxMessageLength} bytes", nameof(messages));
            w.Advance(Varint.Write((ulong)bytes.Length, w.GetSpan(10)));
            w.Write(bytes);
        }

        return w.WrittenSpan.ToArray();
    }

    private static async Task WriteAsync(Stream stream, string[] messages, CancellationToken ct)
    {
        await stream.WriteAsync(Encode(messages), ct).ConfigureAwait(false);
        await stream.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Reads one message (without its newline); throws <see cref="Libp2pProtocolException"/> when malformed.</summary>
    public static async Task<string> ReadAsync(Stream stream, CancellationToken ct)
    {
        var length = await LengthPrefixed.ReadVarintAsync(stream, MaxMessageLength, ct).ConfigureAwait(false);
        var buffer = new byte[length];
        await stream.ReadExactlyAsync(buffer, ct).ConfigureAwait(false);
        return Decode(buffer, out var text) == Libp2pError.None ? text : throw new Libp2pProtocolException(Libp2pError.BadLine, "a multistream message without its newline or not UTF-8");
    }

    /// <summary>The text of one message body (the bytes after the length); it must end with a newline.</summary>
    public static Libp2pError Decode(ReadOnlySpan<byte> body, out string text)
    {
        text = "";
        if (body.IsEmpty || body[^1] != (byte)'\n') return Libp2pError.BadLine;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(body[..^1]);
            return Libp2pError.None;
        }
        catch (DecoderFallbackException)
        {
            return Libp2pError.BadLine;
        }
    }
}

/// <summary>Varint-length-prefixed messages (unsigned-varint), as identify, Bitswap and Kad frame their protobufs.</summary>
internal static class LengthPrefixed
{
    /// <summary>Reads a varint length (at most 9 bytes, minimal) and checks it against <paramref name="max"/>.</summary>
    public static async Task<int> ReadVarintAsync(Stream stream, int max, CancellationToken ct)
    {
        ulong value = 0;
        var one = new byte[1];
        for (var i = 0; i < 9; i++)
        {
            await stream.ReadExactlyAsync(one, ct).ConfigureAwait(false);
            value |= (ulong)(one[0] & 0x7F) << (7 * i);
            if ((one[0] & 0x80) != 0) continue;
            if (i > 0 && one[0] == 0) throw new Libp2pProtocolException(Libp2pError.BadVarint, "a varint that is not minimal");
            if (value > (ulong)max) throw new Libp2pProtocolException(Libp2pError.TooLong, $"a message of {value} bytes (at most {max})");
            return (int)value;
        }

        throw new Libp2pProtocolException(Libp2pError.BadVarint, "a varint longer than 9 bytes");
    }

    /// <summary>Reads one message of at most <paramref name="max"/> bytes.</summary>
    public static async Task<byte[]> ReadAsync(Stream stream, int max, CancellationToken ct)
    {
        var length = await ReadVarintAsync(stream, max, ct).ConfigureAwait(false);
        var buffer = new byte[length];
        await stream.ReadExactlyAsync(buffer, ct).ConfigureAwait(false);
        return buffer;
    }

    /// <summary>
    /// Reads one message of at most <paramref name="max"/> bytes into an array rented from the shared pool (its first
    /// <c>Length</c> bytes): the caller decodes it, copies out what it keeps and returns the array to the pool.
    /// </summary>
    public static async Task<(byte[] Buffer, int Length)> ReadPooledAsync(Stream stream, int max, CancellationToken ct)
    {
        var length = await ReadVarintAsync(stream, max, ct).ConfigureAwait(false);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        try
        {
            await stream.ReadExactlyAsync(buffer.AsMemory(0, length), ct).ConfigureAwait(false);
        }
        catch
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }

        return (buffer, length);
    }

    /// <summary>Writes one message with its varint length.</summary>
    public static async Task WriteAsync(Stream stream, ReadOnlyMemory<byte> message, CancellationToken ct)
    {
        var prefix = new byte[10];
        var n = Varint.Write((ulong)message.Length, prefix);
        await stream.WriteAsync(prefix.AsMemory(0, n), ct).ConfigureAwait(false);
        await stream.WriteAsync(message, ct).ConfigureAwait(false);
        await stream.FlushAsync(ct).ConfigureAwait(false);
    }
}
