using System.Buffers.Binary;
using System.Buffers.Text;
using System.Net;
using System.Net.Sockets;
using Peerway.Core;

namespace Peerway.Dht;

public static partial class KrpcCodec
{
    /// <summary>
    /// Encodes <paramref name="message"/> into <paramref name="destination"/> as canonical bencode (keys sorted, BEP 3);
    /// returns the bytes written, or -1 when the destination is too small or a required field is missing. Allocates
    /// nothing.
    /// </summary>
    public static int Encode(KrpcMessage message, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (!message.HasTransactionId) return -1;
        var w = new SpanWriter(destination);
        w.Raw("d"u8);
        // Top-level keys in raw-byte order: a, e, ip, q, r, ro, t, v, y.
        switch (message.Type)
        {
            case KrpcMessageType.Query:
            {
                var name = message.Method == KrpcMethod.Unknown ? message.MethodName : KrpcMessage.NameOf(message.Method);
                if (name.IsEmpty) return -1;
                w.Key("a"u8);
                if (!WriteArguments(ref w, message)) return -1;
                WriteExternalAddress(ref w, message);
                w.Key("q"u8);
                w.String(name);
                if (message.ReadOnly)
                {
                    w.Key("ro"u8);
                    w.Integer(1);
                }

                break;
            }

            case KrpcMessageType.Response:
                WriteExternalAddress(ref w, message);
                w.Key("r"u8);
                WriteResponseBody(ref w, message);
                break;
            default:
                w.Key("e"u8);
                w.Raw("l"u8);
                w.Integer(message.ErrorCode);
                w.Utf8String(message.ErrorMessage ?? string.Empty);
                w.Raw("e"u8);
                WriteExternalAddress(ref w, message);
                break;
        }

        w.Key("t"u8);
        w.String(message.TransactionId);
        if (message.HasVersion)
        {
            w.Key("v"u8);
            w.String(message.Version);
        }

        w.Key("y"u8);
        w.String(message.Type switch { KrpcMessageType.Query => "q"u8, KrpcMessageType.Response => "r"u8, _ => "e"u8 });
        w.Raw("e"u8);
        return w.Failed ? -1 : w.Position;
    }

    private static bool WriteArguments(ref SpanWriter w, KrpcMessage message)
    {
        // Argument keys in raw-byte order: cas, id, implied_port, info_hash, k, port, salt, seq, sig, target, token, v, want.
        w.Raw("d"u8);
        switch (message.Method)
        {
            case KrpcMethod.FindNode when message.Target is null:
            case KrpcMethod.GetPeers when message.InfoHash is null:
            case KrpcMethod.AnnouncePeer when message.InfoHash is null || !message.HasToken:
            case KrpcMethod.Get when message.Target is null:
            case KrpcMethod.SampleInfohashes when message.Target is null:
            case KrpcMethod.Put when !message.HasToken || !message.HasItemValue:
                return false;
        }

        if (message.ItemCas is { } cas)
        {
            w.Key("cas"u8);
            w.Integer(cas);
        }

        w.Key("id"u8);
        w.Id(message.Id);

        if (message.ImpliedPort)
        {
            w.Key("implied_port"u8);
            w.Integer(1);
        }

        if (message.InfoHash is { } infoHash)
        {
            w.Key("info_hash"u8);
            w.Id(infoHash);
        }

        if (message.ItemKey is { } k)
        {
            w.Key("k"u8);
            w.String(k);
        }

        if (message.Port is { } port)
        {
            w.Key("port"u8);
            w.Integer(port);
        }

        if (message.ItemSalt is { Length: > 0 } salt)
        {
            w.Key("salt"u8);
            w.String(salt);
        }

        if (message.ItemSeq is { } seq)
        {
            w.Key("seq"u8);
            w.Integer(seq);
        }

        if (message.ItemSignature is { } sig)
        {
            w.Key("sig"u8);
            w.String(sig);
        }

        if (message.Target is { } target)
        {
            w.Key("target"u8);
            w.Id(target);
        }

        if (message.HasToken)
        {
            w.Key("token"u8);
            w.String(message.Token);
        }

        if (message.HasItemValue)
        {
            w.Key("v"u8);
            w.Raw(message.ItemValue.Span);
        }

        if (message.Want != DhtWant.None)
        {
            // BEP 32: "want": ["n4", "n6"].
            w.Key("want"u8);
            w.Raw("l"u8);
            if ((message.Want & DhtWant.N4) != 0) w.String("n4"u8);
            if ((message.Want & DhtWant.N6) != 0) w.String("n6"u8);
            w.Raw("e"u8);
        }

        w.Raw("e"u8);
        return true;
    }

