using System.Buffers.Binary;
using System.Runtime.Intrinsics.X86;

namespace Peerway.WebRtc.Sctp;

/// <summary>
/// CRC32c (Castagnoli, reflected polynomial 0x82F63B78), the SCTP checksum (RFC 9260 §6.8, Appendix A). SSE4.2's
/// CRC32 instruction computes exactly this polynomial, 8 bytes a step; elsewhere a slicing-by-1 table
/// (System.IO.Hashing only has the IEEE polynomial).
/// </summary>
internal static class Crc32C
{
    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }

        return table;
    }

    public static uint Compute(ReadOnlySpan<byte> data) => Sse42.X64.IsSupported ? ~Hardware(0xFFFFFFFFu, data) : ~Software(0xFFFFFFFFu, data);

    internal static uint Software(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (var b in data) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    private static uint Hardware(uint crc, ReadOnlySpan<byte> data)
    {
        ulong c = crc;
        while (data.Length >= 8)
        {
            c = Sse42.X64.Crc32(c, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }

        crc = (uint)c;
        foreach (var b in data) crc = Sse42.Crc32(crc, b);
        return crc;
    }
}
