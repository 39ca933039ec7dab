using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Peerway.Nat.Stun;

/// <summary>RFC 8489 §18.5: password algorithms for long-term credentials.</summary>
public enum StunPasswordAlgorithm : ushort
{
    /// <summary>RFC 8489 §18.5: MD5 of "username:realm:password" (the RFC 5389 key).</summary>
    Md5 = 0x0001,

    /// <summary>RFC 8489 §18.5: SHA-256 of "username:realm:password".</summary>
    Sha256 = 0x0002,
}

/// <summary>Typed, bounded readers for attribute values and the integrity/fingerprint checks. Never throw on input.</summary>
public static class StunAttributes
{
    /// <summary>RFC 8489 §14.2: X-Port is port XOR the cookie's top 16 bits; X-Address is the address XOR the cookie
    /// (IPv4) or the cookie followed by the transaction id (IPv6). <paramref name="portAndAddress"/> starts at the port.</summary>
    internal static void XorInPlace(Span<byte> portAndAddress, ReadOnlySpan<byte> transactionId)
    {
        Span<byte> mask = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32BigEndian(mask, StunLimits.MagicCookie);
        transactionId.CopyTo(mask[4..]);
        portAndAddress[0] ^= mask[0];
        portAndAddress[1] ^= mask[1];
        var address = portAndAddress[2..];
        for (var i = 0; i < address.Length; i++) address[i] ^= mask[i];
    }

    /// <summary>RFC 8489 §14.1: family 0x01 (IPv4, 4 bytes) or 0x02 (IPv6, 16 bytes).</summary>
    public static bool TryReadAddress(ReadOnlySpan<byte> value, out IPEndPoint? endPoint)
    {
        endPoint = null;
        if (value.Length < 8) return false;
        var addressLength = value[1] switch { 1 => 4, 2 => 16, _ => 0 };
        if (addressLength == 0 || value.Length != 4 + addressLength) return false;
        var port = BinaryPrimitives.ReadUInt16BigEndian(value[2..]);
        endPoint = new IPEndPoint(new IPAddress(value.Slice(4, addressLength)), port);
        return true;
    }

    /// <summary>
    /// RFC 8489 §14.2: reads an XOR-MAPPED-ADDRESS style value (8 bytes IPv4, 20 bytes IPv6) and undoes the XOR
    /// with the magic cookie and <paramref name="transactionId"/> (12 bytes). False if either length is wrong.
    /// </summary>
    public static bool TryReadXorAddress(ReadOnlySpan<byte> value, ReadOnlySpan<byte> transactionId, out IPEndPoint? endPoint)
    {
        endPoint = null;
        if (value.Length is not (8 or 20) || transactionId.Length != StunLimits.TransactionIdSize) return false;
        Span<byte> copy = stackalloc byte[20];
        value.CopyTo(copy);
        XorInPlace(copy[2..value.Length], transactionId);
        return TryReadAddress(copy[..value.Length], out endPoint);
    }

    /// <summary>
    /// Reads the first attribute of <paramref name="type"/> as an XOR-ed address (XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS,
    /// XOR-RELAYED-ADDRESS); false if it is absent or malformed.
    /// </summary>
    public static bool TryGetXorAddress(this StunMessage message, ushort type, out IPEndPoint? endPoint)
    {
        endPoint = null;
        return message.TryGet(type, out var a) && TryReadXorAddress(message.GetValue(a), message.TransactionId, out endPoint);
    }

    /// <summary>
    /// Reads the first attribute of <paramref name="type"/> as a plain address (MAPPED-ADDRESS, OTHER-ADDRESS,
    /// RESPONSE-ORIGIN, ALTERNATE-SERVER); false if it is absent or malformed.
    /// </summary>
    public static bool TryGetAddress(this StunMessage message, ushort type, out IPEndPoint? endPoint)
    {
        endPoint = null;
        return message.TryGet(type, out var a) && TryReadAddress(message.GetValue(a), out endPoint);
    }

