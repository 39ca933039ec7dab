using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Numerics;
using Peerway.Core;

namespace Peerway.Dht;

/// <summary>
/// BEP 42 (DHT Security Extension): node ids are tied to the node's external IP address. The first 21 bits of the id
/// are the first 21 bits of crc32c((ip &amp; mask) | (r &lt;&lt; 29)), where r is the low 3 bits of the id's last byte.
/// </summary>
public static class Bep42
{
    // BEP 42: "the mask is 0x030f3fff for IPv4 and 0x0103070f1f3f7fff for IPv6" (applied to the high 64 bits).
    private const uint V4Mask = 0x030f3fff;
    private const ulong V6Mask = 0x0103070f1f3f7fff;

    /// <summary>The 32-bit CRC32C prefix for <paramref name="address"/> and r (0..7).</summary>
    public static uint Prefix(IPAddress address, int r)
    {
        ArgumentNullException.ThrowIfNull(address);
        address = KrpcCodec.Normalize(address);
        Span<byte> ip = stackalloc byte[16];
        address.TryWriteBytes(ip, out var length);
        Span<byte> masked = stackalloc byte[8];
        var rBits = (ulong)(r & 7);
        int n;
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var v = (BinaryPrimitives.ReadUInt32BigEndian(ip) & V4Mask) | (uint)(rBits << 29);
            BinaryPrimitives.WriteUInt32BigEndian(masked, v);
            n = 4;
        }
        else
        {
            _ = length;
            var v = (BinaryPrimitives.ReadUInt64BigEndian(ip) & V6Mask) | (rBits << 61);
            BinaryPrimitives.WriteUInt64BigEndian(masked, v);
            n = 8;
        }

        return Crc32C(masked[..n]);
    }

    /// <summary>A compliant id for <paramref name="address"/>: 21-bit prefix from the CRC, random middle, last byte
    /// <paramref name="rand"/> (whose low 3 bits are r).</summary>
    public static NodeId GenerateId(IPAddress address, byte rand, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        Span<byte> id = stackalloc byte[NodeId.Length];
        random.NextBytes(id);
        var crc = Prefix(address, rand & 7);
        id[0] = (byte)(crc >> 24);
        id[1] = (byte)(crc >> 16);
        id[2] = (byte)(((crc >> 8) & 0xf8) | (uint)(id[2] & 0x7));
        id[19] = rand;
        return new NodeId(id);
    }

    /// <summary>True when the first 21 bits of <paramref name="id"/> match the CRC of <paramref name="address"/>.</summary>
    public static bool IsCompliant(NodeId id, IPAddress address)
    {
        Span<byte> b = stackalloc byte[NodeId.Length];
        id.WriteTo(b);
        var crc = Prefix(address, b[19] & 7);
        return b[0] == (byte)(crc >> 24) && b[1] == (byte)(crc >> 16) && (b[2] & 0xf8) == ((crc >> 8) & 0xf8);
    }

    /// <summary>
    /// BEP 42: "local and private network address ranges are exempt from verification" — 10.0.0.0/8, 172.16.0.0/12,
    /// 192.168.0.0/16, 169.254.0.0/16 and 127.0.0.0/8; for IPv6 we exempt the analogous loopback (::1), link-local
    /// (fe80::/10) and unique-local (fc00::/7) ranges.
    /// </summary>
    public static bool IsExempt(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        address = KrpcCodec.Normalize(address);
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out _);
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            return b[0] == 10 || b[0] == 127 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
                   (b[0] == 169 && b[1] == 254);
        }

        return IPAddress.IsLoopback(address) || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || (b[0] & 0xfe) == 0xfc;
    }

    /// <summary>True when <paramref name="id"/> is acceptable for a node at <paramref name="address"/> (exempt or compliant).</summary>
    public static bool IsAcceptable(NodeId id, IPAddress address) => IsExempt(address) || IsCompliant(id, address);

    /// <summary>CRC-32C (Castagnoli), as BEP 42 requires; hardware-accelerated by <see cref="BitOperations.Crc32C(uint, byte)"/>.</summary>
    internal static uint Crc32C(ReadOnlySpan<byte> data)
    {
        var crc = uint.MaxValue;
        foreach (var b in data) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }
}

