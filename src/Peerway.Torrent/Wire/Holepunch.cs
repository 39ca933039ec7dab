using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Peerway.Torrent.Wire;

/// <summary>BEP 55 msg_type: what a <c>ut_holepunch</c> extension message asks or tells.</summary>
internal enum HolepunchMessageType : byte
{
    /// <summary>To a relay: "connect me to this peer" (the target is one the relay is connected to).</summary>
    Rendezvous = 0x00,

    /// <summary>From the relay to both ends: "connect to this peer now" (simultaneous uTP connect).</summary>
    Connect = 0x01,

    /// <summary>From the relay to the initiator: why the rendezvous failed (<see cref="HolepunchError"/>).</summary>
    Error = 0x02,
}

/// <summary>BEP 55 err_code (0 in rendezvous and connect messages).</summary>
internal enum HolepunchError : uint
{
    None = 0,

    /// <summary>The target endpoint is invalid.</summary>
    NoSuchPeer = 1,

    /// <summary>The relay is not connected to the target peer.</summary>
    NotConnected = 2,

    /// <summary>The target peer does not support the holepunch extension.</summary>
    NoSupport = 3,

    /// <summary>The target endpoint belongs to the relay itself.</summary>
    NoSelf = 4,
}

/// <summary>Why a <c>ut_holepunch</c> payload does not decode (a value: the input comes from the network).</summary>
internal enum HolepunchDecodeError
{
    None,

    /// <summary>Shorter than its fields, or longer (BEP 55 messages have a fixed size per address type).</summary>
    BadLength,

    /// <summary>A msg_type above 2.</summary>
    BadType,

    /// <summary>An addr_type other than 0 (IPv4) or 1 (IPv6).</summary>
    BadAddressType,
}

/// <summary>One decoded <c>ut_holepunch</c> message: its type, the peer endpoint it names, and the error code.</summary>
internal readonly record struct HolepunchMessage(HolepunchMessageType Type, IPEndPoint EndPoint, HolepunchError Error);

/// <summary>
/// BEP 55 "Holepunch extension": the payload of a BEP 10 extended message named <c>ut_holepunch</c> is
/// <c>msg_type (1) | addr_type (1: 0 IPv4, 1 IPv6) | addr (4 or 16) | port (2, big-endian) | err_code (4, big-endian)</c>,
/// 12 bytes for IPv4 and 24 for IPv6. Pure: no I/O, bounded by the fixed sizes.
/// </summary>
internal static class HolepunchCodec
{
    /// <summary>The name in the BEP 10 handshake's "m" dictionary.</summary>
    public const string ExtensionName = "ut_holepunch";

    public const int V4Length = 12;
    public const int V6Length = 24;

    /// <summary>Writes <paramref name="message"/> (an IPv4-mapped IPv6 address is written as IPv4).</summary>
    public static byte[] Encode(HolepunchMessage message)
    {
        ArgumentNullException.ThrowIfNull(message.EndPoint);
        if (!Enum.IsDefined(message.Type)) throw new ArgumentOutOfRangeException(nameof(message), message.Type, "not a BEP 55 message type");
        var address = message.EndPoint.Address.IsIPv4MappedToIPv6 ? message.EndPoint.Address.MapToIPv4() : message.EndPoint.Address;
        var v4 = address.AddressFamily == AddressFamily.InterNetwork;
        var bytes = new byte[v4 ? V4Length : V6Length];
        bytes[0] = (byte)message.Type;
        bytes[1] = v4 ? (byte)0 : (byte)1;
        var addressLength = v4 ? 4 : 16;
        if (!address.TryWriteBytes(bytes.AsSpan(2, addressLength), out _)) throw new ArgumentException("the address does not fit", nameof(message));
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2 + addressLength), (ushort)message.EndPoint.Port);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4 + addressLength), (uint)message.Error);
        return bytes;
    }

    /// <summary>Decodes a payload; never throws. Unknown error codes are kept as numbers (the caller treats them as failure).</summary>
    public static HolepunchDecodeError TryDecode(ReadOnlySpan<byte> payload, out HolepunchMessage message)
    {
        message = default;
        if (payload.Length < 2) return HolepunchDecodeError.BadLength;
        if (payload[0] > (byte)HolepunchMessageType.Error) return HolepunchDecodeError.BadType;
        var addressLength = payload[1] switch
        {
            0 => 4,
            1 => 16,
            _ => -1,
        };
        if (addressLength < 0) return HolepunchDecodeError.BadAddressType;
        if (payload.Length != addressLength + 8) return HolepunchDecodeError.BadLength;
        var address = new IPAddress(payload.Slice(2, addressLength));
        var port = BinaryPrimitives.ReadUInt16BigEndian(payload[(2 + addressLength)..]);
        var error = (HolepunchError)BinaryPrimitives.ReadUInt32BigEndian(payload[(4 + addressLength)..]);
        message = new HolepunchMessage((HolepunchMessageType)payload[0], new IPEndPoint(address, port), error);
        return HolepunchDecodeError.None;
    }
}