    /// <summary>RFC 8489 §14.8: class 3-6 in byte 2, number 0-99 in byte 3, UTF-8 reason.</summary>
    public static bool TryReadErrorCode(ReadOnlySpan<byte> value, out int code, out string reason)
    {
        code = 0;
        reason = string.Empty;
        if (value.Length < 4 || value.Length > 4 + StunLimits.MaxReasonBytes) return false;
        int cls = value[2] & 0x07, number = value[3];
        if (cls is < 3 or > 6 || number > 99) return false;
        code = cls * 100 + number;
        reason = Encoding.UTF8.GetString(value[4..]);
        return true;
    }

    /// <summary>Reads ERROR-CODE (RFC 8489 §14.8); false if it is absent or malformed.</summary>
    public static bool TryGetErrorCode(this StunMessage message, out int code, out string reason)
    {
        code = 0;
        reason = string.Empty;
        return message.TryGet(StunAttributeType.ErrorCode, out var a) && TryReadErrorCode(message.GetValue(a), out code, out reason);
    }

    /// <summary>Reads a bounded UTF-8 text attribute (USERNAME, REALM, NONCE, SOFTWARE).</summary>
    public static bool TryGetText(this StunMessage message, ushort type, int maxBytes, out string text)
    {
        text = string.Empty;
        if (!message.TryGet(type, out var a) || a.Length > maxBytes) return false;
        text = Encoding.UTF8.GetString(message.GetValue(a));
        return true;
    }

    /// <summary>Reads a 4-byte big-endian attribute (LIFETIME, PRIORITY, CHANGE-REQUEST); false if it is absent or not 4 bytes.</summary>
    public static bool TryGetUInt32(this StunMessage message, ushort type, out uint value)
    {
        value = 0;
        if (!message.TryGet(type, out var a) || a.Length != 4) return false;
        value = BinaryPrimitives.ReadUInt32BigEndian(message.GetValue(a));
        return true;
    }

    /// <summary>Reads an 8-byte big-endian attribute (ICE-CONTROLLING, ICE-CONTROLLED, RESERVATION-TOKEN); false if it is absent or not 8 bytes.</summary>
    public static bool TryGetUInt64(this StunMessage message, ushort type, out ulong value)
    {
        value = 0;
        if (!message.TryGet(type, out var a) || a.Length != 8) return false;
        value = BinaryPrimitives.ReadUInt64BigEndian(message.GetValue(a));
        return true;
    }

    /// <summary>RFC 8489 §14.13: the list of 16-bit types.</summary>
    public static bool TryReadUnknownAttributes(ReadOnlySpan<byte> value, out ushort[] types)
    {
        types = [];
        if ((value.Length & 1) != 0) return false;
        types = new ushort[value.Length / 2];
        for (var i = 0; i < types.Length; i++) types[i] = BinaryPrimitives.ReadUInt16BigEndian(value[(2 * i)..]);
        return true;
    }

    /// <summary>RFC 8489 §14.11: (algorithm, parameter length, parameters padded to 4) entries.</summary>
    public static bool TryReadPasswordAlgorithms(ReadOnlySpan<byte> value, out StunPasswordAlgorithm[] algorithms)
    {
        algorithms = [];
        var list = new List<StunPasswordAlgorithm>();
        var pos = 0;
        while (pos < value.Length)
        {
            if (value.Length - pos < 4 || list.Count >= StunLimits.MaxAttributes) return false;
            var algorithm = BinaryPrimitives.ReadUInt16BigEndian(value[pos..]);
            var paramLength = BinaryPrimitives.ReadUInt16BigEndian(value[(pos + 2)..]);
            if (StunMessage.Pad4(paramLength) > value.Length - pos - 4) return false;
            list.Add((StunPasswordAlgorithm)algorithm);
            pos += 4 + StunMessage.Pad4(paramLength);
        }

        algorithms = [.. list];
        return true;
    }

    /// <summary>
    /// RFC 8489 §7.3.1 / §14: the comprehension-required attributes in <paramref name="message"/> that are not in
    /// <paramref name="known"/>; a request carrying any is answered with 420 and UNKNOWN-ATTRIBUTES.
    /// </summary>
    public static ushort[] UnknownComprehensionRequired(StunMessage message, IReadOnlySet<ushort> known)
    {
        List<ushort>? unknown = null;
        foreach (var a in message.Attributes)
        {
            if (StunAttributeType.IsComprehensionRequired(a.Type) && !known.Contains(a.Type) && !(unknown?.Contains(a.Type) ?? false))
            {
                (unknown ??= []).Add(a.Type);
            }
        }

        return unknown is null ? [] : [.. unknown];
    }

