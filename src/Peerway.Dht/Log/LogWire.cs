using System.Buffers.Binary;
using Peerway.Core;
using Peerway.Core.Bencoding;

namespace Peerway.Dht.Log;

/// <summary>What a follower asks a log server.</summary>
internal enum LogRequestKind
{
    /// <summary>The latest signed head the server holds.</summary>
    Head,

    /// <summary>Entry <c>A</c> with its RFC 9162 inclusion proof in the first <c>B</c> entries.</summary>
    Entry,

    /// <summary>The RFC 9162 consistency proof from <c>A</c> to <c>B</c> entries.</summary>
    Consistency,
}

/// <summary>One request of the log protocol: <see cref="Target"/> names the log (its heads' BEP 44 target).</summary>
internal sealed record LogRequest(LogRequestKind Kind, NodeId Target, long A, long B);

/// <summary>
/// One reply of the log protocol. A head reply has <see cref="Length"/>, <see cref="Root"/> and <see cref="Signature"/>;
/// an entry reply <see cref="Entry"/> and <see cref="Proof"/>; a consistency reply <see cref="Proof"/>; a refusal
/// <see cref="Error"/>. Which fields must be there depends on the request; the follower checks.
/// </summary>
internal sealed record LogReply(long? Length, byte[]? Root, byte[]? Signature, byte[]? Entry, IReadOnlyList<byte[]>? Proof, string? Error);

/// <summary>
/// The log protocol's wire format (Peerway's own, in the manner of Hypercore's request/data messages): over one
/// stream connection the follower sends requests and the server answers each in order. A message is a frame — a 4-byte
/// big-endian length, then that many bytes of one bencoded dictionary. Request: <c>q</c> ("head", "entry" or "cons"),
/// <c>t</c> (the 20-byte log target), <c>a</c> and <c>b</c> (integers). Reply: <c>l</c>/<c>r</c>/<c>s</c> (head
/// length, root, signature), <c>e</c> (entry bytes), <c>p</c> (list of 32-byte hashes), or <c>x</c> (an error text).
/// Sans-I/O apart from the two frame helpers; bounded (frame size, proof length); decoders never throw.
/// </summary>
internal static class LogWire
{
    /// <summary>Largest frame: one entry, a proof and a little framing.</summary>
    public const int MaxFrameLength = LogDirectory.MaxEntryLength + 8192;

    /// <summary>Largest request frame.</summary>
    public const int MaxRequestLength = 256;

    /// <summary>Longest proof: RFC 9162 proofs have about log2(size) hashes, at most 64 below 2^63 entries.</summary>
    public const int MaxProofHashes = 128;

    private const int MaxErrorLength = 200;

    private static readonly BencodeLimits Limits = new()
    {
        MaxInputLength = MaxFrameLength,
        MaxDepth = 3,
        MaxItems = MaxProofHashes + 16,
        MaxStringLength = LogDirectory.MaxEntryLength,
    };

    /// <summary>Bencodes a request.</summary>
    public static byte[] EncodeRequest(LogRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var dict = new BDictionary();
        dict.Add("a", new BInteger(request.A));
        dict.Add("b", new BInteger(request.B));
        dict.Add("q", new BString(request.Kind switch
        {
            LogRequestKind.Head => "head",
            LogRequestKind.Entry => "entry",
            _ => "cons",
        }));
        dict.Add("t", new BString(request.Target.ToArray()));
        return Bencode.Encode(dict);
    }

    /// <summary>Reads a request; null (never throws) when <paramref name="data"/> is not one.</summary>
    public static LogRequest? DecodeRequest(ReadOnlySpan<byte> data)
    {
        if (data.Length > MaxRequestLength || !Bencode.TryDecode(data, out var value, out _, Limits) || value is not BDictionary dict) return null;
        if (dict["q"] is not BString q || dict["t"] is not BString t || !NodeId.TryRead(t.Value.Span, out var target) || t.Value.Length != NodeId.Length) return null;
        LogRequestKind? kind = q.Value.Span switch
        {
            var s when s.SequenceEqual("head"u8) => LogRequestKind.Head,
            var s when s.SequenceEqual("entry"u8) => LogRequestKind.Entry,
            var s when s.SequenceEqual("cons"u8) => LogRequestKind.Consistency,
            _ => null,
        };
        if (kind is null) return null;
        var a = dict["a"] is BInteger ai ? ai.Value : 0;
        var b = dict["b"] is BInteger bi ? bi.Value : 0;
        return a < 0 || b < 0 ? null : new LogRequest(kind.Value, target, a, b);
    }

