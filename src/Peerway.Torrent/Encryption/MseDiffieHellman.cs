using System.Globalization;
using System.Numerics;

namespace Peerway.Torrent.Encryption;

/// <summary>
/// The Diffie-Hellman exchange of Message Stream Encryption: "Prime P is a 768 bit safe prime", "Generator G is 2",
/// "Xa and Xb are a variable size random integers. They are the private key for each side and have to be discarded
/// after the DH handshake is done. Current implementations use 160 bit random integers." Public keys and the shared
/// secret S travel as 96-byte big-endian numbers.
/// </summary>
internal static class MseDiffieHellman
{
    public const int KeyLength = 96;

    public const int PrivateKeyLength = 20;

    // MSE: P = 0xFFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563
    private static readonly BigInteger Prime = BigInteger.Parse(
        "0FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563",
        NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private static readonly BigInteger Generator = 2;

    /// <summary>A private key from 20 random bytes (160 bits).</summary>
    public static BigInteger PrivateKey(ReadOnlySpan<byte> random20) => new(random20[..PrivateKeyLength], isUnsigned: true, isBigEndian: true);

    /// <summary>Y = G^X mod P, as 96 big-endian bytes.</summary>
    public static void PublicKey(BigInteger privateKey, Span<byte> destination) => WriteFixed(BigInteger.ModPow(Generator, privateKey, Prime), destination);

    /// <summary>
    /// S = Y^X mod P. False for a public key outside [2, P-2] (0, 1 and P-1 would force a known secret; an honest
    /// G^X never is one of them).
    /// </summary>
    public static bool TrySharedSecret(ReadOnlySpan<byte> theirPublicKey, BigInteger privateKey, Span<byte> destination)
    {
        var y = new BigInteger(theirPublicKey[..KeyLength], isUnsigned: true, isBigEndian: true);
        if (y < 2 || y > Prime - 2) return false;
        WriteFixed(BigInteger.ModPow(y, privateKey, Prime), destination);
        return true;
    }

    private static void WriteFixed(BigInteger value, Span<byte> destination)
    {
        var target = destination[..KeyLength];
        target.Clear();
        var length = value.GetByteCount(isUnsigned: true);
        value.TryWriteBytes(target[(KeyLength - length)..], out _, isUnsigned: true, isBigEndian: true);
    }
}
