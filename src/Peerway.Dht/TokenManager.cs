using System.Net;
using System.Security.Cryptography;

namespace Peerway.Dht;

/// <summary>
/// BEP 5 announce tokens: "the token is a short binary string... SHA1 hash of the IP address concatenated onto a secret
/// that changes every five minutes and tokens up to ten minutes old are accepted." We use SHA-1(secret ‖ ip) truncated
/// to <see cref="TokenLength"/> bytes (fixed-length input, so length extension does not apply), and accept the current
/// and the previous secret.
/// </summary>
internal sealed class TokenManager
{
    public const int TokenLength = 8;
    private const int SecretLength = 20;

    private readonly TimeSpan _rotation;
    private readonly Random _random;
    private readonly byte[] _current = new byte[SecretLength];
    private readonly byte[] _previous = new byte[SecretLength];
    private DateTimeOffset _rotatedAt;

    public TokenManager(TimeSpan rotation, Random random, DateTimeOffset now)
    {
        _rotation = rotation;
        _random = random;
        _random.NextBytes(_current);
        _random.NextBytes(_previous);
        _rotatedAt = now;
    }

    /// <summary>Writes the token for <paramref name="address"/> into <paramref name="destination"/> (8 bytes).</summary>
    public void Create(IPAddress address, DateTimeOffset now, Span<byte> destination)
    {
        Rotate(now);
        Compute(_current, address, destination);
    }

    public bool Validate(IPAddress address, ReadOnlySpan<byte> token, DateTimeOffset now)
    {
        Rotate(now);
        if (token.Length != TokenLength) return false;
        Span<byte> expected = stackalloc byte[TokenLength];
        Compute(_current, address, expected);
        if (CryptographicOperations.FixedTimeEquals(expected, token)) return true;
        Compute(_previous, address, expected);
        return CryptographicOperations.FixedTimeEquals(expected, token);
    }

    // Rotation is aligned to the creation time (not to the last check) so a token lives 5 to 10 minutes exactly.
    private void Rotate(DateTimeOffset now)
    {
        for (var i = 0; i < 2 && now - _rotatedAt >= _rotation; i++)
        {
            _current.CopyTo(_previous, 0);
            _random.NextBytes(_current);
            _rotatedAt += _rotation;
        }

        if (now - _rotatedAt >= _rotation)
        {
            // More than two periods passed: both secrets are stale.
            var periods = (now - _rotatedAt).Ticks / _rotation.Ticks;
            _rotatedAt += TimeSpan.FromTicks(periods * _rotation.Ticks);
            _random.NextBytes(_previous);
        }
    }

    private static void Compute(byte[] secret, IPAddress address, Span<byte> destination)
    {
        Span<byte> input = stackalloc byte[SecretLength + 16];
        secret.CopyTo(input);
        KrpcCodec.Normalize(address).TryWriteBytes(input[SecretLength..], out var n);
        Span<byte> hash = stackalloc byte[SHA1.HashSizeInBytes];
        SHA1.HashData(input[..(SecretLength + n)], hash);
        hash[..TokenLength].CopyTo(destination);
    }
}