    /// <summary>Bencodes a reply (absent fields are left out).</summary>
    public static byte[] EncodeReply(LogReply reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        var dict = new BDictionary();
        if (reply.Entry is { } e) dict.Add("e", new BString(e));
        if (reply.Length is { } l) dict.Add("l", new BInteger(l));
        if (reply.Proof is { } p) dict.Add("p", new BList(p.Select(h => (BValue)new BString(h)).ToList()));
        if (reply.Root is { } r) dict.Add("r", new BString(r));
        if (reply.Signature is { } s) dict.Add("s", new BString(s));
        if (reply.Error is { } x) dict.Add("x", new BString(x.Length > MaxErrorLength ? x[..MaxErrorLength] : x));
        return Bencode.Encode(dict);
    }

    /// <summary>Reads a reply; null (never throws) when <paramref name="data"/> is not one: a proof longer than
    /// <see cref="MaxProofHashes"/> or holding anything but 32-byte hashes, a root or signature of the wrong length.</summary>
    public static LogReply? DecodeReply(ReadOnlySpan<byte> data)
    {
        if (!Bencode.TryDecode(data, out var value, out _, Limits) || value is not BDictionary dict) return null;
        List<byte[]>? proof = null;
        if (dict["p"] is { } p)
        {
            if (p is not BList list || list.Items.Count > MaxProofHashes) return null;
            proof = [];
            foreach (var h in list.Items)
            {
                if (h is not BString { Value.Length: MerkleTree.HashLength } hash) return null;
                proof.Add(hash.Value.ToArray());
            }
        }

        var length = dict["l"] is BInteger l ? l.Value : (long?)null;
        var root = dict["r"] is BString { Value.Length: MerkleTree.HashLength } r ? r.Value.ToArray() : null;
        var signature = dict["s"] is BString { Value.Length: Bep44.SignatureLength } s ? s.Value.ToArray() : null;
        if ((dict["r"] is not null && root is null) || (dict["s"] is not null && signature is null) || length < 0) return null;
        var entry = dict["e"] is BString e ? e.Value.ToArray() : null;
        var error = dict["x"] is BString x ? x.Utf8 : null;
        return new LogReply(length, root, signature, entry, proof, error);
    }

    /// <summary>Writes one frame.</summary>
    public static async ValueTask WriteFrameAsync(Stream stream, ReadOnlyMemory<byte> message, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var frame = new byte[4 + message.Length];
        BinaryPrimitives.WriteInt32BigEndian(frame, message.Length);
        message.CopyTo(frame.AsMemory(4));
        await stream.WriteAsync(frame, ct).ConfigureAwait(false);
        await stream.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Reads one frame of at most <paramref name="maxLength"/> bytes; null at the end of the stream or when the
    /// announced length is over the limit (the caller drops the connection). I/O errors are the stream's.</summary>
    public static async ValueTask<byte[]?> ReadFrameAsync(Stream stream, int maxLength, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var header = new byte[4];
        if (!await ReadExactlyOrEndAsync(stream, header, ct).ConfigureAwait(false)) return null;
        var length = BinaryPrimitives.ReadInt32BigEndian(header);
        if (length < 0 || length > maxLength) return null;
        var body = new byte[length];
        return await ReadExactlyOrEndAsync(stream, body, ct).ConfigureAwait(false) ? body : null;
    }

    private static async ValueTask<bool> ReadExactlyOrEndAsync(Stream stream, Memory<byte> buffer, CancellationToken ct)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer[read..], ct).ConfigureAwait(false);
            if (n == 0) return false;
            read += n;
        }

        return true;
    }
}