/// <summary>
/// Learns our external address from the BEP 42 "ip" field of replies: one vote per responding IP over a bounded,
/// first-in-first-out voter set; an address wins with at least <see cref="MinVotes"/> votes and a strict majority.
/// </summary>
internal sealed class ExternalAddressVoter
{
    /// <summary>Votes needed before an address is believed (one liar must not move us).</summary>
    public const int MinVotes = 3;

    /// <summary>Voters remembered; older ones are forgotten first.</summary>
    public const int MaxVoters = 64;

    // A ring of voters (as 32-bit keys, searched as a span of ints) and the address each claims (a byte index into the
    // tally), oldest overwritten first, grown on demand up to MaxVoters; and a tally of the distinct claimed addresses
    // (nearly always one; slots with no votes left are reused, so indices stay valid and there are at most
    // MaxVoters + 1). No per-vote allocation, no object per voter, 5 bytes per voter (a simulator holds 10^6 voters).
    private readonly List<int> _voters = [];
    private readonly List<byte> _claims = [];
    private readonly List<(IPAddress Address, int Votes)> _tally = [];
    private int _oldest;

    public IPAddress? Current { get; private set; }

    /// <summary>Records a vote; returns true when <see cref="Current"/> changed.</summary>
    public bool Vote(IPAddress voter, IPAddress claimed)
    {
        ArgumentNullException.ThrowIfNull(claimed);
        Span<byte> bytes = stackalloc byte[16];
        return claimed.TryWriteBytes(bytes, out var length) && Vote(voter, bytes[..length]);
    }

    /// <summary>Records a vote for the address whose bytes (4 or 16) are <paramref name="claimed"/>, as read from a
    /// reply's "ip": an <see cref="IPAddress"/> is made only for an address not yet in the tally (almost never).</summary>
    public bool Vote(IPAddress voter, ReadOnlySpan<byte> claimed)
    {
        if (claimed.Length is not (4 or 16)) return false;
        var key = KeyOf(voter);
        var i = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_voters).IndexOf(key);
        if (i >= 0)
        {
            Untally(_claims[i]);
            _claims[i] = Tally(claimed);
        }
        else if (_voters.Count < MaxVoters)
        {
            _voters.Add(key);
            _claims.Add(Tally(claimed));
        }
        else
        {
            Untally(_claims[_oldest]);
            _voters[_oldest] = key;
            _claims[_oldest] = Tally(claimed);
            _oldest = (_oldest + 1) % MaxVoters;
        }

        IPAddress? best = null;
        var bestCount = 0;
        foreach (var (address, votes) in _tally)
        {
            if (votes > bestCount) (best, bestCount) = (address, votes);
        }

        if (best is null || bestCount < MinVotes || bestCount * 2 <= _voters.Count || best.Equals(Current)) return false;
        Current = best;
        return true;
    }

    /// <summary>A voter's key: an IPv4 address itself (exact), an IPv6 address's 32-bit FNV-1a hash (deterministic; two
    /// voters that collide count as one, which can only make the tally more cautious).</summary>
    private static int KeyOf(IPAddress voter)
    {
        ArgumentNullException.ThrowIfNull(voter);
        Span<byte> bytes = stackalloc byte[16];
        if (!voter.TryWriteBytes(bytes, out var length)) return 0;
        if (length == 4) return System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes);
        var hash = 2166136261u;
        foreach (var b in bytes[..length]) hash = (hash ^ b) * 16777619u;
        return (int)hash;
    }

    /// <summary>Counts a vote for the address with bytes <paramref name="claimed"/>; returns its tally slot.</summary>
    private byte Tally(ReadOnlySpan<byte> claimed)
    {
        var free = -1;
        Span<byte> bytes = stackalloc byte[16];
        for (var i = 0; i < _tally.Count; i++)
        {
            var (address, votes) = _tally[i];
            if (address.TryWriteBytes(bytes, out var length) && bytes[..length].SequenceEqual(claimed))
            {
                _tally[i] = (address, votes + 1);
                return (byte)i;
            }

            if (votes == 0 && free < 0) free = i;
        }

        var added = new IPAddress(claimed);
        if (free >= 0)
        {
            _tally[free] = (added, 1);
            return (byte)free;
        }

        _tally.Add((added, 1));
        return (byte)(_tally.Count - 1);
    }

    private void Untally(byte slot)
    {
        var (address, votes) = _tally[slot];
        _tally[slot] = (address, votes - 1);
    }
}
