using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Peerway.Torrent.Proxy;

/// <summary>Why a datagram from a SOCKS5 UDP relay was not accepted.</summary>
internal enum Socks5UdpError
{
    None = 0,
    /// <summary>Shorter than its header says.</summary>
    Truncated,
    /// <summary>RSV is not 0x0000.</summary>
    Reserved,
    /// <summary>FRAG is not 0: reassembly is optional (RFC 1928 §7) and not done.</summary>
    Fragment,
    /// <summary>ATYP is not 1 (IPv4), 3 (domain name) or 4 (IPv6).</summary>
    AddressType,
    /// <summary>ATYP 3: a domain name, where a relay answering for an IP address must give one.</summary>
    DomainName,
}

/// <summary>
/// The header of a datagram through a SOCKS5 UDP relay (RFC 1928 §7), sans I/O:
/// <c>RSV(2)=0 FRAG(1) ATYP(1) DST.ADDR DST.PORT(2) DATA</c>. Reads never throw.
/// </summary>
internal static class Socks5UdpHeader
{
    /// <summary>The longest header written (IPv6).</summary>
    public const int MaxLength = 4 + 16 + 2;

    /// <summary>The header's length for <paramref name="destination"/>.</summary>
    public static int LengthFor(IPEndPoint destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        return 4 + (Normalize(destination.Address).AddressFamily == AddressFamily.InterNetworkV6 ? 16 : 4) + 2;
    }

    /// <summary>Writes the header for <paramref name="destination"/> (FRAG 0) into <paramref name="buffer"/>; returns its length.</summary>
    public static int Write(Span<byte> buffer, IPEndPoint destination)
    {
        var length = LengthFor(destination);
        if (buffer.Length < length) throw new ArgumentException("the buffer is shorter than the header", nameof(buffer));
        var address = Normalize(destination.Address);
        buffer[..4].Clear();
        buffer[3] = address.AddressFamily == AddressFamily.InterNetworkV6 ? (byte)4 : (byte)1;
        address.TryWriteBytes(buffer[4..], out var written);
        BinaryPrimitives.WriteUInt16BigEndian(buffer[(4 + written)..], (ushort)destination.Port);
        return length;
    }

    /// <summary>
    /// Reads a relayed datagram: the address it came from (DST in the header) and where its data starts.
    /// Fragments, unknown address types and domain names are refused with a typed error.
    /// </summary>
    public static Socks5UdpError TryRead(ReadOnlySpan<byte> datagram, out IPEndPoint? source, out int dataOffset)
    {
        source = null;
        dataOffset = 0;
        if (datagram.Length < 4) return Socks5UdpError.Truncated;
        if (datagram[0] != 0 || datagram[1] != 0) return Socks5UdpError.Reserved;
        if (datagram[2] != 0) return Socks5UdpError.Fragment;
        int addressLength;
        switch (datagram[3])
        {
            case 1:
                addressLength = 4;
                break;
            case 4:
                addressLength = 16;
                break;
            case 3:
                return Socks5UdpError.DomainName;
            default:
                return Socks5UdpError.AddressType;
        }

        if (datagram.Length < 4 + addressLength + 2) return Socks5UdpError.Truncated;
        var address = new IPAddress(datagram.Slice(4, addressLength));
        var port = BinaryPrimitives.ReadUInt16BigEndian(datagram.Slice(4 + addressLength, 2));
        source = new IPEndPoint(address, port);
        dataOffset = 4 + addressLength + 2;
        return Socks5UdpError.None;
    }

    private static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
