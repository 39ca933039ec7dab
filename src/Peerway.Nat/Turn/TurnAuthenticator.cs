using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Peerway.Nat.Turn;

/// <summary>
/// Long-term credentials (RFC 8489 §9.2) and the TURN REST API shared-secret scheme, with stateless expiring
/// nonces: a nonce is base64url(expiry seconds ‖ HMAC(server key, expiry ‖ client IP)[..5]), 12 characters, so the
/// 401 challenge stays smaller than the Allocate request it answers.
/// </summary>
internal sealed class TurnAuthenticator
{
    public const int NonceLength = 12;

    private readonly TurnServerOptions _options;
    private readonly TimeProvider _time;
    private readonly byte[] _nonceKey = RandomNumberGenerator.GetBytes(32);
    private readonly Dictionary<string, byte[]> _keys;
    private readonly byte[]? _secret;

    public TurnAuthenticator(TurnServerOptions options, TimeProvider time)
    {
        _options = options;
        _time = time;
        _keys = options.Users.ToDictionary(u => u.Key, u => Stun.StunAttributes.LongTermKey(u.Key, options.Realm, u.Value), StringComparer.Ordinal);
        _secret = options.SharedSecret is null ? null : Encoding.UTF8.GetBytes(options.SharedSecret);
    }

    public string NewNonce(IPAddress client)
    {
        var expiry = (uint)(_time.GetUtcNow() + _options.NonceLifetime).ToUnixTimeSeconds();
        Span<byte> raw = stackalloc byte[9];
        BinaryPrimitives.WriteUInt32BigEndian(raw, expiry);
        Mac(expiry, client, raw[4..]);
        return Convert.ToBase64String(raw).Replace('+', '-').Replace('/', '_');
    }

    /// <summary>False when the nonce is forged, for another client, or expired (→ 438).</summary>
    public bool IsNonceValid(string nonce, IPAddress client)
    {
        if (nonce.Length != NonceLength) return false;
        Span<byte> raw = stackalloc byte[9];
        if (!Convert.TryFromBase64String(nonce.Replace('-', '+').Replace('_', '/'), raw, out var n) || n != 9) return false;
        var expiry = BinaryPrimitives.ReadUInt32BigEndian(raw);
        Span<byte> mac = stackalloc byte[5];
        Mac(expiry, client, mac);
        if (!CryptographicOperations.FixedTimeEquals(mac, raw[4..])) return false;
        return _time.GetUtcNow().ToUnixTimeSeconds() < expiry;
    }

    private void Mac(uint expiry, IPAddress client, Span<byte> destination)
    {
        Span<byte> input = stackalloc byte[4 + 16];
        BinaryPrimitives.WriteUInt32BigEndian(input, expiry);
        client.TryWriteBytes(input[4..], out var written);
        Span<byte> full = stackalloc byte[32];
        HMACSHA256.HashData(_nonceKey, input[..(4 + written)], full);
        full[..destination.Length].CopyTo(destination);
    }

    /// <summary>The long-term key of <paramref name="username"/>, or null when unknown or (REST) expired.</summary>
    public byte[]? KeyFor(string username)
    {
        if (_keys.TryGetValue(username, out var key)) return key;
        if (_secret is null) return null;
        // TURN REST API: "expiry:user", the password is base64(HMAC-SHA1(secret, username)).
        var colon = username.IndexOf(':', StringComparison.Ordinal);
        var stamp = colon < 0 ? username : username[..colon];
        if (!long.TryParse(stamp, NumberStyles.None, CultureInfo.InvariantCulture, out var expiry)) return null;
        if (expiry <= _time.GetUtcNow().ToUnixTimeSeconds()) return null;
        var password = RestPassword(_secret, username);
        return Stun.StunAttributes.LongTermKey(username, _options.Realm, password);
    }

    public static string RestPassword(byte[] secret, string username) =>
        Convert.ToBase64String(HMACSHA1.HashData(secret, Encoding.UTF8.GetBytes(username)));

    /// <summary>The quota key: the REST user name without its timestamp.</summary>
    public static string QuotaName(string username)
    {
        var colon = username.IndexOf(':', StringComparison.Ordinal);
        return colon >= 0 && long.TryParse(username.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out _) ? username[(colon + 1)..] : username;
    }
}