    private static void WriteResponseBody(ref SpanWriter w, KrpcMessage message)
    {
        // Reply keys in raw-byte order: id, interval, k, nodes, nodes6, num, samples, seq, sig, token, v, values.
        w.Raw("d"u8);
        w.Key("id"u8);
        w.Id(message.Id);
        if (message.Interval is { } interval)
        {
            w.Key("interval"u8);
            w.Integer(interval);
        }

        if (message.ItemKey is { } k)
        {
            w.Key("k"u8);
            w.String(k);
        }

        if (!message.Nodes.IsEmpty || message.NodesKeyAlways)
        {
            w.Key("nodes"u8);
            w.String(message.Nodes.Span);
        }

        if (!message.Nodes6.IsEmpty || message.Nodes6KeyAlways)
        {
            w.Key("nodes6"u8);
            w.String(message.Nodes6.Span);
        }

        if (message.Num is { } num)
        {
            w.Key("num"u8);
            w.Integer(num);
        }

        if (message.Num is not null || !message.Samples.IsEmpty)
        {
            w.Key("samples"u8);
            w.String(message.Samples.Span);
        }

        if (message.ItemSeq is { } seq)
        {
            w.Key("seq"u8);
            w.Integer(seq);
        }

        if (message.ItemSignature is { } sig)
        {
            w.Key("sig"u8);
            w.String(sig);
        }

        if (message.HasToken)
        {
            w.Key("token"u8);
            w.String(message.Token);
        }

        if (message.HasItemValue)
        {
            w.Key("v"u8);
            w.Raw(message.ItemValue.Span);
        }

        if (message.Values is { } values)
        {
            w.Key("values"u8);
            w.Raw("l"u8);
            Span<byte> compact = stackalloc byte[18];
            foreach (var peer in values)
            {
                var n = WriteCompactEndPoint(peer, compact);
                if (n < 0) continue;
                w.String(compact[..n]);
            }

            w.Raw("e"u8);
        }

        w.Raw("e"u8);
    }

    private static void WriteExternalAddress(ref SpanWriter w, KrpcMessage message)
    {
        if (!message.HasExternalAddress) return;
        w.Key("ip"u8);
        w.String(message.ExternalAddressCompact);
    }

    /// <summary>Reads a compact address: 4-byte IPv4 or 16-byte IPv6 address followed by a big-endian port.</summary>
    public static bool TryReadCompactEndPoint(ReadOnlySpan<byte> compact, out IPEndPoint? endPoint)
    {
        endPoint = null;
        if (compact.Length is not (6 or 18)) return false;
        var address = new IPAddress(compact[..^2]);
        endPoint = new IPEndPoint(address, BinaryPrimitives.ReadUInt16BigEndian(compact[^2..]));
        return true;
    }

