using System.Net;
using System.Net.Sockets;
using Peerway.Core;

namespace Peerway.Dht;

/// <summary>Sans-I/O KRPC (BEP 5) decoder and encoder over spans. Decoding never throws on network input.</summary>
public static class KrpcCodec
{
    /// <summary>Largest datagram decoded. Mainline messages fit one UDP payload on a 1500-byte MTU; BEP 44 items
    /// stay under 1000 bytes of value. 8 KiB leaves room for large get_peers replies.</summary>
    public const int MaxDatagramLength = 8192;

    /// <summary>Most "values" entries read from one reply.</summary>
    public const int MaxValues = 1024;

    /// <summary>BEP 5: compact node info is a 20-byte id followed by 6 bytes of compact IPv4 address.</summary>
    public const int CompactNodeLength = 26;

    /// <summary>BEP 32: compact IPv6 node info is a 20-byte id followed by 18 bytes of compact IPv6 address.</summary>
    public const int CompactNode6Length = 38;

    /// <summary>Decodes a datagram into a new message. On failure the message still carries the "t" when it was read.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> datagram, out KrpcMessage message, out KrpcError error)
    {
        message = new KrpcMessage();
        error = Decode(datagram, message);
        return error == KrpcError.None;
    }

    /// <summary>Decodes a datagram into <paramref name="message"/> (reset first).</summary>
    public static KrpcError Decode(ReadOnlySpan<byte> datagram, KrpcMessage message) => throw new NotImplementedException();

    /// <summary>Encodes <paramref name="message"/> into <paramref name="destination"/>; returns bytes written, or -1 when
    /// the destination is too small or the message lacks a required field.</summary>
    public static int Encode(KrpcMessage message, Span<byte> destination) => throw new NotImplementedException();

    /// <summary>Parses compact node info (26 bytes per IPv4 node, 38 per IPv6 node).</summary>
    public static IReadOnlyList<NodeContact> ReadCompactNodes(ReadOnlySpan<byte> compact, AddressFamily family) =>
        throw new NotImplementedException();

    /// <summary>Writes compact node info for the contacts of <paramref name="family"/>.</summary>
    public static byte[] WriteCompactNodes(IEnumerable<NodeContact> nodes, AddressFamily family) => throw new NotImplementedException();

    /// <summary>Reads a compact address: 4-byte IPv4 or 16-byte IPv6 address followed by a big-endian port.</summary>
    public static bool TryReadCompactEndPoint(ReadOnlySpan<byte> compact, out IPEndPoint? endPoint) => throw new NotImplementedException();

    /// <summary>Writes a compact address; returns 6, 18, or -1 when the destination is too small.</summary>
    public static int WriteCompactEndPoint(IPEndPoint endPoint, Span<byte> destination) => throw new NotImplementedException();
}
