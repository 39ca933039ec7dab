using System.Net;
using System.Numerics;
using Peerway.Core;

namespace Peerway.Simulation;

/// <summary>
/// BEP 42 ("DHT Security extension") node ids for simulated hosts: the first 21 bits are
/// crc32c((ip &amp; 0x030f3fff) | (r &lt;&lt; 29)) and the last byte is r (0–7). The simulator assigns them itself so
/// that honest nodes are compliant from the start when the network enforces BEP 42.
/// </summary>
internal static class Bep42Ids
{
    /// <summary>BEP 42: the IPv4 mask applied before hashing.</summary>
    private static ReadOnlySpan<byte> V4Mask => [0x03, 0x0f, 0x3f, 0xff];

    /// <summary>A compliant id for <paramref name="address"/> (IPv4), random elsewhere.</summary>
    public static NodeId For(IPAddress address, Random random)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(random);
        Span<byte> id = stackalloc byte[NodeId.Length];
        random.NextBytes(id);
        var r = (byte)(random.Next() & 7);
        var crc = Prefix(address, r);
        id[0] = (byte)(crc >> 24);
        id[1] = (byte)(crc >> 16);
        id[2] = (byte)(((crc >> 8) & 0xf8) | (id[2] & 7u));
        id[19] = r;
        return new NodeId(id);
    }

    /// <summary>Whether <paramref name="id"/> is compliant for <paramref name="address"/> (21-bit prefix and r).</summary>
    public static bool IsCompliant(NodeId id, IPAddress address)
    {
        Span<byte> b = stackalloc byte[NodeId.Length];
        id.WriteTo(b);
        var crc = Prefix(address, (byte)(b[19] & 7));
        return b[0] == (byte)(crc >> 24) && b[1] == (byte)(crc >> 16) && (b[2] & 0xf8) == ((crc >> 8) & 0xf8);
    }

    /// <summary>crc32c of the masked address with r in the top three bits.</summary>
    internal static uint Prefix(IPAddress address, byte r)
    {
        Span<byte> ip = stackalloc byte[4];
        if (!address.TryWriteBytes(ip, out var n) || n != 4) throw new ArgumentException("BEP 42 ids are computed here for IPv4 only.", nameof(address));
        for (var i = 0; i < 4; i++) ip[i] &= V4Mask[i];
        ip[0] |= (byte)(r << 5);
        // CRC-32C (Castagnoli), reflected, init and final XOR 0xFFFFFFFF.
        var crc = 0xFFFFFFFFu;
        foreach (var b in ip) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }
}