    /// <summary>RFC 8489 §14.7: FINGERPRINT, if present, matches CRC-32 XOR 0x5354554e of what precedes it.</summary>
    public static bool VerifyFingerprint(StunMessage message)
    {
        if (message.FingerprintIndex < 0) return false;
        var a = message.Attributes[message.FingerprintIndex];
        if (a.Length != 4) return false;
        var expected = BinaryPrimitives.ReadUInt32BigEndian(message.GetValue(a));
        var crc = new Crc32();
        Span<byte> header = stackalloc byte[4];
        BinaryPrimitives.WriteUInt16BigEndian(header, BinaryPrimitives.ReadUInt16BigEndian(message.Raw));
        BinaryPrimitives.WriteUInt16BigEndian(header[2..], (ushort)(a.Offset + 4 - StunLimits.HeaderSize));
        crc.Append(header);
        crc.Append(message.Raw.AsSpan(4, a.Offset - 4 - 4));
        return (crc.GetCurrentHashAsUInt32() ^ StunLimits.FingerprintXor) == expected;
    }

    /// <summary>RFC 8489 §14.5: HMAC-SHA1 with the length field counting up to the end of MESSAGE-INTEGRITY.</summary>
    public static bool VerifyIntegrity(StunMessage message, ReadOnlySpan<byte> key)
    {
        if (message.IntegrityIndex < 0) return false;
        var a = message.Attributes[message.IntegrityIndex];
        if (a.Length != StunLimits.MessageIntegritySize) return false;
        Span<byte> mac = stackalloc byte[20];
        Hmac(message, a, key, sha256: false, mac);
        return CryptographicOperations.FixedTimeEquals(mac, message.GetValue(a));
    }

    /// <summary>RFC 8489 §14.6: HMAC-SHA256, possibly truncated to 16..32 bytes in steps of 4.</summary>
    public static bool VerifyIntegritySha256(StunMessage message, ReadOnlySpan<byte> key)
    {
        if (message.Integrity256Index < 0) return false;
        var a = message.Attributes[message.Integrity256Index];
        if (a.Length < StunLimits.MessageIntegritySha256MinSize || a.Length > StunLimits.MessageIntegritySha256Size || (a.Length & 3) != 0) return false;
        Span<byte> mac = stackalloc byte[32];
        Hmac(message, a, key, sha256: true, mac);
        return CryptographicOperations.FixedTimeEquals(mac[..a.Length], message.GetValue(a));
    }

    private static void Hmac(StunMessage message, StunAttribute a, ReadOnlySpan<byte> key, bool sha256, Span<byte> mac)
    {
        var covered = a.Offset - 4;
        var copy = ArrayPool<byte>.Shared.Rent(covered);
        try
        {
            message.Raw.AsSpan(0, covered).CopyTo(copy);
            BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(2), (ushort)(a.Offset + StunMessage.Pad4(a.Length) - StunLimits.HeaderSize));
            if (sha256) HMACSHA256.HashData(key, copy.AsSpan(0, covered), mac);
            else HMACSHA1.HashData(key, copy.AsSpan(0, covered), mac);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    /// <summary>
    /// RFC 8489 §9.2.2: key = MD5(username ":" realm ":" password), or SHA-256 of the same for that algorithm. The
    /// strings are used as given (OpaqueString/SASLprep normalisation is the caller's; ASCII is unaffected).
    /// </summary>
    public static byte[] LongTermKey(string username, string realm, string password, StunPasswordAlgorithm algorithm = StunPasswordAlgorithm.Md5)
    {
        var input = Encoding.UTF8.GetBytes($"{username}:{realm}:{password}");
        return algorithm == StunPasswordAlgorithm.Sha256 ? SHA256.HashData(input) : MD5.HashData(input);
    }

    /// <summary>RFC 8489 §14.4: USERHASH = SHA-256(username ":" realm).</summary>
    public static byte[] UserHash(string username, string realm) => SHA256.HashData(Encoding.UTF8.GetBytes($"{username}:{realm}"));
}