    /// <summary>Writes a compact address; returns 6, 18, or -1 when the destination is too small.</summary>
    public static int WriteCompactEndPoint(IPEndPoint endPoint, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        var address = endPoint.Address.IsIPv4MappedToIPv6 ? endPoint.Address.MapToIPv4() : endPoint.Address;
        var length = address.AddressFamily == AddressFamily.InterNetwork ? 4 : 16;
        if (destination.Length < length + 2 || !address.TryWriteBytes(destination, out var written) || written != length) return -1;
        BinaryPrimitives.WriteUInt16BigEndian(destination[length..], (ushort)endPoint.Port);
        return length + 2;
    }

    /// <summary>Parses compact node info (26 bytes per IPv4 node, 38 per IPv6 node); a trailing partial entry is ignored.</summary>
    public static IReadOnlyList<NodeContact> ReadCompactNodes(ReadOnlySpan<byte> compact, AddressFamily family)
    {
        var size = family == AddressFamily.InterNetworkV6 ? CompactNode6Length : CompactNodeLength;
        var nodes = new List<NodeContact>(compact.Length / size);
        for (var i = 0; i + size <= compact.Length; i += size)
        {
            var entry = compact.Slice(i, size);
            if (TryReadCompactEndPoint(entry[NodeId.Length..], out var endPoint))
            {
                nodes.Add(new NodeContact(new NodeId(entry[..NodeId.Length]), endPoint!));
            }
        }

        return nodes;
    }

    /// <summary>Writes compact node info for the contacts of <paramref name="family"/> (others are skipped).</summary>
    public static byte[] WriteCompactNodes(IEnumerable<NodeContact> nodes, AddressFamily family)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var size = family == AddressFamily.InterNetworkV6 ? CompactNode6Length : CompactNodeLength;
        var matching = nodes.Where(n => Normalize(n.EndPoint.Address).AddressFamily == family).ToList();
        var bytes = new byte[matching.Count * size];
        for (var i = 0; i < matching.Count; i++)
        {
            var entry = bytes.AsSpan(i * size, size);
            matching[i].Id.WriteTo(entry);
            WriteCompactEndPoint(matching[i].EndPoint, entry[NodeId.Length..]);
        }

        return bytes;
    }

    internal static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>A bounds-checked writer over a span; after the first overflow every write is ignored.</summary>
    private ref struct SpanWriter(Span<byte> destination)
    {
        private readonly Span<byte> _destination = destination;

        public int Position { get; private set; }

        public bool Failed { get; private set; }

        public void Raw(scoped ReadOnlySpan<byte> bytes)
        {
            if (Failed || !bytes.TryCopyTo(_destination[Position..]))
            {
                Failed = true;
                return;
            }

            Position += bytes.Length;
        }

        public void Key(scoped ReadOnlySpan<byte> key) => String(key);

        public void String(scoped ReadOnlySpan<byte> value)
        {
            if (Failed) return;
            var rest = _destination[Position..];
            if (!Utf8Formatter.TryFormat(value.Length, rest, out var n) || rest.Length < n + 1 + value.Length)
            {
                Failed = true;
                return;
            }

            rest[n] = (byte)':';
            value.CopyTo(rest[(n + 1)..]);
            Position += n + 1 + value.Length;
        }

        public void Utf8String(string value)
        {
            Span<byte> buffer = stackalloc byte[MaxErrorMessageLength * 3];
            var text = value.Length > MaxErrorMessageLength ? value[..MaxErrorMessageLength] : value;
            var n = System.Text.Encoding.UTF8.GetBytes(text, buffer);
            String(buffer[..n]);
        }

        public void Id(NodeId id)
        {
            Span<byte> bytes = stackalloc byte[NodeId.Length];
            id.WriteTo(bytes);
            String(bytes);
        }

        public void Integer(long value)
        {
            if (Failed) return;
            var rest = _destination[Position..];
            if (rest.Length < 3 || !Utf8Formatter.TryFormat(value, rest[1..], out var n) || rest.Length < n + 2)
            {
                Failed = true;
                return;
            }

            rest[0] = (byte)'i';
            rest[n + 1] = (byte)'e';
            Position += n + 2;
        }
    }
}
